//! Render: templates; text + variables (the environment plus image variables) → expanded text, or every unset
//! variable at once. Text-level only: it must not parse YAML or read the process environment.
//!
//! Manifest files use envsubst syntax ([`expand`]); helm `setValueTemplates` use the `{{.NAME}}` fields of every
//! other template in devloop.yaml ([`expand_fields`]).
//!
//! envsubst syntax: `${NAME}` and `$NAME` (NAME = `[A-Za-z_][A-Za-z0-9_]*`); `${NAME:-default}` (default when unset or
//! empty) and `${NAME-default}` (default when unset), where the default may itself hold references; `$$` is a
//! literal `$`. Anything else after `$` (`$(VAR)`, `$1`, a lone `$`, an unclosed `${`) is kept as written, so
//! Kubernetes' own `$(VAR)` references survive.

use std::collections::BTreeMap;

use super::{ArtifactImage, RenderError};

/// A variable a template uses but that is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetVariable {
    /// The variable name.
    pub name: String,
    /// 1-based line of its first use.
    pub line: usize,
}

/// The variables templates see: the environment, overlaid with four per artifact (`<key>` is the artifact
/// name with every character other than ASCII letters, digits and `_` replaced by `_`):
/// `IMAGE_REPO_<key>`, `IMAGE_TAG_<key>`, `IMAGE_DIGEST_<key>` (empty when unknown) and
/// `IMAGE_FULLY_QUALIFIED_<key>` (the reference injected into manifests).
#[derive(Debug)]
pub(crate) struct Variables<'a> {
    env: &'a BTreeMap<String, String>,
    images: BTreeMap<String, String>,
}

impl<'a> Variables<'a> {
    pub(crate) fn new(
        env: &'a BTreeMap<String, String>,
        artifacts: &[ArtifactImage],
    ) -> Result<Self, RenderError> {
        let mut images = BTreeMap::new();
        let mut owners: BTreeMap<String, &str> = BTreeMap::new();
        for artifact in artifacts {
            let key: String = artifact
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let variable = format!("IMAGE_REPO_{key}");
            if let Some(first) = owners.insert(key.clone(), &artifact.name) {
                return Err(RenderError::ImageVariableClash {
                    first: first.to_owned(),
                    second: artifact.name.clone(),
                    variable,
                });
            }
            images.insert(variable, artifact.repository.clone());
            images.insert(format!("IMAGE_TAG_{key}"), artifact.tag.clone());
            images.insert(
                format!("IMAGE_DIGEST_{key}"),
                artifact.digest.clone().unwrap_or_default(),
            );
            images.insert(
                format!("IMAGE_FULLY_QUALIFIED_{key}"),
                artifact.reference.clone(),
            );
        }
        Ok(Self { env, images })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.images
            .get(name)
            .or_else(|| self.env.get(name))
            .map(String::as_str)
    }
}

/// Why a `{{.NAME}}` template could not be expanded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FieldsError {
    /// The template is malformed.
    Invalid(String),
    /// These fields are not set (each once, in order of first use).
    Unset(Vec<String>),
}

/// Expands `{{.NAME}}` (an image variable, else the environment variable) and `{{.Env.NAME}}` (the environment
/// variable); whitespace is allowed inside the braces, NAME is `[A-Za-z0-9_]+`.
pub(crate) fn expand_fields(text: &str, vars: &Variables<'_>) -> Result<String, FieldsError> {
    let mut out = String::with_capacity(text.len());
    let mut unset: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(FieldsError::Invalid(format!("unclosed `{{{{` in `{text}`")));
        };
        let inner = after[..end].trim();
        let (name, env_only) = match inner.strip_prefix(".Env.") {
            Some(name) => (name, true),
            None => (inner.strip_prefix('.').unwrap_or_default(), false),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(FieldsError::Invalid(format!(
                "`{{{{{inner}}}}}` in `{text}` is not a field; write `{{{{.NAME}}}}` or `{{{{.Env.NAME}}}}`"
            )));
        }
        let value = if env_only {
            vars.env.get(name).map(String::as_str)
        } else {
            vars.get(name)
        };
        match value {
            Some(value) => out.push_str(value),
            None if unset.iter().any(|u| u == name) => {}
            None => unset.push(name.to_owned()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if unset.is_empty() {
        Ok(out)
    } else {
        Err(FieldsError::Unset(unset))
    }
}

/// Expands `text`; on failure returns every unset variable (each once, in order of first use).
pub(crate) fn expand(text: &str, vars: &Variables<'_>) -> Result<String, Vec<UnsetVariable>> {
    let mut out = String::with_capacity(text.len());
    let mut unset = Vec::new();
    expand_into(text, 0, vars, &mut out, &mut unset);
    if unset.is_empty() {
        return Ok(out);
    }
    Err(unset
        .into_iter()
        .map(|(name, offset)| UnsetVariable {
            name,
            line: 1 + text.as_bytes()[..offset]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
        })
        .collect())
}

/// Expands `text`, which starts at byte `base` of the whole template; unset names are recorded with the
/// offset of their `$` in the whole template.
fn expand_into(
    text: &str,
    base: usize,
    vars: &Variables<'_>,
    out: &mut String,
    unset: &mut Vec<(String, usize)>,
) {
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let at = base + (text.len() - rest.len()) + dollar;
        let after = &rest[dollar + 1..];
        let consumed = if after.starts_with('$') {
            out.push('$');
            1
        } else if let Some(reference) = after.strip_prefix('{').and_then(braced) {
            match (vars.get(reference.name), reference.default) {
                (Some(value), None) => out.push_str(value),
                (Some(value), Some(default)) if !(default.when_empty && value.is_empty()) => {
                    out.push_str(value)
                }
                (_, Some(default)) => {
                    expand_into(default.text, at + default.offset, vars, out, unset)
                }
                (None, None) => record(unset, reference.name, at),
            }
            reference.len
        } else {
            let len = name_len(after);
            if len == 0 {
                out.push('$');
            } else {
                match vars.get(&after[..len]) {
                    Some(value) => out.push_str(value),
                    None => record(unset, &after[..len], at),
                }
            }
            len
        };
        rest = &after[consumed..];
    }
    out.push_str(rest);
}

