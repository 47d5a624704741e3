//! `devloop dev`: config → watcher + dev loop (build, render, apply, wait) + pod logs, until a signal (Ctrl-C,
//! SIGTERM, SIGHUP); then clean up what was deployed.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::build::docker::DockerBuilder;
use crate::cache::Store;
use crate::cli::{DevArgs, GlobalArgs, TriggerArg};
use crate::config::Config;
use crate::connectivity::Connectivity;
use crate::deploy::docker::DockerPlan;
use crate::deploy::kube::KubePlan;
use crate::error::Error;
use crate::event::Event;
use crate::output::Console;
use crate::port_forward::Forwarder;
use crate::runner::dev::spec::{Forwards, forward_specs, watch_spec};
use crate::runner::dev::{DevLoop, DevOptions, ReloadFn, session};
use crate::settings::{BuildFlags, CLEANUP_TIMEOUT, Destination, Settings};
use crate::template::Vars;
use crate::time::Timestamp;
use crate::watch::{Trigger, WatchSpec, Watcher};

/// Runs `devloop dev`.
pub async fn run(global: &GlobalArgs, args: DevArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "dev", &console)?;
    let flags = BuildFlags {
        push: args.push,
        ..Default::default()
    };
    if cfg.docker.is_some() {
        let mut settings =
            Settings::resolve(global, flags, Some(&args.apply), &cfg, Destination::Docker);
        settings.watching = true;
        return run_docker(global, args, settings, console, cfg).await;
    }
    let mut settings =
        Settings::resolve(global, flags, Some(&args.apply), &cfg, Destination::Cluster);
    settings.watching = true;
    let target = super::connect(&settings, &cfg).await?;
    super::load_into(&mut settings, &target, &console);
    if !cfg.blue_green.is_empty() {
        console.info(
            "deploy.kubernetes.blueGreen releases `run` and `deploy`; dev deploys the Deployments as written",
        );
    }
    let Prepared {
        store,
        builder,
        vars,
        watcher,
        respecs,
        reload,
    } = prepare(global, &args, &settings, &console, &cfg).await?;
    let plan_console = console.clone();
    let plan_target = &target;
    let plan =
        move |cfg: &Config, images: &[crate::render::ArtifactImage]| -> Result<KubePlan, Error> {
            super::deploy::kube_plan(cfg, plan_target, images, &plan_console)
        };
    // Where the project's objects go (a kustomization may name its own namespace): logs and port-forwards look
    // there, not in the context's namespace. Objects do not depend on the images: rendered with none. Manifests
    // that do not render yet are the first iteration's failure to report, not a reason not to start watching.
    let initial = super::deploy::kube_layout(&cfg, &target).unwrap_or_default();
    let namespaces = crate::deploy::kube::namespaces_of(&initial.objects, &target.namespace);
    let home = target.home_namespace(&initial.objects);
    let (progress_tx, mut progress_rx) = tokio::sync::watch::channel(0usize);
    let Forwards {
        specs: forwards,
        no_service,
    } = forward_specs(&cfg, &home, &initial.objects, args.port_forward);
    if no_service {
        console.info("--port-forward: the project renders no Service with a selector");
    }
    let dev = DevLoop {
        builder: &builder,
        deployer: &target,
        store: &store,
        vars: &vars,
        events: console.sink(),
        reload: reload.as_ref(),
        plan: &plan,
        opts: dev_options(&settings, &args),
        progress: progress_tx,
        hooks_ran: Default::default(),
        deployed: Default::default(),
    };
    // The first signal ends the session: it cleans up and returns.
    let shutdown = super::signal::token();
    let selector = target.selector();
    let logs_events = console.sink();
    // One view of the API server for every stream: one line when it goes away, one when it is back.
    let connectivity = Connectivity::new(
        target.client().clone(),
        target.server.clone(),
        console.sink(),
    );
    let logs_connectivity = connectivity.clone();
    let starts_namespaces = namespaces.clone();
    let starts_connectivity = connectivity.clone();
    let logs_cancel = shutdown.clone();
    let tail = args.tail;
    let logs = async move {
        if tail {
            let connectivity = &logs_connectivity;
            let follows = namespaces.iter().map(|ns| {
                crate::logs::follow(ns, &selector, &logs_events, &logs_cancel, connectivity)
            });
            let _ = futures_util::future::join_all(follows).await;
        }
    };
    let forward_events = console.sink();
    let forward_client = target.client().clone();
    let forward_cancel = shutdown.clone();
    let port_forwards = async move {
        if forwards.is_empty() {
            return;
        }
        // Named ports are looked up in the cluster: start once the first deploy created the objects.
        if progress_rx.wait_for(|n| *n > 0).await.is_err() {
            return;
        }
        match Forwarder::start(forward_client, forwards, forward_events.clone()).await {
            // Connections made while a rollout is still coming up wait for a ready pod this long.
            Ok((forwarder, _)) => {
                forwarder
                    .with_pod_wait(Duration::from_secs(600))
                    .with_connectivity(connectivity)
                    .run(forward_cancel)
                    .await
            }
            Err(e) => forward_events.emit(Event::Warning {
                message: format!("port-forwards not started: {e}"),
            }),
        }
    };
    // Containers that start while the session runs get what was synced into their image.
    let (started, starts) = mpsc::unbounded_channel();
    let watch_starts = watch_starts(
        starts_namespaces,
        target.selector(),
        started,
        shutdown.clone(),
        starts_connectivity,
    );
    let side = async move {
        tokio::join!(logs, port_forwards, watch_starts);
    };
    session(&dev, cfg, watcher, respecs, side, Some(starts), shutdown)
        .await
        .map(|_| ())
}

