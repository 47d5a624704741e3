//! Sync, the Dockerfile as a map of where files go: Dockerfile text, target and build args → the stages up to the
//! built one, each as the steps that move files (copies from the context or another stage, `RUN`s and what they
//! mount), with paths resolved like Docker does (variables, `WORKDIR`, trailing `/`). Pure: reads no file, prints
//! nothing; what it cannot resolve is kept as the reason, never guessed.

use std::collections::{BTreeMap, HashMap, HashSet};

use parse_dockerfile::{Flag, Instruction};

use crate::build::dockerfile::{expand_word, line_of, split_words};

/// The Dockerfile of one artifact, as far as placing files goes.
#[derive(Debug)]
pub struct Model {
    pub(super) stages: Vec<Stage>,
    /// The stage that is built (`target`, else the last).
    pub(super) target: usize,
}

#[derive(Debug)]
pub(super) struct Stage {
    /// `stage `build`` or `stage 2`, for messages.
    pub label: String,
    pub base: Base,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Base {
    Stage(usize),
    Scratch,
    Image,
}

#[derive(Debug)]
pub(super) enum Step {
    Copy(Copy),
    Run(Run),
}

/// A `COPY` or `ADD`.
#[derive(Debug)]
pub(super) struct Copy {
    pub line: usize,
    pub add: bool,
    pub from: From,
    /// The sources, or why they are not known.
    pub sources: Result<Vec<Source>, String>,
    /// The destination, or why it is not known.
    pub dest: Result<Dest, String>,
    /// `--chmod`, octal.
    pub chmod: Option<u32>,
    /// `--chown`, as written (variables expanded).
    pub chown: Option<String>,
    /// A flag whose effect devloop does not follow.
    pub unsupported: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum From {
    Context,
    Stage(usize),
    Image,
    /// `--from` names something devloop cannot resolve (`unsupported` says why): it may be a stage with the file.
    Unknown,
}

#[derive(Debug)]
pub(super) enum Source {
    /// A path, relative to the context root (or to `/` of the stage copied from), cleaned; `""` is the root.
    Path {
        text: String,
        glob: Option<globset::GlobMatcher>,
    },
    /// A URL (`ADD`) or a heredoc: content from elsewhere, written under the destination.
    Elsewhere,
}

#[derive(Debug)]
pub(super) struct Dest {
    /// Absolute and cleaned (`/` for the root, otherwise no trailing `/`).
    pub path: String,
    /// Where a file source goes: into `path`, at `path`, or it cannot be told.
    pub file: Into,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Into {
    Dir,
    File,
    /// A directory if this context path is one (an earlier `COPY <it> <dest>` made the destination).
    DirIf(String),
    Unknown(String),
}

/// A `RUN`: everything already in its stage, and what it mounts, may be used by it.
#[derive(Debug)]
pub(super) struct Run {
    pub line: usize,
    /// `RUN`, or `ONBUILD` (triggers of the stage built from, which may copy and run anything).
    pub keyword: &'static str,
    pub mounts: Vec<Mount>,
}

#[derive(Debug)]
pub(super) enum Mount {
    /// A bind mount of the context (its `source`, cleaned; `""` is the root).
    Context(String),
    Stage(usize),
}

/// Platform args BuildKit sets by itself: their values come from the builder, not the Dockerfile.
const AUTOMATIC_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// What a stage leaves to a stage built `FROM` it.
#[derive(Debug, Clone, Default)]
struct Inherited {
    env: HashMap<String, String>,
    /// The base image may set variables and a working directory devloop cannot see.
    open: bool,
    workdir: Option<String>,
    dirs: HashSet<String>,
    /// Paths an earlier copy wrote without saying whether as a file or a directory: the line, and the one context
    /// source it copied (`None`: from a stage or an image).
    written: HashMap<String, (usize, Option<String>)>,
}

/// The variables, working directory and known directories while a stage is read.
struct Scope {
    escape: char,
    inherited: Inherited,
    args: HashMap<String, String>,
    /// Declared args whose value devloop cannot know (platform args).
    unknown: HashSet<String>,
}

/// Reads the Dockerfile; `Err` says why no file of it can be placed (it does not parse, the target is unknown).
pub fn model(
    text: &str,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<Model, String> {
    let dockerfile =
        parse_dockerfile::parse(text).map_err(|e| format!("the Dockerfile does not parse: {e}"))?;
    let escape = dockerfile
        .parser_directives
        .escape
        .as_ref()
        .map_or('\\', |d| d.value.value);
    let globals = global_args(&dockerfile, build_args, escape);
    let parsed: Vec<_> = dockerfile.stages().collect();
    let names: Vec<Option<String>> = parsed
        .iter()
        .map(|s| s.from.as_.as_ref().map(|(_, n)| n.value.to_lowercase()))
        .collect();
    let target = match target {
        None => parsed.len().saturating_sub(1),
        Some(t) => names
            .iter()
            .position(|n| n.as_deref() == Some(t.to_lowercase().as_str()))
            .ok_or_else(|| format!("the Dockerfile has no stage `{t}`"))?,
    };
    let mut stages: Vec<Stage> = Vec::new();
    let mut left: Vec<Inherited> = Vec::new();
    // Each stage's `ONBUILD` lines.
    let mut triggers: Vec<Vec<usize>> = Vec::new();
    for (i, stage) in parsed.iter().enumerate().take(target + 1) {
        let image = expand_word(&stage.from.image.value, &globals, escape)
            .map(|(v, _)| v.to_lowercase())
            .unwrap_or_default();
        let base = match names[..i].iter().position(|n| n.as_deref() == Some(&image)) {
            Some(j) => Base::Stage(j),
            None if image == "scratch" => Base::Scratch,
            None => Base::Image,
        };
        let inherited = match base {
            Base::Stage(j) => left[j].clone(),
            Base::Scratch => Inherited {
                workdir: Some("/".into()),
                ..Inherited::default()
            },
            Base::Image => Inherited {
                open: true,
                ..Inherited::default()
            },
        };
        let mut scope = Scope {
            escape,
            inherited,
            args: HashMap::new(),
            unknown: HashSet::new(),
        };
        let mut steps = Vec::new();
        // A stage built from one with `ONBUILD` triggers runs them first: they may copy and use any file.
        if let Base::Stage(j) = base
            && let Some(&line) = triggers[j].first()
        {
            steps.push(Step::Run(Run {
                line,
                keyword: "ONBUILD",
                mounts: vec![Mount::Context(String::new())],
            }));
        }
        let mut onbuild = Vec::new();
        for instruction in stage.instructions {
            match instruction {
                Instruction::Arg(a) => scope.declare_args(&a.arguments.value, &globals, build_args),
                Instruction::Env(e) => scope.set_env(&e.arguments.value),
                Instruction::Workdir(w) => scope.set_workdir(&w.arguments.value),
                Instruction::Copy(c) => steps.push(Step::Copy(scope.copy(
                    line_of(text, c.copy.span.start),
                    false,
                    &c.options,
                    &c.src,
                    &c.dest.value,
                    &names[..i],
                ))),
                Instruction::Add(c) => steps.push(Step::Copy(scope.copy(
                    line_of(text, c.add.span.start),
                    true,
                    &c.options,
                    &c.src,
                    &c.dest.value,
                    &names[..i],
                ))),
                Instruction::Run(r) => steps.push(Step::Run(Run {
                    line: line_of(text, r.run.span.start),
                    keyword: "RUN",
                    mounts: scope.mounts(&r.options, &names[..i]),
                })),
                Instruction::Onbuild(o) => onbuild.push(line_of(text, o.onbuild.span.start)),
                _ => {}
            }
        }
        stages.push(Stage {
            label: match &stage.from.as_ {
                Some((_, n)) => format!("stage `{}`", n.value),
                None => format!("stage {i}"),
            },
            base,
            steps,
        });
        left.push(scope.inherited);
        triggers.push(onbuild);
    }
    Ok(Model { stages, target })
}

/// The `ARG`s before the first `FROM`, build args overriding their defaults.
fn global_args(
    dockerfile: &parse_dockerfile::Dockerfile<'_>,
    build_args: &BTreeMap<String, String>,
    escape: char,
) -> HashMap<String, String> {
    let mut globals: HashMap<String, String> = HashMap::new();
    for arg in dockerfile.global_args() {
        for word in split_words(&arg.arguments.value, escape) {
            let (name, default) = match word.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v)),
                None => (word.clone(), None),
            };
            let value = match (build_args.get(&name), default) {
                (Some(v), _) => v.clone(),
                (None, Some(raw)) => expand_word(raw, &globals, escape)
                    .map(|(v, _)| v)
                    .unwrap_or_default(),
                (None, None) => String::new(),
            };
            globals.insert(name, value);
        }
    }
    globals
}

impl Scope {
    /// The variables a word may use: the stage's `ENV`s and declared `ARG`s.
    fn vars(&self) -> HashMap<String, String> {
        let mut vars = self.inherited.env.clone();
        vars.extend(self.args.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }

    /// Expands a word; `Err` names a variable whose value devloop cannot know.
    fn expand(&self, word: &str, line: usize) -> Result<String, String> {
        let (value, unset) = expand_word(word, &self.vars(), self.escape)
            .map_err(|e| format!("Dockerfile line {line}: cannot expand `{word}`: {e}"))?;
        match unset
            .iter()
            .find(|n| self.inherited.open || self.unknown.contains(*n))
        {
            Some(name) => Err(format!(
                "`${name}` in `{word}` (Dockerfile line {line}) is not set by the Dockerfile or the build args"
            )),
            None => Ok(value),
        }
    }

    fn declare_args(
        &mut self,
        words: &str,
        globals: &HashMap<String, String>,
        build_args: &BTreeMap<String, String>,
    ) {
        for word in split_words(words, self.escape) {
            let (name, default) = match word.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (word.clone(), None),
            };
            let value = match (build_args.get(&name), default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(raw)) => expand_word(&raw, &self.vars(), self.escape)
                    .ok()
                    .map(|(v, _)| v),
                (None, None) if AUTOMATIC_ARGS.contains(&name.as_str()) => None,
                (None, None) => Some(globals.get(&name).cloned().unwrap_or_default()),
            };
            match value {
                Some(v) => {
                    self.unknown.remove(&name);
                    self.args.insert(name, v);
                }
                None => {
                    self.args.remove(&name);
                    self.unknown.insert(name);
                }
            }
        }
    }

