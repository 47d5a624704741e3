//! Settings: flags + devloop.yaml + environment → the resolved settings of one command, built once, here, and
//! passed down: where images go (pushed, loaded into local cluster nodes, or left on the daemon), the default
//! repository, the cluster and namespace, the builder, deadlines. Commands read none of these flags themselves and
//! stages read no flag at all. Reads no file, prints nothing: a warning it finds is returned for the caller to emit.

use std::sync::Arc;
use std::time::Duration;

use crate::build::load::{self, LocalCluster};
use crate::cli::{ApplyArgs, GlobalArgs};
use crate::config::Config;
use crate::deploy::kube::ClusterOptions;
use crate::hint::Hint;
use crate::runner::BuildOptions;
use crate::template;

/// How long the cleanup of `dev`, or of `run` after a signal, may take before devloop gives up on it (a second
/// signal cuts it short).
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a command's images end up: it decides whether they are pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// References on stdout or in a file (`build`): pushed only when asked (`--push`, `build.push`).
    Output,
    /// Objects on stdout or in a file (`render`) for a cluster: pushed only when asked; immutable references.
    Render,
    /// Containers on the daemon that builds them: never pushed by a flag (`build.push` still pushes).
    Docker,
    /// A cluster: pushed when asked or when `--default-repo` names where; otherwise loaded into the nodes of a
    /// local cluster (kind, k3d) when its context says so.
    Cluster,
}

/// The flags of one command that shape its build (each command parses its own; these are the ones settled here).
#[derive(Debug, Clone, Default)]
pub struct BuildFlags {
    /// `--push`.
    pub push: bool,
    /// `--tag`.
    pub tag: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--build-image`: only these artifacts (and what they require).
    pub only: Vec<String>,
}

/// How objects are applied and checked (`--force-conflicts`, `--status-check-deadline`, `--no-status-check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Apply {
    pub force_conflicts: bool,
    /// Wait until the workloads are ready (`run`, `deploy`; `dev` always waits).
    pub status_check: bool,
    /// How long workloads may take to become ready.
    pub status_deadline: Duration,
}

impl Apply {
    pub fn from_args(args: &ApplyArgs) -> Self {
        Apply {
            force_conflicts: args.force_conflicts,
            status_check: !args.no_status_check,
            status_deadline: args.status_check_deadline,
        }
    }
}

/// The resolved settings of one command.
#[derive(Clone)]
pub struct Settings {
    pub destination: Destination,
    /// Built images are pushed to their registry.
    pub push: bool,
    /// `--default-repo` / `DEVLOOP_DEFAULT_REPO`: image names are rewritten onto it.
    pub default_repo: Option<String>,
    pub tag: Option<String>,
    pub no_cache: bool,
    pub only: Vec<String>,
    /// The local cluster whose nodes get the images (set once the kube context is known: [`Settings::load_into`]).
    pub load: Option<LocalCluster>,
    /// Which cluster, context and namespace.
    pub cluster: ClusterOptions,
    /// The builder: BuildKit when devloop.yaml asks for it and the daemon has it.
    pub buildkit: bool,
    pub apply: Apply,
    /// The environment templates and profiles read: the process's (one place takes it).
    pub env: template::Env,
    /// `dev`: the watcher brings every change, so a file changing while its context is sent supersedes the build.
    pub watching: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("destination", &self.destination)
            .field("push", &self.push)
            .field("default_repo", &self.default_repo)
            .field("load", &self.load)
            .field("apply", &self.apply)
            .finish_non_exhaustive()
    }
}

/// Which cluster, context and namespace the global flags name (the kubeconfig fills in the rest when connecting).
pub fn cluster(global: &GlobalArgs) -> ClusterOptions {
    ClusterOptions {
        kubeconfig: global.kubeconfig.clone(),
        context: global.kube_context.clone(),
        namespace: global.namespace.clone(),
    }
}

/// The process environment (the one place devloop takes it from).
pub fn process_env() -> template::Env {
    Arc::new(|k: &str| std::env::var(k).ok())
}

impl Settings {
    /// Resolves the settings of a command from its flags, the global flags and the loaded config.
    pub fn resolve(
        global: &GlobalArgs,
        flags: BuildFlags,
        apply: Option<&ApplyArgs>,
        cfg: &Config,
        destination: Destination,
    ) -> Self {
        Self::resolve_with_env(global, flags, apply, cfg, destination, process_env())
    }

    /// [`Settings::resolve`] with a given environment.
    pub fn resolve_with_env(
        global: &GlobalArgs,
        flags: BuildFlags,
        apply: Option<&ApplyArgs>,
        cfg: &Config,
        destination: Destination,
        env: template::Env,
    ) -> Self {
        let default_repo = match destination {
            Destination::Docker => None,
            Destination::Output | Destination::Render | Destination::Cluster => {
                global.default_repo.clone()
            }
        };
        let push = match destination {
            Destination::Docker => false,
            Destination::Output | Destination::Render => flags.push || cfg.build.push,
            // Images a cluster pulls must be where `--default-repo` says (the flags' help says it implies `--push`).
            Destination::Cluster => flags.push || cfg.build.push || default_repo.is_some(),
        };
        Settings {
            destination,
            push,
            default_repo,
            tag: flags.tag,
            no_cache: flags.no_cache,
            only: flags.only,
            load: None,
            cluster: cluster(global),
            buildkit: cfg.build.use_buildkit,
            apply: apply.map(Apply::from_args).unwrap_or(Apply {
                force_conflicts: false,
                status_check: false,
                status_deadline: Duration::ZERO,
            }),
            env,
            watching: false,
        }
    }

