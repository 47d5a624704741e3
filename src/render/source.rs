//! Render: manifest sources; `manifests:` config → raw YAML text per source (files read and templates expanded,
//! `kustomize build` and `helm template` run). It must not parse YAML or change manifests.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use globset::GlobBuilder;

use super::template::{self, FieldsError, Variables};
use super::{ObjectSource, RenderError, RenderRequest};
use crate::config::manifests::{Helm, Kustomize};

/// The text of one source, before parsing.
#[derive(Debug)]
pub(crate) struct Output {
    pub source: ObjectSource,
    pub text: String,
    /// Namespace for namespaced objects of this source that have none (a helm release's namespace).
    pub default_namespace: Option<String>,
    /// What a tool that succeeded wrote to stderr (deprecation notices and the like), with its command line.
    pub diagnostics: Option<(String, String)>,
}

/// Loads every source in order: `rawYaml` and `templates` files, then kustomize paths, then helm releases.
/// Kustomize and helm run concurrently (one short-lived thread each) while files are read.
pub(crate) fn load(
    req: &RenderRequest<'_>,
    vars: &Variables<'_>,
) -> Result<Vec<Output>, RenderError> {
    let files = collect_files(
        req.base_dir,
        req.manifests.raw_yaml.iter(),
        req.manifests.templates.iter(),
    )?;
    let mut invocations = Vec::new();
    if let Some(kustomize) = &req.manifests.kustomize {
        invocations.extend(kustomize_invocations(req, kustomize)?);
    }
    if let Some(helm) = &req.manifests.helm {
        invocations.extend(helm_invocations(req, helm, vars)?);
    }

    std::thread::scope(|scope| {
        let running: Vec<_> = invocations
            .iter()
            .map(|inv| scope.spawn(|| inv.run(req.base_dir, req.env)))
            .collect();
        let mut outputs = Vec::with_capacity(files.len() + running.len());
        // Read files while the tools run; the first error in source order wins, after every thread is done.
        let mut first_error = None;
        for file in &files {
            match read_file(req.base_dir, file, vars) {
                Ok(output) => outputs.push(output),
                Err(err) => {
                    first_error = Some(err);
                    break;
                }
            }
        }
        for (inv, handle) in invocations.iter().zip(running) {
            let result = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            match result {
                Ok((text, stderr)) if first_error.is_none() => outputs.push(Output {
                    source: inv.source.clone(),
                    text,
                    default_namespace: inv.default_namespace.clone(),
                    diagnostics: (!stderr.trim().is_empty()).then(|| (inv.command_line(), stderr)),
                }),
                Ok(_) => {}
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(outputs),
        }
    })
}

/// A manifest file to read, relative to the devloop.yaml directory.
#[derive(Debug, PartialEq, Eq)]
struct ManifestFile {
    path: PathBuf,
    template: bool,
}

/// Expands the globs: each glob's matches sorted, globs in order, every file once (at its first match). A file
/// matched by `templates` is a template even when `rawYaml` matched it first; so is every `*.tmpl` file.
fn collect_files<'g>(
    base_dir: &Path,
    raw_yaml: impl Iterator<Item = &'g String>,
    templates: impl Iterator<Item = &'g String>,
) -> Result<Vec<ManifestFile>, RenderError> {
    let mut files: Vec<ManifestFile> = Vec::new();
    let mut seen: HashMap<PathBuf, usize> = HashMap::new();
    let fields = raw_yaml
        .map(|g| ("rawYaml", g))
        .chain(templates.map(|g| ("templates", g)));
    for (field, glob) in fields {
        for path in expand_glob(base_dir, field, glob)? {
            let is_template = field == "templates" || path.extension().is_some_and(|e| e == "tmpl");
            match seen.get(&path) {
                Some(&i) => files[i].template |= is_template,
                None => {
                    seen.insert(path.clone(), files.len());
                    files.push(ManifestFile {
                        path,
                        template: is_template,
                    });
                }
            }
        }
    }
    Ok(files)
}

