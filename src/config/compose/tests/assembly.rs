//! Compose import tests, across services: dependencies, profiles, the one stop grace period.

use super::*;

#[test]
fn depends_on_list_map_and_conditions() {
    let c = project(
        r#"name: p
services:
  api:
    image: x
    depends_on:
      db:
        condition: service_healthy
        restart: true
      cache:
        condition: service_started
        required: false
      migrate:
        condition: service_completed_successfully
      ghost:
        condition: service_started
  worker:
    image: x
    depends_on: [db, cache]
  db: {image: x}
  cache: {image: x}
  migrate: {image: x}
"#,
    )
    .convert();
    let api = container(&c, "api");
    let deps: Vec<(&str, Option<&str>)> = api
        .depends_on
        .iter()
        .map(|d| (d.name.as_str(), d.condition.as_deref()))
        .collect();
    assert_eq!(
        deps,
        [
            ("db", Some("healthy")),
            ("cache", Some("started")),
            ("migrate", Some("completed"))
        ]
    );
    assert!(skipped_at(&c, "api.depends_on.db.restart").contains("does not restart"));
    assert!(noted_at(&c, "api.depends_on.cache.required").contains("not optional"));
    assert!(skipped_at(&c, "api.depends_on.ghost").contains("not converted"));
    let worker = container(&c, "worker");
    assert_eq!(worker.depends_on.len(), 2);
    assert_eq!(worker.depends_on[0].condition, None);
}

#[test]
fn compose_profiles_become_devloop_profiles() {
    let c = project(
        r#"name: p
services:
  api:
    build: .
    depends_on: [db, tools]
  db: {image: postgres}
  admin:
    image: adminer
    profiles: [debug]
    depends_on: [db]
  seed:
    build:
      context: .
      target: seed
    profiles: [debug, seed]
    depends_on: [admin]
  tools:
    image: busybox
    profiles: [debug]
"#,
    )
    .convert();
    assert_eq!(c.profiles, ["debug", "seed"]);
    assert_eq!(
        containers(&c)
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["api", "db"]
    );
    assert_eq!(
        container(&c, "api").depends_on.len(),
        1,
        "tools only runs with -p debug"
    );
    assert!(skipped_at(&c, "api.depends_on[1]").contains("runs only with `-p debug`"));
    assert!(skipped_at(&c, "seed.depends_on[0]").contains("`-p debug`"));
    let profiles = c.config.profiles.clone().unwrap();
    let debug = &profiles[0];
    let names: Vec<String> = debug
        .deploy
        .as_ref()
        .unwrap()
        .docker
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["admin", "seed", "tools"]);
    assert_eq!(
        debug.build.as_ref().unwrap().artifacts.as_ref().unwrap()[0].image,
        "p-seed"
    );
    assert_eq!(
        artifacts(&c).len(),
        1,
        "only p-api is built without a profile"
    );
    assert!(noted_at(&c, "admin.profiles").contains("`-p debug`"));
    assert_eq!(c.services[3].profiles, ["debug", "seed"]);
}

#[test]
fn stop_grace_period_becomes_the_longest() {
    let c = project(
        "name: p\nservices:\n  a: {image: x, stop_grace_period: 1m}\n  b: {image: x, stop_grace_period: 2.5s}\n",
    )
    .convert();
    let docker = c.config.deploy.as_ref().unwrap().docker.as_ref().unwrap();
    assert_eq!(docker.stop_grace_period, Some(60));
    assert!(noted_at(&c, "b.stop_grace_period").contains("60s, the longest"));
    // Services without one had compose's 10s: nobody is killed sooner than under compose.
    let c =
        project("name: p\nservices:\n  a: {image: x, stop_grace_period: 1s}\n  b: {image: x}\n")
            .convert();
    let docker = c.config.deploy.as_ref().unwrap().docker.as_ref().unwrap();
    assert_eq!(docker.stop_grace_period, Some(10));
    assert!(noted_at(&c, "a.stop_grace_period").contains("10s"));
    let c = project("name: p\nservices:\n  a: {image: x, stop_grace_period: 3s}\n").convert();
    let docker = c.config.deploy.as_ref().unwrap().docker.as_ref().unwrap();
    assert_eq!(docker.stop_grace_period, Some(3));
    assert!(c.notes.is_empty());
}
