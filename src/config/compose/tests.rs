//! Unit tests of the compose import: one per conversion rule and per case that does not convert.
#![allow(clippy::unwrap_used)]

use super::syntax::{duration, duration_ns, port_range, project_name, relative};
use super::*;

/// A temporary project: `files` written (a path ending in `/` is a directory), the compose file at `compose`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            if path.ends_with('/') {
                std::fs::create_dir_all(&p).unwrap();
            } else {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, content).unwrap();
            }
        }
        Fixture { dir }
    }

    fn convert_with(
        &self,
        compose: &str,
        output_dir: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Conversion, ConfigError> {
        std::fs::create_dir_all(self.dir.path().join(output_dir)).unwrap();
        convert(&Request {
            file: &self.dir.path().join(compose),
            output_dir: &self.dir.path().join(output_dir),
            env,
        })
    }

    fn convert(&self) -> Conversion {
        self.convert_with("compose.yaml", ".", &|_| None).unwrap()
    }

    fn error(&self) -> String {
        self.convert_with("compose.yaml", ".", &|_| None)
            .unwrap_err()
            .to_string()
            .replace(&self.dir.path().display().to_string(), "<dir>")
    }
}

/// A compose project with one `compose.yaml` and a Dockerfile at the root.
fn project(compose: &str) -> Fixture {
    Fixture::new(&[("compose.yaml", compose), ("Dockerfile", "FROM scratch\n")])
}

fn containers(c: &Conversion) -> &Vec<RawContainer> {
    &c.config
        .deploy
        .as_ref()
        .unwrap()
        .docker
        .as_ref()
        .unwrap()
        .containers
}

fn container<'a>(c: &'a Conversion, name: &str) -> &'a RawContainer {
    containers(c).iter().find(|c| c.name == name).unwrap()
}

fn artifacts(c: &Conversion) -> Vec<RawArtifact> {
    c.config
        .build
        .as_ref()
        .and_then(|b| b.artifacts.clone())
        .unwrap_or_default()
}

/// `at: reason` lines of the not-converted list.
fn skipped(c: &Conversion) -> Vec<String> {
    c.not_converted
        .iter()
        .map(|f| format!("{}: {}", f.at, f.reason))
        .collect()
}

fn noted(c: &Conversion) -> Vec<String> {
    c.notes
        .iter()
        .map(|f| format!("{}: {}", f.at, f.reason))
        .collect()
}

fn skipped_at(c: &Conversion, at: &str) -> String {
    c.not_converted
        .iter()
        .find(|f| f.at == at)
        .map(|f| f.reason.clone())
        .unwrap_or_else(|| panic!("nothing skipped at {at}: {:?}", skipped(c)))
}

fn noted_at(c: &Conversion, at: &str) -> String {
    c.notes
        .iter()
        .find(|f| f.at == at)
        .map(|f| f.reason.clone())
        .unwrap_or_else(|| panic!("no note at {at}: {:?}", noted(c)))
}

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

#[test]
fn ports_short_and_long_syntax() {
    let c = project(
        r#"name: p
services:
  web:
    image: nginx
    ports:
      - "8080:80"
      - "127.0.0.1:9090:9090"
      - 80
      - "53:53/udp"
      - "7000-7002:8000-8002"
      - "[::1]:6001:6001"
      - "::1:6002:6002"
      - "127.0.0.1::5000"
      - "9000-9010:80"
      - "5000:5000/sctp"
      - target: 443
        published: "8443"
        host_ip: 127.0.0.1
        protocol: tcp
        mode: host
      - target: 3000
"#,
    )
    .convert();
    assert_eq!(
        container(&c, "web").ports,
        [
            "8080:80",
            "127.0.0.1:9090:9090",
            "53:53/udp",
            "7000:8000",
            "7001:8001",
            "7002:8002",
            "[::1]:6001:6001",
            "[::1]:6002:6002",
            "127.0.0.1:8443:443",
        ]
    );
    assert!(skipped_at(&c, "web.ports[2]").contains("random host port"));
    assert!(skipped_at(&c, "web.ports[7]").contains("random host port"));
    assert!(skipped_at(&c, "web.ports[8]").contains("picks a free port"));
    assert!(skipped_at(&c, "web.ports[9]").contains("`sctp`"));
    assert!(skipped_at(&c, "web.ports[10].mode").contains("no equivalent"));
    assert!(skipped_at(&c, "web.ports[11]").contains("random host port"));
}

