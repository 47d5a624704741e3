//! Compose import tests, the whole conversion: a typical stack, the written YAML, rebased paths, errors and
//! the keys that are listed rather than converted.

use super::*;

#[test]
fn a_typical_stack_becomes_artifacts_and_containers() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            r#"
name: shop
services:
  api:
    build:
      context: .
      dockerfile: deploy/docker/api.Dockerfile
      args:
        GO_VERSION: "1.23"
    ports: ["8080:8080"]
    env_file: .env.api
    depends_on:
      migrate:
        condition: service_completed_successfully
  migrate:
    build: .
    command: ["/app/migrate", "up"]
    depends_on:
      db:
        condition: service_healthy
  db:
    image: postgres:16-alpine
    environment:
      POSTGRES_PASSWORD: dev
    volumes: [pgdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 2s
      timeout: 5s
      retries: 20
volumes:
  pgdata:
"#,
        ),
        ("Dockerfile", "FROM scratch\n"),
        ("deploy/docker/api.Dockerfile", "FROM scratch\n"),
        (".env.api", "LOG_LEVEL=debug\n"),
    ]);
    let c = f.convert();
    assert_eq!(c.project, "shop");
    let a = artifacts(&c);
    assert_eq!(
        a.iter().map(|a| a.image.as_str()).collect::<Vec<_>>(),
        ["shop-api", "shop-migrate"]
    );
    let docker = a[0].docker.as_ref().unwrap();
    assert_eq!(
        docker.dockerfile.as_deref(),
        Some("deploy/docker/api.Dockerfile")
    );
    assert_eq!(
        docker
            .build_args
            .as_ref()
            .unwrap()
            .get("GO_VERSION")
            .unwrap(),
        "1.23"
    );
    assert_eq!(a[1].context.as_deref(), Some("."));
    assert!(a[1].docker.is_none());
    let api = container(&c, "api");
    assert_eq!(api.image, "shop-api");
    assert_eq!(api.ports, ["8080:8080"]);
    assert_eq!(api.env_file, [".env.api"]);
    assert_eq!(api.depends_on[0].name, "migrate");
    assert_eq!(api.depends_on[0].condition.as_deref(), Some("completed"));
    let migrate = container(&c, "migrate");
    assert_eq!(
        migrate.args.as_deref(),
        Some(&["/app/migrate".to_string(), "up".to_string()][..])
    );
    assert_eq!(migrate.command, None);
    assert_eq!(migrate.depends_on[0].condition.as_deref(), Some("healthy"));
    let db = container(&c, "db");
    assert_eq!(db.image, "postgres:16-alpine");
    assert_eq!(db.volumes, ["pgdata:/var/lib/postgresql/data"]);
    assert_eq!(db.healthcheck.as_ref().unwrap().retries, Some(20));
    assert!(c.not_converted.is_empty(), "{:?}", skipped(&c));
    assert!(noted_at(&c, "volumes.pgdata").contains("`shop-pgdata`"));
    assert_eq!(c.services.len(), 3);
    assert_eq!(c.services[0].artifact.as_deref(), Some("shop-api"));
    assert_eq!(
        describe_outcome(&c.services[0]),
        "→ container `api`, image built as artifact `shop-api`"
    );
    assert_eq!(
        describe_outcome(&c.services[2]),
        "→ container `db`, image `postgres:16-alpine`"
    );
}

