//! Events, unit tests: the JSON envelope.

use super::*;

#[test]
fn envelope_is_type_and_data_in_camel_case() {
    let e = Event::BuildFinished {
        image: "api".into(),
        tag: "api:1".into(),
        image_id: "sha256:x".into(),
        duration_ms: 5,
    };
    insta::assert_json_snapshot!(e, @r#"
    {
      "type": "buildFinished",
      "data": {
        "image": "api",
        "tag": "api:1",
        "imageId": "sha256:x",
        "durationMs": 5
      }
    }
    "#);
}