    /// `ENV a=b c=d` or the legacy `ENV a b c`.
    fn set_env(&mut self, words: &str) {
        let parts = split_words(words, self.escape);
        let pairs: Vec<(String, String)> = match parts.first() {
            Some(first) if !first.contains('=') => {
                let rest = words.trim_start()[first.len()..].trim().to_owned();
                vec![(first.clone(), rest)]
            }
            _ => parts
                .iter()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        for (name, raw) in pairs {
            match self.expand(&raw, 0) {
                Ok(v) => {
                    self.unknown.remove(&name);
                    self.inherited.env.insert(name, v);
                }
                Err(_) => {
                    self.inherited.env.remove(&name);
                    self.unknown.insert(name);
                }
            }
        }
    }

    fn set_workdir(&mut self, word: &str) {
        let dir = match self.expand(word, 0) {
            Ok(d) if d.starts_with('/') => Some(clean(&d)),
            Ok(d) => self
                .inherited
                .workdir
                .as_ref()
                .map(|w| clean(&format!("{w}/{d}"))),
            Err(_) => None,
        };
        if let Some(d) = &dir {
            self.add_dir(d);
        }
        self.inherited.workdir = dir;
    }

    /// `dir` and its parents exist.
    fn add_dir(&mut self, dir: &str) {
        let mut d = dir.to_owned();
        loop {
            self.inherited.dirs.insert(d.clone());
            if d == "/" {
                break;
            }
            d = match d.rsplit_once('/') {
                Some(("", _)) | None => "/".into(),
                Some((parent, _)) => parent.to_owned(),
            };
        }
    }

    fn stage_ref(
        &self,
        value: &str,
        names: &[Option<String>],
        line: usize,
    ) -> Result<From, String> {
        let v = self.expand(value, line)?.to_lowercase();
        if let Ok(n) = v.parse::<usize>() {
            return Ok(if n < names.len() {
                From::Stage(n)
            } else {
                From::Image
            });
        }
        Ok(match names.iter().position(|n| n.as_deref() == Some(&v)) {
            Some(j) => From::Stage(j),
            None => From::Image,
        })
    }

    fn copy(
        &mut self,
        line: usize,
        add: bool,
        options: &[Flag<'_>],
        src: &[parse_dockerfile::Source<'_>],
        dest: &str,
        names: &[Option<String>],
    ) -> Copy {
        let keyword = if add { "ADD" } else { "COPY" };
        let mut from = Ok(From::Context);
        let (mut chmod, mut chown, mut unsupported) = (None, None, None);
        for flag in options {
            let value = flag.value.as_ref().map(|v| v.value.as_ref()).unwrap_or("");
            match flag.name.value.as_ref() {
                "from" => from = self.stage_ref(value, names, line),
                "chmod" => match u32::from_str_radix(value, 8) {
                    Ok(m) => chmod = Some(m),
                    Err(_) => {
                        unsupported = Some(format!(
                            "`--chmod={value}` (Dockerfile line {line}) is not an octal mode"
                        ))
                    }
                },
                "chown" => match self.expand(value, line) {
                    Ok(v) => chown = Some(v),
                    Err(e) => unsupported = Some(e),
                },
                "link" | "checksum" | "keep-git-dir" => {}
                other => {
                    unsupported = Some(format!(
                        "`{keyword} --{other}` (Dockerfile line {line}) is not followed by sync"
                    ))
                }
            }
        }
        let from = match from {
            Ok(f) => f,
            Err(e) => {
                unsupported = Some(e);
                From::Unknown
            }
        };
        let mut sources = Ok(Vec::new());
        let mut wildcard = false;
        for s in src {
            let parsed = match s {
                parse_dockerfile::Source::Path(p) => self.expand(&p.value, line).map(|text| {
                    if add && (text.contains("://") || text.starts_with("git@")) {
                        return Source::Elsewhere;
                    }
                    let text = clean(&text).trim_start_matches('/').to_owned();
                    let has_wildcard = text.contains(['*', '?', '[']);
                    wildcard |= has_wildcard;
                    let glob = has_wildcard
                        .then(|| {
                            globset::GlobBuilder::new(&text)
                                .literal_separator(true)
                                .build()
                                .ok()
                                .map(|g| g.compile_matcher())
                        })
                        .flatten();
                    Source::Path { text, glob }
                }),
                // A heredoc (or a source kind this parser learns later): content that is not a context file.
                _ => Ok(Source::Elsewhere),
            };
            sources = sources.and_then(|mut v: Vec<Source>| {
                v.push(parsed?);
                Ok(v)
            });
        }
        let dest = self.dest(dest, line, src.len() > 1, wildcard, keyword);
        if let Ok(d) = &dest {
            let path = d.path.clone();
            if d.file == Into::Dir {
                self.add_dir(&path);
            } else {
                let single = match (&from, &sources) {
                    (From::Context, Ok(v)) => match v.as_slice() {
                        [Source::Path { text, glob: None }] => Some(text.clone()),
                        _ => None,
                    },
                    _ => None,
                };
                self.inherited.written.insert(path, (line, single));
            }
        }
        Copy {
            line,
            add,
            from,
            sources,
            dest,
            chmod,
            chown,
            unsupported,
        }
    }

    /// Docker's destination rules: relative to `WORKDIR`; a file goes into it when it ends with `/` (or is `.`),
    /// when there are several sources, or when it is a directory already.
    fn dest(
        &self,
        raw: &str,
        line: usize,
        several: bool,
        wildcard: bool,
        keyword: &str,
    ) -> Result<Dest, String> {
        let text = self.expand(raw, line)?;
        let path = if text.starts_with('/') {
            clean(&text)
        } else {
            match &self.inherited.workdir {
                Some(w) => clean(&format!("{w}/{text}")),
                None => {
                    return Err(format!(
                        "the destination `{raw}` (Dockerfile line {line}) is relative to the base image's working \
                         directory, which the Dockerfile does not set"
                    ));
                }
            }
        };
        let dir_form = text.ends_with('/') || text == "." || text.ends_with("/.");
        let file = if dir_form || several || self.inherited.dirs.contains(&path) {
            Into::Dir
        } else if wildcard {
            Into::Unknown(format!(
                "whether `{raw}` in the `{keyword}` at Dockerfile line {line} is a file or a directory depends on how \
                 many files match; end it with `/`"
            ))
        } else if let Some((earlier, single)) = self.inherited.written.get(&path) {
            match single {
                Some(src) => Into::DirIf(src.clone()),
                None => Into::Unknown(format!(
                    "whether `{path}` (Dockerfile line {line}) is a directory depends on what the copy at line \
                     {earlier} brought from another stage"
                )),
            }
        } else if self.inherited.open {
            // Extracting a file over a directory replaces the directory: never assume.
            Into::Unknown(format!(
                "whether `{path}` (Dockerfile line {line}) is a directory in the base image is not known; end it \
                 with `/` to copy into it"
            ))
        } else {
            Into::File
        };
        Ok(Dest { path, file })
    }

    fn mounts(&self, options: &[Flag<'_>], names: &[Option<String>]) -> Vec<Mount> {
        let mut mounts = Vec::new();
        for flag in options.iter().filter(|f| f.name.value == "mount") {
            let value = flag.value.as_ref().map(|v| v.value.as_ref()).unwrap_or("");
            let fields: HashMap<&str, &str> = value
                .split(',')
                .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
                .collect();
            let kind = fields.get("type").copied().unwrap_or("bind");
            if kind != "bind" && kind != "cache" {
                continue;
            }
            match fields.get("from") {
                Some(f) => {
                    if let Ok(From::Stage(j)) = self.stage_ref(f, names, 0) {
                        mounts.push(Mount::Stage(j));
                    }
                }
                None if kind == "bind" => {
                    let source = fields.get("source").or(fields.get("src")).unwrap_or(&"");
                    mounts.push(Mount::Context(
                        clean(source).trim_start_matches('/').to_owned(),
                    ));
                }
                None => {}
            }
        }
        mounts
    }
}

/// `path.Clean` for `/`-separated paths: no `.`, `..` resolved (never above the root), no doubled or trailing
/// `/`. A relative path stays relative (`""` for the current directory).
pub(super) fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}
