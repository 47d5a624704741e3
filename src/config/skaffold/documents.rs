//! Config, Skaffold import, documents: a skaffold.yaml and the files its `requires` name → the configs to convert,
//! dependencies first, each with its directory, version and the profiles its requirers activate in it. Reads
//! only those files; detects cycles; converts nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Finding, invalid, kind, normalize, real_dir};
use crate::config::ConfigError;

/// Where a Skaffold version keeps its manifests: `deploy.kubectl.manifests`, `deploy.kustomize`, `deploy.helm`
/// (`skaffold/v2beta*`), or the `manifests:` section (`skaffold/v3*`, `skaffold/v4beta*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    V2,
    V3,
}

/// One Skaffold config (a YAML document) to convert.
#[derive(Debug, Clone)]
pub(super) struct Doc {
    /// The file as it is named in messages (the user's path, or the requirer's path joined with `requires.path`).
    pub file: String,
    /// The file's directory (absolute, symbolic links resolved): relative paths in the config resolve here.
    pub dir: PathBuf,
    /// The document's position in its file (0-based) and its `metadata.name`.
    pub index: usize,
    pub name: Option<String>,
    pub layout: Layout,
    pub value: Map<String, Value>,
    /// Profiles of this config that a requirer activates: (requirer's position in the list, profile name,
    /// the requirer's profiles that activate it; always when empty).
    pub activated: Vec<(usize, String, Vec<String>)>,
}

impl Doc {
    /// `skaffold.yaml`, or `skaffold.yaml (config api)` when the file holds several configs or this one is named.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{} (config {n})", self.file),
            None if self.index > 0 => format!("{} (document {})", self.file, self.index + 1),
            None => self.file.clone(),
        }
    }
}

/// Every config the root file includes, dependencies first, and the `requires` entries that were not followed.
pub(super) struct Loaded {
    pub docs: Vec<Doc>,
    pub not_converted: Vec<Finding>,
}

/// Reads `root` and every config it requires.
pub(super) fn load(root: &Path) -> Result<Loaded, ConfigError> {
    let mut l = Loader {
        parsed: HashMap::new(),
        placed: HashMap::new(),
        stack: Vec::new(),
        via: "requires".into(),
        docs: Vec::new(),
        not_converted: Vec::new(),
    };
    let label = root.display().to_string();
    let key = key_of(root);
    let count = l.parse(&key, &label, root, None)?;
    for index in 0..count {
        l.include(&key, index)?;
    }
    Ok(Loaded {
        docs: l.docs,
        not_converted: l.not_converted,
    })
}

struct Loader {
    /// Parsed files by canonical path: their documents.
    parsed: HashMap<PathBuf, Vec<Doc>>,
    /// (file, document) → its position in `docs`.
    placed: HashMap<(PathBuf, usize), usize>,
    /// The configs being included, for cycle detection: (file, document, label).
    stack: Vec<(PathBuf, usize, String)>,
    /// The `requires[i]` being followed, for the cycle error.
    via: String,
    docs: Vec<Doc>,
    not_converted: Vec<Finding>,
}

/// A required file's identity: its absolute path with symbolic links resolved when it exists.
fn key_of(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    abs.canonicalize().unwrap_or_else(|_| normalize(&abs))
}

impl Loader {
    /// Reads and checks every document of a file (once); returns how many there are. `from` is the requirer's
    /// file and field, for the error when the file cannot be read.
    fn parse(
        &mut self,
        key: &Path,
        label: &str,
        path: &Path,
        from: Option<(&str, &str)>,
    ) -> Result<usize, ConfigError> {
        if let Some(docs) = self.parsed.get(key) {
            return Ok(docs.len());
        }
        let text = std::fs::read_to_string(path).map_err(|source| match from {
            Some((file, field)) if source.kind() == std::io::ErrorKind::NotFound => invalid(
                file,
                field,
                format!("`{label}` does not exist"),
                Some("`requires[].path` is relative to the directory of the file that names it"),
            ),
            _ => ConfigError::Read {
                hint: (source.kind() == std::io::ErrorKind::NotFound).then(|| {
                    "name the Skaffold config, e.g. `devloop init --from-skaffold skaffold.yaml`"
                        .to_string()
                }),
                file: label.to_string(),
                source,
            },
        })?;
        let values = serde_saphyr::from_multiple::<Value>(&text).map_err(|e| {
            let message = e.to_string();
            ConfigError::Parse {
                file: label.to_string(),
                message: message
                    .strip_prefix("error: ")
                    .unwrap_or(&message)
                    .replace("<input>", label),
            }
        })?;
        let dir = real_dir(key.parent().unwrap_or(Path::new(".")));
        let mut docs = Vec::new();
        for value in values.into_iter().filter(|v| !v.is_null()) {
            let index = docs.len();
            docs.push(check(label, &dir, index, value)?);
        }
        if docs.is_empty() {
            return Err(invalid(
                label,
                "(document)",
                "the file holds no config",
                Some(
                    "a Skaffold config starts with `apiVersion: skaffold/v4beta13` and `kind: Config`",
                ),
            ));
        }
        let n = docs.len();
        self.parsed.insert(key.to_path_buf(), docs);
        Ok(n)
    }

