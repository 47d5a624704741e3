//! Templates, tag policies: a `TagPolicy` with the cache key, the template variables and the build time → the
//! tag an artifact gets. Evaluates; the policies themselves and the tag's character rules are `tag`'s.

use super::vars::Vars;
use super::{TemplateError, expand};
use crate::tag::{self, GitVariant, TagPolicy};
use crate::time::Timestamp;

/// The tag an artifact gets under `policy`. `key_short` is the cache key prefix (for `inputDigest`).
pub fn tag_for(
    policy: &TagPolicy,
    image: &str,
    key_short: &str,
    vars: &Vars,
    now: &Timestamp,
) -> Result<String, TemplateError> {
    let policy_err = |message: String, hint: Option<&str>| TemplateError::Policy {
        image: image.to_string(),
        message,
        hint: hint.map(str::to_string),
    };
    let tag = match policy {
        TagPolicy::InputDigest => key_short.to_string(),
        TagPolicy::GitCommit(variant) => {
            let field = match variant {
                GitVariant::Tags => "VERSION",
                GitVariant::CommitSha => "GIT_COMMIT",
                GitVariant::AbbrevCommitSha => "GIT_SHORT_COMMIT",
            };
            let mut t = vars.field(field).map_err(|m| {
                policy_err(
                    m,
                    Some("the gitCommit tag policy needs a git repository with a commit"),
                )
            })?;
            // `git describe --dirty` already says it; other variants say it like Skaffold.
            if *variant != GitVariant::Tags && vars.dirty().map_err(|m| policy_err(m, None))? {
                t.push_str("-dirty");
            }
            t
        }
        TagPolicy::DateTime { format } => now.format(format),
        TagPolicy::EnvTemplate { template: t } => {
            let v = vars.with(&[("IMAGE_NAME", image), ("DIGEST", key_short)]);
            expand(t, &v, "build.tagPolicy.envTemplate.template")
                .map_err(|e| policy_err(e.to_string(), None))?
        }
    };
    let tag = tag::sanitize_tag(&tag);
    if tag.is_empty() {
        return Err(policy_err(
            "the tag policy produced an empty tag".into(),
            None,
        ));
    }
    Ok(tag)
}
