//! Tags, a leaf: image references — parse, normalize, default-repo rewriting, the tag policies (what they are;
//! `template::tag_for` evaluates them). The only code that formats image names; it never talks to a daemon or
//! registry, and imports nothing of the crate.

use std::borrow::Cow;

/// An image reference that cannot be parsed.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error("`{reference}` is not a valid image reference: {reason}")]
    Invalid { reference: String, reason: String },
}

impl TagError {
    /// Just the reason, for callers that name the reference themselves.
    pub fn reason(&self) -> String {
        match self {
            TagError::Invalid { reason, .. } => reason.clone(),
        }
    }
}

/// How built images are tagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagPolicy {
    /// The cache key: changes exactly when an input changes.
    InputDigest,
    GitCommit(GitVariant),
    /// The build time, formatted with strftime-style `%Y %m %d %H %M %S` (UTC).
    DateTime {
        format: String,
    },
    /// A template of `{{.IMAGE_NAME}}`, `{{.DIGEST}}`, env and git values.
    EnvTemplate {
        template: String,
    },
}

/// What part of git `tagPolicy.gitCommit` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitVariant {
    /// `git describe --tags --always` (the tag when HEAD is tagged).
    Tags,
    CommitSha,
    AbbrevCommitSha,
}

/// A parsed image reference: `repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `[domain/]path`, exactly as written (not normalized).
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:…`
    pub digest: Option<String>,
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Parses a reference with Docker's grammar (distribution/reference).
pub fn parse(s: &str) -> Result<Reference, TagError> {
    let bad = |reason: &str| TagError::Invalid {
        reference: s.to_string(),
        reason: reason.to_string(),
    };
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            let (algo, hex) = d
                .split_once(':')
                .ok_or_else(|| bad("the digest is not `algorithm:hex`"))?;
            if algo != "sha256"
                || hex.len() != 64
                || !hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            {
                return Err(bad(
                    "the digest is not `sha256:` followed by 64 lowercase hex digits",
                ));
            }
            (r, Some(d.to_string()))
        }
        None => (s, None),
    };
    // A `:` after the last `/` starts the tag; one before it belongs to a registry port.
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (repository, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(bad(
                "the tag must be 1–128 of `A-Za-z0-9_.-`, not starting with `.` or `-`",
            ));
        }
    }
    if repository.len() > 255 {
        return Err(bad("the repository name is longer than 255 characters"));
    }
    let (domain, path) = split_domain(repository);
    if let Some(d) = domain {
        let (host, port) = match d.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
            _ => (d, None),
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        {
            return Err(bad("the registry host is not valid"));
        }
        if let Some(p) = port
            && (p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(bad("the registry port is not a number"));
        }
    }
    for component in path.split('/') {
        if !valid_component(component) {
            return Err(bad(
                "path components must be lowercase letters and digits, separated by `.`, `_`, `__` or dashes",
            ));
        }
    }
    Ok(Reference {
        repository: repository.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|ch| ch == '-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Splits `domain/path`: the first component is a domain when it has a `.` or `:` or is `localhost`.
fn split_domain(repository: &str) -> (Option<&str>, &str) {
    match repository.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, repository),
    }
}

/// Docker's full form of a repository: `app` → `docker.io/library/app`, `team/app` → `docker.io/team/app`.
/// Two names denote the same image exactly when their normalized forms are equal.
pub fn normalize_repository(repository: &str) -> String {
    let repository = repository.split('@').next().unwrap_or(repository);
    let last_slash = repository.rfind('/').map(|i| i + 1).unwrap_or(0);
    let repository = match repository[last_slash..].find(':') {
        Some(i) => &repository[..last_slash + i],
        None => repository,
    };
    match split_domain(repository) {
        (Some("index.docker.io"), path) => normalize_repository(&format!("docker.io/{path}")),
        (Some("docker.io"), path) if !path.contains('/') => format!("docker.io/library/{path}"),
        (Some(_), _) => repository.to_string(),
        (None, path) if path.contains('/') => format!("docker.io/{path}"),
        (None, path) => format!("docker.io/library/{path}"),
    }
}

/// Rewrites an image name onto a default repository, the way Skaffold users expect:
/// an image already under the default repo is kept; for registries that allow nested paths (`gcr.io`,
/// `*-docker.pkg.dev`) the full name is appended; otherwise the name is escaped (`/`, `.`, `:` → `_`) into one
/// path component, so `team-a/api` and `team-b/api` never collide. The result is truncated to 255 characters.
pub fn apply_default_repo(image: &str, default_repo: Option<&str>) -> String {
    let Some(repo) = default_repo
        .map(|r| r.trim_end_matches('/'))
        .filter(|r| !r.is_empty())
    else {
        return image.to_string();
    };
    if image == repo || image.starts_with(&format!("{repo}/")) {
        return image.to_string();
    }
    let host = repo.split('/').next().unwrap_or(repo);
    let nested = host.ends_with("gcr.io") || host.ends_with("-docker.pkg.dev");
    let tail = if nested {
        image.to_string()
    } else {
        image
            .chars()
            .map(|c| if matches!(c, '/' | '.' | ':') { '_' } else { c })
            .collect()
    };
    let mut out = format!("{repo}/{tail}");
    out.truncate(255);
    out
}

/// A parsed image reference, reduced to what matching needs.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageName<'a> {
    /// The fully qualified repository, e.g. `docker.io/library/app-api`.
    pub normalized: Cow<'a, str>,
    /// The digest after `@`, when the reference is pinned.
    pub digest: Option<&'a str>,
}

/// Parses an `image:` value the way kubelet and containerd resolve it (Docker's `ParseNormalizedNamed`: a digest
/// and a tag split off, `docker.io` and `library/` filled in) without allocating when the name is already
/// normalized; `None` for values that cannot be image references (empty, whitespace, templates
/// left unrendered), which are then left alone.
pub fn parse_name(image: &str) -> Option<ImageName<'_>> {
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let name = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => &rest[..i],
        _ => rest,
    };
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return None;
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, path)
        }
        _ => ("docker.io", name),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let normalized = if domain == "docker.io" && !path.contains('/') {
        Cow::Owned(format!("docker.io/library/{path}"))
    } else if domain.len() + 1 + path.len() == name.len() {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("{domain}/{path}"))
    };
    Some(ImageName { normalized, digest })
}

/// The tag a reference without one means (Docker's default).
pub const DEFAULT_TAG: &str = "latest";

impl Reference {
    /// The tag, or [`DEFAULT_TAG`] when the reference names none.
    pub fn tag_or_default(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }
}

/// A tag made immutable for one image: `tag-<first 12 hex digits of the image ID>`, so `imagePullPolicy:
/// IfNotPresent` can never run a stale image under a reused tag.
pub fn with_image_id(tag: &str, image_id: &str) -> String {
    let id = image_id.trim_start_matches("sha256:");
    format!("{tag}-{}", &id[..id.len().min(12)])
}

