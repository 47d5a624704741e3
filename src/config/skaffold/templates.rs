//! Config, Skaffold import, templates: a Skaffold templated value (Go `text/template` over the environment and
//! Skaffold's image fields) → the same value in devloop's `{{.NAME}}` syntax, or why it cannot be. Evaluates
//! nothing.

use crate::template;

/// Image fields Skaffold offers that devloop has no value for (devloop would read them from the environment).
const SKAFFOLD_ONLY: &[&str] = &["IMAGE_DOMAIN_", "IMAGE_REPO_NO_DOMAIN_"];

/// Translates a value of a field devloop evaluates as a template (build args, `envTemplate`, helm
/// `setValueTemplates`). devloop's fields are Skaffold's where both have them (`{{.NAME}}` reads the
/// environment, `IMAGE_REPO_<key>`, `IMAGE_TAG_<key>`, `IMAGE_DIGEST_<key>`, `IMAGE_FULLY_QUALIFIED_<key>`), so a
/// value devloop can parse is kept as written; anything else is refused with the reason.
pub(super) fn translate(text: &str) -> Result<String, String> {
    template::check(text).map_err(|_| {
        format!(
            "`{text}` uses Go template features devloop lacks (functions, pipes, conditions); devloop templates are `{{{{.NAME}}}}` fields only"
        )
    })?;
    if let Some(field) = SKAFFOLD_ONLY
        .iter()
        .find(|f| text.contains(&format!(".{f}")))
    {
        return Err(format!(
            "`{text}` uses `{field}…`, which devloop does not offer (its image fields: `IMAGE_REPO_`, `IMAGE_TAG_`, `IMAGE_DIGEST_`, `IMAGE_FULLY_QUALIFIED_`)"
        ));
    }
    Ok(text.to_string())
}

/// True when a value of a field devloop takes literally holds a Skaffold template.
pub(super) fn is_templated(text: &str) -> bool {
    text.contains("{{")
}

/// The reason a templated value of a literal field is not converted.
pub(super) fn literal_reason(text: &str) -> String {
    format!("`{text}` is a template, and devloop does not expand templates in this field")
}

/// devloop's (and Skaffold's) template key of an artifact image: every character other than `A-Za-z0-9_` → `_`.
pub(super) fn image_key(image: &str) -> String {
    image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_devloop_has_are_kept_and_the_rest_refused() {
        assert_eq!(
            translate("{{.USER}}-{{ .IMAGE_TAG_app }}").as_deref(),
            Ok("{{.USER}}-{{ .IMAGE_TAG_app }}")
        );
        assert_eq!(translate("plain").as_deref(), Ok("plain"));
        let e = translate("{{default \"x\" .FOO}}").unwrap_err();
        assert!(e.contains("Go template features"), "{e}");
        let e = translate("{{.IMAGE_DOMAIN_app}}").unwrap_err();
        assert!(e.contains("IMAGE_DOMAIN_"), "{e}");
        assert_eq!(image_key("gcr.io/p/app-api"), "gcr_io_p_app_api");
    }
}
