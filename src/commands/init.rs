//! `devloop init --from-compose FILE` / `--from-skaffold FILE`: a compose file or a Skaffold config → a
//! devloop.yaml, checked with the loader every other command uses before it is written (or printed), and a
//! summary of what was not converted. The devloop.yaml starts with the schema modeline
//! (`config::schema_comment`); the schema is written beside it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{GlobalArgs, InitArgs};
use crate::config::{self, ActivationContext, LoadOptions, compose, skaffold};
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
    let target = Target {
        output,
        label,
        output_dir,
        to_stdout,
        force: args.force,
    };
    match (&args.from_compose, &args.from_skaffold) {
        (Some(compose_file), _) => from_compose(compose_file, &target, console),
        (None, Some(skaffold_file)) => {
            from_skaffold(skaffold_file, &global.profiles, &target, console)
        }
        (None, None) => Err(Error::Usage {
            message: "nothing to convert".into(),
            hint: Some("name a file with `--from-compose FILE` or `--from-skaffold FILE`".into()),
        }),
    }
}

/// Where the devloop.yaml goes.
struct Target {
    output: PathBuf,
    /// The output as named in messages.
    label: String,
    output_dir: PathBuf,
    to_stdout: bool,
    force: bool,
}

impl Target {
    /// Prints or writes the checked devloop.yaml; a written one gets the schema its first line names beside it.
    fn deliver(&self, yaml: &str, console: &Console) -> Result<Option<SchemaFile>, Error> {
        if self.to_stdout {
            console.data(yaml);
            return Ok(None);
        }
        write(&self.output, yaml, self.force, &self.label)?;
        write_schema(&self.output, &self.output_dir, self.force).map(Some)
    }
}

