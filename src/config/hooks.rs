//! Config, lifecycle hooks: `build.artifacts[].hooks`, `build.artifacts[].sync.hooks` and `deploy.hooks` as
//! written (Skaffold's shape) → validated [`Hooks`] (commands checked non-empty, host directories resolved, hooks
//! for another OS dropped, pod and container name globs compiled). Runs nothing.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// `hooks:` of an artifact's build: host commands only (Skaffold's build hooks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBuildHooks {
    /// Run before the build; a failure stops it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<RawHostHook>,
    /// Run after a successful build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<RawHostHook>,
}

/// `hooks:` of a deploy or a sync: each entry is a host command or a command in containers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHooks {
    /// Run before the step; a failure stops it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<RawHook>,
    /// Run after the step succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<RawHook>,
}

/// One entry of `before`/`after`: exactly one of `host` and `container`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHook {
    /// A command on the developer's machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<RawHostHook>,
    /// A command in containers of this project's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<RawContainerHook>,
}

/// A command run on the developer's machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHostHook {
    /// The program and its arguments (no shell: write `[sh, -c, "…"]` for one).
    pub command: Vec<String>,
    /// Run it only on these operating systems (`linux`, `darwin`, `windows`); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<Vec<String>>,
    /// Working directory, relative to the config file's directory (build hooks: to the artifact's context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// A command run in containers of this project's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawContainerHook {
    /// The program and its arguments, run in the container (no shell).
    pub command: Vec<String>,
    /// The pods it runs in (a glob over pod names, `*` any run of characters). Required for deploy hooks; sync
    /// hooks run in the containers that were synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// The containers of those pods (a glob); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

/// Validated hooks of one step: what runs before it and what runs after it, in order.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub before: Vec<Hook>,
    pub after: Vec<Hook>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }
}

/// One validated hook.
#[derive(Debug, Clone)]
pub enum Hook {
    Host(HostHook),
    Container(Box<ContainerHook>),
}

/// A host command, for this OS, with its absolute working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostHook {
    pub command: Vec<String>,
    pub dir: PathBuf,
}

/// A container command and which containers it runs in.
#[derive(Debug, Clone)]
pub struct ContainerHook {
    pub command: Vec<String>,
    /// `None` for sync hooks: they run in the containers just synced.
    pub pod_name: Option<NameGlob>,
    pub container_name: Option<NameGlob>,
}

/// A glob over pod or container names, with the pattern as written (for messages).
#[derive(Debug, Clone)]
pub struct NameGlob {
    pub pattern: String,
    matcher: globset::GlobMatcher,
}

impl NameGlob {
    pub fn matches(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

/// Which step the hooks belong to, for the field paths and rules of validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Deploy,
    Sync,
}

/// Validates build hooks (host commands), their `dir` relative to `context`.
pub(super) fn validate_build_hooks(
    file: &str,
    at: &str,
    context: &Path,
    raw: Option<&RawBuildHooks>,
) -> Result<Hooks, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Hooks::default());
    };
    let host = |list: &[RawHostHook], when: &str| -> Result<Vec<Hook>, ConfigError> {
        let mut out = Vec::new();
        for (j, h) in list.iter().enumerate() {
            if let Some(h) = validate_host(file, &format!("{at}.{when}[{j}]"), context, h)? {
                out.push(Hook::Host(h));
            }
        }
        Ok(out)
    };
    Ok(Hooks {
        before: host(&raw.before, "before")?,
        after: host(&raw.after, "after")?,
    })
}

/// Validates deploy or sync hooks, host `dir`s relative to `base_dir`.
pub(super) fn validate_hooks(
    file: &str,
    at: &str,
    base_dir: &Path,
    step: Step,
    raw: Option<&RawHooks>,
) -> Result<Hooks, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Hooks::default());
    };
    let list = |list: &[RawHook], when: &str| -> Result<Vec<Hook>, ConfigError> {
        let mut out = Vec::new();
        for (j, h) in list.iter().enumerate() {
            let at = format!("{at}.{when}[{j}]");
            match (&h.host, &h.container) {
                (Some(host), None) => {
                    if let Some(h) = validate_host(file, &format!("{at}.host"), base_dir, host)? {
                        out.push(Hook::Host(h));
                    }
                }
                (None, Some(c)) => {
                    out.push(Hook::Container(Box::new(validate_container(
                        file,
                        &format!("{at}.container"),
                        step,
                        c,
                    )?)));
                }
                _ => {
                    return Err(invalid(
                        file,
                        at,
                        "needs exactly one of `host` and `container`",
                        Some(
                            "e.g. `- host: {command: [make, seed]}` or `- container: {command: [...], podName: api-*}`",
                        ),
                    ));
                }
            }
        }
        Ok(out)
    };
    Ok(Hooks {
        before: list(&raw.before, "before")?,
        after: list(&raw.after, "after")?,
    })
}

fn check_command(file: &str, at: &str, command: &[String]) -> Result<(), ConfigError> {
    if command.first().is_none_or(|p| p.trim().is_empty()) {
        return Err(invalid(
            file,
            format!("{at}.command"),
            "is empty",
            Some("name the program and its arguments, e.g. `[sh, -c, \"echo done\"]`"),
        ));
    }
    Ok(())
}

/// The OS names a hook may be limited to (Go's `GOOS` names, as Skaffold uses).
const OS_NAMES: [&str; 3] = ["linux", "darwin", "windows"];