/// Files matching `glob` relative to `base_dir`, sorted. `*`, `?` and `[…]` stay within one path component,
/// `**` spans any number, `{a,b}` is an alternation. A glob without wildcards names one file. Symbolic links
/// to files are followed; symbolic links to directories are not walked (no cycles).
fn expand_glob(
    base_dir: &Path,
    field: &'static str,
    glob: &str,
) -> Result<Vec<PathBuf>, RenderError> {
    let no_match = || RenderError::NoMatch {
        field,
        glob: glob.to_owned(),
        base_dir: base_dir.to_owned(),
    };
    let (cleaned, components, literal) = split_glob(glob);
    if literal == components.len() {
        let path = PathBuf::from(cleaned);
        return if base_dir.join(&path).is_file() {
            Ok(vec![path])
        } else {
            Err(no_match())
        };
    }
    let matcher = GlobBuilder::new(cleaned)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|err| RenderError::InvalidGlob {
            field,
            glob: glob.to_owned(),
            message: err.kind().to_string(),
        })?
        .compile_matcher();
    // The literal leading directories; joined as text so that an absolute glob keeps its leading `/`.
    let prefix = match components[..literal].join("/") {
        joined if joined.is_empty() && cleaned.starts_with('/') => PathBuf::from("/"),
        joined => PathBuf::from(joined),
    };
    let rest = &components[literal..];
    let max_depth = if rest.iter().any(|c| c.contains("**")) {
        usize::MAX
    } else {
        rest.len()
    };
    let root = base_dir.join(&prefix);
    if !root.is_dir() {
        return Err(no_match());
    }
    let mut found = Vec::new();
    walk(&root, &prefix, max_depth, &mut |path| {
        if matcher.is_match(path) {
            found.push(path.to_owned());
        }
    })?;
    if found.is_empty() {
        return Err(no_match());
    }
    found.sort();
    Ok(found)
}

/// A glob without its leading `./`, its `/`-separated components, and how many leading components are literal
/// (contain no wildcard): the directory a match can only lie under.
pub(crate) fn split_glob(glob: &str) -> (&str, Vec<&str>, usize) {
    let cleaned = glob.strip_prefix("./").unwrap_or(glob);
    let components: Vec<&str> = cleaned.split('/').collect();
    let literal = components
        .iter()
        .take_while(|c| !c.contains(['*', '?', '[', '{', '\\']))
        .count();
    (cleaned, components, literal)
}

/// Visits the files under `dir` (shown as `shown`) down to `depth` levels.
fn walk(
    dir: &Path,
    shown: &Path,
    depth: usize,
    visit: &mut dyn FnMut(&Path),
) -> Result<(), RenderError> {
    if depth == 0 {
        return Ok(());
    }
    let read_error = |error| RenderError::Read {
        path: dir.to_owned(),
        error,
    };
    for entry in fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let kind = entry.file_type().map_err(read_error)?;
        let shown = shown.join(entry.file_name());
        if kind.is_dir() {
            walk(&entry.path(), &shown, depth - 1, visit)?;
        } else if kind.is_file() || (kind.is_symlink() && entry.path().is_file()) {
            visit(&shown);
        }
    }
    Ok(())
}

fn read_file(
    base_dir: &Path,
    file: &ManifestFile,
    vars: &Variables<'_>,
) -> Result<Output, RenderError> {
    let full = base_dir.join(&file.path);
    let text = fs::read_to_string(&full).map_err(|error| RenderError::Read {
        path: file.path.clone(),
        error,
    })?;
    let text = if file.template {
        template::expand(&text, vars).map_err(|variables| RenderError::UnsetVariables {
            path: file.path.clone(),
            variables,
        })?
    } else {
        text
    };
    Ok(Output {
        source: ObjectSource::File {
            path: file.path.clone(),
        },
        text,
        default_namespace: None,
        diagnostics: None,
    })
}

/// One run of kustomize or helm.
#[derive(Debug)]
struct Invocation {
    source: ObjectSource,
    program: PathBuf,
    /// The program as the user knows it, for messages.
    program_name: String,
    args: Vec<String>,
    default_namespace: Option<String>,
}

