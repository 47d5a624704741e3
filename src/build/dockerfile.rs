//! Dockerfile facts for the cache key and the builder: Dockerfile text, build args and target → the external
//! base images and the stage names, with Docker's `ARG`/`FROM` variable rules. Pure: no I/O, never contacts
//! a registry, never prints.

use std::collections::{BTreeMap, HashMap};

use parse_dockerfile::Dockerfile;

use crate::hint::Hint;

/// Errors found while reading a Dockerfile.
#[derive(Debug, thiserror::Error)]
pub enum DockerfileError {
    /// Syntax error reported by the parser (`message` already names the line and column).
    #[error("invalid Dockerfile: {message}")]
    Parse { line: usize, message: String },

    #[error(
        "Dockerfile line {line}: duplicate stage name `{name}` (stage names are case-insensitive)"
    )]
    DuplicateStage { line: usize, name: String },

    #[error("Dockerfile line {line}: cannot expand `{word}`: {reason}")]
    Expansion {
        line: usize,
        word: String,
        reason: String,
    },

    #[error(
        "Dockerfile line {line}: base image `{word}` expands to an empty name{}",
        Hint("set the build arg it uses")
    )]
    EmptyBaseImage { line: usize, word: String },

    #[error("target stage `{target}` not found in the Dockerfile{}", Hint(stages_hint(.stages)))]
    UnknownTarget { target: String, stages: Vec<String> },
}

fn stages_hint(stages: &[String]) -> String {
    if stages.is_empty() {
        "the Dockerfile has no named stages; name one with `FROM <image> AS <name>`".to_owned()
    } else {
        let names: Vec<String> = stages.iter().map(|s| format!("`{s}`")).collect();
        format!("its stages are {}", names.join(", "))
    }
}

/// The names of the Dockerfile's named stages (`FROM … AS <name>`), in order, as written.
pub fn stage_names(text: &str) -> Result<Vec<String>, DockerfileError> {
    let dockerfile = parse(text)?;
    Ok(dockerfile
        .stages()
        .filter_map(|s| s.from.as_.as_ref().map(|(_, name)| name.value.to_string()))
        .collect())
}

/// The external images the build starts from: every `FROM` image up to and including `target` (all stages
/// without a target), with global `ARG`s (before the first `FROM`, overridden by `build_args`) expanded like
/// Docker does, without `scratch` and references to earlier stages (case-insensitive), `--platform` ignored,
/// deduplicated in first-seen order.
pub fn base_images(
    text: &str,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<Vec<String>, DockerfileError> {
    let dockerfile = parse(text)?;
    let escape = dockerfile
        .parser_directives
        .escape
        .as_ref()
        .map_or('\\', |d| d.value.value);

    let mut globals: HashMap<String, String> = HashMap::new();
    for arg in dockerfile.global_args() {
        let line = line_of(text, arg.arguments.span.start);
        for word in split_words(&arg.arguments.value, escape) {
            let (name, default) = match word.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value)),
                None => (word.clone(), None),
            };
            // A declared ARG without a value is set to the empty string (BuildKit's `ValueString`); only
            // declared args take build-arg overrides, which are used verbatim.
            let value = match (build_args.get(&name), default) {
                (Some(v), _) => v.clone(),
                (None, Some(raw)) => {
                    expand(raw, &globals, escape).map_err(|reason| DockerfileError::Expansion {
                        line,
                        word: raw.to_owned(),
                        reason,
                    })?
                }
                (None, None) => String::new(),
            };
            globals.insert(name, value);
        }
    }

    let stages: Vec<_> = dockerfile.stages().collect();
    let mut names: Vec<Option<String>> = Vec::with_capacity(stages.len());
    for stage in &stages {
        let name = stage.from.as_.as_ref().map(|(_, n)| n.value.to_lowercase());
        if let Some(name) = &name
            && names.iter().flatten().any(|n| n == name)
        {
            let span = stage
                .from
                .as_
                .as_ref()
                .map_or(stage.from.from.span.start, |(_, n)| n.span.start);
            return Err(DockerfileError::DuplicateStage {
                line: line_of(text, span),
                name: name.clone(),
            });
        }
        names.push(name);
    }

    let last = match target {
        None => stages.len().saturating_sub(1),
        Some(target) => {
            let wanted = target.to_lowercase();
            names
                .iter()
                .position(|n| n.as_deref() == Some(wanted.as_str()))
                .ok_or_else(|| DockerfileError::UnknownTarget {
                    target: target.to_owned(),
                    stages: stages
                        .iter()
                        .filter_map(|s| s.from.as_.as_ref().map(|(_, n)| n.value.to_string()))
                        .collect(),
                })?
        }
    };

    let mut images: Vec<String> = Vec::new();
    for (index, stage) in stages.iter().enumerate().take(last + 1) {
        let raw = &stage.from.image.value;
        let line = line_of(text, stage.from.image.span.start);
        let image = expand(raw, &globals, escape).map_err(|reason| DockerfileError::Expansion {
            line,
            word: raw.to_string(),
            reason,
        })?;
        if image.is_empty() {
            return Err(DockerfileError::EmptyBaseImage {
                line,
                word: raw.to_string(),
            });
        }
        let lower = image.to_lowercase();
        let earlier_stage = names[..index].iter().flatten().any(|n| *n == lower);
        if image == "scratch" || earlier_stage || images.contains(&image) {
            continue;
        }
        images.push(image);
    }
    Ok(images)
}

