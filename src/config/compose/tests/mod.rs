//! Unit tests of the compose import: one per conversion rule and per case that does not convert, a file per
//! concept; the fixture and the helpers that read a conversion are here.
#![allow(clippy::unwrap_used)]

mod assembly;
mod build;
mod container;
mod conversion;
mod syntax;
mod variables;

use super::*;

/// A temporary project: `files` written (a path ending in `/` is a directory), the compose file at `compose`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            if path.ends_with('/') {
                std::fs::create_dir_all(&p).unwrap();
            } else {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, content).unwrap();
            }
        }
        Fixture { dir }
    }

    fn convert_with(
        &self,
        compose: &str,
        output_dir: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Conversion, ConfigError> {
        std::fs::create_dir_all(self.dir.path().join(output_dir)).unwrap();
        convert(&Request {
            file: &self.dir.path().join(compose),
            output_dir: &self.dir.path().join(output_dir),
            env,
        })
    }

    fn convert(&self) -> Conversion {
        self.convert_with("compose.yaml", ".", &|_| None).unwrap()
    }

    fn error(&self) -> String {
        self.convert_with("compose.yaml", ".", &|_| None)
            .unwrap_err()
            .to_string()
            .replace(&self.dir.path().display().to_string(), "<dir>")
    }
}

/// A compose project with one `compose.yaml` and a Dockerfile at the root.
fn project(compose: &str) -> Fixture {
    Fixture::new(&[("compose.yaml", compose), ("Dockerfile", "FROM scratch\n")])
}

fn containers(c: &Conversion) -> &Vec<RawContainer> {
    &c.config
        .deploy
        .as_ref()
        .unwrap()
        .docker
        .as_ref()
        .unwrap()
        .containers
}

fn container<'a>(c: &'a Conversion, name: &str) -> &'a RawContainer {
    containers(c).iter().find(|c| c.name == name).unwrap()
}

fn artifacts(c: &Conversion) -> Vec<RawArtifact> {
    c.config
        .build
        .as_ref()
        .and_then(|b| b.artifacts.clone())
        .unwrap_or_default()
}

/// `at: reason` lines of the not-converted list.
fn skipped(c: &Conversion) -> Vec<String> {
    c.not_converted
        .iter()
        .map(|f| format!("{}: {}", f.at, f.reason))
        .collect()
}

fn noted(c: &Conversion) -> Vec<String> {
    c.notes
        .iter()
        .map(|f| format!("{}: {}", f.at, f.reason))
        .collect()
}

fn skipped_at(c: &Conversion, at: &str) -> String {
    c.not_converted
        .iter()
        .find(|f| f.at == at)
        .map(|f| f.reason.clone())
        .unwrap_or_else(|| panic!("nothing skipped at {at}: {:?}", skipped(c)))
}

fn noted_at(c: &Conversion, at: &str) -> String {
    c.notes
        .iter()
        .find(|f| f.at == at)
        .map(|f| f.reason.clone())
        .unwrap_or_else(|| panic!("no note at {at}: {:?}", noted(c)))
}