#[test]
fn environment_as_map_or_list_and_pass_through_names() {
    let c = project(
        "name: p\nservices:\n  a:\n    image: x\n    environment:\n      PORT: 8080\n      DEBUG: true\n      FROM_SHELL:\n  b:\n    image: x\n    environment: [A=1, B=, C=x=y, FROM_SHELL]\n",
    )
    .convert();
    let a = &container(&c, "a").env;
    assert_eq!(a["PORT"], "8080");
    assert_eq!(a["DEBUG"], "true");
    assert!(!a.contains_key("FROM_SHELL"));
    assert!(skipped_at(&c, "a.environment.FROM_SHELL").contains("passes `FROM_SHELL` through"));
    let b = &container(&c, "b").env;
    assert_eq!(
        (b["A"].as_str(), b["B"].as_str(), b["C"].as_str()),
        ("1", "", "x=y")
    );
    assert!(skipped_at(&c, "b.environment.FROM_SHELL").contains("unset now"));
}

#[test]
fn scalars_are_read_like_compose_reads_them() {
    let c = project(
        "name: p\nservices:\n  a:\n    image: x\n    restart: no\n    environment:\n      DEBUG: yes\n      OFF: off\n      MODE: 0755\n      BIG: 1_000\n      ON: true\n      F: 1.10\n",
    )
    .convert();
    let a = container(&c, "a");
    let env: Vec<(&str, &str)> = a
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("BIG", "1_000"),
            ("DEBUG", "yes"),
            ("F", "1.1"),
            ("MODE", "0755"),
            ("OFF", "off"),
            ("ON", "true")
        ]
    );
    assert_eq!(a.restart.as_deref(), Some("no"));
}

#[test]
fn env_files_string_list_and_long_form() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "name: p\nservices:\n  a:\n    image: x\n    env_file: common.env\n  b:\n    image: x\n    env_file:\n      - common.env\n      - path: optional.env\n        required: false\n      - path: missing.env\n      - fancy.env\n      - bare.env\n",
        ),
        ("common.env", "# c\nexport A=1\nB=\"two\"\n"),
        ("fancy.env", "X=1 # comment\nY='plain'\n"),
        ("bare.env", "A=1\nFROM_SHELL\n"),
    ]);
    let c = f.convert();
    assert_eq!(container(&c, "a").env_file, ["common.env"]);
    assert_eq!(container(&c, "b").env_file, ["common.env", "fancy.env"]);
    assert!(skipped_at(&c, "b.env_file[1]").contains("optional"));
    assert!(skipped_at(&c, "b.env_file[2]").contains("compose would fail"));
    assert_eq!(
        noted_at(&c, "b.env_file[3]"),
        "`fancy.env` line 1: devloop reads the value of `X` literally (compose interprets inline comments, escapes or `${…}` there)"
    );
    assert!(skipped_at(&c, "b.env_file[4]").contains("line 2 is not `NAME=value`"));
}