/// Whether a build of `text` may read any of `paths` (context-relative, `/`-separated: the Dockerfile's name in the
/// context stream, `.dockerignore`) from the build context: a `COPY`/`ADD` without `--from` whose source is the
/// context itself, a pattern or a variable, one of the paths or a directory holding one; `ONBUILD` (what a later
/// build runs). A `RUN` bind mount is left out: the classic builder cannot run one anyway. What it cannot tell (a
/// Dockerfile that does not parse) reads them.
pub fn may_read(text: &str, paths: &[&str]) -> bool {
    let Ok(dockerfile) = parse(text) else {
        return true;
    };
    let from_context =
        |options: &[parse_dockerfile::Flag<'_>]| !options.iter().any(|f| f.name.value == "from");
    dockerfile.instructions.iter().any(|i| match i {
        parse_dockerfile::Instruction::Copy(c) => {
            from_context(&c.options) && c.src.iter().any(|s| covers(s, paths))
        }
        parse_dockerfile::Instruction::Add(a) => {
            from_context(&a.options) && a.src.iter().any(|s| covers(s, paths))
        }
        parse_dockerfile::Instruction::Onbuild(_) => true,
        _ => false,
    })
}

/// Whether the `COPY`/`ADD` source `s` may take one of `paths`.
fn covers(s: &parse_dockerfile::Source<'_>, paths: &[&str]) -> bool {
    let parse_dockerfile::Source::Path(p) = s else {
        // A here-document is inline content.
        return false;
    };
    let raw = p.value.as_ref();
    if raw.contains("://") || raw.starts_with("git@") {
        return false;
    }
    if raw.contains(['*', '?', '[', '$', '\\']) {
        return true;
    }
    let mut source = raw.trim_start_matches('/');
    while let Some(rest) = source.strip_prefix("./") {
        source = rest.trim_start_matches('/');
    }
    let source = source.trim_end_matches('/');
    if source.is_empty() || source == "." || source.split('/').any(|c| c == "..") {
        return true;
    }
    paths
        .iter()
        .any(|p| *p == source || p.starts_with(&format!("{source}/")))
}

fn parse(text: &str) -> Result<Dockerfile<'_>, DockerfileError> {
    parse_dockerfile::parse(text).map_err(|e| DockerfileError::Parse {
        line: e.line(),
        message: e.to_string(),
    })
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// BuildKit's `parseWords`: splits `ARG` arguments on unquoted whitespace, keeping quotes and escapes in the
/// words (they are removed later, when a value is expanded).
pub fn split_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    phase = Phase::Spaces;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    blank_ok = true;
                    phase = Phase::Quote(ch);
                }
                if ch == escape {
                    if i + 1 == chars.len() {
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                }
                word.push(chars[i]);
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                }
                if ch == escape && quote != '\'' {
                    if i + 1 == chars.len() {
                        phase = Phase::Word;
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                }
                word.push(chars[i]);
            }
            Phase::Spaces => {}
        }
        i += 1;
    }
    if blank_ok || !word.is_empty() {
        words.push(word);
    }
    words
}

