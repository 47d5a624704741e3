//! `devloop completion SHELL` and `devloop man`: the clap definitions in `cli.rs` → a shell completion script, or
//! man pages (roff). Generated from the same definitions as `--help`, so they never drift from the flags. Reads no
//! config and talks to nothing; the script or page goes to stdout (data), pages to files with `--dir`.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, ManArgs};
use crate::error::Error;
use crate::output::Console;

/// Runs `devloop completion SHELL`.
pub fn completion(args: &CompletionArgs, console: &Console) -> Result<(), Error> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "devloop", &mut script);
    console.data(&String::from_utf8_lossy(&script));
    Ok(())
}

/// Runs `devloop man`: devloop(1) on stdout, or with `--dir` one page per command (`devloop.1`,
/// `devloop-build.1`, …) written into that directory.
pub fn man(args: &ManArgs, console: &Console) -> Result<(), Error> {
    let cmd = Cli::command();
    let Some(dir) = &args.dir else {
        console.data(&String::from_utf8_lossy(&page(&cmd, "devloop")?));
        return Ok(());
    };
    if !dir.is_dir() {
        return Err(Error::Usage {
            message: format!("--dir: directory `{}` does not exist", dir.display()),
            hint: Some("create it first".into()),
        });
    }
    let mut written = vec![write_page(dir, "devloop", &cmd)?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("devloop-{}", sub.get_name());
        written.push(write_page(dir, &name, sub)?);
    }
    console.info(&format!(
        "wrote {} man pages to `{}` (read one with `man -l {}`)",
        written.len(),
        dir.display(),
        dir.join("devloop.1").display()
    ));
    Ok(())
}

/// One command's page, in roff, titled `title` (`devloop-build` for `devloop build`).
fn page(cmd: &clap::Command, title: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(title)
        .render(&mut out)
        .map_err(|e| Error::Io(format!("cannot render the man page: {e}")))?;
    Ok(out)
}

fn write_page(dir: &Path, name: &str, cmd: &clap::Command) -> Result<String, Error> {
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page(cmd, name)?)
        .map_err(|e| Error::Io(format!("{}: cannot write: {e}", path.display())))?;
    Ok(name.to_owned())
}