#[test]
fn volumes_short_long_named_anonymous_and_tmpfs() {
    let c = project(
        r#"name: p
services:
  a:
    image: x
    volumes:
      - ./src:/src
      - ./conf:/etc/conf:ro,z
      - data:/data
      - /abs/path:/abs
      - /anonymous
      - ~/cache:/cache
      - type: bind
        source: ./www
        target: /www
        read_only: true
        bind:
          create_host_path: false
      - type: volume
        source: logs
        target: /logs
      - type: tmpfs
        target: /tmp
      - type: volume
        target: /anon
    tmpfs: [/run]
volumes:
  data: {}
  logs:
    external: true
"#,
    )
    .convert();
    assert_eq!(
        container(&c, "a").volumes,
        [
            "./src:/src",
            "./conf:/etc/conf:ro",
            "data:/data",
            "/abs/path:/abs",
            "./www:/www:ro",
            "logs:/logs"
        ]
    );
    assert!(skipped_at(&c, "a.volumes[1]").contains("mount option `z` dropped"));
    assert!(skipped_at(&c, "a.volumes[4]").contains("anonymous volume"));
    assert!(skipped_at(&c, "a.volumes[5]").contains("does not expand `~`"));
    assert!(skipped_at(&c, "a.volumes[6].bind.create_host_path").contains("no equivalent"));
    assert!(skipped_at(&c, "a.volumes[8]").contains("`tmpfs` mount"));
    assert!(skipped_at(&c, "a.volumes[9]").contains("anonymous volume"));
    assert!(skipped_at(&c, "a.tmpfs").contains("no tmpfs"));
    assert!(skipped_at(&c, "volumes.logs.external").contains("external"));
    assert!(noted_at(&c, "volumes.data").contains("`p-data`"));
}

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
fn healthchecks() {
    let c = project(
        r#"name: p
services:
  a:
    image: x
    healthcheck:
      test: curl -f http://localhost || exit 1
      interval: 1m30s
      timeout: 1.5s
      retries: 3
      start_period: 10us
      start_interval: 1s
  b:
    image: x
    healthcheck: {disable: true}
  c:
    image: x
    healthcheck: {interval: 5s}
  d:
    image: x
    healthcheck: {test: [CMD, pg_isready]}
  e:
    image: x
    healthcheck: {test: [pg_isready]}
"#,
    )
    .convert();
    let a = container(&c, "a").healthcheck.clone().unwrap();
    assert_eq!(a.test, ["CMD-SHELL", "curl -f http://localhost || exit 1"]);
    assert_eq!(a.interval.as_deref(), Some("1m30s"));
    assert_eq!(a.timeout.as_deref(), Some("1s500ms"));
    assert_eq!(a.start_period.as_deref(), Some("1ms"));
    assert!(noted_at(&c, "a.healthcheck.start_period").contains("rounded up"));
    assert!(skipped_at(&c, "a.healthcheck.start_interval").contains("start_interval"));
    assert_eq!(
        container(&c, "b").healthcheck.as_ref().unwrap().test,
        ["NONE"]
    );
    assert!(container(&c, "c").healthcheck.is_none());
    assert!(skipped_at(&c, "c.healthcheck").contains("no `test`"));
    assert_eq!(
        container(&c, "d").healthcheck.as_ref().unwrap().test,
        ["CMD", "pg_isready"]
    );
    assert!(noted_at(&c, "d.healthcheck").contains("`interval`, `timeout`, `retries` not set"));
    assert!(skipped_at(&c, "e.healthcheck.test").contains("must start with"));
}

#[test]
fn command_and_entrypoint_map_to_args_and_command() {
    let c = project(
        r#"name: p
services:
  a:
    image: x
    entrypoint: /docker-entrypoint.sh --verbose
    command: bundle exec 'rails server' -b "0.0.0.0"
  b:
    image: x
    entrypoint: [sh, -c]
    command: [echo $$HOME]
  c:
    image: x
    command: npm run migrate && npm start
  d:
    image: x
    command: []
  e:
    image: x
    command: echo 'unterminated
"#,
    )
    .convert();
    let a = container(&c, "a");
    assert_eq!(
        a.command.as_deref(),
        Some(&["/docker-entrypoint.sh".to_string(), "--verbose".to_string()][..])
    );
    assert_eq!(
        a.args.clone().unwrap(),
        ["bundle", "exec", "rails server", "-b", "0.0.0.0"]
    );
    let b = container(&c, "b");
    assert_eq!(b.command.clone().unwrap(), ["sh", "-c"]);
    assert_eq!(b.args.clone().unwrap(), ["echo $HOME"]);
    assert_eq!(
        container(&c, "c").args.clone().unwrap(),
        ["npm", "run", "migrate"]
    );
    assert!(noted_at(&c, "c.command").contains("stops splitting at `&& npm start`"));
    assert!(container(&c, "d").args.is_none());
    assert!(skipped_at(&c, "d.command").contains("empty"));
    assert!(skipped_at(&c, "e.command").contains("unterminated"));
}