/// Formats `repository:tag`.
pub fn with_tag(repository: &str, tag: &str) -> String {
    format!("{repository}:{tag}")
}

/// Formats `repository:tag@digest`: the immutable form of a pushed image.
pub fn with_digest(repository: &str, tag: &str, digest: &str) -> String {
    format!("{repository}:{tag}@{digest}")
}

/// Makes any string a valid tag: invalid characters become `-`, at most 128 characters, no leading `.`/`-`.
pub fn sanitize_tag(t: &str) -> String {
    let mapped: String = t
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(['.', '-']);
    trimmed.chars().take(128).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = parse("localhost:5000/team/api:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(r.repository, "localhost:5000/team/api");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(r.digest.is_some());
        let r = parse("localhost:5000/api").unwrap();
        assert_eq!((r.repository.as_str(), r.tag), ("localhost:5000/api", None));
        assert_eq!(parse("app-api").unwrap().repository, "app-api");
        for bad in [
            "",
            "App",
            "api:",
            "api:-x",
            "a//b",
            "api@sha256:xyz",
            "-api",
            "api_",
            "a...b",
            "host:port/x",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(normalize_repository("app"), "docker.io/library/app");
        assert_eq!(
            normalize_repository("docker.io/app"),
            "docker.io/library/app"
        );
        assert_eq!(
            normalize_repository("index.docker.io/library/app"),
            "docker.io/library/app"
        );
        assert_eq!(normalize_repository("team/app:v1"), "docker.io/team/app");
        assert_eq!(
            normalize_repository("localhost:5000/app:v1"),
            "localhost:5000/app"
        );
        assert_eq!(
            normalize_repository("gcr.io/p/app@sha256:aa"),
            "gcr.io/p/app"
        );
    }

    #[test]
    fn default_repo_rewriting() {
        assert_eq!(apply_default_repo("app-api", None), "app-api");
        assert_eq!(
            apply_default_repo("app-api", Some("localhost:5000")),
            "localhost:5000/app-api"
        );
        assert_eq!(
            apply_default_repo("team/api", Some("localhost:5000/")),
            "localhost:5000/team_api"
        );
        assert_eq!(
            apply_default_repo(
                "gcr.io/k8s-skaffold/example",
                Some("aws_account_id.dkr.ecr.region.amazonaws.com")
            ),
            "aws_account_id.dkr.ecr.region.amazonaws.com/gcr_io_k8s-skaffold_example"
        );
        assert_eq!(
            apply_default_repo("gcr.io/k8s-skaffold/example", Some("gcr.io/myproject")),
            "gcr.io/myproject/gcr.io/k8s-skaffold/example"
        );
        assert_eq!(
            apply_default_repo("localhost:5000/app", Some("localhost:5000")),
            "localhost:5000/app"
        );
        let long = "a".repeat(300);
        assert_eq!(apply_default_repo(&long, Some("r.io")).len(), 255);
    }
}