fn from_compose(compose_file: &Path, t: &Target, console: Console) -> Result<(), Error> {
    let env = crate::settings::process_env();
    let conversion = compose::convert(&compose::Request {
        file: compose_file,
        output_dir: &t.output_dir,
        env: &*env,
    })?;
    let compose_label = compose_file.display().to_string();
    let command = format!("devloop init --from-compose {compose_label}");
    let yaml = conversion.to_yaml(&compose_label, &command)?;
    let yaml = format!("{}{yaml}", config::schema_comment());
    check(
        &t.label,
        &yaml,
        &t.output_dir,
        &conversion.profiles,
        &*env,
        "--from-compose",
        "compose file",
    )?;
    let schema = t.deliver(&yaml, &console)?;
    let artifacts: BTreeSet<&str> = conversion
        .services
        .iter()
        .filter_map(|s| s.artifact.as_deref())
        .collect();
    console.sink().emit(Event::InitComplete {
        compose_file: compose_label,
        file: if t.to_stdout {
            "-".into()
        } else {
            t.label.clone()
        },
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
    if let Some(schema) = schema {
        console.info(&schema.describe());
    }
    console.info(&next_steps(
        &t.output,
        t.to_stdout,
        &conversion.profiles,
        "compose",
    ));
    Ok(())
}

fn from_skaffold(
    skaffold_file: &Path,
    profiles: &[String],
    t: &Target,
    console: Console,
) -> Result<(), Error> {
    let env = crate::settings::process_env();
    let conversion = skaffold::convert(&skaffold::Request {
        file: skaffold_file,
        output_dir: &t.output_dir,
        profiles,
    })?;
    let skaffold_label = skaffold_file.display().to_string();
    let mut command = format!("devloop init --from-skaffold {skaffold_label}");
    for p in &conversion.applied {
        command.push_str(&format!(" -p {p}"));
    }
    let yaml = conversion.to_yaml(&skaffold_label, &command)?;
    let yaml = format!("{}{yaml}", config::schema_comment());
    check(
        &t.label,
        &yaml,
        &t.output_dir,
        &conversion.profiles,
        &*env,
        "--from-skaffold",
        "Skaffold config",
    )?;
    let schema = t.deliver(&yaml, &console)?;
    console.sink().emit(Event::InitSkaffold {
        skaffold_file: skaffold_label,
        file: if t.to_stdout {
            "-".into()
        } else {
            t.label.clone()
        },
        project: conversion.project.clone(),
        configs: conversion.configs.clone(),
        artifacts: conversion
            .config
            .build
            .as_ref()
            .and_then(|b| b.artifacts.as_ref())
            .map_or(0, Vec::len),
        not_converted: conversion.not_converted.clone(),
        notes: conversion.notes.clone(),
        applied: conversion.applied.clone(),
        profiles: conversion.profiles.clone(),
    });
    if let Some(schema) = schema {
        console.info(&schema.describe());
    }
    console.info(&next_steps(
        &t.output,
        t.to_stdout,
        &conversion.profiles,
        "Skaffold",
    ));
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
    flag: &str,
    source: &str,
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
                // A path the source names but the project lacks is the project's state, not a bug.
                hint: Some(if e.to_string().contains("does not exist") {
                    format!(
                        "the {source} names a path the project does not have: create it or fix the {source}, then convert again"
                    )
                } else {
                    format!(
                        "this is a bug in `devloop init {flag}`: please report it with the {source}"
                    )
                }),
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

/// What became of the schema file beside the written devloop.yaml (named as the user named the output).
enum SchemaFile {
    Written(PathBuf),
    Current(PathBuf),
    /// A different schema (another devloop's, or the user's own) that was left as it is.
    Kept(PathBuf),
}

impl SchemaFile {
    fn describe(&self) -> String {
        let points = "the schema its first line points editors at (completion and checks with the YAML language \
                      server: VS Code's YAML extension, yamlls)";
        match self {
            SchemaFile::Written(p) => format!("wrote `{}`, {points}", p.display()),
            SchemaFile::Current(p) => {
                format!("`{}`, {points}, is already this devloop's", p.display())
            }
            SchemaFile::Kept(p) => format!(
                "`{}`, {points}, differs from this devloop's and was kept: `--force` replaces it, as does \
                 `devloop schema --output-file {}`",
                p.display(),
                p.display()
            ),
        }
    }
}

/// Writes the schema the new devloop.yaml's first line points at ([`config::SCHEMA_FILE`] beside `output`, in
/// `dir`). A file already there that differs is replaced only with `--force`.
fn write_schema(output: &Path, dir: &Path, force: bool) -> Result<SchemaFile, Error> {
    let path = dir.join(config::SCHEMA_FILE);
    let shown = output.with_file_name(config::SCHEMA_FILE);
    let text = config::schema::schema_text();
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing == text => return Ok(SchemaFile::Current(shown)),
        Ok(_) if !force => return Ok(SchemaFile::Kept(shown)),
        _ => {}
    }
    super::schema::write(&path, &text)?;
    Ok(SchemaFile::Written(shown))
}

/// What to run next, for people (suppressed in JSON mode).
fn next_steps(output: &Path, to_stdout: bool, profiles: &[String], source: &str) -> String {
    let compose = source == "compose";
    if to_stdout {
        return format!(
            "next: save it as devloop.yaml, then run `devloop dev`; for editors, write the schema its first line \
             names beside it: `devloop schema --output-file {}`",
            config::SCHEMA_FILE
        );
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
            "; add `-p {p}` for {}",
            if compose {
                format!("the services of compose profile `{p}`")
            } else {
                format!("what {source} profile `{p}` changes")
            }
        )),
        _ => s.push_str(&format!(
            "; add {} for {}",
            profiles
                .iter()
                .map(|p| format!("`-p {p}`"))
                .collect::<Vec<_>>()
                .join(" or "),
            if compose {
                "the services of those compose profiles".to_string()
            } else {
                format!("what those {source} profiles change")
            }
        )),
    }
    s
}
