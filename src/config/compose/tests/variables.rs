//! Compose import tests, variables: `${VAR}` resolved like compose, and reported.

use super::*;

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
