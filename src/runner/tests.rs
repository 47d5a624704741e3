//! Unit tests of the build run (`runner`) against the fake builder.
#![allow(clippy::unwrap_used)]

use super::fakes::{FakeBuilder, Fixture};
use super::*;
use std::sync::Mutex;

#[tokio::test]
async fn builds_in_dependency_order_then_hits_the_cache() {
    let fx = Fixture::new();
    let builder = FakeBuilder::default();
    let (r, _) = fx.run(&builder, &BuildOptions::default()).await;
    let r = r.unwrap();
    assert_eq!(
        r.iter().map(|a| a.image.as_str()).collect::<Vec<_>>(),
        ["app", "base", "other"],
        "config order"
    );
    let order = builder.builds.lock().unwrap().clone();
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert!(pos("base") < pos("app"));
    assert!(r.iter().all(|a| !a.cached));

    let (r2, ev) = fx.run(&builder, &BuildOptions::default()).await;
    assert!(r2.unwrap().iter().all(|a| a.cached));
    assert_eq!(builder.builds.lock().unwrap().len(), 3, "nothing rebuilt");
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::BuildCached { .. }))
            .count(),
        3
    );
}

#[tokio::test]
async fn a_base_change_rebuilds_its_dependents_only_and_says_why() {
    let fx = Fixture::new();
    let builder = FakeBuilder::default();
    fx.run(&builder, &BuildOptions::default()).await.0.unwrap();
    std::fs::write(fx.dir.path().join("base/f"), "changed").unwrap();
    let (r, ev) = fx.run(&builder, &BuildOptions::default()).await;
    let r = r.unwrap();
    let rebuilt: Vec<_> = r
        .iter()
        .filter(|a| !a.cached)
        .map(|a| a.image.as_str())
        .collect();
    assert_eq!(rebuilt, ["app", "base"]);
    let reasons: Vec<String> = ev
        .iter()
        .filter_map(|e| match e {
            Event::BuildStarted { image, reasons, .. } if image == "base" => {
                Some(reasons.join("; "))
            }
            _ => None,
        })
        .collect();
    assert!(reasons[0].contains('f'), "{reasons:?}");
}

/// Regression (issue 11): in `devloop build`, a file saved while the context was being sent failed the build.
#[tokio::test]
async fn a_file_changed_while_sent_is_read_once_more_and_said_in_one_line() {
    let fx = Fixture::new();
    let builder = FakeBuilder {
        changed_during_send: Mutex::new(vec!["other".into()]),
        ..Default::default()
    };
    let (r, ev) = fx.run(&builder, &BuildOptions::default()).await;
    r.unwrap();
    let other_builds = builder
        .builds
        .lock()
        .unwrap()
        .iter()
        .filter(|b| *b == "other")
        .count();
    assert_eq!(other_builds, 2, "built again with the content as it is now");
    let said: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("changed while the build context was being sent: reading it again"));
    assert!(!ev.iter().any(|e| matches!(e, Event::BuildFailed { .. })));
}

#[tokio::test]
async fn a_failed_requirement_skips_dependents_and_others_finish() {
    let fx = Fixture::new();
    let builder = FakeBuilder {
        fail: Mutex::new(vec!["base".into()]),
        ..Default::default()
    };
    let (r, ev) = fx.run(&builder, &BuildOptions::default()).await;
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    let built = builder.builds.lock().unwrap().clone();
    assert!(
        built.contains(&"other".to_string()) && !built.contains(&"app".to_string()),
        "{built:?}"
    );
    assert!(
        e.to_string().contains("`base`") && e.to_string().contains("`app`"),
        "{e}"
    );
    let failed: Vec<_> = ev
        .iter()
        .filter(|e| matches!(e, Event::BuildFailed { .. }))
        .collect();
    assert_eq!(failed.len(), 2);
}