    /// Places document `index` of the file `key` after what it requires, once; returns its position.
    fn include(&mut self, key: &Path, index: usize) -> Result<usize, ConfigError> {
        let k = (key.to_path_buf(), index);
        let doc = self.parsed[key][index].clone();
        if let Some(pos) = self
            .stack
            .iter()
            .position(|(f, i, _)| *f == k.0 && *i == index)
        {
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|(_, _, l)| format!("`{l}`"))
                .chain(std::iter::once(format!("`{}`", doc.label())))
                .collect();
            let (_, _, requirer) = self.stack.last().cloned().unwrap_or_default();
            return Err(invalid(
                &requirer,
                &self.via,
                format!("a cycle: {}", chain.join(" requires ")),
                Some(
                    "a config cannot require itself, directly or through others; remove one of these `requires`",
                ),
            ));
        }
        match self.placed.get(&k) {
            Some(&pos) => Ok(pos),
            None => {
                self.stack.push((k.0.clone(), index, doc.label()));
                let requires = self.requires(&doc)?;
                self.stack.pop();
                // Each required config was placed (dependencies first); now that this one's position is known,
                // note which of its profiles activate profiles there.
                let pos = self.docs.len();
                for (dep, links) in requires {
                    for (name, by) in links {
                        self.docs[dep].activated.push((pos, name, by));
                    }
                }
                self.docs.push(doc);
                self.placed.insert(k, pos);
                Ok(pos)
            }
        }
    }

    /// Places everything `doc` requires; returns each placed dependency with the profiles `doc` activates in it.
    #[allow(clippy::type_complexity)]
    fn requires(
        &mut self,
        doc: &Doc,
    ) -> Result<Vec<(usize, Vec<(String, Vec<String>)>)>, ConfigError> {
        let label = doc.label();
        let Some(list) = doc.value.get("requires") else {
            return Ok(Vec::new());
        };
        let Value::Array(list) = list else {
            return Err(invalid(
                &label,
                "requires",
                format!("expected a list, found {}", kind(list)),
                None,
            ));
        };
        let mut out = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let at = format!("requires[{i}]");
            let Value::Object(entry) = entry else {
                return Err(invalid(
                    &label,
                    &at,
                    format!("expected a mapping, found {}", kind(entry)),
                    None,
                ));
            };
            if entry.contains_key("git") || entry.contains_key("googleCloudStorage") {
                self.not_converted.push(Finding {
                    at: format!("{label}: {at}"),
                    reason: "remote configs (`git`, `googleCloudStorage`) are not fetched: check the config out and require it by `path`".into(),
                });
                continue;
            }
            let (key, file_label) = match entry.get("path") {
                Some(Value::String(p)) => {
                    let path = doc.dir.join(p);
                    let path = if path.is_dir() {
                        path.join("skaffold.yaml")
                    } else {
                        path
                    };
                    let shown = Path::new(&doc.file)
                        .parent()
                        .map(|d| d.join(p))
                        .unwrap_or_else(|| PathBuf::from(p));
                    let shown = if shown.is_dir() || doc.dir.join(p).is_dir() {
                        shown.join("skaffold.yaml")
                    } else {
                        shown
                    };
                    let key = key_of(&path);
                    let shown = normalize(&shown).display().to_string();
                    self.parse(&key, &shown, &path, Some((&label, &format!("{at}.path"))))?;
                    (key, shown)
                }
                Some(other) => {
                    return Err(invalid(
                        &label,
                        format!("{at}.path"),
                        format!("expected a path, found {}", kind(other)),
                        None,
                    ));
                }
                None => (
                    key_of(
                        &doc.dir
                            .join(Path::new(&doc.file).file_name().unwrap_or_default()),
                    ),
                    doc.file.clone(),
                ),
            };
            let docs = &self.parsed[&key];
            let wanted: Vec<usize> = match entry.get("configs") {
                None => (0..docs.len()).collect(),
                Some(Value::Array(names)) => {
                    let mut idx = Vec::new();
                    for (j, n) in names.iter().enumerate() {
                        let name = n.as_str().unwrap_or_default();
                        let Some(found) = docs.iter().position(|d| d.name.as_deref() == Some(name))
                        else {
                            let defined: Vec<String> = docs
                                .iter()
                                .filter_map(|d| d.name.as_ref())
                                .map(|n| format!("`{n}`"))
                                .collect();
                            return Err(invalid(
                                &label,
                                format!("{at}.configs[{j}]"),
                                format!("`{file_label}` has no config named `{name}`"),
                                Some(&if defined.is_empty() {
                                    "its configs have no `metadata.name`".to_string()
                                } else {
                                    format!("its configs: {}", defined.join(", "))
                                }),
                            ));
                        };
                        idx.push(found);
                    }
                    idx
                }
                Some(other) => {
                    return Err(invalid(
                        &label,
                        format!("{at}.configs"),
                        format!("expected a list of config names, found {}", kind(other)),
                        None,
                    ));
                }
            };
            let links = active_profiles(&label, &at, entry.get("activeProfiles"))?;
            for index in wanted {
                self.via = at.clone();
                let pos = self.include(&key, index)?;
                out.push((pos, links.clone()));
            }
        }
        Ok(out)
    }
}