impl Invocation {
    fn command_line(&self) -> String {
        std::iter::once(self.program_name.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs to completion in `base_dir` with exactly `env`; returns stdout and stderr.
    fn run(
        &self,
        base_dir: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<(String, String), RenderError> {
        let output = Command::new(&self.program)
            .args(&self.args)
            .current_dir(base_dir)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| RenderError::ToolSpawn {
                command: self.command_line(),
                error,
            })?;
        if !output.status.success() {
            return Err(RenderError::ToolFailed {
                command: self.command_line(),
                code: output.status.code(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        let stdout = String::from_utf8(output.stdout).map_err(|_| RenderError::ToolOutput {
            command: self.command_line(),
        })?;
        Ok((stdout, String::from_utf8_lossy(&output.stderr).into_owned()))
    }
}

fn kustomize_invocations(
    req: &RenderRequest<'_>,
    config: &Kustomize,
) -> Result<Vec<Invocation>, RenderError> {
    if config.paths.is_empty() {
        return Ok(Vec::new());
    }
    let (program, program_name) = match &config.binary {
        Some(binary) => find_program(binary, req.base_dir, req.env)
            .map(|p| (p, binary.clone()))
            .ok_or_else(|| RenderError::ToolNotFound {
                program: binary.clone(),
                hint: "install it, or fix `manifests.kustomize.binary`",
            })?,
        None => ["kustomize", "kubectl"]
            .into_iter()
            .find_map(|name| find_program(name, req.base_dir, req.env).map(|p| (p, name.to_owned())))
            .ok_or_else(|| RenderError::ToolNotFound {
                program: "kustomize".to_owned(),
                hint: "install kustomize or kubectl, or set `manifests.kustomize.binary` to its path",
            })?,
    };
    let is_kubectl = Path::new(&program_name)
        .file_name()
        .is_some_and(|n| n == "kubectl");
    config
        .paths
        .iter()
        .map(|path| {
            if !req.base_dir.join(path).is_dir() {
                return Err(RenderError::KustomizeDirMissing { path: path.clone() });
            }
            let subcommand = if is_kubectl { "kustomize" } else { "build" };
            let args = [subcommand.to_owned(), path.display().to_string()]
                .into_iter()
                .chain(config.build_args.iter().cloned())
                .collect();
            Ok(Invocation {
                source: ObjectSource::Kustomize { path: path.clone() },
                program: program.clone(),
                program_name: program_name.clone(),
                args,
                default_namespace: None,
            })
        })
        .collect()
}

fn helm_invocations(
    req: &RenderRequest<'_>,
    config: &Helm,
    vars: &Variables<'_>,
) -> Result<Vec<Invocation>, RenderError> {
    if config.releases.is_empty() {
        return Ok(Vec::new());
    }
    let program_name = config.binary.clone().unwrap_or_else(|| "helm".to_owned());
    let program = find_program(&program_name, req.base_dir, req.env).ok_or_else(|| RenderError::ToolNotFound {
        program: program_name.clone(),
        hint: "install helm (https://helm.sh/docs/intro/install/), or set `manifests.helm.binary` to its path",
    })?;
    let mut invocations = Vec::with_capacity(config.releases.len());
    for (index, release) in config.releases.iter().enumerate() {
        let mut args = vec![
            "template".to_owned(),
            release.name.clone(),
            release.chart_path.clone(),
        ];
        if let Some(namespace) = release.namespace.as_deref().or(req.namespace) {
            args.extend(["--namespace".to_owned(), namespace.to_owned()]);
        }
        for file in &release.values_files {
            args.extend(["--values".to_owned(), file.display().to_string()]);
        }
        for (key, value) in &release.set_values {
            args.extend(["--set".to_owned(), format!("{key}={value}")]);
        }
        for (key, value) in &release.set_value_templates {
            let value = template::expand_fields(value, vars).map_err(|err| match err {
                FieldsError::Unset(fields) => RenderError::UnsetValueFields {
                    release_index: index,
                    key: key.clone(),
                    fields,
                },
                FieldsError::Invalid(message) => RenderError::InvalidValueTemplate {
                    release_index: index,
                    key: key.clone(),
                    message,
                },
            })?;
            args.extend([
                "--set-string".to_owned(),
                format!("{key}={}", escape_helm_value(&value)),
            ]);
        }
        invocations.push(Invocation {
            source: ObjectSource::Helm {
                release: release.name.clone(),
            },
            program: program.clone(),
            program_name: program_name.clone(),
            args,
            default_namespace: release.namespace.clone(),
        });
    }
    Ok(invocations)
}

/// Helm splits `--set` values at `,` and treats `\` as an escape; expanded values are data, so escape both.
fn escape_helm_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Resolves a program the way a shell would: a name is searched on `env`'s `PATH`; a value with `/` is a path
/// (relative to `base_dir`). Only executable files count.
fn find_program(program: &str, base_dir: &Path, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    if program.contains('/') {
        let path = base_dir.join(program);
        return is_executable(&path).then_some(path);
    }
    let path = env.get("PATH")?;
    std::env::split_paths(path)
        // An empty entry means "the current directory", which depends on where devloop was started: skip it.
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(metadata) = fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        metadata.is_file()
    }
}