/// Signals on `started` each container that starts in `namespaces`, until `cancel`.
async fn watch_starts(
    namespaces: Vec<String>,
    selector: String,
    started: mpsc::UnboundedSender<()>,
    cancel: tokio_util::sync::CancellationToken,
    connectivity: Connectivity,
) {
    let watches = namespaces
        .iter()
        .map(|ns| crate::starts::watch(ns, &selector, &started, &cancel, &connectivity));
    futures_util::future::join_all(watches).await;
}

/// What a session needs whatever the target: the cache, the builder, template variables, the watcher and the config
/// reload that re-targets it.
struct Prepared {
    store: Store,
    builder: DockerBuilder,
    vars: Vars,
    watcher: Watcher,
    respecs: mpsc::UnboundedReceiver<WatchSpec>,
    reload: Box<ReloadFn<'static>>,
}

async fn prepare(
    global: &GlobalArgs,
    args: &DevArgs,
    settings: &Settings,
    console: &Console,
    cfg: &Config,
) -> Result<Prepared, Error> {
    let store = Store::open(crate::cache::default_dir()?)?;
    let (builder, _) = DockerBuilder::connect(settings.buildkit).await?;
    let vars = Vars::new(
        &cfg.base_dir,
        Timestamp::now().rfc3339(),
        settings.env.clone(),
    );
    let watcher = start_watcher(cfg, args, console)?;
    let (respec, respecs) = mpsc::unbounded_channel();
    Ok(Prepared {
        store,
        builder,
        vars,
        watcher,
        respecs,
        reload: Box::new(reloader(global, args, console, respec)),
    })
}

/// Re-reads devloop.yaml for the loop and sends the watcher what the new config builds and renders (an artifact
/// added by the edit is watched from then on).
fn reloader(
    global: &GlobalArgs,
    args: &DevArgs,
    console: &Console,
    respec: mpsc::UnboundedSender<WatchSpec>,
) -> impl Fn() -> Result<Config, Error> + Send + Sync + 'static {
    let global = global.clone();
    let args = args.clone();
    let console = console.clone();
    move || {
        let cfg = super::load_config(&global, "dev", &console)?;
        // The session may be over; then nobody needs the new spec.
        let _ = respec.send(watched(&cfg, &args));
        Ok(cfg)
    }
}

/// Starts watching what `cfg` builds and renders, and reads Enter in manual mode.
fn start_watcher(cfg: &Config, args: &DevArgs, console: &Console) -> Result<Watcher, Error> {
    let (mut watcher, warnings) =
        Watcher::start(watched(cfg, args)).map_err(|e| Error::Io(e.to_string()))?;
    for w in warnings {
        console.sink().emit(Event::Warning {
            message: w.to_string(),
        });
    }
    if args.trigger == TriggerArg::Manual {
        watcher
            .manual_trigger(std::io::stdin())
            .map_err(|e| Error::Io(e.to_string()))?;
        console.info("press Enter to rebuild and redeploy");
    }
    console.info(&format!(
        "watching {} (Ctrl-C to stop{})",
        cfg.base_dir.display(),
        if args.cleanup { " and clean up" } else { "" }
    ));
    Ok(watcher)
}

/// `devloop dev` with `deploy.docker`: containers on the daemon that builds them; logs from the containers.
async fn run_docker(
    global: &GlobalArgs,
    args: DevArgs,
    settings: Settings,
    console: Console,
    cfg: Config,
) -> Result<(), Error> {
    // An edit's container is replaced at once: its replacement is built, and the grace period is for `run`/`delete`.
    let target = crate::deploy::docker::DockerTarget::connect(&cfg.project)
        .await?
        .with_disposable_replacements(true);
    let Prepared {
        store,
        builder,
        vars,
        watcher,
        respecs,
        reload,
    } = prepare(global, &args, &settings, &console, &cfg).await?;
    let plan =
        |cfg: &Config, images: &[crate::render::ArtifactImage]| -> Result<DockerPlan, Error> {
            match &cfg.docker {
                Some(d) => Ok(super::deploy::docker_plan(d, images)),
                None => Err(Error::Usage {
                    message: format!("{}: `deploy.docker` was removed", cfg.file),
                    hint: Some("restart `devloop dev` to deploy somewhere else".into()),
                }),
            }
        };
    let dev = DevLoop {
        builder: &builder,
        deployer: &target,
        store: &store,
        vars: &vars,
        events: console.sink(),
        reload: reload.as_ref(),
        plan: &plan,
        opts: dev_options(&settings, &args),
        progress: tokio::sync::watch::channel(0usize).0,
        hooks_ran: Default::default(),
        deployed: Default::default(),
    };
    let shutdown = super::signal::token();
    let logs_events = console.sink();
    let logs_cancel = shutdown.clone();
    let tail = args.tail;
    let target_ref = &target;
    let side = async move {
        if tail {
            let _ = target_ref.follow_logs(&logs_events, &logs_cancel).await;
        }
    };
    session(&dev, cfg, watcher, respecs, side, None, shutdown)
        .await
        .map(|_| ())
}

/// What the loop does besides building: from the settings, and whether to clean up on exit.
fn dev_options(settings: &Settings, args: &DevArgs) -> DevOptions {
    DevOptions {
        build: settings.build_options(),
        status_deadline: settings.apply.status_deadline,
        cleanup: args.cleanup,
        cleanup_timeout: CLEANUP_TIMEOUT,
    }
}

/// What the session watches, with the flags' debounce and trigger.
fn watched(cfg: &Config, args: &DevArgs) -> WatchSpec {
    let trigger = match args.trigger {
        TriggerArg::Notify => Trigger::Notify,
        TriggerArg::Polling => Trigger::Polling,
        TriggerArg::Manual => Trigger::Manual,
    };
    watch_spec(cfg, Duration::from_millis(args.debounce), trigger)
}
