//! Unit tests of lifecycle hooks (`runner::hooks`) around builds and deploys, against the fake builder and
//! deployer; the host hooks are real processes (`sh`) appending to a log in the project.
#![allow(clippy::unwrap_used)]

use super::fakes::{FakeBuilder, FakeDeployer, Fixture};
use super::hooks::deploy_with_hooks;
use super::target::TargetContainer;
use super::*;
use crate::config::hooks::Hook;
use crate::hook::HookError;

/// Where each event of interest happened, as short names in order.
fn journal(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            Event::HookStarted {
                phase, container, ..
            } => Some(match container {
                Some(c) => format!("{phase} in {c}"),
                None => phase.clone(),
            }),
            Event::BuildStarted { image, .. } => Some(format!("building {image}")),
            Event::BuildFinished { image, .. } => Some(format!("built {image}")),
            Event::DeployComplete { .. } => Some("deploy".into()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn build_hooks_run_around_a_real_build_with_its_variables_and_not_on_a_cache_hit() {
    let fx = Fixture::new();
    let vars = "$IMAGE|$IMAGE_REPO|$IMAGE_TAG|$PUSH_IMAGE|$BUILD_CONTEXT|$SKAFFOLD_IMAGE|$PWD";
    fx.with_hooks(
        &format!(
            "      hooks:\n        before:\n          - {}\n        after:\n          - {}\n",
            fx.log_hook(&format!("before|{vars}"), 0),
            fx.log_hook("after", 0)
        ),
        "",
    );
    let builder = FakeBuilder::default();
    let opts = BuildOptions {
        only: vec!["other".into()],
        tag: Some("v1".into()),
        default_repo: Some("registry.test/team".into()),
        ..Default::default()
    };
    let (r, ev) = fx.run(&builder, &opts).await;
    r.unwrap();
    assert_eq!(
        journal(&ev),
        [
            "building other",
            "before-build",
            "built other",
            "after-build"
        ],
        "the build starts with its before-build hooks"
    );
    let context = fx.config().build.artifacts[2].context.clone();
    let context = std::path::absolute(&context).unwrap();
    let ctx = context.display();
    assert_eq!(
        fx.hook_log(),
        [
            format!(
                "before|registry.test/team/other:v1|registry.test/team/other|v1|false|{ctx}|registry.test/team/other:v1|{ctx}"
            ),
            "after".to_string()
        ],
        "the variables, and the context as working directory"
    );
    let (r, ev) = fx.run(&builder, &opts).await;
    assert!(r.unwrap()[0].cached);
    assert!(
        journal(&ev).is_empty(),
        "a cache hit builds nothing: {ev:?}"
    );
    assert_eq!(fx.hook_log().len(), 2);
}

#[tokio::test]
async fn a_failing_before_build_hook_stops_that_build_with_its_output() {
    let fx = Fixture::new();
    fx.with_hooks(
        "      hooks:\n        before:\n          - {command: [sh, -c, 'echo checking; echo \"schema invalid\" >&2; exit 3']}\n",
        "",
    );
    let builder = FakeBuilder::default();
    let (r, ev) = fx.run(&builder, &BuildOptions::default()).await;
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), crate::error::EXIT_FAILURE);
    assert!(
        !builder
            .builds
            .lock()
            .unwrap()
            .contains(&"other".to_string()),
        "not built"
    );
    assert_eq!(
        builder.builds.lock().unwrap().len(),
        2,
        "the other artifacts are"
    );
    let failed = ev
        .iter()
        .find_map(|e| match e {
            Event::BuildFailed {
                image,
                message,
                output,
                ..
            } if image == "other" => Some((message.clone(), output.clone())),
            _ => None,
        })
        .unwrap();
    assert!(failed.0.contains("before-build hook 1"), "{failed:?}");
    assert!(failed.0.contains("exited with code 3"), "{failed:?}");
    assert!(
        failed.1.is_empty(),
        "the lines are the hook's event's: {failed:?}"
    );
    let output = ev
        .iter()
        .find_map(|e| match e {
            Event::HookFailed {
                exit_code: Some(3),
                output,
                ..
            } => Some(output.clone()),
            _ => None,
        })
        .unwrap();
    let mut output = output;
    // stdout and stderr are two pipes: their lines interleave as they arrive.
    output.sort();
    assert_eq!(output, ["checking", "schema invalid"]);

    // Alone, the error itself carries the code, the last lines and a hint.
    let (r, _) = fx
        .run(
            &builder,
            &BuildOptions {
                only: vec!["other".into()],
                ..Default::default()
            },
        )
        .await;
    let text = r.unwrap_err().to_string();
    assert!(
        text.contains("exited with code 3: the image was not built"),
        "{text}"
    );
    assert!(text.contains("│ schema invalid"), "{text}");
    assert!(text.contains("\n\nhint: "), "{text}");
}

#[tokio::test]
async fn a_failing_after_build_hook_fails_the_build_that_happened() {
    let fx = Fixture::new();
    fx.with_hooks(
        &format!(
            "      hooks:\n        after:\n          - {}\n",
            fx.log_hook("after", 4)
        ),
        "",
    );
    let builder = FakeBuilder::default();
    let opts = BuildOptions {
        only: vec!["other".into()],
        ..Default::default()
    };
    let (r, _) = fx.run(&builder, &opts).await;
    let e = r.unwrap_err();
    assert!(
        matches!(&e, Error::Hook(h) if matches!(**h, HookError::Failed { code: Some(4), .. })),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("the image was built, but the build counts as failed")
    );
    assert_eq!(*builder.builds.lock().unwrap(), ["other"]);
}

