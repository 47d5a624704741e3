//! `devloop schema [--output-file FILE]`: the JSON Schema of devloop.yaml (`config::schema`) → stdout (data), or a
//! file. Reads no config and talks to nothing.

use std::ffi::OsStr;
use std::path::Path;

use crate::cli::{GlobalArgs, SchemaArgs};
use crate::config::schema;
use crate::error::Error;
use crate::output::Console;

/// Runs `devloop schema`.
pub fn run(global: &GlobalArgs, args: &SchemaArgs, console: &Console) -> Result<(), Error> {
    let text = schema::schema_text();
    match args.output_file.as_deref() {
        None => console.data(&text),
        Some(path) if path.as_os_str() == "-" => console.data(&text),
        Some(path) => {
            write(path, &text)?;
            console.info(&format!(
                "wrote the schema of devloop.yaml to `{}`; {}",
                path.display(),
                how_to_point_at(path, &global.filename)
            ));
        }
    }
    Ok(())
}

/// How a config file names the schema written to `path`: the exact first line when the config (`-f`) is in
/// the same directory under the name `init` uses, the general form otherwise.
fn how_to_point_at(path: &Path, config: &Path) -> String {
    let dir = |p: &Path| {
        std::path::absolute(p)
            .ok()
            .and_then(|a| a.parent().map(Path::to_path_buf))
    };
    if path.file_name() == Some(OsStr::new(schema::SCHEMA_FILE)) && dir(path) == dir(config) {
        format!(
            "with `{}` as its first line, `{}` gets completion and checks in editors that use the YAML \
             language server",
            schema::schema_comment().trim_end(),
            config.display()
        )
    } else {
        "a devloop.yaml whose first line is `# yaml-language-server: $schema=PATH` (PATH relative to the \
         devloop.yaml) gets completion and checks in editors that use the YAML language server"
            .to_string()
    }
}

/// Writes the schema to `path`, replacing what is there (it is generated; this refreshes it).
pub fn write(path: &Path, text: &str) -> Result<(), Error> {
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    if dir.as_deref().is_some_and(|d| !d.is_dir()) {
        return Err(Error::Usage {
            message: format!(
                "--output-file: directory of `{}` does not exist",
                path.display()
            ),
            hint: Some("create it first, or name another `--output-file`".into()),
        });
    }
    std::fs::write(path, text)
        .map_err(|e| Error::Io(format!("{}: cannot write: {e}", path.display())))
}
