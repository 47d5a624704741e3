//! Compose import tests, container keys: ports, environment, env files, volumes, healthchecks, command and
//! entrypoint, restart, init.

use super::*;

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