/// A parsed `${…}`.
struct Braced<'t> {
    name: &'t str,
    default: Option<Fallback<'t>>,
    /// Bytes from `{` through the closing `}`.
    len: usize,
}

/// The `:-default` or `-default` part of a `${…}`.
#[derive(Clone, Copy)]
struct Fallback<'t> {
    /// `:-` (also when empty) rather than `-` (only when unset).
    when_empty: bool,
    text: &'t str,
    /// Bytes from the `$` to the start of `text`.
    offset: usize,
}

/// Parses the inside of `${`, `inner` starting just after `{`; `None` when it is not a valid reference.
fn braced(inner: &str) -> Option<Braced<'_>> {
    let len = name_len(inner);
    if len == 0 {
        return None;
    }
    let name = &inner[..len];
    let tail = &inner[len..];
    if tail.starts_with('}') {
        return Some(Braced {
            name,
            default: None,
            len: len + 2,
        });
    }
    let (when_empty, op_len) = if tail.starts_with(":-") {
        (true, 2)
    } else if tail.starts_with('-') {
        (false, 1)
    } else {
        return None;
    };
    // The default runs to the matching `}`; nested `${…}` may appear in it.
    let body = &tail[op_len..];
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => {
                let offset = 2 + len + op_len;
                let default = Fallback {
                    when_empty,
                    text: &body[..i],
                    offset,
                };
                return Some(Braced {
                    name,
                    default: Some(default),
                    len: offset - 1 + i + 1,
                });
            }
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn record(unset: &mut Vec<(String, usize)>, name: &str, at: usize) {
    if !unset.iter().any(|(n, _)| n == name) {
        unset.push((name.to_owned(), at));
    }
}