#[tokio::test]
async fn selecting_an_artifact_builds_what_it_requires() {
    let fx = Fixture::new();
    let builder = FakeBuilder::default();
    let opts = BuildOptions {
        only: vec!["app".into()],
        ..Default::default()
    };
    let r = fx.run(&builder, &opts).await.0.unwrap();
    assert_eq!(
        r.iter().map(|a| a.image.as_str()).collect::<Vec<_>>(),
        ["app", "base"]
    );
    let opts = BuildOptions {
        only: vec!["nope".into()],
        ..Default::default()
    };
    let e = fx.run(&builder, &opts).await.0.unwrap_err().to_string();
    assert!(
        e.contains("`nope`") && e.contains("`app`, `base`, `other`"),
        "{e}"
    );
}

#[tokio::test]
async fn push_then_cached_push_is_not_repeated_and_image_removed_means_rebuild() {
    let fx = Fixture::new();
    let builder = FakeBuilder::default();
    let opts = BuildOptions {
        push: true,
        default_repo: Some("localhost:5000".into()),
        ..Default::default()
    };
    let r = fx.run(&builder, &opts).await.0.unwrap();
    assert!(r.iter().all(
        |a| a.reference().starts_with("localhost:5000/") && a.reference().contains("@sha256:")
    ));
    assert_eq!(builder.pushes.lock().unwrap().len(), 3);
    let r = fx.run(&builder, &opts).await.0.unwrap();
    assert!(r.iter().all(|a| a.cached));
    assert_eq!(builder.pushes.lock().unwrap().len(), 3, "no second push");

    // The daemon lost the images: the records are not trusted, everything is rebuilt.
    builder.images.lock().unwrap().clear();
    let r = fx.run(&builder, &BuildOptions::default()).await.0.unwrap();
    assert!(r.iter().all(|a| !a.cached));
}

#[tokio::test]
async fn images_are_loaded_into_local_nodes_once_and_deployed_by_the_nodes_name() {
    let fx = Fixture::new();
    let builder = FakeBuilder::default();
    let opts = BuildOptions {
        deploy_tags: true,
        load: Some(LocalCluster::Kind("dev".into())),
        ..Default::default()
    };
    let r = fx.run(&builder, &opts).await.0.unwrap();
    let mut deployed: Vec<String> = r.iter().map(|a| a.deploy_reference()).collect();
    deployed.sort();
    let mut loaded = builder.loads.lock().unwrap().clone();
    loaded.sort();
    assert_eq!(loaded, deployed);
    assert!(
        deployed.iter().all(|d| d.starts_with("docker.io/library/")),
        "{deployed:?}"
    );

    // Cached and already on the node: nothing is loaded, the same references are deployed.
    let r = fx.run(&builder, &opts).await.0.unwrap();
    assert!(r.iter().all(|a| a.cached));
    assert_eq!(builder.loads.lock().unwrap().len(), 3);
    let mut again: Vec<String> = r.iter().map(|a| a.deploy_reference()).collect();
    again.sort();
    assert_eq!(again, deployed);

    // Pushed images are never loaded.
    let pushed = BuildOptions {
        push: true,
        default_repo: Some("localhost:5000".into()),
        ..opts
    };
    builder.loads.lock().unwrap().clear();
    fx.run(&builder, &pushed).await.0.unwrap();
    assert!(builder.loads.lock().unwrap().is_empty());
}

#[test]
fn deploy_references_are_immutable() {
    let mut r = ArtifactResult {
        image: "api".into(),
        repository: "api".into(),
        tag: "v1".into(),
        image_id: "sha256:0123456789abcdef".into(),
        digest: None,
        key: CacheKey::try_from("ab".repeat(32)).unwrap(),
        cached: false,
        content_tag: false,
        loaded: false,
        build_args: Default::default(),
    };
    assert_eq!(r.deploy_reference(), "api:v1-0123456789ab");
    r.loaded = true;
    assert_eq!(
        r.deploy_reference(),
        "docker.io/library/api:v1-0123456789ab"
    );
    assert_eq!(r.artifact_image().repository, "docker.io/library/api");
    r.loaded = false;
    r.content_tag = true;
    assert_eq!(r.deploy_reference(), "api:v1");
    r.digest = Some("sha256:ff".into());
    assert_eq!(r.deploy_reference(), "api:v1@sha256:ff");
}
