//! Unit tests of the sync stage: manual rules, deletes and modes through `plan`; `sync.infer` placement over
//! Dockerfiles (multi-stage, `WORKDIR`, wildcards, directory sources, `--from` chains, what cannot be placed);
//! the parsed-Dockerfile cache.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::model::model;
use super::place::locate;
use super::*;
use crate::config::{self, Config, LoadOptions};

/// A context with these files (each containing its own name).
fn context(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let p = dir.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, f).unwrap();
    }
    dir
}

/// Where the built stage of `dockerfile` has `rel`, with these build args: the paths, or why it cannot be told.
fn at_with(
    dockerfile: &str,
    args: &[(&str, &str)],
    target: Option<&str>,
    ctx: &Path,
    rel: &str,
) -> Result<Vec<String>, String> {
    let args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let m = model(dockerfile, &args, target)?;
    let mut paths: Vec<String> = locate(&m, rel, ctx)?.into_iter().map(|l| l.path).collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

fn at(dockerfile: &str, ctx: &Path, rel: &str) -> Result<Vec<String>, String> {
    at_with(dockerfile, &[], None, ctx, rel)
}

#[test]
fn workdir_and_the_whole_context() {
    let c = context(&["src/a.php", "index.php"]);
    let df = "FROM scratch\nWORKDIR /app\nCOPY . .\n";
    assert_eq!(at(df, c.path(), "src/a.php").unwrap(), ["/app/src/a.php"]);
    assert_eq!(at(df, c.path(), "index.php").unwrap(), ["/app/index.php"]);
    let df = "FROM scratch\nWORKDIR /srv\nWORKDIR www\nCOPY index.php html/\n";
    assert_eq!(
        at(df, c.path(), "index.php").unwrap(),
        ["/srv/www/html/index.php"]
    );
}

#[test]
fn a_directory_source_copies_its_contents() {
    let c = context(&["src/x/a.php"]);
    for df in [
        "FROM scratch\nCOPY src /srv/\n",
        "FROM scratch\nCOPY src /srv\n",
        "FROM scratch\nCOPY ./src/ /srv\n",
    ] {
        assert_eq!(
            at(df, c.path(), "src/x/a.php").unwrap(),
            ["/srv/x/a.php"],
            "{df}"
        );
    }
    assert_eq!(
        at("FROM scratch\nCOPY / /\n", c.path(), "src/x/a.php").unwrap(),
        ["/src/x/a.php"]
    );
}

#[test]
fn a_file_goes_into_a_directory_destination_or_becomes_the_destination() {
    let c = context(&["a.php", "b.php"]);
    assert_eq!(
        at("FROM scratch\nCOPY a.php /w/\n", c.path(), "a.php").unwrap(),
        ["/w/a.php"]
    );
    assert_eq!(
        at("FROM scratch\nCOPY a.php /w/main.php\n", c.path(), "a.php").unwrap(),
        ["/w/main.php"]
    );
    // Several sources: the destination is a directory.
    assert_eq!(
        at("FROM scratch\nCOPY a.php b.php /w\n", c.path(), "b.php").unwrap(),
        ["/w/b.php"]
    );
    // A directory the Dockerfile made (WORKDIR) is one.
    assert_eq!(
        at(
            "FROM scratch\nWORKDIR /w\nCOPY a.php /w\n",
            c.path(),
            "a.php"
        )
        .unwrap(),
        ["/w/a.php"]
    );
    assert_eq!(
        at(
            "FROM scratch\nWORKDIR /w\nCOPY a.php .\n",
            c.path(),
            "a.php"
        )
        .unwrap(),
        ["/w/a.php"]
    );
    // JSON form.
    assert_eq!(
        at(
            "FROM scratch\nCOPY [\"a.php\", \"/w/\"]\n",
            c.path(),
            "a.php"
        )
        .unwrap(),
        ["/w/a.php"]
    );
}

#[test]
fn wildcards_take_what_they_match_and_no_more() {
    let c = context(&["index.php", "lib/x.php", "web/a/b.css"]);
    let df = "FROM scratch\nCOPY *.php /app/\n";
    assert_eq!(at(df, c.path(), "index.php").unwrap(), ["/app/index.php"]);
    assert!(
        at(df, c.path(), "lib/x.php").unwrap().is_empty(),
        "`*` stays in a directory: not in the image"
    );
    // A wildcard that matches a directory copies its contents.
    assert_eq!(
        at("FROM scratch\nCOPY w*/ /srv/\n", c.path(), "web/a/b.css").unwrap(),
        ["/srv/a/b.css"]
    );
    // Into a destination without `/`: a file or a directory depending on how many match.
    let err = at("FROM scratch\nCOPY *.php /app\n", c.path(), "index.php").unwrap_err();
    assert!(err.contains("end it with `/`"), "{err}");
}

#[test]
fn variables_from_args_and_env_and_what_cannot_be_known() {
    let c = context(&["x.php"]);
    let df = "FROM scratch\nARG DIR=/srv\nCOPY x.php $DIR/\n";
    assert_eq!(at(df, c.path(), "x.php").unwrap(), ["/srv/x.php"]);
    assert_eq!(
        at_with(df, &[("DIR", "/opt")], None, c.path(), "x.php").unwrap(),
        ["/opt/x.php"]
    );
    // A global ARG reaches a stage that declares it.
    let df = "ARG ROOT=/g\nFROM scratch\nARG ROOT\nENV APP=${ROOT}/app\nCOPY x.php ${APP}/\n";
    assert_eq!(at(df, c.path(), "x.php").unwrap(), ["/g/app/x.php"]);
    // The base image may set what the Dockerfile does not.
    let err = at("FROM php:8\nCOPY x.php $APP_HOME/\n", c.path(), "x.php").unwrap_err();
    assert!(
        err.contains("`$APP_HOME`") && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(
        at(
            "FROM php:8\nENV APP_HOME=/var/www\nCOPY x.php $APP_HOME/\n",
            c.path(),
            "x.php"
        )
        .unwrap(),
        ["/var/www/x.php"]
    );
    // Platform args come from the builder.
    let err = at(
        "FROM scratch\nARG TARGETARCH\nCOPY x.php /bin/$TARGETARCH/\n",
        c.path(),
        "x.php",
    )
    .unwrap_err();
    assert!(err.contains("`$TARGETARCH`"), "{err}");
    // An unknown variable in a source: any file may be taken.
    let err = at("FROM php:8\nCOPY $SRC /app/\n", c.path(), "x.php").unwrap_err();
    assert!(err.contains("`$SRC`"), "{err}");
    // A stage named by a variable the Dockerfile does not set: it may have the file.
    let df = "FROM scratch AS a\nCOPY x.php /x/\nFROM php:8\nCOPY --from=$STAGE /x /app/\n";
    let err = at(df, c.path(), "x.php").unwrap_err();
    assert!(err.contains("`$STAGE`"), "{err}");
}

#[test]
fn a_relative_destination_needs_a_known_working_directory() {
    let c = context(&["x.py"]);
    let err = at("FROM python:3\nCOPY x.py app/\n", c.path(), "x.py").unwrap_err();
    assert!(err.contains("working directory"), "{err}");
    assert_eq!(
        at("FROM scratch\nCOPY x.py app/\n", c.path(), "x.py").unwrap(),
        ["/app/x.py"]
    );
}

#[test]
fn multi_stage_copies_follow_the_file_through_stages() {
    let c = context(&["static/css/a.css", "app/main.py"]);
    let df = "FROM scratch AS assets\nCOPY static /static\nFROM alpine AS unused\nCOPY . /x\nRUN false\nFROM python:3\nCOPY --from=assets /static /srv/www\n";
    assert_eq!(
        at(df, c.path(), "static/css/a.css").unwrap(),
        ["/srv/www/css/a.css"]
    );
    assert!(
        at(df, c.path(), "app/main.py").unwrap().is_empty(),
        "copied only by a stage the image does not use"
    );
    // A chain of `--from`, by name and by index.
    let df = "FROM scratch AS one\nCOPY static/css/ /css/\nFROM scratch AS two\nCOPY --from=one /css /assets/css\nFROM busybox\nCOPY --from=1 /assets /www/\n";
    assert_eq!(
        at(df, c.path(), "static/css/a.css").unwrap(),
        ["/www/css/a.css"]
    );
    // A stage built FROM another has what it copied.
    let df = "FROM python:3 AS base\nWORKDIR /app\nCOPY app .\nFROM base\nCMD [\"python\"]\n";
    assert_eq!(at(df, c.path(), "app/main.py").unwrap(), ["/app/main.py"]);
    // The target stage is the one built.
    let df = "FROM scratch AS dev\nCOPY app /dev/\nFROM scratch AS prod\nCOPY app /prod/\n";
    assert_eq!(
        at_with(df, &[], Some("dev"), c.path(), "app/main.py").unwrap(),
        ["/dev/main.py"]
    );
    assert_eq!(at(df, c.path(), "app/main.py").unwrap(), ["/prod/main.py"]);
}

#[test]
fn a_run_that_may_use_the_file_makes_it_unplaceable() {
    let c = context(&["main.go", "requirements.txt", "app.py"]);
    let df = "FROM golang AS build\nWORKDIR /src\nCOPY . .\nRUN go build -o /out/app\nFROM scratch\nCOPY --from=build /out/app /app\n";
    let err = at(df, c.path(), "main.go").unwrap_err();
    assert!(
        err.contains("`RUN` at line 4") && err.contains("stage `build`"),
        "{err}"
    );
    let df = "FROM python:3\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n";
    let err = at(df, c.path(), "requirements.txt").unwrap_err();
    assert!(err.contains("before the `RUN` at line 4"), "{err}");
    assert_eq!(at(df, c.path(), "app.py").unwrap(), ["/app/app.py"]);
    // A bind mount of the context.
    let df = "FROM python:3\nRUN --mount=type=bind,source=.,target=/src make\nCOPY app.py /app/\n";
    let err = at(df, c.path(), "app.py").unwrap_err();
    assert!(
        err.contains("`RUN` at Dockerfile line 2 (stage 0) may use `app.py`"),
        "{err}"
    );
    // A cache or secret mount reads no context file.
    let df = "FROM python:3\nRUN --mount=type=cache,target=/root/.cache pip install x\nCOPY app.py /app/\n";
    assert_eq!(at(df, c.path(), "app.py").unwrap(), ["/app/app.py"]);
}

#[test]
fn add_of_a_url_is_elsewhere_and_of_an_archive_is_unplaceable() {
    let c = context(&["a.txt", "b.tar.gz"]);
    std::fs::write(c.path().join("b.tar.gz"), [0x1f, 0x8b, 8, 0]).unwrap();
    let df = "FROM scratch\nADD https://example.com/x.txt /x/\nADD a.txt b.tar.gz /x/\n";
    assert_eq!(at(df, c.path(), "a.txt").unwrap(), ["/x/a.txt"]);
    let err = at(df, c.path(), "b.tar.gz").unwrap_err();
    assert!(err.contains("unpacks archives"), "{err}");
}

#[test]
fn two_destinations_or_an_overwrite_are_unplaceable() {
    let c = context(&["config.yml", "defaults/config.yml", "a.php"]);
    let df = "FROM scratch\nCOPY config.yml /etc/app/\nCOPY . /app/\n";
    let m = model(df, &BTreeMap::new(), None).unwrap();
    assert_eq!(locate(&m, "config.yml", c.path()).unwrap().len(), 2);
    let df = "FROM scratch\nCOPY defaults/config.yml /app/config.yml\nCOPY config.yml /app/\n";
    let err = at(df, c.path(), "defaults/config.yml").unwrap_err();
    assert!(err.contains("may overwrite"), "{err}");
    assert_eq!(at(df, c.path(), "config.yml").unwrap(), ["/app/config.yml"]);
    // Another file copied elsewhere does not overwrite it.
    let df = "FROM scratch\nCOPY a.php /app/\nCOPY defaults /app/defaults\n";
    assert_eq!(at(df, c.path(), "a.php").unwrap(), ["/app/a.php"]);
    // A heredoc written over it.
    let df = "FROM scratch\nCOPY a.php /app/\nCOPY <<EOF /app/a.php\nhi\nEOF\n";
    assert!(
        at(df, c.path(), "a.php")
            .unwrap_err()
            .contains("may overwrite")
    );
}

#[test]
fn chmod_and_chown_are_noted() {
    let c = context(&["run.sh"]);
    let m = model(
        "FROM scratch\nCOPY --chmod=0755 --chown=33:33 run.sh /bin/\n",
        &BTreeMap::new(),
        None,
    )
    .unwrap();
    let l = locate(&m, "run.sh", c.path()).unwrap();
    assert_eq!(
        (l[0].chmod, l[0].chown.as_deref()),
        (Some(0o755), Some("33:33"))
    );
    let err = at(
        "FROM scratch\nCOPY --exclude=*.md . /app/\n",
        c.path(),
        "run.sh",
    )
    .unwrap_err();
    assert!(err.contains("--exclude"), "{err}");
}

/// A project whose artifact `web` has these sync settings and Dockerfile.
fn project(sync: &str, dockerfile: &str, files: &[&str]) -> (tempfile::TempDir, Config) {
    let dir = context(files);
    std::fs::write(dir.path().join("web/Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.path().join("devloop.yaml"),
        format!("apiVersion: devloop/v1alpha1\nkind: Config\nbuild:\n  artifacts:\n    - image: web\n      context: web\n      sync: {sync}\n"),
    )
    .unwrap();
    let cfg = config::load(
        &dir.path().join("devloop.yaml"),
        &LoadOptions::default(),
        &|_| None,
    )
    .unwrap();
    (dir, cfg)
}

fn planned(
    cfg: &Config,
    placements: &Placements,
    required_by: Option<&str>,
    paths: &[&str],
) -> Planned {
    let a = &cfg.build.artifacts[0];
    let rules = crate::context::read_ignore_rules(&a.context, &a.dockerfile).unwrap();
    let ignore = DockerIgnore::from_rules(&rules).unwrap();
    let paths: BTreeSet<PathBuf> = paths.iter().map(|p| a.context.join(p)).collect();
    plan(&Changes {
        artifact: a,
        paths: &paths,
        ignore: &ignore,
        required_by,
        build_args: &BTreeMap::new(),
        placements,
    })
}

#[test]
fn manual_rules_copy_with_the_mode_delete_and_say_why_not() {
    let (dir, cfg) = project(
        "{manual: [{src: 'static/**', dest: /srv/www, strip: static/}]}",
        "FROM scratch\nCOPY static /srv/www\n",
        &[
            "web/static/css/a.css",
            "web/static/b.txt",
            "web/f",
            "web/.dockerignore",
        ],
    );
    std::fs::write(dir.path().join("web/.dockerignore"), "**/*.txt\n").unwrap();
    let a_css = dir
        .path()
        .join("web/static/css/a.css")
        .canonicalize()
        .unwrap();
    std::fs::set_permissions(&a_css, std::fs::Permissions::from_mode(0o640)).unwrap();
    let p = Placements::default();
    assert_eq!(
        planned(
            &cfg,
            &p,
            None,
            &["static/css/a.css", "static/b.txt", "static/gone.css"]
        ),
        Planned::Sync {
            copy: vec![SyncFile {
                local: a_css,
                dest: "/srv/www/css/a.css".into(),
                mode: 0o640,
                owner: None
            }],
            delete: vec![Removal {
                local: cfg.build.artifacts[0].context.join("static/gone.css"),
                dest: "/srv/www/gone.css".into(),
            }],
        }
    );
    let reason = |paths: &[&str]| match planned(&cfg, &p, None, paths) {
        Planned::Rebuild(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(reason(&["f"]), "`f` is not taken by a sync rule");
    assert_eq!(reason(&["Dockerfile"]), "the Dockerfile changed");
    assert_eq!(reason(&[".dockerignore"]), "`.dockerignore` changed");
    // A changed directory stands for its files (a new directory may be reported without the files created in
    // it); the files `.dockerignore` leaves out are not synced.
    let Planned::Sync { copy, delete } = planned(&cfg, &p, None, &["static"]) else {
        panic!("a directory of synced files is synced")
    };
    assert_eq!(
        copy.iter().map(|f| f.dest.as_str()).collect::<Vec<_>>(),
        ["/srv/www/css/a.css"]
    );
    assert!(delete.is_empty());
    assert_eq!(
        planned(&cfg, &p, None, &["static/b.txt"]),
        Planned::Unchanged,
        "only ignored files"
    );
    assert_eq!(
        planned(&cfg, &p, Some("app"), &["static/css/a.css"]),
        Planned::Rebuild("`app` is built from `web`".into())
    );
    assert_eq!(p.parses(), 0, "manual rules never read the Dockerfile");
}

#[test]
fn inferred_files_go_where_the_dockerfile_puts_them_and_it_is_parsed_once() {
    let (dir, cfg) = project(
        "{infer: ['**/*.php']}",
        "FROM php:8\nWORKDIR /var/www\nCOPY composer.json ./\nRUN composer install\nCOPY --chmod=0600 src/ ./\n",
        &[
            "web/src/index.php",
            "web/src/lib/a.php",
            "web/composer.json",
            "web/tests/t.php",
        ],
    );
    let p = Placements::default();
    let ctx = &cfg.build.artifacts[0].context;
    let got = planned(
        &cfg,
        &p,
        None,
        &["src/lib/a.php", "src/old.php", "tests/t.php"],
    );
    let Planned::Sync { copy, delete } = got else {
        panic!("{got:?}")
    };
    assert_eq!(
        copy,
        [SyncFile {
            local: ctx.join("src/lib/a.php"),
            dest: "/var/www/lib/a.php".into(),
            mode: 0o600,
            owner: None
        }]
    );
    assert_eq!(
        delete,
        [Removal {
            local: ctx.join("src/old.php"),
            dest: "/var/www/old.php".into()
        }]
    );
    assert!(matches!(
        planned(&cfg, &p, None, &["src/index.php"]),
        Planned::Sync { .. }
    ));
    assert_eq!(
        planned(&cfg, &p, None, &["tests/t.php"]),
        Planned::NotCopied,
        "no instruction copies it"
    );
    assert_eq!(p.parses(), 1, "parsed once for both syncs");
    match planned(&cfg, &p, None, &["composer.json"]) {
        Planned::Rebuild(r) => assert_eq!(r, "`composer.json` is not taken by a sync rule"),
        other => panic!("{other:?}"),
    }
    // The Dockerfile changed (a rebuild happened): parsed again, and its new layout is followed.
    std::fs::write(
        dir.path().join("web/Dockerfile"),
        "FROM php:8\nCOPY src /app/\n",
    )
    .unwrap();
    let Planned::Sync { copy, .. } = planned(&cfg, &p, None, &["src/index.php"]) else {
        panic!()
    };
    assert_eq!(copy[0].dest, "/app/index.php");
    assert_eq!(p.parses(), 2);
}

/// Regression: a file copied to a destination an earlier copy made a directory was placed *at* it; extracting a
/// file there replaces the whole directory in the container.
#[test]
fn a_destination_is_a_directory_when_an_earlier_copy_made_it_one() {
    let c = context(&["static/a.css", "index.html", "a.conf", "b.conf"]);
    let df = "FROM scratch\nCOPY static /srv\nCOPY index.html /srv\n";
    assert_eq!(at(df, c.path(), "index.html").unwrap(), ["/srv/index.html"]);
    assert_eq!(at(df, c.path(), "static/a.css").unwrap(), ["/srv/a.css"]);
    // An earlier file there: the file is replaced.
    let df = "FROM scratch\nCOPY a.conf /etc/app.conf\nCOPY b.conf /etc/app.conf\n";
    assert_eq!(at(df, c.path(), "b.conf").unwrap(), ["/etc/app.conf"]);
    // On a base image, whether the destination is a directory there cannot be known.
    let err = at(
        "FROM nginx\nCOPY index.html /usr/share/nginx/html\n",
        c.path(),
        "index.html",
    )
    .unwrap_err();
    assert!(
        err.contains("is a directory in the base image is not known"),
        "{err}"
    );
    let df = "FROM scratch AS b\nCOPY static /out/\nFROM scratch\nCOPY --from=b /out /srv\nCOPY index.html /srv\n";
    let err = at(df, c.path(), "index.html").unwrap_err();
    assert!(err.contains("brought from another stage"), "{err}");
}

#[test]
fn onbuild_triggers_of_the_stage_built_from_may_use_any_file() {
    let c = context(&["app.py"]);
    let df = "FROM python:3 AS base\nONBUILD COPY . /src\nFROM base\nCOPY app.py /app/\n";
    let err = at(df, c.path(), "app.py").unwrap_err();
    assert!(err.contains("`ONBUILD` at Dockerfile line 2"), "{err}");
    // Without triggers, a stage built from another is placed.
    let df = "FROM python:3 AS base\nFROM base\nCOPY app.py /app/\n";
    assert_eq!(at(df, c.path(), "app.py").unwrap(), ["/app/app.py"]);
}