/// `requires[].activeProfiles`: `[{name, activatedBy: [...]}]`.
fn active_profiles(
    label: &str,
    at: &str,
    v: Option<&Value>,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let Value::Array(list) = v else {
        return Err(invalid(
            label,
            format!("{at}.activeProfiles"),
            format!("expected a list, found {}", kind(v)),
            None,
        ));
    };
    let mut out = Vec::new();
    for (j, p) in list.iter().enumerate() {
        let name = p.get("name").and_then(Value::as_str).ok_or_else(|| {
            invalid(
                label,
                format!("{at}.activeProfiles[{j}].name"),
                "missing",
                Some("name the profile of the required config to activate"),
            )
        })?;
        let by = p
            .get("activatedBy")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.push((name.to_string(), by));
    }
    Ok(out)
}

/// Checks one document: a mapping with a supported Skaffold `apiVersion` and `kind: Config`.
fn check(file: &str, dir: &Path, index: usize, value: Value) -> Result<Doc, ConfigError> {
    let at = |field: &str| {
        if index == 0 {
            field.to_string()
        } else {
            format!("(document {}) {field}", index + 1)
        }
    };
    let Value::Object(value) = value else {
        return Err(invalid(
            file,
            at("(document)"),
            format!(
                "expected a mapping, found {}: this is not a Skaffold config",
                kind(&value)
            ),
            Some(
                "a Skaffold config is a mapping that starts with `apiVersion: skaffold/…` and `kind: Config`",
            ),
        ));
    };
    let version = match value.get("apiVersion") {
        Some(Value::String(v)) => v.clone(),
        Some(other) => {
            return Err(invalid(
                file,
                at("apiVersion"),
                format!("expected a string, found {}", kind(other)),
                None,
            ));
        }
        None => {
            return Err(invalid(
                file,
                at("apiVersion"),
                "missing: this is not a Skaffold config",
                Some("a Skaffold config starts with `apiVersion: skaffold/…` and `kind: Config`"),
            ));
        }
    };
    let layout = layout_of(&version).map_err(|hint| {
        invalid(
            file,
            at("apiVersion"),
            format!("unsupported version `{version}`"),
            Some(&hint),
        )
    })?;
    match value.get("kind").and_then(Value::as_str) {
        Some("Config") => {}
        other => {
            return Err(invalid(
                file,
                at("kind"),
                match other {
                    Some(k) => format!("unsupported kind `{k}`"),
                    None => "missing".to_string(),
                },
                Some("a Skaffold config has `kind: Config`"),
            ));
        }
    }
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Doc {
        file: file.to_string(),
        dir: dir.to_path_buf(),
        index,
        name,
        layout,
        value,
        activated: Vec::new(),
    })
}

/// The layout of a Skaffold `apiVersion`, or a hint when devloop does not read it.
fn layout_of(version: &str) -> Result<Layout, String> {
    const HINT: &str = "devloop reads `skaffold/v2beta1` through `skaffold/v4beta13`";
    let Some(v) = version.strip_prefix("skaffold/") else {
        return Err(format!("{HINT}; this is not a Skaffold version"));
    };
    let numbered = |prefix: &str, max: u32| {
        v.strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (1..=max).contains(&n))
    };
    if numbered("v2beta", 29) {
        Ok(Layout::V2)
    } else if v == "v3" || numbered("v3alpha", 1) || numbered("v3beta", 1) || numbered("v4beta", 13)
    {
        Ok(Layout::V3)
    } else if v.starts_with("v1") || v.starts_with("v2alpha") {
        Err(format!(
            "{HINT}; upgrade older configs first with `skaffold fix`"
        ))
    } else {
        Err(HINT.to_string())
    }
}