    /// Knowing the kube context: images that are not pushed are loaded into the nodes of the local cluster it names
    /// (kind, k3d). For minikube, whose nodes do not see this daemon's images, returns a warning to show once.
    pub fn load_into(&mut self, context: &str) -> Option<String> {
        if self.push || self.destination != Destination::Cluster {
            return None;
        }
        match load::detect(context)? {
            LocalCluster::Minikube => {
                // `eval $(minikube docker-env)` sets this: the daemon that builds is then minikube's own.
                if (self.env)("MINIKUBE_ACTIVE_DOCKERD").is_none() {
                    return Some(format!(
                        "kube context `minikube`: its nodes do not see this Docker daemon's images{}",
                        Hint(
                            "run `eval $(minikube docker-env)` before devloop to build with minikube's daemon, \
                             or push (`--push`, `--default-repo`)"
                        )
                    ));
                }
                None
            }
            LocalCluster::SharedDaemon(_) => None,
            cluster => {
                self.load = Some(cluster);
                None
            }
        }
    }

    /// The options of a build run: the one place they are made.
    pub fn build_options(&self) -> BuildOptions {
        BuildOptions {
            only: self.only.clone(),
            push: self.push,
            tag: self.tag.clone(),
            default_repo: self.default_repo.clone(),
            no_cache: self.no_cache,
            // Images that will be deployed need an immutable reference.
            deploy_tags: self.destination != Destination::Output,
            changes_supersede: self.watching,
            load: self.load.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    fn config(extra: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("devloop.yaml");
        std::fs::write(
            &file,
            format!("apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts: []\n{extra}"),
        )
        .unwrap();
        crate::config::load(&file, &Default::default(), &|_| None).unwrap()
    }

    fn global(args: &[&str]) -> GlobalArgs {
        let mut argv = vec!["devloop"];
        argv.extend_from_slice(args);
        argv.push("build");
        crate::cli::Cli::parse_from(argv).global
    }

    fn settings(args: &[&str], push: bool, extra: &str, to: Destination) -> Settings {
        let flags = BuildFlags {
            push,
            ..Default::default()
        };
        let env: template::Env = Arc::new(|_: &str| None);
        Settings::resolve_with_env(&global(args), flags, None, &config(extra), to, env)
    }

    #[test]
    fn one_push_rule_a_default_repo_pushes_only_for_a_cluster() {
        let repo = ["--default-repo", "localhost:5000"];
        assert!(settings(&repo, false, "", Destination::Cluster).push);
        assert!(!settings(&repo, false, "", Destination::Output).push);
        assert!(!settings(&repo, false, "", Destination::Render).push);
        assert!(!settings(&[], false, "", Destination::Cluster).push);
        assert!(settings(&[], true, "", Destination::Cluster).push);
        assert!(settings(&[], true, "", Destination::Output).push);
        let yaml_push = "  push: true\n";
        let cfg = config(yaml_push);
        assert!(cfg.build.push, "the fixture sets build.push");
        assert!(settings(&[], false, yaml_push, Destination::Output).push);
    }

    #[test]
    fn the_docker_target_neither_pushes_by_flag_nor_rewrites_names() {
        let s = settings(&["--default-repo", "r.io"], true, "", Destination::Docker);
        assert!(!s.push);
        assert_eq!(s.default_repo, None);
        assert!(s.build_options().deploy_tags);
    }

    #[test]
    fn only_images_that_are_deployed_get_immutable_tags() {
        assert!(
            !settings(&[], false, "", Destination::Output)
                .build_options()
                .deploy_tags
        );
        assert!(
            settings(&[], false, "", Destination::Render)
                .build_options()
                .deploy_tags
        );
        assert!(
            settings(&[], false, "", Destination::Cluster)
                .build_options()
                .deploy_tags
        );
    }

    #[test]
    fn images_are_loaded_into_kind_and_k3d_nodes_unless_pushed() {
        let mut s = settings(&[], false, "", Destination::Cluster);
        assert_eq!(s.load_into("kind-dev"), None);
        assert_eq!(s.load, Some(LocalCluster::Kind("dev".into())));
        assert_eq!(s.build_options().load, s.load);
        let mut pushed = settings(&[], true, "", Destination::Cluster);
        assert_eq!(pushed.load_into("kind-dev"), None);
        assert_eq!(pushed.load, None);
        let mut shared = settings(&[], false, "", Destination::Cluster);
        assert_eq!(shared.load_into("docker-desktop"), None);
        assert_eq!(shared.load, None);
        let mut minikube = settings(&[], false, "", Destination::Cluster);
        let warning = minikube.load_into("minikube").unwrap();
        assert!(
            warning.contains("\n\nhint: run `eval $(minikube docker-env)`"),
            "{warning}"
        );
        assert_eq!(minikube.load, None);
    }
}