/// BuildKit's shell-word processing (`shell.Lex.ProcessWord`) as applied to `FROM` images and `ARG` defaults:
/// quote removal, the escape character, `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`,
/// `${VAR:?msg}` and `${VAR?msg}`. Unknown variables expand to nothing.
fn expand(word: &str, env: &HashMap<String, String>, escape: char) -> Result<String, String> {
    expand_word(word, env, escape).map(|(value, _)| value)
}

/// [`expand`] that also names the variables the word used that `env` does not set (they expanded to nothing, or
/// to their default), for callers that must know whether a value came from somewhere they cannot see.
pub fn expand_word(
    word: &str,
    env: &HashMap<String, String>,
    escape: char,
) -> Result<(String, Vec<String>), String> {
    let mut lexer = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        env,
        escape,
        unset: Vec::new(),
    };
    let value = lexer.until(None)?;
    Ok((value, lexer.unset))
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a HashMap<String, String>,
    escape: char,
    /// Variables looked up and not found.
    unset: Vec<String>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// `processStopOn`: reads up to `stop` (consumed) or the end.
    fn until(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match ch {
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        match self.next() {
                            Some(c) => out.push(c),
                            None => break,
                        }
                    } else {
                        out.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(format!(
                "unexpected end of statement while looking for matching `{stop}`"
            )),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_owned(),
                    );
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_owned(),
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(ch) => {
                    self.pos += 1;
                    if ch == self.escape
                        && matches!(self.peek(), Some(c) if c == '"' || c == '$' || c == self.escape)
                    {
                        out.extend(self.next());
                    } else {
                        out.push(ch);
                    }
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            if !self.env.contains_key(&name) {
                self.unset.push(name.clone());
            }
            return Ok(self.env.get(&name).cloned().unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing `}`".to_owned()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_owned()),
            Some(_) => {}
        }
        let name = self.name();
        let value = self.env.get(&name);
        if value.is_none() {
            self.unset.push(name.clone());
        }
        let unset = |word: &str| {
            if word.is_empty() {
                format!("{name}: is not allowed to be unset")
            } else {
                format!("{name}: {word}")
            }
        };
        match self.next() {
            Some('}') => Ok(value.cloned().unwrap_or_default()),
            Some('?') => {
                let word = self.until(Some('}'))?;
                value.cloned().ok_or_else(|| unset(&word))
            }
            Some('+') => {
                let word = self.until(Some('}'))?;
                Ok(if value.is_some() { word } else { String::new() })
            }
            Some('-') => {
                let word = self.until(Some('}'))?;
                Ok(value.cloned().unwrap_or(word))
            }
            Some(':') => {
                let modifier = self.next();
                let word = self.until(Some('}'))?;
                let set_nonempty = value.filter(|v| !v.is_empty());
                match modifier {
                    Some('+') => Ok(if set_nonempty.is_some() {
                        word
                    } else {
                        String::new()
                    }),
                    Some('-') => Ok(set_nonempty.cloned().unwrap_or(word)),
                    Some('?') => match value {
                        None => Err(unset(&word)),
                        Some(v) if v.is_empty() => Err(if word.is_empty() {
                            format!("{name}: is not allowed to be empty")
                        } else {
                            format!("{name}: {word}")
                        }),
                        Some(v) => Ok(v.clone()),
                    },
                    Some(m) => Err(format!("unsupported modifier (`{m}`) in substitution")),
                    None => Err("syntax error: missing `}`".to_owned()),
                }
            }
            Some(m) => Err(format!("unsupported modifier (`{m}`) in substitution")),
            None => Err("syntax error: missing `}`".to_owned()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn images(text: &str, build_args: &[(&str, &str)], target: Option<&str>) -> Vec<String> {
        base_images(text, &args(build_args), target).unwrap()
    }

    #[test]
    fn single_stage() {
        assert_eq!(
            images("FROM alpine:3.19\nRUN true\n", &[], None),
            ["alpine:3.19"]
        );
    }

    #[test]
    fn scratch_and_stage_references_are_not_external() {
        let text = "FROM golang:1.22 AS Build\nRUN go build\nFROM build AS test\nFROM scratch\nCOPY --from=BUILD /x /x\n";
        assert_eq!(images(text, &[], None), ["golang:1.22"]);
    }

    #[test]
    fn stage_reference_is_case_insensitive() {
        let text = "FROM alpine AS Base\nFROM BASE\n";
        assert_eq!(images(text, &[], None), ["alpine"]);
    }

    #[test]
    fn later_stage_name_is_not_an_earlier_reference() {
        let text = "FROM later\nFROM alpine AS later\n";
        assert_eq!(images(text, &[], None), ["later", "alpine"]);
    }

    #[test]
    fn dedup_in_first_seen_order() {
        let text = "FROM b\nFROM a\nFROM b\nFROM c\nFROM a\n";
        assert_eq!(images(text, &[], None), ["b", "a", "c"]);
    }

    #[test]
    fn global_arg_defaults_and_overrides() {
        let text = "ARG BASE=alpine\nARG TAG=3.19\nFROM ${BASE}:$TAG\n";
        assert_eq!(images(text, &[], None), ["alpine:3.19"]);
        assert_eq!(images(text, &[("TAG", "3.20")], None), ["alpine:3.20"]);
        assert_eq!(
            images(text, &[("BASE", "debian"), ("TAG", "12")], None),
            ["debian:12"]
        );
    }

    #[test]
    fn undeclared_build_args_do_not_reach_from() {
        let text = "FROM alpine${SUFFIX}\n";
        assert_eq!(images(text, &[("SUFFIX", ":edge")], None), ["alpine"]);
    }

    #[test]
    fn args_after_the_first_from_are_not_global() {
        let text = "FROM alpine\nARG BASE=debian\nFROM ${BASE:-busybox}\n";
        assert_eq!(
            images(text, &[("BASE", "ubuntu")], None),
            ["alpine", "busybox"]
        );
    }

    #[test]
    fn default_value_forms() {
        let text = "ARG EMPTY=\nARG DECLARED\nFROM ${UNSET:-a} AS s1\nFROM ${EMPTY:-b} AS s2\nFROM x${EMPTY-c} AS s3\nFROM ${UNSET-d} AS s4\nFROM e${DECLARED-f} AS s5\nFROM ${EMPTY:+g}h AS s6\nFROM ${UNSET+i}j AS s7\nFROM ${EMPTY+k}l\n";
        assert_eq!(
            images(text, &[], None),
            ["a", "b", "x", "d", "e", "h", "j", "kl"]
        );
    }

    #[test]
    fn arg_defaults_use_earlier_args_and_quotes() {
        let text = "ARG REG=\"registry.local:5000\"\nARG IMG='${REG}/app' FULL=${REG}/base:1\nFROM $FULL\nFROM ${IMG}\n";
        assert_eq!(
            images(text, &[], None),
            ["registry.local:5000/base:1", "${REG}/app"]
        );
    }

    #[test]
    fn quotes_in_from_are_removed() {
        let text = "ARG V=1\nFROM \"alpine:${V}\"\n";
        assert_eq!(images(text, &[], None), ["alpine:1"]);
    }

    #[test]
    fn required_variable_errors() {
        let err = base_images("FROM ${IMG:?required}\n", &args(&[]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Dockerfile line 1: cannot expand `${IMG:?required}`: IMG: required"
        );
        let ok = base_images(
            "ARG IMG\nFROM ${IMG:?}\n",
            &args(&[("IMG", "alpine")]),
            None,
        )
        .unwrap();
        assert_eq!(ok, ["alpine"]);
    }

    #[test]
    fn platform_flag_ignored() {
        let text = "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nFROM --platform=linux/amd64 alpine\n";
        assert_eq!(images(text, &[], None), ["golang:1.22", "alpine"]);
    }

    #[test]
    fn target_limits_stages() {
        let text = "FROM golang AS build\nFROM alpine AS runtime\nFROM debian AS debug\n";
        assert_eq!(images(text, &[], Some("runtime")), ["golang", "alpine"]);
        assert_eq!(images(text, &[], Some("BUILD")), ["golang"]);
        assert_eq!(images(text, &[], None), ["golang", "alpine", "debian"]);
    }

    #[test]
    fn unknown_target_lists_stages() {
        let text = "FROM golang AS build\nFROM alpine AS Runtime\nFROM debian\n";
        let err = base_images(text, &args(&[]), Some("prod")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "target stage `prod` not found in the Dockerfile\n\nhint: its stages are `build`, `Runtime`"
        );
        let err = base_images("FROM alpine\n", &args(&[]), Some("prod")).unwrap_err();
        assert!(err.to_string().ends_with(
            "hint: the Dockerfile has no named stages; name one with `FROM <image> AS <name>`"
        ));
    }

    #[test]
    fn continuations_json_and_heredocs_are_parsed() {
        let text = "# syntax=docker/dockerfile:1\nFROM \\\n  alpine:3 AS base\nRUN <<EOF\nFROM not-an-image\nEOF\nCOPY [\"a b\", \"/c\"]\nFROM base\n";
        assert_eq!(images(text, &[], None), ["alpine:3"]);
    }

    #[test]
    fn escape_directive_changes_the_escape_character() {
        let text = "# escape=`\nARG A=x\nFROM img`$A:${A}\n";
        assert_eq!(images(text, &[], None), ["img$A:x"]);
    }

    #[test]
    fn parse_errors_carry_the_line() {
        let err = base_images("FROM alpine\nFROB x\n", &args(&[]), None).unwrap_err();
        match err {
            DockerfileError::Parse { line, ref message } => {
                assert_eq!(line, 2);
                assert!(message.contains("FROB"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = base_images("RUN true\n", &args(&[]), None).unwrap_err();
        assert!(
            matches!(err, DockerfileError::Parse { line: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn duplicate_stage_names_differing_in_case() {
        let err = base_images("FROM a AS x\nFROM b AS X\n", &args(&[]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Dockerfile line 2: duplicate stage name `x` (stage names are case-insensitive)"
        );
    }

    #[test]
    fn empty_base_image_is_an_error() {
        let err = base_images("ARG IMG\nFROM $IMG\n", &args(&[]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Dockerfile line 2: base image `$IMG` expands to an empty name\n\nhint: set the build arg it uses"
        );
    }

    #[test]
    fn unsupported_modifier_is_an_error() {
        let err = base_images("ARG A=x\nFROM ${A%x}y\n", &args(&[]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Dockerfile line 2: cannot expand `${A%x}y`: unsupported modifier (`%`) in substitution"
        );
    }

    #[test]
    fn lone_dollar_and_escapes() {
        let text = "FROM a$\nFROM b\\$c\nFROM 'd$e'\n";
        assert_eq!(images(text, &[], None), ["a$", "b$c", "d$e"]);
    }

    #[test]
    fn stage_names_in_order() {
        let text = "FROM a AS One\nFROM b\nFROM c AS two\n";
        assert_eq!(stage_names(text).unwrap(), ["One", "two"]);
    }

    #[test]
    fn split_words_keeps_quotes() {
        assert_eq!(
            split_words(r#"A="x y" B=1  C"#, '\\'),
            [r#"A="x y""#, "B=1", "C"]
        );
        assert_eq!(split_words(r"A=a\ b", '\\'), [r"A=a\ b"]);
        assert_eq!(split_words("A='' ", '\\'), ["A=''"]);
    }

    #[test]
    fn which_instructions_may_read_the_build_files() {
        let paths = ["Dockerfile", ".dockerignore"];
        let reads = |text: &str| may_read(text, &paths);
        assert!(!reads(
            "FROM scratch\nCOPY www /www\nCOPY bin/busybox /bin/\n"
        ));
        assert!(reads("FROM scratch\nCOPY . /app\n"));
        assert!(reads("FROM scratch\nCOPY ./ /app\n"));
        assert!(reads("FROM scratch\nCOPY * /app/\n"));
        assert!(reads("FROM scratch\nCOPY Docker* /app/\n"));
        assert!(reads("FROM scratch\nADD .dockerignore /x\n"));
        assert!(reads("FROM scratch\nARG D=www\nCOPY $D /x\n"));
        assert!(reads("FROM scratch\nONBUILD COPY www /www\n"));
        assert!(reads("FROM scratch\nCOPY ../x /x\n"));
        assert!(reads("this is not a Dockerfile"));
        // From another stage, a URL, inline content: not the context.
        assert!(!reads(
            "FROM scratch AS a\nCOPY www /www\nFROM scratch\nCOPY --from=a . /\n"
        ));
        assert!(!reads("FROM scratch\nADD https://example.com/x.tar /x\n"));
        // A Dockerfile in a folder: that folder, or the file, reads it.
        assert!(may_read(
            "FROM scratch\nCOPY deploy /d\n",
            &["deploy/Dockerfile"]
        ));
        assert!(!may_read(
            "FROM scratch\nCOPY deployment /d\n",
            &["deploy/Dockerfile"]
        ));
    }
}