#[test]
fn restart_policies() {
    let c = project(
        "name: p\nservices:\n  a: {image: x, restart: always}\n  b: {image: x, restart: 'no'}\n  c: {image: x, restart: on-failure:3}\n  d: {image: x, restart: unless-stopped}\n  e: {image: x, restart: sometimes}\n",
    )
    .convert();
    let r = |n: &str| container(&c, n).restart.clone();
    assert_eq!(r("a").as_deref(), Some("always"));
    assert_eq!(r("b").as_deref(), Some("no"));
    assert_eq!(r("c").as_deref(), Some("on-failure"));
    assert!(noted_at(&c, "c.restart").contains("without a limit"));
    assert_eq!(r("d").as_deref(), Some("unless-stopped"));
    assert_eq!(r("e"), None);
    assert!(skipped_at(&c, "e.restart").contains("unknown restart policy"));
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

#[test]
fn interpolation_resolves_like_compose_and_is_reported() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            r#"name: ${PROJECT:-shop}
services:
  db:
    image: postgres:${PG_VERSION:-16}
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD}
      PROJECT: ${COMPOSE_PROJECT_NAME}
      LITERAL: $$NOT_A_VAR
      MISSING: "${NOPE}"
    ports: ["${DB_PORT}:5432"]
"#,
        ),
        (".env", "DB_PASSWORD=from-dotenv\nDB_PORT=5433\n"),
    ]);
    let env = |k: &str| (k == "DB_PORT").then(|| "6543".to_string());
    let c = f.convert_with("compose.yaml", ".", &env).unwrap();
    assert_eq!(c.project, "shop");
    let db = container(&c, "db");
    assert_eq!(db.image, "postgres:16");
    assert_eq!(db.env["POSTGRES_PASSWORD"], "from-dotenv");
    assert_eq!(db.env["PROJECT"], "shop");
    assert_eq!(db.env["LITERAL"], "$NOT_A_VAR");
    assert_eq!(db.env["MISSING"], "");
    assert_eq!(db.ports, ["6543:5432"], "the environment wins over .env");
    let got: Vec<String> = c
        .interpolated
        .iter()
        .map(|i| format!("{} {:?} {}", i.variable, i.source, i.used_in.join(",")))
        .collect();
    assert_eq!(
        got,
        [
            "PROJECT Default name",
            "PG_VERSION Default db.image",
            "DB_PASSWORD DotEnv db.environment.POSTGRES_PASSWORD",
            "COMPOSE_PROJECT_NAME ProjectName db.environment.PROJECT",
            "NOPE Unset db.environment.MISSING",
            "DB_PORT Environment db.ports[0]",
        ]
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
fn durations_and_ports_helpers() {
    assert_eq!(duration("30s"), Some(("30s".into(), true)));
    assert_eq!(duration("1h5m30s20ms"), Some(("1h5m30s20ms".into(), true)));
    assert_eq!(duration("90s"), Some(("90s".into(), true)));
    assert_eq!(duration("1.5m"), Some(("1m30s".into(), true)));
    assert_eq!(duration("1500us"), Some(("2ms".into(), false)));
    assert_eq!(duration("soon"), None);
    assert_eq!(duration_ns("2.5s"), Some(2_500_000_000));
    assert_eq!(port_range("8000-8002"), Some(vec![8000, 8001, 8002]));
    assert_eq!(port_range("0"), None);
    assert_eq!(port_range("1-1000"), None);
    assert_eq!(project_name("My_App.v2"), "my_appv2");
    assert_eq!(project_name("--x--"), "x");
    assert_eq!(project_name("!!!"), "devloop");
    assert_eq!(
        relative(Path::new("/a/b/c"), Path::new("/a/d")),
        PathBuf::from("../b/c")
    );
    assert_eq!(
        relative(Path::new("/a"), Path::new("/a")),
        PathBuf::from(".")
    );
}

#[test]
fn init_becomes_init() {
    let c = project(
        "services:\n  web:\n    image: nginx\n    init: true\n  worker:\n    image: nginx\n    init: false\n  odd:\n    image: nginx\n    init: sometimes\n",
    )
    .convert();
    assert_eq!(container(&c, "web").init, Some(true));
    assert_eq!(container(&c, "worker").init, None);
    assert_eq!(container(&c, "odd").init, None);
    assert!(
        skipped_at(&c, "odd.init").contains("expected `true` or `false`"),
        "{:?}",
        skipped(&c)
    );
}