#[test]
fn the_yaml_has_a_header_and_loads_with_the_config_loader() {
    let f = project(
        "name: demo\nservices:\n  web:\n    build: .\n    ports: ['8080:80']\n    networks: [front]\n  cache:\n    image: redis:7\n",
    );
    let c = f.convert();
    let yaml = c
        .to_yaml("compose.yaml", "devloop init --from-compose compose.yaml")
        .unwrap();
    insta::assert_snapshot!(yaml, @r"
    # Generated from compose.yaml by `devloop init --from-compose compose.yaml`.
    # `devloop run` builds and starts these containers on the local Docker daemon; `devloop dev` also
    # rebuilds and restarts them on every change. Field reference: docs/config.md; the mapping: docs/init.md.
    #
    # Services:
    #   web    → container `web`, image built as artifact `demo-web`
    #   cache  → container `cache`, image `redis:7`
    #
    # Not converted:
    #   web.networks: devloop puts every container on one network, `devloop-demo`, where they reach each other by service name; other networks and aliases are not created

    apiVersion: devloop/v1alpha1
    kind: Config
    metadata:
      name: demo
    build:
      artifacts:
        - image: demo-web
          context: '.'
    deploy:
      docker:
        containers:
          - name: web
            image: demo-web
            ports:
              - 8080:80
          - name: cache
            image: redis:7
    ");
    let cfg = crate::config::load_text(
        "devloop.yaml",
        &yaml,
        f.dir.path(),
        &crate::config::LoadOptions::default(),
        &|_| None,
    )
    .unwrap();
    assert_eq!(cfg.project, "demo");
    assert_eq!(cfg.docker.unwrap().containers.len(), 2);
}

#[test]
fn paths_are_rebased_onto_the_output_directory() {
    let f = Fixture::new(&[
        (
            "ops/compose.yaml",
            "name: p\nservices:\n  api:\n    build: ../services/api\n    env_file: [./api.env]\n    volumes: ['./data:/data:ro', '../www:/www']\n",
        ),
        ("services/api/Dockerfile", "FROM scratch\n"),
        ("ops/api.env", "A=1\n"),
    ]);
    let c = f
        .convert_with("ops/compose.yaml", "out/dev", &|_| None)
        .unwrap();
    assert_eq!(
        artifacts(&c)[0].context.as_deref(),
        Some("../../services/api")
    );
    let api = container(&c, "api");
    assert_eq!(api.env_file, ["../../ops/api.env"]);
    assert_eq!(api.volumes, ["../../ops/data:/data:ro", "../../www:/www"]);
    let c = f
        .convert_with("ops/compose.yaml", "ops", &|_| None)
        .unwrap();
    assert_eq!(
        container(&c, "api").volumes,
        ["./data:/data:ro", "../www:/www"]
    );
}

#[test]
fn errors_name_the_file_the_field_and_the_value() {
    let e = Fixture::new(&[]).error();
    assert!(
        e.starts_with("<dir>/compose.yaml: cannot read the config"),
        "{e}"
    );
    assert!(e.contains("hint: name the compose file"), "{e}");
    insta::assert_snapshot!(project("services: [a, b]\n").error(), @r"
    <dir>/compose.yaml: services: expected a mapping of service names to services, found a list

    hint: write `services:` with one `name:` mapping per service
    ");
    insta::assert_snapshot!(project("apiVersion: devloop/v1alpha1\nkind: Config\n").error(), @r"
    <dir>/compose.yaml: services: missing: this is not a compose file

    hint: a compose file has a top-level `services:` mapping
    ");
    insta::assert_snapshot!(project("- a\n").error(), @r"
    <dir>/compose.yaml: (document): expected a mapping with `services:`, found a list

    hint: a compose file is a mapping with a top-level `services:` mapping
    ");
    insta::assert_snapshot!(project("services:\n  worker:\n    command: run\n").error(), @r"
    <dir>/compose.yaml: services.worker: has neither `image` nor `build`

    hint: compose rejects this service too: give it an `image:` to run or a `build:` to build
    ");
    insta::assert_snapshot!(project("services:\n  api:\n    build: ./api\n").error(), @r"
    <dir>/compose.yaml: services.api.build.context: directory `./api` does not exist

    hint: paths in a compose file are relative to its directory
    ");
    insta::assert_snapshot!(project("services:\n  api:\n    build: {context: ., dockerfile: nope.Dockerfile}\n").error(), @r"
    <dir>/compose.yaml: services.api.build.dockerfile: file `nope.Dockerfile` does not exist (looked for `<dir>/nope.Dockerfile`)

    hint: the Dockerfile path is relative to the build context
    ");
    insta::assert_snapshot!(project("services:\n  db:\n    image: postgres\n    environment:\n      PW: ${DB_PASSWORD:?set it in .env}\n").error(), @r"
    <dir>/compose.yaml: services.db.environment.PW: required variable `DB_PASSWORD` is not set: set it in .env

    hint: compose interpolates `${VAR}` from the environment and `.env`; devloop init does the same
    ");
    let e = project("services:\n  a: [\n").error();
    assert!(
        e.starts_with("<dir>/compose.yaml: ") && e.contains("line"),
        "{e}"
    );
}

#[test]
fn extends_without_an_image_is_listed_not_an_error() {
    let c =
        project("name: p\nservices:\n  base: {image: x}\n  child:\n    extends: {service: base}\n")
            .convert();
    assert!(skipped_at(&c, "child").contains("`extends` is not resolved"));
    assert_eq!(c.services[1].container, None);
}

#[test]
fn unsupported_keys_are_listed_with_reasons() {
    let c = project(
        r#"name: shop
x-common: &common
  restart: always
services:
  db:
    <<: *common
    image: postgres:16
    container_name: postgres
    networks: [back]
    labels: {a: b}
    user: "1000"
    working_dir: /app
    expose: ["5432"]
    deploy: {replicas: 2}
    secrets: [pw]
    extends: {service: base}
    x-note: hi
    stop_signal: SIGINT
networks:
  back: {}
secrets:
  pw: {file: ./pw.txt}
include: [other.yaml]
"#,
    )
    .convert();
    assert_eq!(container(&c, "db").restart.as_deref(), Some("always"));
    let same =
        project("name: shop\nservices:\n  db: {image: x, container_name: shop-db}\n").convert();
    assert!(same.not_converted.is_empty());
    assert_eq!(
        noted_at(&same, "db.container_name"),
        "devloop names the container `shop-db` too"
    );
    insta::assert_snapshot!(skipped(&c).join("\n"), @r"
    x-common: extension field: not converted (YAML anchors that use it were expanded where they are used)
    db.container_name: devloop names the container `shop-db`; other containers reach it as `db` or `shop-db`, not `postgres`
    db.networks: devloop puts every container on one network, `devloop-shop`, where they reach each other by service name; other networks and aliases are not created
    db.labels: devloop labels its containers itself; other labels are not set
    db.user: devloop's Docker target has no equivalent
    db.working_dir: devloop's Docker target has no equivalent
    db.expose: containers reach every port of each other on the project network: nothing to convert
    db.deploy: devloop runs one container per service; `deploy` (replicas, resources, restart_policy) is not used
    db.secrets: devloop has no secrets or configs; mount the file with a bind volume instead (`./file:/run/secrets/name:ro`)
    db.extends: not resolved: the settings it would inherit are missing from this container
    db.x-note: extension field: not converted
    db.stop_signal: devloop stops containers with SIGTERM, then kills them after `stopGracePeriod`
    networks: devloop creates one network, `devloop-shop`, for all containers; these networks are not created
    secrets: devloop has no secrets or configs; mount each file with a bind volume instead (`./file:/run/secrets/name:ro`)
    include: included compose files are not read: convert each one, or merge them first (`docker compose config`)
    ");
}