fn name_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
            1 + bytes[1..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count()
        }
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("NAME".to_owned(), "web".to_owned()),
            ("EMPTY".to_owned(), String::new()),
            ("REPLICAS".to_owned(), "3".to_owned()),
        ])
    }

    fn run(text: &str) -> Result<String, Vec<UnsetVariable>> {
        let env = env();
        expand(text, &Variables::new(&env, &[]).unwrap())
    }

    #[test]
    fn expands_every_form() {
        assert_eq!(
            run("name: ${NAME}\nreplicas: $REPLICAS\n").unwrap(),
            "name: web\nreplicas: 3\n"
        );
        assert_eq!(
            run("${NAME}-$NAME.x/$NAME_SUFFIX_UNSET:-").unwrap_err()[0].name,
            "NAME_SUFFIX_UNSET"
        );
        assert_eq!(run("a-${NAME}b").unwrap(), "a-webb");
        assert_eq!(
            run("${MISSING:-fallback} ${EMPTY:-fallback} ${EMPTY-kept} ${MISSING-used}").unwrap(),
            "fallback fallback  used"
        );
        assert_eq!(
            run("${NAME:-x} ${MISSING:-} ${MISSING:-${NAME}-${MISSING2:-z}}").unwrap(),
            "web  web-z"
        );
        // The default ends at the first `}` that closes no nested reference.
        assert_eq!(run("${MISSING:-a:b-c{d}e}").unwrap(), "a:b-c{de}");
    }

    #[test]
    fn keeps_what_is_not_a_reference() {
        for text in [
            "$(POD_NAME)",
            "cost: 5$",
            "$1 $ x",
            "${not valid}",
            "${UNCLOSED",
            "${}",
            "${NAME:?err}",
            "a$-b",
        ] {
            assert_eq!(run(text).unwrap(), text, "{text}");
        }
        assert_eq!(
            run("echo $$HOME $${NAME} $$$NAME").unwrap(),
            "echo $HOME ${NAME} $web"
        );
    }

    #[test]
    fn reports_every_unset_variable_once_with_its_first_line() {
        let err = run("a: ${ONE}\nb: $TWO\nc: ${ONE}\nd: ${THREE:-${FOUR}}\ne: ${NAME:-$FIVE}\n")
            .unwrap_err();
        assert_eq!(
            err,
            [
                UnsetVariable {
                    name: "ONE".into(),
                    line: 1
                },
                UnsetVariable {
                    name: "TWO".into(),
                    line: 2
                },
                UnsetVariable {
                    name: "FOUR".into(),
                    line: 4
                },
            ]
        );
        // Set but empty is not unset.
        assert_eq!(run("${EMPTY}").unwrap(), "");
    }

    #[test]
    fn image_variables_overlay_the_environment() {
        let mut env = env();
        env.insert("IMAGE_TAG_app_api".into(), "from-env".into());
        let artifacts = [
            ArtifactImage {
                name: "app-api".into(),
                reference: "reg:5000/app-api:abc@sha256:d".into(),
                repository: "reg:5000/app-api".into(),
                tag: "abc".into(),
                digest: Some("sha256:d".into()),
            },
            ArtifactImage {
                name: "registry.local/team/web".into(),
                reference: "registry.local/team/web:1".into(),
                repository: "registry.local/team/web".into(),
                tag: "1".into(),
                digest: None,
            },
        ];
        let vars = Variables::new(&env, &artifacts).unwrap();
        let text = "${IMAGE_REPO_app_api}:${IMAGE_TAG_app_api}@${IMAGE_DIGEST_app_api} ${IMAGE_FULLY_QUALIFIED_app_api}\n\
                    ${IMAGE_REPO_registry_local_team_web}:${IMAGE_TAG_registry_local_team_web} [${IMAGE_DIGEST_registry_local_team_web}]";
        assert_eq!(
            expand(text, &vars).unwrap(),
            "reg:5000/app-api:abc@sha256:d reg:5000/app-api:abc@sha256:d\nregistry.local/team/web:1 []"
        );
    }

    #[test]
    fn expands_value_template_fields() {
        let mut env = env();
        env.insert("IMAGE_TAG_app".into(), "from-env".into());
        let artifacts = [ArtifactImage {
            name: "app".into(),
            reference: "r/app:1@sha256:d".into(),
            repository: "r/app".into(),
            tag: "1".into(),
            digest: Some("sha256:d".into()),
        }];
        let vars = Variables::new(&env, &artifacts).unwrap();
        assert_eq!(
            expand_fields(
                "{{.IMAGE_REPO_app}}:{{ .IMAGE_TAG_app }}@{{.IMAGE_DIGEST_app}} {{.NAME}}",
                &vars
            ),
            Ok("r/app:1@sha256:d web".to_owned())
        );
        assert_eq!(
            expand_fields("{{.Env.IMAGE_TAG_app}} ${NAME} $NAME", &vars),
            Ok("from-env ${NAME} $NAME".to_owned())
        );
        assert_eq!(
            expand_fields(
                "{{.A}}-{{.Env.NAME}}-{{.B}}-{{.A}}-{{.Env.IMAGE_REPO_app}}",
                &vars
            ),
            Err(FieldsError::Unset(vec![
                "A".into(),
                "B".into(),
                "IMAGE_REPO_app".into()
            ]))
        );
        for (bad, message) in [
            ("{{.A", "unclosed `{{` in `{{.A`"),
            (
                "{{A}}",
                "`{{A}}` in `{{A}}` is not a field; write `{{.NAME}}` or `{{.Env.NAME}}`",
            ),
            (
                "x{{ .a-b }}",
                "`{{.a-b}}` in `x{{ .a-b }}` is not a field; write `{{.NAME}}` or `{{.Env.NAME}}`",
            ),
            (
                "{{.}}",
                "`{{.}}` in `{{.}}` is not a field; write `{{.NAME}}` or `{{.Env.NAME}}`",
            ),
        ] {
            assert_eq!(
                expand_fields(bad, &vars),
                Err(FieldsError::Invalid(message.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn clashing_image_variables_are_an_error() {
        let env = env();
        let artifact = |name: &str| ArtifactImage {
            name: name.into(),
            reference: format!("{name}:1"),
            repository: name.into(),
            tag: "1".into(),
            digest: None,
        };
        let err = Variables::new(&env, &[artifact("a-b"), artifact("a.b")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "artifacts `a-b` and `a.b` both define the template variable `IMAGE_REPO_a_b`"
        );
    }
}
