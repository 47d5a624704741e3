//! Compose import, volumes: a service's `volumes:` (short and long syntax) → devloop's bind mounts (rebased onto
//! the output directory) and named volumes, and the top-level volume declarations → what devloop does instead.
//! Anything else (anonymous volumes, tmpfs, mount options) is recorded, not converted. Reads nothing.

use serde_json::{Map, Value};

use super::syntax::{list, source_is_path};
use super::{Cx, kind, scalar};

impl Cx<'_> {
    pub(super) fn volumes(&mut self, at: &str, v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for (i, item) in list(v).iter().enumerate() {
            let at = format!("{at}[{i}]");
            let parsed = match item {
                Value::Object(m) => self.long_volume(&at, m),
                other => match scalar(other) {
                    Some(s) => self.short_volume(&at, &s),
                    None => Err(format!("expected a volume, found {}", kind(other))),
                },
            };
            match parsed {
                Ok(spec) => out.push(spec),
                Err(reason) => self.skip(&at, reason),
            }
        }
        out
    }

    fn short_volume(&mut self, at: &str, s: &str) -> Result<String, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [target] => {
                return Err(format!(
                    "anonymous volume at `{target}`: devloop mounts bind mounts and named volumes only; name it (`data:{target}`) to keep its data"
                ));
            }
            [source, target] => (*source, *target, ""),
            [source, target, mode] => (*source, *target, *mode),
            _ => return Err(format!("`{s}` is not `source:target[:mode]`")),
        };
        let mut read_only = false;
        for opt in mode.split(',').filter(|o| !o.is_empty()) {
            match opt {
                "ro" => read_only = true,
                "rw" => {}
                other => self.skip(
                    at,
                    format!(
                        "mount option `{other}` dropped: devloop mounts with `ro` or `rw` only"
                    ),
                ),
            }
        }
        self.mount(source, target, read_only, source_is_path(source))
    }

    fn long_volume(&mut self, at: &str, m: &Map<String, Value>) -> Result<String, String> {
        let ty = m
            .get("type")
            .and_then(scalar)
            .unwrap_or_else(|| "volume".into());
        if !matches!(ty.as_str(), "volume" | "bind") {
            return Err(format!(
                "a `{ty}` mount: devloop mounts bind mounts and named volumes only"
            ));
        }
        for (key, value) in m {
            match key.as_str() {
                "type" | "source" | "target" | "read_only" => {}
                "bind" | "volume" => {
                    if let Value::Object(opts) = value {
                        for opt in opts.keys() {
                            self.skip(
                                &format!("{at}.{key}.{opt}"),
                                "devloop's mounts have no equivalent",
                            );
                        }
                    }
                }
                other => self.skip(
                    &format!("{at}.{other}"),
                    "devloop's mounts have no equivalent",
                ),
            }
        }
        let target = m
            .get("target")
            .and_then(scalar)
            .ok_or_else(|| "no `target`".to_string())?;
        let Some(source) = m.get("source").and_then(scalar) else {
            return Err(format!(
                "anonymous volume at `{target}`: devloop mounts bind mounts and named volumes only; name it (`data:{target}`) to keep its data"
            ));
        };
        let read_only = m.get("read_only") == Some(&Value::Bool(true));
        self.mount(&source, &target, read_only, ty == "bind")
    }

    fn mount(
        &mut self,
        source: &str,
        target: &str,
        read_only: bool,
        bind: bool,
    ) -> Result<String, String> {
        if !target.starts_with('/') {
            return Err(format!(
                "target `{target}` is not an absolute path in the container"
            ));
        }
        let ro = if read_only { ":ro" } else { "" };
        if bind {
            if source.starts_with('~') {
                return Err(format!(
                    "`{source}`: devloop does not expand `~`; use a path relative to the project or an absolute path"
                ));
            }
            let rebased = self.rebase(source);
            let rebased = if rebased.starts_with('/') || rebased.starts_with('.') {
                rebased
            } else {
                format!("./{rebased}")
            };
            return Ok(format!("{rebased}:{target}{ro}"));
        }
        let valid = source.starts_with(|c: char| c.is_ascii_alphanumeric())
            && source
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(format!("`{source}` is not a volume name devloop accepts"));
        }
        Ok(format!("{source}:{target}{ro}"))
    }

    pub(super) fn volume_declarations(&mut self, volumes: &Map<String, Value>) {
        for (name, decl) in volumes {
            let at = format!("volumes.{name}");
            if let Value::Object(m) = decl {
                for key in m.keys() {
                    let reason = match key.as_str() {
                        "external" => {
                            "devloop creates and owns its volumes; an external volume is not used"
                        }
                        "name" => "devloop names the volume itself",
                        _ => "devloop creates plain local volumes",
                    };
                    self.skip(&format!("{at}.{key}"), reason);
                }
            }
            self.note(
                &at,
                format!(
                    "devloop's volume is `{}-{name}`: the data in compose's `{}_{name}` is not reused",
                    self.project, self.project
                ),
            );
        }
    }
}
