//! Compose import tests, `build:`: contexts, args, artifact names, shared and unconvertible builds.

use super::*;

#[test]
fn build_as_string_or_mapping_with_args_as_map_or_list() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "name: p\nservices:\n  a:\n    build:\n      context: app\n      target: dev\n      args: [VERSION=1.2, FROM_ENV, EMPTY=]\n  b:\n    build:\n      context: app\n      args: {NUM: 3, NULL_ARG: ~, TPL: '{{x}}'}\n",
        ),
        ("app/Dockerfile", "FROM scratch\n"),
    ]);
    let c = f.convert();
    let a = artifacts(&c);
    let d = a[0].docker.as_ref().unwrap();
    assert_eq!(d.target.as_deref(), Some("dev"));
    let args = d.build_args.as_ref().unwrap();
    assert_eq!(args["VERSION"], "1.2");
    assert_eq!(args["FROM_ENV"], "{{.Env.FROM_ENV}}");
    assert_eq!(args["EMPTY"], "");
    assert!(noted_at(&c, "a.build.args.FROM_ENV").contains("fails when `FROM_ENV` is unset"));
    let args_b = a[1].docker.as_ref().unwrap().build_args.as_ref().unwrap();
    assert_eq!(args_b["NUM"], "3");
    assert_eq!(args_b["NULL_ARG"], "{{.Env.NULL_ARG}}");
    assert!(!args_b.contains_key("TPL"));
    assert!(skipped_at(&c, "b.build.args.TPL").contains("template"));
}

#[test]
fn image_with_build_names_the_artifact_and_drops_the_tag() {
    let c = project(
        "name: p\nservices:\n  api:\n    image: registry.local:5000/team/api:1.2\n    build: .\n  worker:\n    image: registry.local:5000/team/api:1.2\n    command: worker\n",
    )
    .convert();
    assert_eq!(artifacts(&c)[0].image, "registry.local:5000/team/api");
    assert_eq!(container(&c, "api").image, "registry.local:5000/team/api");
    assert_eq!(
        container(&c, "worker").image,
        "registry.local:5000/team/api",
        "a service running another service's built image runs the artifact"
    );
    assert!(noted_at(&c, "api.image").contains("build.tagPolicy"));
    assert_eq!(artifacts(&c).len(), 1);
    assert_eq!(
        describe_outcome(&c.services[1]),
        "→ container `worker`, runs artifact `registry.local:5000/team/api` (built for `api`)"
    );
}

#[test]
fn default_image_name_is_project_dash_service() {
    let f = Fixture::new(&[
        (
            "My Project!/compose.yaml",
            "services:\n  Api:\n    build: .\n  migrate:\n    image: my-project-api\n",
        ),
        ("My Project!/Dockerfile", "FROM scratch\n"),
    ]);
    let c = f
        .convert_with("My Project!/compose.yaml", "My Project!", &|_| None)
        .unwrap();
    assert_eq!(c.project, "myproject");
    assert_eq!(artifacts(&c)[0].image, "myproject-api");
    assert_eq!(container(&c, "migrate").image, "my-project-api");
}

#[test]
fn services_sharing_a_build_share_one_artifact() {
    let c = project(
        "name: p\nservices:\n  api:\n    image: app\n    build: .\n  migrate:\n    image: app\n    build: .\n    command: migrate\n",
    )
    .convert();
    assert_eq!(artifacts(&c).len(), 1);
    assert_eq!(container(&c, "migrate").image, "app");
    assert!(c.notes.iter().all(|n| !n.at.ends_with(".build")));
}

#[test]
fn builds_that_cannot_convert() {
    let c = project(
        "name: p\nservices:\n  remote:\n    build: https://github.com/x/y.git\n  inline:\n    image: alpine:3\n    build:\n      dockerfile_inline: FROM alpine\n  extra:\n    build:\n      context: .\n      cache_from: [x]\n      platforms: [linux/arm64]\n",
    )
    .convert();
    assert!(skipped_at(&c, "remote.build.context").contains("remote context"));
    assert!(skipped_at(&c, "remote").contains("no `image`"));
    assert!(skipped_at(&c, "inline.build.dockerfile_inline").contains("Dockerfile files"));
    assert_eq!(container(&c, "inline").image, "alpine:3");
    assert!(noted_at(&c, "inline.image").contains("as it is"));
    assert!(skipped_at(&c, "extra.build.cache_from").contains("no equivalent"));
    assert!(skipped_at(&c, "extra.build.platforms").contains("build.platform"));
    assert!(c.services[0].container.is_none());
}
