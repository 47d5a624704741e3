//! Templates, variables: the values `{{.NAME}}` fields read (git, build time, extra fields, environment),
//! computed lazily → strings. Runs `git` in the project only when a field needs it; never writes anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

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
