//! Every shipped config parses: `devloop.yaml.example` (all fields) and each project under `examples/`.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use devloop::config::{self, LoadOptions};

#[test]
fn the_annotated_example_parses() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("devloop.yaml.example"))
            .unwrap();
    let raw = config::parse("devloop.yaml.example", &text).unwrap();
    let build = raw.build.unwrap();
    assert_eq!(build.artifacts.unwrap().len(), 3);
    let profiles = raw.profiles.unwrap();
    assert_eq!(profiles.len(), 3);
    let docker = serde_json::to_value(&profiles[2]).unwrap();
    assert_eq!(
        docker["deploy"]["docker"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{docker}"
    );
    let manifests = raw.manifests.unwrap();
    assert!(manifests.kustomize.is_some() && manifests.helm.is_some());
    assert_eq!(raw.port_forward.unwrap().len(), 1);
    let hooks = raw.deploy.unwrap().hooks.unwrap();
    assert_eq!((hooks.before.len(), hooks.after.len()), (1, 1));
}

#[test]
fn every_example_project_loads_and_validates() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let file = entry.unwrap().path().join("devloop.yaml");
        if !file.exists() {
            continue;
        }
        // Artifacts COPY bin/busybox, which the quickstart copies in; validation only needs the Dockerfiles.
        let cfg = config::load(&file, &LoadOptions::default(), &|_| None)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!cfg.build.artifacts.is_empty(), "{}", file.display());
        seen += 1;
    }
    assert!(seen >= 2, "examples/hello and examples/shop at least");
}

#[test]
fn shop_profiles_switch_overlays() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shop/devloop.yaml");
    let dev = config::load(&file, &LoadOptions::default(), &|_| None).unwrap();
    let paths = |c: &config::Config| c.manifests.kustomize.as_ref().unwrap().paths.clone();
    assert_eq!(
        paths(&dev),
        vec![Path::new("deploy/k8s/overlays/dev").to_path_buf()]
    );
    let opts = LoadOptions {
        profiles: vec!["prod".into()],
        ..Default::default()
    };
    let prod = config::load(&file, &opts, &|_| None).unwrap();
    assert_eq!(
        paths(&prod),
        vec![Path::new("deploy/k8s/overlays/prod").to_path_buf()]
    );
    assert!(prod.build.push);
    assert_eq!(prod.active_profiles[0].name, "prod");
    // Production releases the api blue/green; the inner loop never does.
    assert_eq!(
        prod.blue_green
            .iter()
            .map(|b| b.service.as_str())
            .collect::<Vec<_>>(),
        ["api"]
    );
    assert!(dev.blue_green.is_empty());
    // The `local` profile activates on a kind context.
    let opts = LoadOptions {
        activation: config::ActivationContext {
            command: "build".into(),
            kube_context: Some("kind-dev".into()),
        },
        ..Default::default()
    };
    let local = config::load(&file, &opts, &|_| None).unwrap();
    assert_eq!(
        local
            .active_profiles
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["local"]
    );
}
