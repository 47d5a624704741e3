//! `devloop init --from-compose FILE`: a compose file → a devloop.yaml, checked with the loader every other
//! command uses before it is written (or printed), and a summary of what was not converted.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{GlobalArgs, InitArgs};
use crate::config::{self, ActivationContext, LoadOptions, compose};
use crate::error::Error;
use crate::event::Event;
use crate::output::Console;

/// Runs `devloop init`.
pub fn run(global: &GlobalArgs, args: InitArgs, console: Console) -> Result<(), Error> {
    let output = args
        .output_file
        .clone()
        .unwrap_or_else(|| global.filename.clone());
    let to_stdout = output.as_os_str() == "-";
    if to_stdout && console.is_json() {
        return Err(Error::Usage {
            message:
                "`--output-file -` prints the devloop.yaml on stdout, where `-o json` writes events"
                    .into(),
            hint: Some(
                "write it to a file (`--output-file devloop.yaml`), or drop `-o json`".into(),
            ),
        });
    }
    let label = output.display().to_string();
    let output_dir = if to_stdout {
        std::env::current_dir()
            .map_err(|e| Error::Io(format!("cannot read the current directory: {e}")))?
    } else {
        std::path::absolute(&output)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."))
    };
    if !to_stdout {
        if !args.force && output.exists() {
            return Err(exists(&label));
        }
        if !output_dir.is_dir() {
            return Err(Error::Usage {
                message: format!(
                    "{label}: directory `{}` does not exist",
                    output_dir.display()
                ),
                hint: Some("create it first, or name another `--output-file`".into()),
            });
        }
    }
    let env = crate::settings::process_env();
    let conversion = compose::convert(&compose::Request {
        file: &args.from_compose,
        output_dir: &output_dir,
        env: &*env,
    })?;
    let compose_label = args.from_compose.display().to_string();
    let yaml = conversion.to_yaml(
        &compose_label,
        &format!("devloop init --from-compose {compose_label}"),
    )?;
    check(&label, &yaml, &output_dir, &conversion.profiles, &*env)?;
    if to_stdout {
        console.data(&yaml);
    } else {
        write(&output, &yaml, args.force, &label)?;
    }
    let artifacts: BTreeSet<&str> = conversion
        .services
        .iter()
        .filter_map(|s| s.artifact.as_deref())
        .collect();
    console.sink().emit(Event::InitComplete {
        compose_file: compose_label,
        file: if to_stdout { "-".into() } else { label.clone() },
        project: conversion.project.clone(),
        services: conversion.services.clone(),
        containers: conversion
            .services
            .iter()
            .filter(|s| s.container.is_some())
            .count(),
        artifacts: artifacts.len(),
        not_converted: conversion.not_converted.clone(),
        notes: conversion.notes.clone(),
        interpolated: conversion.interpolated.clone(),
        profiles: conversion.profiles.clone(),
    });
    console.info(&next_steps(&output, to_stdout, &conversion.profiles));
    Ok(())
}

fn exists(label: &str) -> Error {
    Error::Usage {
        message: format!("{label}: already exists; not overwritten"),
        hint: Some(
            "use `--force` to overwrite it, or `--output-file FILE` to write somewhere else".into(),
        ),
    }
}

/// Loads the generated text like `devloop dev` would, with no profile and with each profile it defines: a
/// failure is a bug of the conversion, reported instead of writing a broken file.
fn check(
    label: &str,
    yaml: &str,
    dir: &Path,
    profiles: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    let selections = std::iter::once(Vec::new()).chain(profiles.iter().map(|p| vec![p.clone()]));
    for profiles in selections {
        let opts = LoadOptions {
            profiles,
            activation: ActivationContext {
                command: "dev".into(),
                kube_context: None,
            },
        };
        if let Err(e) = config::load_text(label, yaml, dir, &opts, env) {
            return Err(Error::Usage {
                message: format!("the converted config does not load, so it was not written: {e}"),
                hint: Some(
                    "this is a bug in `devloop init --from-compose`: please report it with the compose file"
                        .into(),
                ),
            });
        }
    }
    Ok(())
}

fn write(path: &Path, yaml: &str, force: bool, label: &str) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io(format!("{label}: cannot write: {e}"));
    if force {
        return std::fs::write(path, yaml).map_err(io);
    }
    // `create_new`: a file that appeared since the check above is still not overwritten.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                exists(label)
            } else {
                io(e)
            }
        })?;
    f.write_all(yaml.as_bytes()).map_err(io)
}

/// What to run next, for people (suppressed in JSON mode).
fn next_steps(output: &Path, to_stdout: bool, profiles: &[String]) -> String {
    if to_stdout {
        return "next: save it as devloop.yaml, then run `devloop dev`".to_string();
    }
    let f = if output == Path::new("devloop.yaml") {
        String::new()
    } else {
        format!(" -f {}", output.display())
    };
    let mut s = format!(
        "next: `devloop dev{f}` builds, starts and follows your changes; `devloop run{f}` starts everything once"
    );
    match profiles {
        [] => {}
        [p] => s.push_str(&format!(
            "; add `-p {p}` for the services of compose profile `{p}`"
        )),
        _ => s.push_str(&format!(
            "; add {} for the services of those compose profiles",
            profiles
                .iter()
                .map(|p| format!("`-p {p}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
    s
}