/// This machine's OS in those names.
fn this_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// `None`: the hook is for other operating systems only.
fn validate_host(
    file: &str,
    at: &str,
    base: &Path,
    h: &RawHostHook,
) -> Result<Option<HostHook>, ConfigError> {
    check_command(file, at, &h.command)?;
    if let Some(os) = &h.os {
        if let Some(bad) = os.iter().find(|o| !OS_NAMES.contains(&o.as_str())) {
            return Err(invalid(
                file,
                format!("{at}.os"),
                format!("`{bad}` is not an operating system devloop knows"),
                Some("use `linux`, `darwin` or `windows`"),
            ));
        }
        if !os.iter().any(|o| o == this_os()) {
            return Ok(None);
        }
    }
    let dir = match &h.dir {
        Some(d) => {
            let dir = base.join(d);
            if !dir.is_dir() {
                return Err(invalid(
                    file,
                    format!("{at}.dir"),
                    format!("directory `{d}` does not exist"),
                    Some(&format!("it is relative to `{}`", base.display())),
                ));
            }
            dir
        }
        None => base.to_path_buf(),
    };
    Ok(Some(HostHook {
        command: h.command.clone(),
        dir,
    }))
}

fn validate_container(
    file: &str,
    at: &str,
    step: Step,
    c: &RawContainerHook,
) -> Result<ContainerHook, ConfigError> {
    check_command(file, at, &c.command)?;
    let glob = |field: &str, pattern: &str| -> Result<NameGlob, ConfigError> {
        let matcher = globset::Glob::new(pattern)
            .map_err(|e| {
                invalid(
                    file,
                    format!("{at}.{field}"),
                    format!("`{pattern}` is not a valid name pattern: {e}"),
                    Some("use a name, or `*` for any run of characters, e.g. `api-*`"),
                )
            })?
            .compile_matcher();
        Ok(NameGlob {
            pattern: pattern.to_string(),
            matcher,
        })
    };
    let pod_name = match (&c.pod_name, step) {
        (Some(p), Step::Deploy) => Some(glob("podName", p)?),
        (None, Step::Deploy) => {
            return Err(invalid(
                file,
                format!("{at}.podName"),
                "missing",
                Some("name the pods the command runs in, e.g. `podName: api-*`"),
            ));
        }
        (Some(_), Step::Sync) => {
            return Err(invalid(
                file,
                format!("{at}.podName"),
                "is not used by sync hooks",
                Some("sync hooks run in each container that was synced; remove `podName`"),
            ));
        }
        (None, Step::Sync) => None,
    };
    let container_name = c
        .container_name
        .as_deref()
        .map(|p| glob("containerName", p))
        .transpose()?;
    Ok(ContainerHook {
        command: c.command.clone(),
        pod_name,
        container_name,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawHooks {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn deploy_hooks_keep_their_order_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = validate_hooks(
            "devloop.yaml",
            "deploy.hooks",
            dir.path(),
            Step::Deploy,
            Some(&raw("before:\n- host: {command: [echo, one]}\n- container: {command: [ls], podName: 'api-*'}\nafter:\n- host: {command: [echo, two]}\n")),
        )
        .unwrap();
        assert_eq!(hooks.before.len(), 2);
        assert!(
            matches!(&hooks.before[0], Hook::Host(h) if h.command == ["echo", "one"] && h.dir == dir.path())
        );
        let Hook::Container(c) = &hooks.before[1] else {
            panic!("a container hook");
        };
        assert!(c.pod_name.as_ref().unwrap().matches("api-7d9f-x2"));
        assert!(!c.pod_name.as_ref().unwrap().matches("web-1"));
        assert_eq!(hooks.after.len(), 1);
    }

    #[test]
    fn bad_hooks_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let err = |yaml: &str, step| {
            validate_hooks(
                "devloop.yaml",
                "deploy.hooks",
                dir.path(),
                step,
                Some(&raw(yaml)),
            )
            .unwrap_err()
            .to_string()
        };
        let e = err("before:\n- {}\n", Step::Deploy);
        assert!(
            e.contains("deploy.hooks.before[0]: needs exactly one of `host` and `container`"),
            "{e}"
        );
        let e = err("after:\n- host: {command: []}\n", Step::Deploy);
        assert!(
            e.contains("deploy.hooks.after[0].host.command: is empty"),
            "{e}"
        );
        let e = err("after:\n- container: {command: [ls]}\n", Step::Deploy);
        assert!(
            e.contains("deploy.hooks.after[0].container.podName: missing"),
            "{e}"
        );
        let e = err(
            "after:\n- container: {command: [ls], podName: x}\n",
            Step::Sync,
        );
        assert!(e.contains("podName: is not used by sync hooks"), "{e}");
        let e = err(
            "before:\n- host: {command: [ls], os: [beos]}\n",
            Step::Deploy,
        );
        assert!(
            e.contains("host.os: `beos` is not an operating system"),
            "{e}"
        );
        let e = err(
            "before:\n- host: {command: [ls], dir: nowhere}\n",
            Step::Deploy,
        );
        assert!(
            e.contains("host.dir: directory `nowhere` does not exist"),
            "{e}"
        );
    }

    #[test]
    fn hooks_for_another_os_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let other = if this_os() == "windows" {
            "linux"
        } else {
            "windows"
        };
        let yaml = format!(
            "before:\n- host: {{command: [a], os: [{other}]}}\n- host: {{command: [b], os: [{}]}}\n",
            this_os()
        );
        let hooks = validate_hooks(
            "f",
            "deploy.hooks",
            dir.path(),
            Step::Deploy,
            Some(&raw(&yaml)),
        )
        .unwrap();
        assert_eq!(hooks.before.len(), 1);
        assert!(matches!(&hooks.before[0], Hook::Host(h) if h.command == ["b"]));
    }
}
