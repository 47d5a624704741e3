//! Render, inputs: the `manifests:` section → the files and directories a render reads, so the dev loop watches
//! exactly those (glob prefixes, kustomization trees with their local bases and components, charts and values
//! files). Reads kustomization files; never runs kustomize or helm.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::manifests::Manifests;

/// A path a render depends on: a directory (everything below it) or a single file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Input {
    Dir(PathBuf),
    File(PathBuf),
}

/// Everything rendering `manifests` reads, as absolute paths under `base_dir` or wherever kustomize bases lead.
pub fn inputs(manifests: &Manifests, base_dir: &Path) -> Vec<Input> {
    let mut out = BTreeSet::new();
    for glob in manifests.raw_yaml.iter().chain(&manifests.templates) {
        out.insert(glob_input(base_dir, glob));
    }
    if let Some(k) = &manifests.kustomize {
        let mut seen = BTreeSet::new();
        for p in &k.paths {
            kustomization_dirs(&base_dir.join(p), &mut seen);
        }
        out.extend(seen.into_iter().map(Input::Dir));
    }
    if let Some(h) = &manifests.helm {
        for r in &h.releases {
            let chart = base_dir.join(&r.chart_path);
            if chart.is_dir() {
                out.insert(Input::Dir(chart));
            }
            out.extend(r.values_files.iter().map(|v| Input::File(base_dir.join(v))));
        }
    }
    out.into_iter().collect()
}

/// The literal directory a glob starts from (`k8s/*.yaml` → `k8s/`), or the file itself when it has no wildcard.
fn glob_input(base_dir: &Path, glob: &str) -> Input {
    let (cleaned, components, literal) = super::source::split_glob(glob);
    if literal == components.len() {
        return Input::File(base_dir.join(cleaned));
    }
    Input::Dir(base_dir.join(components[..literal].join("/")))
}

/// A kustomization directory and, recursively, the local directories it builds on (`resources`, `bases`,
/// `components` entries that are directories).
fn kustomization_dirs(dir: &Path, seen: &mut BTreeSet<PathBuf>) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if !seen.insert(dir.clone()) {
        return;
    }
    let Some(text) = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
    else {
        return;
    };
    // Only the lists of local references matter here; an unreadable file is kustomize's error to report.
    let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
        return;
    };
    for key in ["resources", "bases", "components"] {
        for entry in doc
            .get(key)
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(rel) = entry
                .as_str()
                .filter(|r| !r.contains("://") && !r.starts_with("github.com/"))
            {
                let target = dir.join(rel);
                if target.is_dir() {
                    kustomization_dirs(&target, seen);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shop_example_inputs_include_overlay_and_base() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shop");
        let text = std::fs::read_to_string(base.join("devloop.yaml")).unwrap();
        let cfg = crate::config::parse("devloop.yaml", &text).unwrap();
        let found = inputs(&cfg.manifests.unwrap(), &base);
        let dirs: Vec<String> = found
            .iter()
            .map(|i| match i {
                Input::Dir(d) | Input::File(d) => d
                    .strip_prefix(base.canonicalize().unwrap())
                    .unwrap()
                    .display()
                    .to_string(),
            })
            .collect();
        assert_eq!(dirs, ["deploy/k8s/base", "deploy/k8s/overlays/dev"]);
    }

    #[test]
    fn globs_watch_their_literal_prefix() {
        assert_eq!(
            glob_input(Path::new("/p"), "k8s/*.yaml"),
            Input::Dir(PathBuf::from("/p/k8s"))
        );
        assert_eq!(
            glob_input(Path::new("/p"), "./k8s/app.yaml"),
            Input::File(PathBuf::from("/p/k8s/app.yaml"))
        );
        assert_eq!(
            glob_input(Path::new("/p"), "**/*.yaml"),
            Input::Dir(PathBuf::from("/p/"))
        );
    }
}
