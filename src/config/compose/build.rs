//! Compose import, a service's `build:`: the build context, Dockerfile, target and args → the devloop artifact
//! it becomes (named after the service's `image`, or `<project>-<service>`), or a finding saying why it cannot
//! be built by devloop. Checks that the context and Dockerfile exist; reads nothing else.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::syntax::{normalize, pairs};
use super::{BuildDraft, Cx, invalid, kind, scalar};
use crate::config::ConfigError;
use crate::config::raw::{RawArtifact, RawDocker};
use crate::tag;

impl Cx<'_> {
    /// `build:` → an artifact, or `None` (recorded) when it cannot be built by devloop.
    pub(super) fn build(
        &mut self,
        service: &str,
        v: &Value,
        image: Option<&str>,
    ) -> Result<Option<BuildDraft>, ConfigError> {
        let at = format!("{service}.build");
        let field = format!("services.{service}.build");
        let spec = match v {
            Value::String(ctx) => {
                let mut m = Map::new();
                m.insert("context".into(), Value::String(ctx.clone()));
                m
            }
            Value::Object(m) => m.clone(),
            other => {
                return Err(invalid(
                    &self.file,
                    &field,
                    format!(
                        "expected a context path or a mapping, found {}",
                        kind(other)
                    ),
                    None,
                ));
            }
        };
        let context = match spec.get("context") {
            None | Some(Value::Null) => ".".to_string(),
            Some(c) => scalar(c).unwrap_or_default(),
        };
        if context.contains("://") || context.starts_with("git@") {
            self.skip(
                &format!("{at}.context"),
                format!("`{context}` is a remote context; devloop builds local directories only"),
            );
            return Ok(None);
        }
        if spec.contains_key("dockerfile_inline") {
            self.skip(
                &format!("{at}.dockerfile_inline"),
                "devloop builds from Dockerfile files only: write it to a file and name it in `dockerfile`",
            );
            return Ok(None);
        }
        let context_abs = normalize(&self.compose_dir.join(&context));
        if !context_abs.is_dir() {
            return Err(invalid(
                &self.file,
                format!("{field}.context"),
                format!("directory `{context}` does not exist"),
                Some("paths in a compose file are relative to its directory"),
            ));
        }
        let dockerfile = spec.get("dockerfile").and_then(scalar);
        let dockerfile_abs = context_abs.join(dockerfile.as_deref().unwrap_or("Dockerfile"));
        if !dockerfile_abs.is_file() {
            return Err(invalid(
                &self.file,
                format!("{field}.dockerfile"),
                format!(
                    "file `{}` does not exist (looked for `{}`)",
                    dockerfile.as_deref().unwrap_or("Dockerfile"),
                    dockerfile_abs.display()
                ),
                Some("the Dockerfile path is relative to the build context"),
            ));
        }
        let mut docker = RawDocker {
            dockerfile: dockerfile.clone(),
            ..Default::default()
        };
        self.build_options(&at, &spec, &mut docker);
        let name = self.artifact_name(service, image);
        let rel_context = self.rebase(&context);
        let artifact = RawArtifact {
            image: name.clone(),
            context: Some(rel_context),
            docker: (docker.dockerfile.is_some()
                || docker.target.is_some()
                || docker.build_args.is_some())
            .then_some(docker),
            requires: None,
            sync: None,
            hooks: None,
        };
        Ok(Some(BuildDraft { name, artifact }))
    }

    /// The keys of a `build:` mapping besides `context` and `dockerfile`: target and args set on `docker`, the
    /// rest recorded.
    fn build_options(&mut self, at: &str, spec: &Map<String, Value>, docker: &mut RawDocker) {
        let mut args = BTreeMap::new();
        for (key, value) in spec {
            let at = format!("{at}.{key}");
            match key.as_str() {
                "context" | "dockerfile" => {}
                "target" => docker.target = scalar(value),
                "args" => {
                    for (k, val) in pairs(value) {
                        let at = format!("{at}.{k}");
                        match val {
                            Some(val) if val.contains("{{") => self.skip(
                                &at,
                                "the value holds `{{`, which devloop would read as a template",
                            ),
                            Some(val) => {
                                args.insert(k, val);
                            }
                            None => {
                                self.note(
                                    &at,
                                    format!("taken from the environment as `{{{{.Env.{k}}}}}`: devloop fails when `{k}` is unset, where compose leaves the build arg out"),
                                );
                                args.insert(k.clone(), format!("{{{{.Env.{k}}}}}"));
                            }
                        }
                    }
                }
                "platforms" => self.skip(
                    &at,
                    "devloop builds every artifact for one platform, `build.platform`",
                ),
                "tags" => self.skip(&at, "devloop tags images by `build.tagPolicy`"),
                "no_cache" | "pull" => self.skip(
                    &at,
                    "use `devloop build --no-cache`; base images are pulled when missing",
                ),
                k if k.starts_with("x-") => self.skip(&at, "extension field: not converted"),
                _ => self.skip(&at, "devloop's builds have no equivalent"),
            }
        }
        if !args.is_empty() {
            docker.build_args = Some(args);
        }
    }

    /// The artifact's name: the service's `image` without tag or digest, else `<project>-<service>`.
    fn artifact_name(&mut self, service: &str, image: Option<&str>) -> String {
        match image {
            Some(img) => match tag::parse(img) {
                Ok(r) => {
                    if r.tag.is_some() || r.digest.is_some() {
                        self.note(
                            &format!("{service}.image"),
                            format!("built as artifact `{}`: devloop tags its builds by `build.tagPolicy`, not `{img}`", r.repository),
                        );
                    }
                    r.repository
                }
                Err(e) => {
                    let fallback = self.default_image(service);
                    self.note(
                        &format!("{service}.image"),
                        format!("`{img}` is not an image name devloop accepts ({}); the artifact is `{fallback}`", e.reason()),
                    );
                    fallback
                }
            },
            None => self.default_image(service),
        }
    }

    /// `<project>-<service>`, as compose names images it builds without `image:`.
    fn default_image(&self, service: &str) -> String {
        let raw = format!("{}-{}", self.project, service.to_lowercase());
        if tag::parse(&raw).is_ok() {
            return raw;
        }
        let cleaned: String = raw
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        cleaned.trim_matches('-').to_string()
    }
}
