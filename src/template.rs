//! Templates: `{{.NAME}}` fields in build args and tag templates → strings. Knows the variables devloop offers
//! (git, build time, version, environment); runs `git` only for the fields a template actually uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use crate::error::hint_suffix;

/// A template could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{field}: {message}{}", hint_suffix(hint))]
    Eval {
        field: String,
        message: String,
        hint: Option<String>,
    },
}

/// Fields whose value changes on every run. The cache key hashes their template text, not their value, so that
/// `BUILD_TIME` in a build arg does not defeat the cache; a cache hit keeps the time of the build that made it.
pub const VOLATILE: &[&str] = &["BUILD_TIME"];

/// Checks that a template is well formed (balanced `{{ }}`, only `.NAME` / `.Env.NAME` fields); returns why not.
pub fn check(text: &str) -> Result<(), String> {
    parse(text).map(|_| ())
}

#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
    Env(&'a str),
}

fn parse(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unclosed `{{{{` in `{text}`"));
        };
        let inner = after[..end].trim();
        let name = inner.strip_prefix('.').ok_or_else(|| {
            format!("`{{{{{inner}}}}}` in `{text}` is not a field; write `{{{{.NAME}}}}`")
        })?;
        let piece = match name.strip_prefix("Env.") {
            Some(var) => Piece::Env(var),
            None => Piece::Field(name),
        };
        let ident = match piece {
            Piece::Env(v) | Piece::Field(v) => v,
            Piece::Text(_) => "",
        };
        if ident.is_empty() || !ident.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`{{{{{inner}}}}}` in `{text}` is not a field; write `{{{{.NAME}}}}` or `{{{{.Env.NAME}}}}`"
            ));
        }
        out.push(piece);
        rest = &after[end + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// How templates read the environment (a function, so tests need not touch the process environment).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The values templates can use, computed lazily (git runs only when a template needs it).
pub struct Vars {
    dir: PathBuf,
    build_time: String,
    env: Env,
    extra: BTreeMap<String, String>,
    git_commit: OnceLock<Result<String, String>>,
    git_describe: OnceLock<Result<String, String>>,
    git_dirty: OnceLock<Result<bool, String>>,
}

impl Vars {
    /// Values for a project in `dir` (git runs there), with `build_time` fixed for the whole command.
    pub fn new(dir: &Path, build_time: String, env: Env) -> Self {
        Vars {
            dir: dir.to_path_buf(),
            build_time,
            env,
            extra: BTreeMap::new(),
            git_commit: OnceLock::new(),
            git_describe: OnceLock::new(),
            git_dirty: OnceLock::new(),
        }
    }

    /// A copy with extra fields (e.g. `IMAGE_NAME` for tag templates); git answers are not shared.
    pub fn with(&self, extra: &[(&str, &str)]) -> Vars {
        let mut v = Vars::new(&self.dir, self.build_time.clone(), self.env.clone());
        v.extra = self.extra.clone();
        v.extra
            .extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    }

    fn git(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("cannot run `git`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`git {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn commit(&self) -> Result<String, String> {
        self.git_commit
            .get_or_init(|| self.git(&["rev-parse", "HEAD"]))
            .clone()
    }

    fn describe(&self) -> Result<String, String> {
        self.git_describe
            .get_or_init(|| self.git(&["describe", "--tags", "--always", "--dirty"]))
            .clone()
    }

    /// Whether the work tree has changes to tracked files.
    pub fn dirty(&self) -> Result<bool, String> {
        self.git_dirty
            .get_or_init(|| {
                self.git(&["status", "--porcelain", "--untracked-files=no"])
                    .map(|s| !s.is_empty())
            })
            .clone()
    }

    /// The value of one field.
    pub fn field(&self, name: &str) -> Result<String, String> {
        if let Some(v) = self.extra.get(name) {
            return Ok(v.clone());
        }
        match name {
            "GIT_COMMIT" => self.commit(),
            "GIT_SHORT_COMMIT" => self.commit().map(|c| c.chars().take(7).collect()),
            "VERSION" => self.describe(),
            "BUILD_TIME" => Ok(self.build_time.clone()),
            // Like Skaffold's envTemplate, a bare name that is no devloop field is read from the environment.
            other => (self.env)(other).ok_or_else(|| {
                format!("`{other}` is neither a devloop field nor a set environment variable")
            }),
        }
    }

    /// The value of an environment variable.
    pub fn env(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }
}

/// Evaluates a template; `field` names where it came from for the error.
pub fn expand(text: &str, vars: &Vars, field: &str) -> Result<String, TemplateError> {
    expand_with(text, field, |piece| match piece {
        Piece::Field(name) => vars.field(name),
        Piece::Env(name) => vars
            .env(name)
            .ok_or_else(|| format!("environment variable `{name}` is not set")),
        Piece::Text(t) => Ok(t.to_string()),
    })
}

/// The text the cache key hashes for a template: every field evaluated except the volatile ones, which stay as
/// written.
pub fn expand_for_key(text: &str, vars: &Vars, field: &str) -> Result<String, TemplateError> {
    expand_with(text, field, |piece| match piece {
        Piece::Field(name) if VOLATILE.contains(name) => Ok(format!("{{{{.{name}}}}}")),
        Piece::Field(name) => vars.field(name),
        Piece::Env(name) => vars
            .env(name)
            .ok_or_else(|| format!("environment variable `{name}` is not set")),
        Piece::Text(t) => Ok(t.to_string()),
    })
}

fn expand_with(
    text: &str,
    field: &str,
    mut eval: impl FnMut(&Piece) -> Result<String, String>,
) -> Result<String, TemplateError> {
    let pieces = parse(text).map_err(|message| TemplateError::Eval {
        field: field.to_string(),
        message,
        hint: None,
    })?;
    let mut out = String::with_capacity(text.len());
    for p in &pieces {
        out.push_str(&eval(p).map_err(|message| TemplateError::Eval {
            field: field.to_string(),
            hint: message.contains("git").then(|| {
                "git fields need the project to be in a git repository with at least one commit"
                    .to_string()
            }),
            message,
        })?);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let env: Env = Arc::new(|k: &str| (k == "REGION").then(|| "eu".to_string()));
        Vars::new(
            Path::new("/nonexistent"),
            "2026-11-22T03:00:00Z".into(),
            env,
        )
    }

    #[test]
    fn expands_fields_and_env() {
        let v = vars();
        assert_eq!(
            expand("t={{.BUILD_TIME}} r={{ .Env.REGION }} {{.REGION}}", &v, "f").unwrap(),
            "t=2026-11-22T03:00:00Z r=eu eu"
        );
        let w = v.with(&[("IMAGE_NAME", "api")]);
        assert_eq!(expand("{{.IMAGE_NAME}}-x", &w, "f").unwrap(), "api-x");
    }

    #[test]
    fn volatile_fields_stay_as_written_for_the_key() {
        let v = vars();
        assert_eq!(
            expand_for_key("{{.BUILD_TIME}}/{{.Env.REGION}}", &v, "f").unwrap(),
            "{{.BUILD_TIME}}/eu"
        );
    }

    #[test]
    fn errors_name_the_field_and_the_variable() {
        let v = vars();
        let e = expand(
            "{{.Env.MISSING}}",
            &v,
            "build.artifacts[0].docker.buildArgs.X",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "build.artifacts[0].docker.buildArgs.X: environment variable `MISSING` is not set"
        );
        let e = expand("{{.GIT_COMMIT}}", &v, "f").unwrap_err().to_string();
        assert!(e.contains("git"), "{e}");
        assert!(check("{{.A").is_err());
        assert!(check("{{A}}").is_err());
        assert!(check("{{.A-B}}").is_err());
        assert!(check("plain").is_ok());
    }

    #[test]
    fn git_fields_in_a_repository() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(ok.status.success(), "{ok:?}");
            String::from_utf8(ok.stdout).unwrap()
        };
        git(&["init", "-q"]);
        std::fs::write(dir.path().join("a"), "1").unwrap();
        git(&["add", "a"]);
        git(&["commit", "-q", "-m", "x"]);
        git(&["tag", "v1.2.3"]);
        let head = git(&["rev-parse", "HEAD"]).trim().to_string();
        let v = Vars::new(dir.path(), "t".into(), Arc::new(|_: &str| None));
        assert_eq!(expand("{{.GIT_COMMIT}}", &v, "f").unwrap(), head);
        assert_eq!(expand("{{.GIT_SHORT_COMMIT}}", &v, "f").unwrap(), head[..7]);
        assert_eq!(expand("{{.VERSION}}", &v, "f").unwrap(), "v1.2.3");
        assert!(!v.dirty().unwrap());
    }
}
