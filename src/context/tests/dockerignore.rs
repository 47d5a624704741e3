//! Tests of the `.dockerignore` rules: file syntax, errors, parent directories, exceptions, pruning, build files.

use std::path::PathBuf;

use super::*;

fn matcher(patterns: &[&str]) -> DockerIgnore {
    DockerIgnore::parse(Path::new(".dockerignore"), &patterns.join("\n")).unwrap()
}

#[test]
fn file_syntax_comments_blank_lines_whitespace() {
    let text = "\u{feff}# comment\n\n   \n  build  \r\n #not-a-comment\n! keep.txt\n/abs/path/\n./dot/../x//y/\n";
    let ignore = DockerIgnore::parse(Path::new(".dockerignore"), text).unwrap();
    let cleaned: Vec<(&str, bool)> = ignore
        .patterns
        .iter()
        .map(|p| (p.cleaned.as_str(), p.exclusion))
        .collect();
    assert_eq!(
        cleaned,
        [
            ("build", false),
            ("#not-a-comment", false),
            ("keep.txt", true),
            ("abs/path", false),
            ("x/y", false)
        ]
    );
    assert!(ignore.has_exceptions());
    assert!(ignore.is_excluded("abs/path/file"));
    assert!(ignore.is_excluded("#not-a-comment"));
}

#[test]
fn invalid_pattern_names_file_line_and_pattern() {
    let err =
        DockerIgnore::parse(Path::new("ctx/.dockerignore"), "ok\n# c\n  a[b  \n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "ctx/.dockerignore:3: invalid pattern `a[b`: unterminated `[` character class"
    );
    let err = DockerIgnore::parse(Path::new(".dockerignore"), "x\n!\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        ".dockerignore:2: invalid pattern `!`: a lone `!` is not a pattern (docker rejects it)"
    );
    let err = DockerIgnore::parse(Path::new(".dockerignore"), "[z-a]").unwrap_err();
    assert!(
        err.to_string()
            .starts_with(".dockerignore:1: invalid pattern `[z-a]`: invalid character class range")
    );
    let long = "x".repeat(70_000);
    let err = DockerIgnore::parse(Path::new(".dockerignore"), &format!("a\n{long}\n")).unwrap_err();
    assert!(
        matches!(err, ContextError::IgnoreLineTooLong { line: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn parent_directory_matching_and_last_rule_wins() {
    let ignore = matcher(&["docs", "*.md", "!README.md", "README.md"]);
    assert!(ignore.is_excluded("docs"));
    assert!(ignore.is_excluded("docs/a/b.txt"));
    assert!(ignore.is_excluded("CHANGES.md"));
    assert!(ignore.is_excluded("README.md"));
    assert!(!ignore.is_excluded("sub/CHANGES.md"));
    assert!(!ignore.is_excluded("src/main.rs"));
    let ignore = matcher(&["*.md", "!README.md"]);
    assert!(!ignore.is_excluded("README.md"));
}

#[test]
fn exception_reincludes_below_excluded_directory() {
    let ignore = matcher(&["vendor", "!vendor/keep/**"]);
    assert!(ignore.is_excluded("vendor"));
    assert!(ignore.is_excluded("vendor/other.go"));
    assert!(ignore.is_excluded("vendor/keep"));
    assert!(!ignore.is_excluded("vendor/keep/a.go"));
    assert!(!ignore.is_excluded("vendor/keep/deep/b.go"));
}

#[test]
fn excluded_directory_is_pruned_unless_an_exception_starts_with_it() {
    // Docker prunes `src` (excluded by `*`) because no `!` rule literally starts with `src/`,
    // so `!**/*.go` cannot bring `src/main.go` back.
    let ignore = matcher(&["*", "!**/*.go"]);
    assert!(!ignore.is_excluded("main.go"));
    assert!(ignore.is_excluded("src/main.go"));
    assert!(
        !ignore.matches("src/main.go"),
        "the rules alone re-include it"
    );
    assert!(ignore.matches("src"));
    // `src/` is walked into, but `src/a` is excluded again by the inherited `*` and pruned.
    let ignore = matcher(&["*", "!src/**/*.go"]);
    assert!(!ignore.is_excluded("src/main.go"));
    assert!(ignore.is_excluded("src/a/b.go"));
    assert!(ignore.is_excluded("src/a/b.rs"));
    let ignore = matcher(&["*", "!src", "src/a", "!src/a/**/*.go"]);
    assert!(!ignore.is_excluded("src/x.rs"));
    assert!(!ignore.is_excluded("src/a/b.go"));
    assert!(ignore.is_excluded("src/a/b.rs"));
}

#[test]
fn trailing_slash_means_nothing() {
    let ignore = matcher(&["build/"]);
    assert!(ignore.is_excluded("build"));
    assert!(ignore.is_excluded("build/out.o"));
    let ignore = matcher(&["/build/"]);
    assert!(ignore.is_excluded("build/out.o"));
    assert!(!ignore.is_excluded("sub/build/out.o"));
}

#[test]
fn keep_build_files_adds_docker_cli_exceptions() {
    let rules = IgnoreRules {
        source: Some(PathBuf::from(".dockerignore")),
        text: "*\n".to_owned(),
    };
    let inside = DockerfileLocation::Inside {
        path: PathBuf::from("/ctx/Dockerfile"),
        rel: "Dockerfile".into(),
    };
    let ignore = DockerIgnore::for_build(&rules, &inside).unwrap();
    assert!(!ignore.is_excluded(".dockerignore"));
    assert!(!ignore.is_excluded("Dockerfile"));
    assert!(ignore.is_excluded("other"));
    let nested = DockerfileLocation::Inside {
        path: PathBuf::from("/ctx/deploy/docker/api.Dockerfile"),
        rel: "deploy/docker/api.Dockerfile".into(),
    };
    let ignore = DockerIgnore::for_build(&rules, &nested).unwrap();
    assert!(!ignore.is_excluded("deploy/docker/api.Dockerfile"));
    assert!(ignore.is_excluded("deploy/docker/other"));
    // Nothing to keep: no rule is added.
    let rules = IgnoreRules {
        source: None,
        text: "tmp\n".to_owned(),
    };
    let ignore = DockerIgnore::for_build(&rules, &inside).unwrap();
    assert!(!ignore.has_exceptions());
}
