//! `devloop completion SHELL` and `devloop man`: scripts every shell accepts (checked by the shell's own parser:
//! `bash -n`, `zsh -n`, `fish --no-execute`; CI installs zsh and fish) that complete devloop's real commands and
//! flags, and man pages generated from the same definitions as `--help`.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use support::{Project, assert_ok, stdout};

/// The script for `shell`, after checking that devloop printed it and nothing else went wrong.
fn script(shell: &str) -> String {
    let p = Project::new();
    let out = p.devloop(&["completion", shell]);
    assert_ok(&out);
    let script = stdout(&out);
    // Generated from the clap definitions: every command and the global flags are in it.
    for word in [
        "build",
        "render",
        "dev",
        "delete",
        "init",
        "schema",
        "default-repo",
        "kube-context",
    ] {
        assert!(
            script.contains(word),
            "{shell} script lacks `{word}`:\n{script}"
        );
    }
    script
}

/// The shell parses `script` without running it (a syntax error fails the test); the shell must be installed.
fn parses(shell: &str, no_exec: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("devloop.{shell}"));
    std::fs::write(&file, script).unwrap();
    let out = Command::new(shell)
        .arg(no_exec)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("`{shell}` is needed to check its completion script ({e}): `.ci/services` installs it"));
    assert!(
        out.status.success(),
        "{shell} rejects the script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bash_completion_parses_and_completes_subcommands() {
    let s = script("bash");
    assert!(s.contains("complete -F"), "{s}");
    parses("bash", "-n", &s);
}

#[test]
fn zsh_completion_parses() {
    let s = script("zsh");
    assert!(s.starts_with("#compdef devloop"), "{s}");
    parses("zsh", "-n", &s);
}

#[test]
fn fish_completion_parses() {
    let s = script("fish");
    assert!(s.contains("complete -c devloop"), "{s}");
    parses("fish", "--no-execute", &s);
}

#[test]
fn powershell_and_elvish_completions_are_generated() {
    assert!(script("powershell").contains("Register-ArgumentCompleter"));
    assert!(script("elvish").contains("edit:completion:arg-completer[devloop]"));
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let p = Project::new();
    let out = p.devloop(&["completion", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tcsh") && err.contains("bash"), "{err}");
}

#[test]
fn the_man_page_documents_commands_and_flags() {
    let p = Project::new();
    let out = p.devloop(&["man"]);
    assert_ok(&out);
    let page = stdout(&out);
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH devloop 1"), "{page}");
    for word in ["build", "render", "default\\-repo", "kube\\-context"] {
        assert!(page.contains(word), "man page lacks `{word}`:\n{page}");
    }
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let p = Project::new();
    let dir = tempfile::tempdir().unwrap();
    let out = p.devloop(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_ok(&out);
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for expected in [
        "devloop.1",
        "devloop-build.1",
        "devloop-dev.1",
        "devloop-run.1",
        "devloop-man.1",
        "devloop-schema.1",
    ] {
        assert!(pages.iter().any(|p| p == expected), "{pages:?}");
    }
    let build = std::fs::read_to_string(dir.path().join("devloop-build.1")).unwrap();
    assert!(build.contains(".TH devloop-build 1"), "{build}");
    assert!(build.contains("file\\-output"), "{build}");
    // A missing directory is named, not created.
    let missing = dir.path().join("nope");
    let out = p.devloop(&["man", "--dir", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
