//! Templates: `{{.NAME}}` fields in build args and tag templates → strings, and tag policies → tags. Knows the
//! variables devloop offers (git, build time, version, environment); runs `git` only for the fields a template
//! actually uses.

mod policy;
mod vars;

pub use policy::tag_for;
pub use vars::{Env, Vars};

use crate::hint::suffix;

/// A template could not be evaluated, or a tag policy could not make a tag.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{field}: {message}{}", suffix(hint))]
    Eval {
        field: String,
        message: String,
        hint: Option<String>,
    },
    #[error("cannot tag `{image}`: {message}{}", suffix(hint))]
    Policy {
        image: String,
        message: String,
        hint: Option<String>,
    },
}

/// Fields whose value changes on every run. The cache key hashes their template text, not their value, so that
/// `BUILD_TIME` in a build arg does not defeat the cache; a cache hit keeps the time of the build that made it.
pub const VOLATILE: &[&str] = &["BUILD_TIME"];

/// Checks that a template is well formed (balanced `{{ }}`, only `.NAME` / `.Env.NAME` fields); returns why not.
pub fn check(text: &str) -> Result<(), String> {
    parse(text).map(|_| ())
}

#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
    Env(&'a str),
}

fn parse(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unclosed `{{{{` in `{text}`"));
        };
        let inner = after[..end].trim();
        let name = inner.strip_prefix('.').ok_or_else(|| {
            format!("`{{{{{inner}}}}}` in `{text}` is not a field; write `{{{{.NAME}}}}`")
        })?;
        let piece = match name.strip_prefix("Env.") {
            Some(var) => Piece::Env(var),
            None => Piece::Field(name),
        };
        let ident = match piece {
            Piece::Env(v) | Piece::Field(v) => v,
            Piece::Text(_) => "",
        };
        if ident.is_empty() || !ident.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`{{{{{inner}}}}}` in `{text}` is not a field; write `{{{{.NAME}}}}` or `{{{{.Env.NAME}}}}`"
            ));
        }
        out.push(piece);
        rest = &after[end + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Evaluates a template; `field` names where it came from for the error.
pub fn expand(text: &str, vars: &Vars, field: &str) -> Result<String, TemplateError> {
    expand_with(text, field, |piece| match piece {
        Piece::Field(name) => vars.field(name),
        Piece::Env(name) => vars
            .env(name)
            .ok_or_else(|| format!("environment variable `{name}` is not set")),
        Piece::Text(t) => Ok(t.to_string()),
    })
}

/// The text the cache key hashes for a template: every field evaluated except the volatile ones, which stay as
/// written.
pub fn expand_for_key(text: &str, vars: &Vars, field: &str) -> Result<String, TemplateError> {
    expand_with(text, field, |piece| match piece {
        Piece::Field(name) if VOLATILE.contains(name) => Ok(format!("{{{{.{name}}}}}")),
        Piece::Field(name) => vars.field(name),
        Piece::Env(name) => vars
            .env(name)
            .ok_or_else(|| format!("environment variable `{name}` is not set")),
        Piece::Text(t) => Ok(t.to_string()),
    })
}

fn expand_with(
    text: &str,
    field: &str,
    mut eval: impl FnMut(&Piece) -> Result<String, String>,
) -> Result<String, TemplateError> {
    let pieces = parse(text).map_err(|message| TemplateError::Eval {
        field: field.to_string(),
        message,
        hint: None,
    })?;
    let mut out = String::with_capacity(text.len());
    for p in &pieces {
        out.push_str(&eval(p).map_err(|message| TemplateError::Eval {
            field: field.to_string(),
            hint: message.contains("git").then(|| {
                "git fields need the project to be in a git repository with at least one commit"
                    .to_string()
            }),
            message,
        })?);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
