//! Tests of `templates`: environment variables expanded, unset ones reported together.

use super::*;

#[test]
fn templates_expand_environment_variables() {
    let mut f = Fixture::new();
    f.env.insert("APP_NAME".into(), "shop".into());
    f.write(
        "k8s/cm.yaml.tmpl",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${APP_NAME}\ndata:\n  level: ${LOG_LEVEL:-info}\n  image: \"${IMAGE_FULLY_QUALIFIED_app_api}\"\n  cmd: \"echo $(POD_NAME) $$HOME\"\n",
    )
    .write("templates/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: $APP_NAME-pod\nspec:\n  containers: [{name: a, image: app-api}]\n")
    .write("k8s/plain.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  x: ${NOT_EXPANDED}\n");
    let manifests = Manifests {
        raw_yaml: vec!["k8s/*".into()],
        templates: vec!["templates/*.yaml".into()],
        ..Manifests::default()
    };
    let images = [artifact("app-api", "reg/app-api:1")];
    let rendered = f.render(&manifests, &images, None).unwrap();
    let values: Vec<Value> = rendered
        .objects
        .into_iter()
        .map(Object::into_value)
        .collect();
    assert_eq!(values[0]["metadata"]["name"], "shop");
    assert_eq!(
        values[0]["data"],
        serde_json::json!({"level": "info", "image": "reg/app-api:1", "cmd": "echo $(POD_NAME) $HOME"})
    );
    assert_eq!(
        values[1]["data"]["x"], "${NOT_EXPANDED}",
        "only templates are expanded"
    );
    assert_eq!(values[2]["metadata"]["name"], "shop-pod");
    assert_eq!(values[2]["spec"]["containers"][0]["image"], "reg/app-api:1");
}

#[test]
fn unset_template_variables_are_reported_together() {
    let f = Fixture::new();
    f.write("deploy.yaml.tmpl", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${NAME}\ndata:\n  a: $REGION\n  b: ${NAME}-${ZONE:-z}\n");
    let err = f.render(&raw(&["*.tmpl"]), &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "deploy.yaml.tmpl: unset environment variables: `NAME` (line 4), `REGION` (line 6)\n\nhint: set them, or give a default with `${NAME:-default}`"
    );
}
