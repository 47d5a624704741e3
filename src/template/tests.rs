//! Templates, unit tests: fields, environment, volatile fields, errors, git fields and tag policies.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use super::*;
use crate::tag::{GitVariant, TagPolicy};
use crate::time::Timestamp;

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

#[test]
fn tag_policies() {
    let vars = Vars::new(
        std::path::Path::new("/nonexistent"),
        "t".into(),
        Arc::new(|k: &str| (k == "USER").then(|| "Ann Lee".to_string())),
    );
    let now = Timestamp::from_unix(1_795_316_645);
    assert_eq!(
        tag_for(&TagPolicy::InputDigest, "api", "abc123", &vars, &now).unwrap(),
        "abc123"
    );
    assert_eq!(
        tag_for(
            &TagPolicy::DateTime {
                format: "%Y%m%d-%H%M%S".into()
            },
            "api",
            "k",
            &vars,
            &now
        )
        .unwrap(),
        "20261122-030405"
    );
    let t = TagPolicy::EnvTemplate {
        template: "{{.IMAGE_NAME}}-{{.USER}}-{{.DIGEST}}".into(),
    };
    assert_eq!(
        tag_for(&t, "api", "k1", &vars, &now).unwrap(),
        "api-Ann-Lee-k1"
    );
    let e = tag_for(
        &TagPolicy::GitCommit(GitVariant::CommitSha),
        "api",
        "k",
        &vars,
        &now,
    )
    .unwrap_err();
    assert!(e.to_string().contains("git"), "{e}");
}