#[tokio::test]
async fn a_hook_that_cannot_start_says_so_with_a_hint() {
    let fx = Fixture::new();
    fx.with_hooks(
        "      hooks:\n        before:\n          - {command: [devloop-no-such-program-xyz, a]}\n",
        "",
    );
    let opts = BuildOptions {
        only: vec!["other".into()],
        ..Default::default()
    };
    let (r, _) = fx.run(&FakeBuilder::default(), &opts).await;
    let text = r.unwrap_err().to_string();
    assert!(
        text.contains("`devloop-no-such-program-xyz a` could not start"),
        "{text}"
    );
    assert!(
        text.contains("hint: is `devloop-no-such-program-xyz` installed and on PATH?"),
        "{text}"
    );
}

fn pods() -> Vec<TargetContainer> {
    ["api-7d9-x1/app", "api-7d9-x1/sidecar", "web-1/web"]
        .iter()
        .map(|n| {
            let (pod, container) = n.split_once('/').unwrap();
            TargetContainer {
                namespace: Some("ns".into()),
                pod: pod.into(),
                container: container.into(),
            }
        })
        .collect()
}

async fn deploy(
    fx: &Fixture,
    deployer: &FakeDeployer,
) -> (Result<crate::deploy::DeployedSet, Error>, Vec<Event>) {
    let cfg = fx.config();
    let (events, seen) = EventSink::collector();
    let plan = vec!["app:1".to_string()];
    let r = deploy_with_hooks(
        deployer,
        &plan,
        &cfg.deploy_hooks,
        Some(std::time::Duration::from_secs(5)),
        &events,
        &CancellationToken::new(),
    )
    .await;
    let ev = seen.lock().unwrap().clone();
    (r, ev)
}

#[tokio::test]
async fn deploy_hooks_run_before_and_after_the_deploy_in_order_on_the_host_and_in_matching_containers()
 {
    let fx = Fixture::new();
    fx.with_hooks(
        "",
        &format!(
            "deploy:\n  hooks:\n    before:\n      - host: {}\n      - container: {{command: [migrate, up], podName: 'api-*', containerName: app}}\n    after:\n      - container: {{command: [smoke], podName: 'api-*'}}\n      - host: {}\n",
            fx.log_hook("before $DEPLOYING $SKAFFOLD_DEPLOYING", 0),
            fx.log_hook("after", 0)
        ),
    );
    let deployer = FakeDeployer::default();
    *deployer.containers.lock().unwrap() = pods();
    let (r, ev) = deploy(&fx, &deployer).await;
    r.unwrap();
    assert_eq!(
        journal(&ev),
        [
            "before-deploy",
            "before-deploy in api-7d9-x1/app",
            "deploy",
            "after-deploy in api-7d9-x1/app",
            "after-deploy in api-7d9-x1/sidecar",
            "after-deploy",
        ]
    );
    assert_eq!(
        fx.hook_log(),
        ["before app:1 ", "after"],
        "the target's variables"
    );
    assert_eq!(
        deployer.execs.lock().unwrap()[0],
        (
            "api-7d9-x1/app".to_string(),
            vec!["migrate".to_string(), "up".into()]
        )
    );
    assert!(ev.iter().any(|e| matches!(e,
        Event::HookOutput { line, container: Some(c), .. } if line == "ran migrate up" && c == "api-7d9-x1/app")));
}

#[tokio::test]
async fn a_failing_before_deploy_hook_deploys_nothing_and_a_failing_after_deploy_hook_fails_the_deploy()
 {
    let fx = Fixture::new();
    fx.with_hooks(
        "",
        &format!(
            "deploy:\n  hooks:\n    before:\n      - host: {}\n",
            fx.log_hook("no", 5)
        ),
    );
    let deployer = FakeDeployer::default();
    let (r, ev) = deploy(&fx, &deployer).await;
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), crate::error::EXIT_FAILURE);
    assert!(
        e.to_string()
            .contains("exited with code 5: nothing was deployed"),
        "{e}"
    );
    assert!(deployer.deploys.lock().unwrap().is_empty());
    assert!(!journal(&ev).contains(&"deploy".to_string()));

    fx.with_hooks(
        "",
        "deploy:\n  hooks:\n    after:\n      - container: {command: [smoke], podName: 'web-*'}\n",
    );
    *deployer.containers.lock().unwrap() = pods();
    *deployer.exec_code.lock().unwrap() = 7;
    let (r, ev) = deploy(&fx, &deployer).await;
    let e = r.unwrap_err();
    assert!(
        e.to_string()
            .contains("after-deploy hook 1 in web-1/web `smoke` exited with code 7"),
        "{e}"
    );
    assert!(e.to_string().contains("│ ran smoke"), "{e}");
    assert_eq!(deployer.deploys.lock().unwrap().len(), 1, "deployed");
    assert!(journal(&ev).contains(&"deploy".to_string()));
}

#[tokio::test]
async fn an_after_deploy_container_hook_that_matches_nothing_warns() {
    let fx = Fixture::new();
    fx.with_hooks(
        "",
        "deploy:\n  hooks:\n    after:\n      - container: {command: [smoke], podName: 'apo-*'}\n",
    );
    let deployer = FakeDeployer::default();
    *deployer.containers.lock().unwrap() = pods();
    let (r, ev) = deploy(&fx, &deployer).await;
    r.unwrap();
    assert!(deployer.execs.lock().unwrap().is_empty());
    assert!(ev.iter().any(|e| matches!(e,
        Event::Warning { message } if message.contains("no running container matches podName `apo-*`"))));
    assert!(matches!(
        fx.config().deploy_hooks.after[0],
        Hook::Container(_)
    ));
}
