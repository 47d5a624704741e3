//! Build context: a context directory and a Dockerfile path → the exact file set `docker build` would send
//! (the docker CLI's `.dockerignore` semantics) and its tar stream. It never follows symlinks, never reads
//! outside the context (except the Dockerfile itself), never prints and never spawns long-lived tasks.
//!
//! The ignore matcher is a port of moby/patternmatcher as the docker CLI drives it: each pattern is
//! normalised like `ignorefile.ReadAll` and `patternmatcher.New`, validated like Go's `filepath.Match`,
//! translated to a Go regular expression exactly as moby does, and that Go expression is then re-read with
//! Go's (RE2) syntax rules and re-emitted for the `regex` crate, so brackets, escapes and `**` behave as in
//! Docker even where the two regex dialects differ. The walk reproduces `archive.TarWithOptions`: per-directory
//! match results are inherited by children (`MatchesUsingParentResults`), and an excluded directory is pruned
//! unless some `!` pattern literally starts with that directory's path (so `*` + `!**/*.go` does not bring
//! back `src/main.go`, exactly as with `docker build`). Rules come from `<Dockerfile>.dockerignore` when it
//! exists (BuildKit's rule; the classic CLI only reads `<context>/.dockerignore`).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use regex::Regex;
use sha2::{Digest, Sha256};

// ---- shared types: context.rs owns these; cache.rs consumes them. Keep names and fields exactly. ----

/// What kind of filesystem object a context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link, kept as a link; `target` is the raw link text (never followed).
    Symlink {
        target: String,
    },
}

/// One entry of a build context, exactly as `docker build` would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Path relative to the context root, `/`-separated, no leading `./` or `/`.
    pub rel: String,
    pub kind: EntryKind,
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// Size in bytes (0 for directories).
    pub size: u64,
    pub dev: u64,
    pub ino: u64,
    /// Modification and status-change times in nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// The ignore rules that applied to a context: where they came from and their raw text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IgnoreRules {
    /// `<Dockerfile>.dockerignore` or `<context>/.dockerignore`; `None` when neither exists.
    pub source: Option<PathBuf>,
    /// The file's bytes as read (hashed into the cache key); empty when there is no file.
    pub text: String,
}

/// The whole file set of one build context, entries sorted by `rel` (byte order).
#[derive(Debug, Clone)]
pub struct ContextFiles {
    /// Absolute, canonical context directory.
    pub root: PathBuf,
    pub entries: Vec<ContextEntry>,
    pub ignore: IgnoreRules,
}

// ---- end of shared types ----

/// Errors of the build-context stage.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context `{path}` does not exist")]
    ContextMissing { path: PathBuf },

    #[error("build context `{path}` is not a directory")]
    ContextNotDirectory { path: PathBuf },

    #[error("cannot open build context `{path}`: {source}")]
    ContextUnreadable { path: PathBuf, source: io::Error },

    #[error("Dockerfile `{path}` does not exist")]
    DockerfileMissing { path: PathBuf },

    #[error("cannot read Dockerfile `{path}`: {source}")]
    DockerfileUnreadable { path: PathBuf, source: io::Error },

    #[error(
        "Dockerfile `{rel}` is not part of the walked build context `{root}`\n\nhint: walk the context again after creating the Dockerfile"
    )]
    DockerfileNotInContext { root: PathBuf, rel: String },

    #[error("cannot read ignore file `{path}`: {source}")]
    IgnoreFileUnreadable { path: PathBuf, source: io::Error },

    #[error("ignore file `{path}` is not valid UTF-8")]
    IgnoreFileNotUtf8 { path: PathBuf },

    #[error("{path}:{line}: line is longer than 65535 bytes (docker cannot read it either)")]
    IgnoreLineTooLong { path: PathBuf, line: usize },

    #[error("{path}:{line}: invalid pattern `{pattern}`: {reason}")]
    InvalidPattern {
        path: PathBuf,
        line: usize,
        pattern: String,
        reason: String,
    },

    #[error(
        "Dockerfile path `{rel}` cannot be turned into the `!{rel}` rule docker adds: {reason}"
    )]
    InvalidDockerfileRule { rel: String, reason: String },

    #[error(
        "cannot read `{path}` in the build context: {source}\n\nhint: fix its permissions or exclude it in .dockerignore"
    )]
    Unreadable { path: PathBuf, source: io::Error },

    #[error(
        "file name `{path}` in the build context is not valid UTF-8\n\nhint: rename it or exclude it in .dockerignore"
    )]
    NonUtf8Path { path: PathBuf },

    #[error("symlink `{path}` in the build context has a target that is not valid UTF-8")]
    NonUtf8LinkTarget { path: PathBuf },

    #[error(
        "`{path}` changed while the build context was being sent ({detail})\n\nhint: the next build picks up the new content"
    )]
    FileChanged { path: PathBuf, detail: String },

    #[error(
        "`.dockerignore` in build context `{root}` is not a regular file, cannot add the Dockerfile to it"
    )]
    DockerignoreNotAFile { root: PathBuf },

    #[error("cannot write the build context tar stream: {source}")]
    WriteTar { source: io::Error },
}

// ======================================================================================================
// Go helpers
// ======================================================================================================

/// Go's `filepath.Clean` on Unix: collapse `//`, drop `.`, resolve `..` lexically, no trailing `/`.
fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let bytes = path.as_bytes();
    let rooted = bytes[0] == b'/';
    let n = bytes.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let mut r = 0;
    // `dotdot` is the length of `out` that a `..` must not backtrack past.
    let mut dotdot = 0;
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        // An empty element (`//`) or a `.` element is dropped.
        if bytes[r] == b'/' || (bytes[r] == b'.' && (r + 1 == n || bytes[r + 1] == b'/')) {
            r += 1;
        } else if bytes[r] == b'.'
            && bytes.get(r + 1) == Some(&b'.')
            && (r + 2 == n || bytes[r + 2] == b'/')
        {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && bytes[r] != b'/' {
                out.push(bytes[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return ".".to_owned();
    }
    // Only whole ASCII bytes were removed, so the remaining bytes are still valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Go's `filepath.Dir`: everything before the last `/`, cleaned.
fn go_dir(path: &str) -> std::borrow::Cow<'_, str> {
    match path.rfind('/') {
        None => ".".into(),
        Some(i) => go_clean(&path[..=i]).into(),
    }
}

/// Syntax check of Go's `filepath.Match(pattern, ".")`: an error for exactly the patterns Go rejects.
fn validate_match_syntax(pattern: &str) -> Result<(), &'static str> {
    let mut rest = pattern.as_bytes();
    while !rest.is_empty() {
        let (star, chunk, tail) = scan_chunk(rest);
        if star && chunk.is_empty() {
            return Ok(());
        }
        validate_chunk(chunk)?;
        rest = tail;
    }
    Ok(())
}

fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', tail @ ..] = pattern {
        pattern = tail;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

fn validate_chunk(mut chunk: &[u8]) -> Result<(), &'static str> {
    while let Some(&c) = chunk.first() {
        match c {
            b'[' => {
                chunk = &chunk[1..];
                if chunk.first() == Some(&b'^') {
                    chunk = &chunk[1..];
                }
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    chunk = class_escape(chunk)?;
                    if chunk.first() == Some(&b'-') {
                        chunk = class_escape(&chunk[1..])?;
                    }
                    ranges += 1;
                }
            }
            b'\\' => {
                chunk = &chunk[1..];
                if chunk.is_empty() {
                    return Err("trailing `\\` escapes nothing");
                }
                chunk = &chunk[1..];
            }
            _ => chunk = &chunk[1..],
        }
    }
    Ok(())
}

/// Go's `getEsc`: one (possibly escaped) character of a `[...]` class, which must be followed by more text.
fn class_escape(chunk: &[u8]) -> Result<&[u8], &'static str> {
    match chunk.first() {
        None => return Err("unterminated `[` character class"),
        Some(b'-') | Some(b']') => return Err("bad character range in `[...]`"),
        _ => {}
    }
    let mut chunk = chunk;
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err("unterminated `[` character class");
        }
    }
    let width = utf8_width(chunk[0]);
    let next = chunk.get(width..).unwrap_or_default();
    if next.is_empty() {
        return Err("unterminated `[` character class");
    }
    Ok(next)
}

fn utf8_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

/// moby/patternmatcher `Pattern.compile`: the match type and the Go regular expression for a pattern.
fn moby_compile(pattern: &str) -> (MatchType, String) {
    let mut chars: Vec<char> = pattern.chars().collect();
    // text/scanner drops a byte-order mark at the very start of its input.
    if chars.first() == Some(&'\u{feff}') {
        chars.remove(0);
    }
    let mut reg = String::from("^");
    let mut kind = MatchType::Exact;
    let mut pos = 0;
    let mut iteration = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos >= chars.len() {
                    if kind == MatchType::Exact {
                        kind = MatchType::Prefix;
                    } else {
                        reg.push_str(".*");
                        kind = MatchType::Regexp;
                    }
                } else {
                    reg.push_str("(.*/)?");
                    kind = MatchType::Regexp;
                }
                if iteration == 0 {
                    kind = MatchType::Suffix;
                }
            }
            '*' => {
                reg.push_str("[^/]*");
                kind = MatchType::Regexp;
            }
            '?' => {
                reg.push_str("[^/]");
                kind = MatchType::Regexp;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                reg.push('\\');
                reg.push(ch);
            }
            '\\' => {
                reg.push('\\');
                if let Some(&next) = chars.get(pos) {
                    reg.push(next);
                    pos += 1;
                    kind = MatchType::Regexp;
                }
            }
            '[' | ']' => {
                reg.push(ch);
                kind = MatchType::Regexp;
            }
            _ => reg.push(ch),
        }
        iteration += 1;
    }
    if kind == MatchType::Regexp {
        reg.push('$');
    }
    (kind, reg)
}

// ======================================================================================================
// Go regexp (RE2 syntax, Perl flags) → `regex` crate syntax
// ======================================================================================================

const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Re-reads a Go regular expression with Go's parsing rules and writes an equivalent `regex` crate pattern.
/// Only Go's default (Perl) flags are needed: moby never emits flag groups.
struct GoRegex {
    chars: Vec<char>,
    pos: usize,
}

impl GoRegex {
    fn translate(go: &str) -> Result<String, String> {
        let mut p = GoRegex {
            chars: go.chars().collect(),
            pos: 0,
        };
        let out = p.alternation(0)?;
        if p.pos < p.chars.len() {
            return Err("unexpected `)`".to_owned());
        }
        Ok(out)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        (self.pos..)
            .zip(s.chars())
            .all(|(i, c)| self.chars.get(i) == Some(&c))
    }

    fn alternation(&mut self, depth: usize) -> Result<String, String> {
        let mut out = self.concat(depth)?;
        while self.peek() == Some('|') {
            self.pos += 1;
            out.push('|');
            out.push_str(&self.concat(depth)?);
        }
        Ok(out)
    }

    fn concat(&mut self, depth: usize) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let mut atoms: Vec<String> = match self.peek() {
                None | Some('|') => break,
                Some(')') if depth > 0 => break,
                Some(')') => return Err("unexpected `)`".to_owned()),
                Some('(') => {
                    self.pos += 1;
                    if self.peek() == Some('?') {
                        return Err("group flags are not supported".to_owned());
                    }
                    let inner = self.alternation(depth + 1)?;
                    if self.peek() != Some(')') {
                        return Err("missing closing `)`".to_owned());
                    }
                    self.pos += 1;
                    vec![format!("(?:{inner})")]
                }
                Some('[') => vec![self.class()?],
                Some('\\') => self.escape_outside_class()?,
                Some('^') => {
                    self.pos += 1;
                    vec!["^".to_owned()]
                }
                Some('$') => {
                    self.pos += 1;
                    vec!["$".to_owned()]
                }
                Some('.') => {
                    self.pos += 1;
                    vec![".".to_owned()]
                }
                Some('*' | '+' | '?') => {
                    return Err("missing argument to repetition operator".to_owned());
                }
                Some('{') if self.repeat_spec().is_some() => {
                    return Err("missing argument to repetition operator".to_owned());
                }
                Some(c) => {
                    self.pos += 1;
                    vec![literal(c)]
                }
            };
            let last = atoms.pop().unwrap_or_default();
            for atom in atoms {
                out.push_str(&atom);
            }
            out.push_str(&self.postfix(last)?);
        }
        Ok(out)
    }

    /// Applies at most one repetition operator (Go rejects nested ones like `**`) to `atom`.
    fn postfix(&mut self, atom: String) -> Result<String, String> {
        let op = match self.peek() {
            Some(c @ ('*' | '+' | '?')) => {
                self.pos += 1;
                c.to_string()
            }
            Some('{') => match self.repeat_spec() {
                Some((spec, len)) => {
                    self.pos += len;
                    spec
                }
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        let lazy = if self.peek() == Some('?') {
            self.pos += 1;
            "?"
        } else {
            ""
        };
        if matches!(self.peek(), Some('*' | '+' | '?'))
            || (self.peek() == Some('{') && self.repeat_spec().is_some())
        {
            return Err("invalid nested repetition operator".to_owned());
        }
        Ok(format!("(?:{atom}){op}{lazy}"))
    }

    /// A Go repetition `{n}`, `{n,}` or `{n,m}` at the cursor: its text and length in chars.
    fn repeat_spec(&self) -> Option<(String, usize)> {
        let mut i = self.pos + 1;
        let mut text = String::from("{");
        let digits = |i: &mut usize, text: &mut String| {
            let start = *i;
            while let Some(c) = self.chars.get(*i).filter(|c| c.is_ascii_digit()) {
                text.push(*c);
                *i += 1;
            }
            *i > start
        };
        if !digits(&mut i, &mut text) {
            return None;
        }
        if self.chars.get(i) == Some(&',') {
            text.push(',');
            i += 1;
            digits(&mut i, &mut text);
        }
        if self.chars.get(i) != Some(&'}') {
            return None;
        }
        text.push('}');
        Some((text, i + 1 - self.pos))
    }

    /// A `\` escape outside a class; `\Q...\E` yields one atom per quoted character.
    fn escape_outside_class(&mut self) -> Result<Vec<String>, String> {
        let Some(c) = self.peek_at(1) else {
            return Err("trailing `\\` at end of expression".to_owned());
        };
        let simple = match c {
            'A' => Some("\\A"),
            'z' => Some("\\z"),
            // Go's word boundaries are ASCII-only.
            'b' => Some("(?-u:\\b)"),
            'B' => Some("(?-u:\\B)"),
            _ => None,
        };
        if let Some(s) = simple {
            self.pos += 2;
            return Ok(vec![s.to_owned()]);
        }
        match c {
            'C' => Err("invalid escape sequence `\\C`".to_owned()),
            'Q' => {
                self.pos += 2;
                let mut atoms = Vec::new();
                while self.pos < self.chars.len() {
                    if self.starts_with("\\E") {
                        self.pos += 2;
                        break;
                    }
                    atoms.push(literal(self.chars[self.pos]));
                    self.pos += 1;
                }
                Ok(atoms)
            }
            'p' | 'P' => Ok(vec![self.unicode_class()?]),
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                self.pos += 2;
                Ok(vec![format!("[{}]", perl_class(c))])
            }
            _ => Ok(vec![literal(self.escape()?)]),
        }
    }

    /// Go's `parseEscape`: a single-character escape at the cursor (which is on the `\`).
    fn escape(&mut self) -> Result<char, String> {
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Err("trailing `\\` at end of expression".to_owned());
        };
        self.pos += 1;
        let invalid = || Err(format!("invalid escape sequence `\\{c}`"));
        match c {
            '1'..='7' if !matches!(self.peek(), Some('0'..='7')) => invalid(),
            '0'..='7' => {
                let mut value = c as u32 - '0' as u32;
                for _ in 1..3 {
                    match self.peek() {
                        Some(d @ '0'..='7') => {
                            value = value * 8 + (d as u32 - '0' as u32);
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                char::from_u32(value).ok_or_else(|| format!("invalid escape sequence `\\{c}`"))
            }
            'x' => {
                if self.peek() == Some('{') {
                    self.pos += 1;
                    let mut value: u32 = 0;
                    let mut digits = 0;
                    loop {
                        let Some(d) = self.peek() else {
                            return invalid();
                        };
                        self.pos += 1;
                        if d == '}' {
                            break;
                        }
                        let Some(v) = d.to_digit(16) else {
                            return invalid();
                        };
                        value = value.saturating_mul(16).saturating_add(v);
                        if value > 0x10ffff {
                            return invalid();
                        }
                        digits += 1;
                    }
                    if digits == 0 {
                        return invalid();
                    }
                    char::from_u32(value).ok_or_else(|| "invalid escape sequence `\\x`".to_owned())
                } else {
                    let hi = self.peek().and_then(|d| d.to_digit(16));
                    let lo = self.peek_at(1).and_then(|d| d.to_digit(16));
                    match (hi, lo) {
                        (Some(h), Some(l)) => {
                            self.pos += 2;
                            char::from_u32(h * 16 + l)
                                .ok_or_else(|| "invalid escape sequence `\\x`".to_owned())
                        }
                        _ => invalid(),
                    }
                }
            }
            'a' => Ok('\u{7}'),
            'f' => Ok('\u{c}'),
            'n' => Ok('\n'),
            'r' => Ok('\r'),
            't' => Ok('\t'),
            'v' => Ok('\u{b}'),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
            _ => invalid(),
        }
    }

    /// `\pN`, `\p{Name}`, `\p{^Name}` (and `\P`), at the cursor.
    fn unicode_class(&mut self) -> Result<String, String> {
        let mut negated = self.peek_at(1) == Some('P');
        self.pos += 2;
        let name: String = match self.peek() {
            None => return Err("invalid character class range `\\p`".to_owned()),
            Some('{') => {
                let start = self.pos + 1;
                let Some(len) = self.chars[start..].iter().position(|&c| c == '}') else {
                    return Err("invalid character class range: missing `}`".to_owned());
                };
                self.pos = start + len + 1;
                self.chars[start..start + len].iter().collect()
            }
            Some(c) => {
                self.pos += 1;
                c.to_string()
            }
        };
        let name = match name.strip_prefix('^') {
            Some(stripped) => {
                negated = !negated;
                stripped.to_owned()
            }
            None => name,
        };
        // Go only knows the exact names of its category and script tables; the `regex` crate also
        // accepts loose spellings, so reject anything that is not spelled like a Go table name.
        let go_like = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !go_like {
            return Err(format!("invalid character class range `\\p{{{name}}}`"));
        }
        Ok(format!("\\{}{{{name}}}", if negated { 'P' } else { 'p' }))
    }

    /// Go's `parseClass`, cursor on `[`.
    fn class(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::from("[");
        if self.peek() == Some('^') {
            self.pos += 1;
            out.push('^');
        }
        let mut first = true;
        loop {
            match self.peek() {
                None => return Err("missing closing `]`".to_owned()),
                Some(']') if !first => {
                    self.pos += 1;
                    break;
                }
                _ => {}
            }
            first = false;
            if self.starts_with("[:") && self.pos + 2 < self.chars.len() {
                let rest = &self.chars[self.pos + 2..];
                if let Some(i) = rest.windows(2).position(|w| w == [':', ']']) {
                    let inner: String = rest[..i].iter().collect();
                    let name = inner.strip_prefix('^').unwrap_or(&inner);
                    if !POSIX_CLASSES.contains(&name) {
                        return Err(format!("invalid character class range `[:{inner}:]`"));
                    }
                    out.push_str(&format!("[:{inner}:]"));
                    self.pos += i + 4;
                    continue;
                }
            }
            if self.starts_with("\\p") || self.starts_with("\\P") {
                out.push_str(&self.unicode_class()?);
                continue;
            }
            if let Some(c @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) =
                self.peek_at(1).filter(|_| self.peek() == Some('\\'))
            {
                self.pos += 2;
                let class = perl_class(c);
                if c.is_ascii_uppercase() {
                    out.push_str(&format!("[{class}]"));
                } else {
                    out.push_str(class);
                }
                continue;
            }
            let lo = self.class_char()?;
            let mut hi = lo;
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|c| c != ']') {
                self.pos += 1;
                hi = self.class_char()?;
                if hi < lo {
                    return Err(format!("invalid character class range `{lo}-{hi}`"));
                }
            }
            out.push_str(&literal(lo));
            if hi != lo {
                out.push('-');
                out.push_str(&literal(hi));
            }
        }
        out.push(']');
        Ok(out)
    }

    fn class_char(&mut self) -> Result<char, String> {
        match self.peek() {
            None => Err("missing closing `]`".to_owned()),
            Some('\\') => self.escape(),
            Some(c) => {
                self.pos += 1;
                Ok(c)
            }
        }
    }
}

/// The body of Go's ASCII-only Perl classes, ready to sit inside `[...]`.
fn perl_class(c: char) -> &'static str {
    match c {
        'd' => "0-9",
        'D' => "^0-9",
        's' => "\\t\\n\\x0C\\r ",
        'S' => "^\\t\\n\\x0C\\r ",
        'w' => "0-9A-Za-z_",
        _ => "^0-9A-Za-z_",
    }
}

/// One literal character in `regex` syntax (safe inside and outside classes).
fn literal(c: char) -> String {
    if c.is_ascii_alphanumeric() || c == '/' || c == '_' {
        c.to_string()
    } else {
        format!("\\x{{{:X}}}", c as u32)
    }
}

// ======================================================================================================
// The matcher
// ======================================================================================================

#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Prefix(String),
    /// Bytes, because Go slices the pattern bytewise (`cleanedPattern[2:]`).
    Suffix(Vec<u8>),
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct Pattern {
    /// moby's `cleanedPattern` (without the `!`): used for the "can this excluded directory be pruned" test.
    cleaned: String,
    /// Number of `/`-separated parts of `cleaned` (moby's `len(dirs)`), for the legacy parent check.
    dirs: usize,
    exclusion: bool,
    matcher: Matcher,
}

impl Pattern {
    /// `patternmatcher.New` for one pattern; `None` for a blank one.
    fn new(raw: &str) -> Result<Option<Pattern>, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let cleaned = go_clean(trimmed);
        let (exclusion, body) = match cleaned.strip_prefix('!') {
            Some("") => return Err("a lone `!` is not a pattern (docker rejects it)".to_owned()),
            Some(body) => (true, body.to_owned()),
            None => (false, cleaned),
        };
        validate_match_syntax(&body).map_err(str::to_owned)?;
        let (kind, go_regex) = moby_compile(&body);
        let matcher = match kind {
            MatchType::Exact => Matcher::Exact(body.clone()),
            MatchType::Prefix => Matcher::Prefix(body[..body.len() - 2].to_owned()),
            MatchType::Suffix => Matcher::Suffix(body.as_bytes()[2..].to_vec()),
            MatchType::Regexp => {
                let translated = GoRegex::translate(&go_regex)?;
                Matcher::Regex(Regex::new(&translated).map_err(|e| e.to_string())?)
            }
        };
        Ok(Some(Pattern {
            dirs: body.split('/').count(),
            cleaned: body,
            exclusion,
            matcher,
        }))
    }

    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(p) => path == p,
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Suffix(s) => {
                path.as_bytes().ends_with(s)
                    || s.strip_prefix(b"/").is_some_and(|s| path.as_bytes() == s)
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }
}

/// Docker's `.dockerignore` matcher (moby/patternmatcher as used by the docker CLI), safe to share
/// between threads.
#[derive(Debug, Clone)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
    /// `cleaned + "/"` of every `!` pattern: a directory is walked into when one of them starts with it.
    exception_prefixes: Vec<String>,
}

impl DockerIgnore {
    /// Parses ignore-file text the way the docker CLI reads `.dockerignore` (`ignorefile.ReadAll`, then
    /// `patternmatcher.New`). `source` only names the file in errors.
    pub fn parse(source: &Path, text: &str) -> Result<DockerIgnore, ContextError> {
        let mut ignore = DockerIgnore {
            patterns: Vec::new(),
            exception_prefixes: Vec::new(),
        };
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        for (index, line) in lines.into_iter().enumerate() {
            let number = index + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.len() >= 65536 {
                return Err(ContextError::IgnoreLineTooLong {
                    path: source.to_owned(),
                    line: number,
                });
            }
            let line = if index == 0 {
                line.strip_prefix('\u{feff}').unwrap_or(line)
            } else {
                line
            };
            if line.starts_with('#') {
                continue;
            }
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let (invert, rest) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            let mut normalised = rest.to_owned();
            if !normalised.is_empty() {
                normalised = go_clean(&normalised);
                if normalised.len() > 1 && normalised.starts_with('/') {
                    normalised.remove(0);
                }
            }
            if invert {
                normalised.insert(0, '!');
            }
            ignore
                .push(&normalised)
                .map_err(|reason| ContextError::InvalidPattern {
                    path: source.to_owned(),
                    line: number,
                    pattern: trimmed.to_owned(),
                    reason,
                })?;
        }
        Ok(ignore)
    }

    /// The matcher for `rules` as read by [`read_ignore_rules`] (no rules → nothing excluded).
    pub fn from_rules(rules: &IgnoreRules) -> Result<DockerIgnore, ContextError> {
        let source = rules
            .source
            .clone()
            .unwrap_or_else(|| PathBuf::from(".dockerignore"));
        DockerIgnore::parse(&source, &rules.text)
    }

    /// The matcher `docker build` applies for `rules` and this Dockerfile: [`DockerIgnore::from_rules`]
    /// plus [`DockerIgnore::keep_build_files`].
    pub fn for_build(
        rules: &IgnoreRules,
        dockerfile: &DockerfileLocation,
    ) -> Result<DockerIgnore, ContextError> {
        let mut ignore = DockerIgnore::from_rules(rules)?;
        ignore.keep_build_files(dockerfile)?;
        Ok(ignore)
    }

    /// The docker CLI's `TrimBuildFilesFromExcludes`: when `.dockerignore` or the Dockerfile would be
    /// excluded, append `!.dockerignore` / `!<dockerfile>` so they are still sent (the daemon drops them
    /// again). The check uses the legacy single-parent matcher, exactly as the CLI does.
    pub fn keep_build_files(
        &mut self,
        dockerfile: &DockerfileLocation,
    ) -> Result<(), ContextError> {
        if self.legacy_matches(".dockerignore") {
            self.push("!.dockerignore")
                .map_err(|reason| ContextError::InvalidDockerfileRule {
                    rel: ".dockerignore".to_owned(),
                    reason,
                })?;
        }
        let rel = dockerfile.rel();
        if self.legacy_matches(rel) {
            self.push(&format!("!{rel}")).map_err(|reason| {
                ContextError::InvalidDockerfileRule {
                    rel: rel.to_owned(),
                    reason,
                }
            })?;
        }
        Ok(())
    }

    fn push(&mut self, raw: &str) -> Result<(), String> {
        if let Some(pattern) = Pattern::new(raw)? {
            if pattern.exclusion {
                self.exception_prefixes
                    .push(format!("{}/", pattern.cleaned));
            }
            self.patterns.push(pattern);
        }
        Ok(())
    }

    /// Whether any rule is a `!` exception (then an excluded directory is still walked when a `!` rule
    /// starts with its path).
    pub fn has_exceptions(&self) -> bool {
        !self.exception_prefixes.is_empty()
    }

    /// Whether `docker build` leaves `rel` (`/`-separated, relative to the context root) out of the context:
    /// either the rules exclude it, or one of its parent directories is excluded and pruned from the walk.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let Some(rel) = normalise_rel(rel) else {
            return false;
        };
        if self.patterns.is_empty() {
            return false;
        }
        let mut info: Option<Vec<bool>> = None;
        for (i, _) in rel.match_indices('/') {
            let dir = &rel[..i];
            let mut dir_info = Vec::with_capacity(self.patterns.len());
            let excluded = self.eval(dir, info.as_deref(), Some(&mut dir_info));
            if excluded && self.prunable(dir) {
                return true;
            }
            info = Some(dir_info);
        }
        self.eval(rel, info.as_deref(), None)
    }

    /// The rules' verdict for `rel` alone, ignoring pruning of its parent directories (moby's
    /// `MatchesUsingParentResults` chained from the context root).
    pub fn matches(&self, rel: &str) -> bool {
        let Some(rel) = normalise_rel(rel) else {
            return false;
        };
        let mut info: Option<Vec<bool>> = None;
        for (i, _) in rel.match_indices('/') {
            let mut dir_info = Vec::with_capacity(self.patterns.len());
            self.eval(&rel[..i], info.as_deref(), Some(&mut dir_info));
            info = Some(dir_info);
        }
        self.eval(rel, info.as_deref(), None)
    }

    /// moby's `MatchesUsingParentResults`: `parent` holds the per-pattern results of the parent directory
    /// (`None` at the top level); when `info` is given it receives this path's per-pattern results.
    fn eval(&self, path: &str, parent: Option<&[bool]>, mut info: Option<&mut Vec<bool>>) -> bool {
        if let Some(info) = info.as_deref_mut() {
            info.clear();
            info.resize(self.patterns.len(), false);
        }
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|p| p[i]);
            if !hit {
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path);
                if !hit && parent.is_none() {
                    let dir = go_dir(path);
                    let dir = dir.as_ref();
                    if dir != "." {
                        hit = dir
                            .match_indices('/')
                            .map(|(j, _)| &dir[..j])
                            .chain([dir])
                            .any(|d| pattern.matches(d));
                    }
                }
            }
            if let Some(info) = info.as_deref_mut() {
                info[i] = hit;
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// The deprecated `patternmatcher.Matches` (checks a single parent prefix), which the docker CLI
    /// still uses to decide whether `.dockerignore` and the Dockerfile need a `!` rule.
    fn legacy_matches(&self, file: &str) -> bool {
        let file = go_clean(file);
        if file == "." {
            return false;
        }
        let parent = go_dir(&file);
        let parent = parent.as_ref();
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(&file);
            if !hit && parent != "." && pattern.dirs <= parent_dirs.len() {
                hit = pattern.matches(&parent_dirs[..pattern.dirs].join("/"));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether an excluded directory is skipped with everything below it (`archive.TarWithOptions`).
    fn prunable(&self, dir: &str) -> bool {
        !self
            .exception_prefixes
            .iter()
            .any(|p| p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/')
    }
}

fn normalise_rel(rel: &str) -> Option<&str> {
    let rel = rel.strip_prefix("./").unwrap_or(rel);
    let rel = rel.trim_end_matches('/');
    if rel.is_empty() || rel == "." {
        None
    } else {
        Some(rel)
    }
}

// ======================================================================================================
// Ignore rules and the Dockerfile's place
// ======================================================================================================

/// Reads the ignore rules `docker build` (BuildKit) applies: `<Dockerfile path>.dockerignore` beside the
/// Dockerfile takes precedence over `<context>/.dockerignore`.
pub fn read_ignore_rules(context: &Path, dockerfile: &Path) -> Result<IgnoreRules, ContextError> {
    let mut beside = dockerfile.as_os_str().to_owned();
    beside.push(".dockerignore");
    for candidate in [PathBuf::from(beside), context.join(".dockerignore")] {
        match fs::read(&candidate) {
            Ok(bytes) => {
                let text =
                    String::from_utf8(bytes).map_err(|_| ContextError::IgnoreFileNotUtf8 {
                        path: candidate.clone(),
                    })?;
                return Ok(IgnoreRules {
                    source: Some(candidate),
                    text,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ContextError::IgnoreFileUnreadable {
                    path: candidate,
                    source,
                });
            }
        }
    }
    Ok(IgnoreRules::default())
}

/// Where the Dockerfile is relative to the (canonical) context root, after resolving symlinks like the
/// docker CLI does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileLocation {
    /// Inside the context; `rel` is its `/`-separated path there.
    Inside { path: PathBuf, rel: String },
    /// Outside the context; `rel` is the `../`-path the docker CLI computes (only used for the keep rule).
    Outside { path: PathBuf, rel: String },
}

impl DockerfileLocation {
    /// The canonical Dockerfile path.
    pub fn path(&self) -> &Path {
        match self {
            DockerfileLocation::Inside { path, .. } | DockerfileLocation::Outside { path, .. } => {
                path
            }
        }
    }

    /// The path relative to the context root (`../…` when outside).
    pub fn rel(&self) -> &str {
        match self {
            DockerfileLocation::Inside { rel, .. } | DockerfileLocation::Outside { rel, .. } => rel,
        }
    }
}

/// Resolves the Dockerfile (relative paths against the current directory, like `docker build -f`).
pub fn locate_dockerfile(
    root: &Path,
    dockerfile: &Path,
) -> Result<DockerfileLocation, ContextError> {
    let path = fs::canonicalize(dockerfile).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            ContextError::DockerfileMissing {
                path: dockerfile.to_owned(),
            }
        } else {
            ContextError::DockerfileUnreadable {
                path: dockerfile.to_owned(),
                source,
            }
        }
    })?;
    let rel = relative_path(root, &path)
        .ok_or_else(|| ContextError::NonUtf8Path { path: path.clone() })?;
    if rel == ".." || rel.starts_with("../") {
        Ok(DockerfileLocation::Outside { path, rel })
    } else {
        Ok(DockerfileLocation::Inside { path, rel })
    }
}

/// `filepath.Rel` for two absolute canonical paths; `None` when a component is not UTF-8.
fn relative_path(base: &Path, target: &Path) -> Option<String> {
    let names = |p: &Path| -> Option<Vec<String>> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_str().map(str::to_owned)),
                _ => None,
            })
            .collect()
    };
    let base = names(base)?;
    let target = names(target)?;
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let parts: Vec<&str> = std::iter::repeat_n("..", base.len() - common)
        .chain(target[common..].iter().map(String::as_str))
        .collect();
    Some(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

fn canonical_context(context: &Path) -> Result<PathBuf, ContextError> {
    let root = fs::canonicalize(context).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ContextError::ContextMissing {
            path: context.to_owned(),
        },
        io::ErrorKind::NotADirectory => ContextError::ContextMissing {
            path: context.to_owned(),
        },
        _ => ContextError::ContextUnreadable {
            path: context.to_owned(),
            source,
        },
    })?;
    if !root.is_dir() {
        return Err(ContextError::ContextNotDirectory {
            path: context.to_owned(),
        });
    }
    Ok(root)
}

// ======================================================================================================
// The walk
// ======================================================================================================

/// Walks `context` and returns exactly the entries `docker build -f <dockerfile> <context>` sends, sorted by
/// `rel`: directories, files and symlinks (kept as links, never followed); sockets, fifos and devices are left
/// out. Walks directories on all cores. One deliberate difference: when a rule prunes the directory that holds
/// the Dockerfile (docker then fails with "Cannot locate specified Dockerfile"), the Dockerfile is still sent.
/// A Dockerfile outside the context is not an entry; [`write_tar`] adds it.
pub fn walk(context: &Path, dockerfile: &Path) -> Result<ContextFiles, ContextError> {
    let root = canonical_context(context)?;
    let ignore = read_ignore_rules(&root, dockerfile)?;
    let location = locate_dockerfile(&root, dockerfile)?;
    let matcher = DockerIgnore::for_build(&ignore, &location)?;
    let mut entries = walk_tree(&root, &matcher)?;
    // devloop's own output redirected into the project is not the project's: never hashed, never sent.
    entries.retain(|e| !crate::own_output::is_own_output(e.dev, e.ino));
    entries.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));

    // The docker CLI's `!` rules above normally keep these two; a `**` rule on a parent directory can
    // still prune the Dockerfile (docker then fails to find it), so add them directly in that case.
    let mut forced = vec![".dockerignore".to_owned()];
    if let DockerfileLocation::Inside { rel, .. } = &location {
        forced.push(rel.clone());
    }
    for rel in forced {
        if let Err(at) = entries.binary_search_by(|e| e.rel.as_str().cmp(&rel)) {
            let path = root.join(&rel);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    entries.insert(at, entry_from(rel, &meta, EntryKind::File))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(ContextError::Unreadable { path, source }),
            }
        }
    }
    Ok(ContextFiles {
        root,
        entries,
        ignore,
    })
}

fn entry_from(rel: String, meta: &fs::Metadata, kind: EntryKind) -> ContextEntry {
    ContextEntry {
        rel,
        size: if kind == EntryKind::Dir {
            0
        } else {
            meta.size()
        },
        kind,
        mode: meta.mode(),
        dev: meta.dev(),
        ino: meta.ino(),
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        ctime_ns: meta
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec()),
    }
}

struct DirJob {
    /// `/`-separated path relative to the root; empty for the root itself.
    rel: String,
    /// Per-pattern match results of this directory; `None` for the root.
    info: Option<Arc<[bool]>>,
    /// Excluded itself, walked only because a `!` rule may re-include something below it.
    excluded: bool,
}

struct WalkQueue {
    jobs: Vec<DirJob>,
    busy: usize,
}

struct Walker<'a> {
    root: &'a Path,
    matcher: &'a DockerIgnore,
    queue: Mutex<WalkQueue>,
    ready: Condvar,
    failed: AtomicBool,
    error: Mutex<Option<ContextError>>,
}

fn walk_tree(root: &Path, matcher: &DockerIgnore) -> Result<Vec<ContextEntry>, ContextError> {
    let walker = Walker {
        root,
        matcher,
        queue: Mutex::new(WalkQueue {
            jobs: vec![DirJob {
                rel: String::new(),
                info: None,
                excluded: false,
            }],
            busy: 0,
        }),
        ready: Condvar::new(),
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let mut entries = if threads == 1 {
        walker.run()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(|| walker.run())).collect();
            let mut all = Vec::new();
            for handle in handles {
                match handle.join() {
                    Ok(part) => all.extend(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            all
        })
    };
    if let Some(error) = walker
        .error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(error);
    }
    entries.shrink_to_fit();
    Ok(entries)
}

impl Walker<'_> {
    fn run(&self) -> Vec<ContextEntry> {
        let mut found = Vec::new();
        let mut info_buf = Vec::new();
        loop {
            let job = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if self.failed.load(Ordering::Relaxed) {
                        queue.jobs.clear();
                    }
                    if let Some(job) = queue.jobs.pop() {
                        queue.busy += 1;
                        break Some(job);
                    }
                    if queue.busy == 0 {
                        break None;
                    }
                    queue = self
                        .ready
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let Some(job) = job else {
                self.ready.notify_all();
                return found;
            };
            let mut children = Vec::new();
            if let Err(error) = self.read_dir(&job, &mut found, &mut children, &mut info_buf) {
                self.failed.store(true, Ordering::Relaxed);
                self.error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(error);
            }
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.busy -= 1;
            let wake = !children.is_empty() || queue.busy == 0;
            queue.jobs.extend(children);
            drop(queue);
            if wake {
                self.ready.notify_all();
            }
        }
    }

    fn read_dir(
        &self,
        job: &DirJob,
        found: &mut Vec<ContextEntry>,
        children: &mut Vec<DirJob>,
        info_buf: &mut Vec<bool>,
    ) -> Result<(), ContextError> {
        let dir_path = if job.rel.is_empty() {
            self.root.to_owned()
        } else {
            self.root.join(&job.rel)
        };
        let listing = match fs::read_dir(&dir_path) {
            Ok(listing) => listing,
            // Walked only to look for `!` re-includes: the docker CLI skips what it cannot read there.
            Err(error) if job.excluded => {
                tracing::debug!(path = %dir_path.display(), %error, "skipping unreadable excluded directory");
                return Ok(());
            }
            // Removed since its parent was listed: the walk is a snapshot, like any file that vanishes.
            Err(error) if error.kind() == io::ErrorKind::NotFound && !job.rel.is_empty() => {
                return Ok(());
            }
            Err(source) => {
                return Err(ContextError::Unreadable {
                    path: dir_path,
                    source,
                });
            }
        };
        let parent_info = job.info.as_deref();
        for item in listing {
            let item = item.map_err(|source| ContextError::Unreadable {
                path: dir_path.clone(),
                source,
            })?;
            let name = item.file_name();
            let lossy;
            let (name_str, utf8) = match name.to_str() {
                Some(s) => (s, true),
                None => {
                    lossy = name.to_string_lossy().into_owned();
                    (lossy.as_str(), false)
                }
            };
            let rel = if job.rel.is_empty() {
                name_str.to_owned()
            } else {
                format!("{}/{name_str}", job.rel)
            };
            let file_type = match item.file_type() {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(ContextError::Unreadable {
                        path: item.path(),
                        source,
                    });
                }
            };
            let is_dir = file_type.is_dir();
            let excluded = if self.matcher.patterns.is_empty() {
                false
            } else {
                self.matcher
                    .eval(&rel, parent_info, is_dir.then_some(&mut *info_buf))
            };
            let info = || -> Option<Arc<[bool]>> {
                if self.matcher.patterns.is_empty() {
                    None
                } else {
                    Some(Arc::from(info_buf.as_slice()))
                }
            };
            if excluded {
                if is_dir && self.matcher.has_exceptions() && !self.matcher.prunable(&rel) {
                    children.push(DirJob {
                        rel,
                        info: info(),
                        excluded: true,
                    });
                }
                continue;
            }
            if !utf8 {
                return Err(ContextError::NonUtf8Path { path: item.path() });
            }
            let kind = if is_dir {
                EntryKind::Dir
            } else if file_type.is_file() {
                EntryKind::File
            } else if file_type.is_symlink() {
                let target = match fs::read_link(item.path()) {
                    Ok(t) => t,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(source) => {
                        return Err(ContextError::Unreadable {
                            path: item.path(),
                            source,
                        });
                    }
                };
                let target = target
                    .into_os_string()
                    .into_string()
                    .map_err(|_| ContextError::NonUtf8LinkTarget { path: item.path() })?;
                EntryKind::Symlink { target }
            } else {
                // Sockets are skipped by the docker CLI too; fifos and devices have no `EntryKind`.
                tracing::debug!(
                    path = %item.path().display(),
                    socket = file_type.is_socket(),
                    "skipping special file in build context"
                );
                continue;
            };
            let meta = match item.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(ContextError::Unreadable {
                        path: item.path(),
                        source,
                    });
                }
            };
            if is_dir {
                children.push(DirJob {
                    rel: rel.clone(),
                    info: info(),
                    excluded: false,
                });
            }
            found.push(entry_from(rel, &meta, kind));
        }
        Ok(())
    }
}

// ======================================================================================================
// The tar stream
// ======================================================================================================

/// mtime written for every entry so equal contexts give byte-identical streams (the `tar` crate's
/// deterministic timestamp). Docker's own layer cache keys ignore mtimes.
const TAR_MTIME: u64 = tar::DETERMINISTIC_TIMESTAMP;

/// Writes `files` as the tar stream `docker build` sends (deterministic: sorted, uid/gid 0, fixed mtime,
/// permission bits kept, symlinks as links, hard links as links, directories included) and returns the
/// name to pass as the Engine API's `dockerfile` parameter. A Dockerfile outside the context is added as
/// `.dockerfile.<20 hex of its sha256>` and listed in the stream's `.dockerignore`, like the docker CLI does.
pub fn write_tar<W: Write>(
    files: &ContextFiles,
    dockerfile: &Path,
    out: W,
) -> Result<String, ContextError> {
    let location = locate_dockerfile(&files.root, dockerfile)?;
    let mut tar = TarWriter {
        out: BufWriter::with_capacity(128 * 1024, out),
        links: HashMap::new(),
    };
    let name = match &location {
        DockerfileLocation::Inside { rel, .. } => {
            if files
                .entries
                .binary_search_by(|e| e.rel.as_str().cmp(rel))
                .is_err()
            {
                return Err(ContextError::DockerfileNotInContext {
                    root: files.root.clone(),
                    rel: rel.clone(),
                });
            }
            for entry in &files.entries {
                tar.entry(&files.root, entry)?;
            }
            rel.clone()
        }
        DockerfileLocation::Outside { path, .. } => {
            let content = fs::read(path).map_err(|source| ContextError::DockerfileUnreadable {
                path: path.clone(),
                source,
            })?;
            let name = injected_name(&content);
            write_with_injected_dockerfile(&mut tar, files, &name, &content)?;
            name
        }
    };
    tar.finish()?;
    Ok(name)
}

/// The name [`write_tar`] gives the Dockerfile in the stream — the Engine API's `dockerfile` parameter, needed
/// before the stream is written.
pub fn dockerfile_name(files: &ContextFiles, dockerfile: &Path) -> Result<String, ContextError> {
    match locate_dockerfile(&files.root, dockerfile)? {
        DockerfileLocation::Inside { rel, .. } => Ok(rel),
        DockerfileLocation::Outside { path, .. } => {
            let content = fs::read(&path).map_err(|source| ContextError::DockerfileUnreadable {
                path: path.clone(),
                source,
            })?;
            Ok(injected_name(&content))
        }
    }
}

/// `.dockerfile.<20 hex>` from the content, so the stream stays deterministic (the docker CLI uses random hex).
fn injected_name(content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!(".dockerfile.{hex}")
}

fn write_with_injected_dockerfile<W: Write>(
    tar: &mut TarWriter<W>,
    files: &ContextFiles,
    name: &str,
    content: &[u8],
) -> Result<(), ContextError> {
    let ignore_at = files
        .entries
        .binary_search_by(|e| e.rel.as_str().cmp(".dockerignore"));
    let ignore_data = match ignore_at {
        Ok(i) => {
            let entry = &files.entries[i];
            if entry.kind != EntryKind::File {
                return Err(ContextError::DockerignoreNotAFile {
                    root: files.root.clone(),
                });
            }
            let path = files.root.join(".dockerignore");
            let (mut file, _) = open_unchanged(&path, entry)?;
            let mut data = Vec::with_capacity(entry.size as usize + name.len() + 2);
            file.read_to_end(&mut data)
                .map_err(|source| ContextError::Unreadable {
                    path: path.clone(),
                    source,
                })?;
            if data.len() as u64 != entry.size {
                return Err(ContextError::FileChanged {
                    path,
                    detail: format!("size was {} bytes, read {}", entry.size, data.len()),
                });
            }
            (entry.mode & 0o7777, data)
        }
        Err(_) => (0o600, b".dockerignore".to_vec()),
    };
    let (ignore_mode, mut ignore_bytes) = ignore_data;
    ignore_bytes.extend_from_slice(format!("\n{name}\n").as_bytes());

    // Merge the two generated files into the sorted entries at their sorted places.
    let mut generated: Vec<(&str, u32, &[u8])> = vec![
        (".dockerignore", ignore_mode, &ignore_bytes),
        (name, 0o600, content),
    ];
    generated.sort_by(|a, b| a.0.cmp(b.0));
    let mut generated = generated.into_iter().peekable();
    for entry in &files.entries {
        while let Some(&(gen_name, mode, data)) = generated.peek() {
            if gen_name > entry.rel.as_str() {
                break;
            }
            tar.data(gen_name, mode, data)?;
            generated.next();
        }
        if entry.rel == ".dockerignore" || entry.rel == name {
            continue;
        }
        tar.entry(&files.root, entry)?;
    }
    for (gen_name, mode, data) in generated {
        tar.data(gen_name, mode, data)?;
    }
    Ok(())
}

fn open_unchanged(path: &Path, entry: &ContextEntry) -> Result<(File, fs::Metadata), ContextError> {
    let file = File::open(path).map_err(|source| ContextError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let meta = file.metadata().map_err(|source| ContextError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let mtime_ns = meta
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec());
    let detail = if !meta.is_file() {
        Some("no longer a regular file".to_owned())
    } else if meta.size() != entry.size {
        Some(format!(
            "size was {} bytes, now {}",
            entry.size,
            meta.size()
        ))
    } else if mtime_ns != entry.mtime_ns || meta.ino() != entry.ino || meta.dev() != entry.dev {
        Some("modified after the context was walked".to_owned())
    } else {
        None
    };
    match detail {
        Some(detail) => Err(ContextError::FileChanged {
            path: path.to_owned(),
            detail,
        }),
        None => Ok((file, meta)),
    }
}

struct TarWriter<W: Write> {
    out: BufWriter<W>,
    /// First name written for each multiply-linked inode: later names become hard links, as in docker.
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> TarWriter<W> {
    fn entry(&mut self, root: &Path, entry: &ContextEntry) -> Result<(), ContextError> {
        let mode = entry.mode & 0o7777;
        match &entry.kind {
            EntryKind::Dir => self.header(
                &format!("{}/", entry.rel),
                tar::EntryType::Directory,
                mode,
                0,
                None,
            ),
            EntryKind::Symlink { target } => {
                self.header(&entry.rel, tar::EntryType::Symlink, mode, 0, Some(target))
            }
            EntryKind::File => {
                let path = root.join(&entry.rel);
                let (file, meta) = open_unchanged(&path, entry)?;
                if meta.nlink() > 1 {
                    let key = (entry.dev, entry.ino);
                    if let Some(first) = self.links.get(&key) {
                        let first = first.clone();
                        return self.header(
                            &entry.rel,
                            tar::EntryType::Link,
                            mode,
                            0,
                            Some(&first),
                        );
                    }
                    self.links.insert(key, entry.rel.clone());
                }
                self.header(&entry.rel, tar::EntryType::Regular, mode, entry.size, None)?;
                self.copy_exact(file, &path, entry.size)
            }
        }
    }

    fn data(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), ContextError> {
        self.header(name, tar::EntryType::Regular, mode, data.len() as u64, None)?;
        self.write(data)?;
        self.pad(data.len() as u64)
    }

    /// Copies exactly `size` bytes; a file that shrinks mid-copy is an error (the stream is then abandoned).
    fn copy_exact(&mut self, mut file: File, path: &Path, size: u64) -> Result<(), ContextError> {
        let mut remaining = size;
        let mut buf = vec![0u8; 64 * 1024];
        while remaining > 0 {
            let want = remaining.min(buf.len() as u64) as usize;
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(ContextError::FileChanged {
                        path: path.to_owned(),
                        detail: format!(
                            "size was {size} bytes, it ended after {}",
                            size - remaining
                        ),
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ContextError::Unreadable {
                        path: path.to_owned(),
                        source,
                    });
                }
            };
            self.write(&buf[..n])?;
            remaining -= n as u64;
        }
        self.pad(size)
    }

    fn header(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        size: u64,
        link: Option<&str>,
    ) -> Result<(), ContextError> {
        if name.len() > 100 {
            self.long_name(tar::EntryType::GNULongName, name)?;
        }
        if let Some(link) = link.filter(|l| l.len() > 100) {
            self.long_name(tar::EntryType::GNULongLink, link)?;
        }
        let mut header = tar::Header::new_gnu();
        // Raw bytes, not `set_path`: that would normalise names and link targets (`a/./b`, trailing `/`).
        let old = header.as_old_mut();
        let name_bytes = name.as_bytes();
        old.name[..name_bytes.len().min(100)]
            .copy_from_slice(&name_bytes[..name_bytes.len().min(100)]);
        if let Some(link) = link {
            let link_bytes = link.as_bytes();
            old.linkname[..link_bytes.len().min(100)]
                .copy_from_slice(&link_bytes[..link_bytes.len().min(100)]);
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(TAR_MTIME);
        header.set_size(size);
        header.set_cksum();
        self.write(header.as_bytes())
    }

    fn long_name(&mut self, kind: tar::EntryType, value: &str) -> Result<(), ContextError> {
        let mut header = tar::Header::new_gnu();
        let marker = b"././@LongLink";
        header.as_old_mut().name[..marker.len()].copy_from_slice(marker);
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let len = value.len() as u64 + 1;
        header.set_size(len);
        header.set_cksum();
        self.write(header.as_bytes())?;
        self.write(value.as_bytes())?;
        self.write(&[0])?;
        self.pad(len)
    }

    fn pad(&mut self, len: u64) -> Result<(), ContextError> {
        let rem = (len % 512) as usize;
        if rem == 0 {
            Ok(())
        } else {
            self.write(&[0u8; 512][..512 - rem])
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ContextError> {
        self.out
            .write_all(bytes)
            .map_err(|source| ContextError::WriteTar { source })
    }

    fn finish(mut self) -> Result<(), ContextError> {
        self.write(&[0u8; 1024])?;
        self.out
            .flush()
            .map_err(|source| ContextError::WriteTar { source })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    // ---- Go helpers ----

    #[test]
    fn go_clean_matches_go() {
        // Cases from Go's path/filepath tests.
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("./", "."),
            ("../", ".."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ];
        for (input, want) in cases {
            assert_eq!(go_clean(input), want, "Clean({input:?})");
        }
        assert_eq!(go_dir("a/b/c"), "a/b");
        assert_eq!(go_dir("dir/file/"), "dir/file");
        assert_eq!(go_dir("file"), ".");
        assert_eq!(go_dir("/"), "/");
    }

    // ---- matcher: moby/patternmatcher's own tables ----

    fn matcher(patterns: &[&str]) -> DockerIgnore {
        DockerIgnore::parse(Path::new(".dockerignore"), &patterns.join("\n")).unwrap()
    }

    /// New() on the raw strings, without ignorefile.ReadAll's normalisation (as moby's tests do).
    fn raw_matcher(patterns: &[&str]) -> Result<DockerIgnore, String> {
        let mut ignore = DockerIgnore {
            patterns: Vec::new(),
            exception_prefixes: Vec::new(),
        };
        for p in patterns {
            ignore.push(p)?;
        }
        Ok(ignore)
    }

    /// moby's `MatchesUsingParentResults` subtest: results chained over Go's `filepath.Dir` of `text`.
    fn using_parent_results(pm: &DockerIgnore, text: &str) -> bool {
        let parent = go_dir(text).into_owned();
        let mut info: Option<Vec<bool>> = None;
        if parent != "." {
            let dirs: Vec<&str> = parent.split('/').collect();
            for i in 0..dirs.len() {
                let mut next = Vec::new();
                pm.eval(&dirs[..=i].join("/"), info.as_deref(), Some(&mut next));
                info = Some(next);
            }
        }
        pm.eval(text, info.as_deref(), None)
    }

    #[test]
    fn moby_matches_table() {
        // (pattern, text, matches with parent results) from moby/patternmatcher TestMatches.
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\\\", "a\\", true),
            ("a\\*b", "a*b", true),
        ];
        for &(pattern, text, want) in cases {
            let pm = raw_matcher(&[pattern]).unwrap();
            assert_eq!(
                using_parent_results(&pm, text),
                want,
                "pattern={pattern:?} text={text:?}"
            );
        }
        let multi: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (
                &[
                    "**",
                    "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                ],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                false,
            ),
            (
                &["**", "!dist/*.whl"],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                false,
            ),
        ];
        for &(patterns, text, want) in multi {
            let pm = raw_matcher(patterns).unwrap();
            assert_eq!(
                using_parent_results(&pm, text),
                want,
                "patterns={patterns:?} text={text:?}"
            );
        }
    }

    #[test]
    fn moby_legacy_matches_table() {
        // Go's filepath.Match table as moby runs it through the deprecated `Matches` (with its parent check).
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("abc", "abc", Some(true)),
            ("*", "abc", Some(true)),
            ("*c", "abc", Some(true)),
            ("a*", "a", Some(true)),
            ("a*", "abc", Some(true)),
            ("a*", "ab/c", Some(true)),
            ("a*/b", "abc/b", Some(true)),
            ("a*/b", "a/c/b", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
            ("ab[c]", "abc", Some(true)),
            ("ab[b-d]", "abc", Some(true)),
            ("ab[e-g]", "abc", Some(false)),
            ("ab[^c]", "abc", Some(false)),
            ("ab[^b-d]", "abc", Some(false)),
            ("ab[^e-g]", "abc", Some(true)),
            ("a\\*b", "a*b", Some(true)),
            ("a\\*b", "ab", Some(false)),
            ("a?b", "a☺b", Some(true)),
            ("a[^a]b", "a☺b", Some(true)),
            ("a???b", "a☺b", Some(false)),
            ("a[^a][^a][^a]b", "a☺b", Some(false)),
            ("[a-ζ]*", "α", Some(true)),
            ("*[a-ζ]", "A", Some(false)),
            ("a?b", "a/b", Some(false)),
            ("a*b", "a/b", Some(false)),
            ("[\\]a]", "]", Some(true)),
            ("[\\-]", "-", Some(true)),
            ("[x\\-]", "x", Some(true)),
            ("[x\\-]", "-", Some(true)),
            ("[x\\-]", "z", Some(false)),
            ("[\\-x]", "x", Some(true)),
            ("[\\-x]", "-", Some(true)),
            ("[\\-x]", "a", Some(false)),
            ("[]a]", "]", None),
            ("[-]", "-", None),
            ("[x-]", "x", None),
            ("[x-]", "-", None),
            ("[x-]", "z", None),
            ("[-x]", "x", None),
            ("[-x]", "-", None),
            ("[-x]", "a", None),
            ("\\", "a", None),
            ("[a-b-c]", "a", None),
            ("[", "a", None),
            ("[^", "a", None),
            ("[^bc", "a", None),
            ("a[", "a", None),
            ("a[", "ab", None),
            ("*x", "xxx", Some(true)),
        ];
        for &(pattern, text, want) in cases {
            match (raw_matcher(&[pattern]), want) {
                (Ok(pm), Some(want)) => {
                    assert_eq!(
                        pm.legacy_matches(text),
                        want,
                        "pattern={pattern:?} text={text:?}"
                    )
                }
                (Err(_), None) => {}
                (result, want) => panic!(
                    "pattern={pattern:?}: got {:?}, want {want:?}",
                    result.map(|_| ())
                ),
            }
        }
        // moby's other single-function tests.
        assert!(raw_matcher(&["*"]).unwrap().legacy_matches("fileutils.go"));
        assert!(
            raw_matcher(&["!fileutils.go", "*.go"])
                .unwrap()
                .legacy_matches("fileutils.go")
        );
        assert!(
            !raw_matcher(&["docs", "!docs/README.md"])
                .unwrap()
                .legacy_matches("docs/README.md")
        );
        assert!(
            !raw_matcher(&["docs/", "!docs/README.md"])
                .unwrap()
                .legacy_matches("docs/README.md")
        );
        assert!(
            !raw_matcher(&["docs/*", "!docs/README.md"])
                .unwrap()
                .legacy_matches("docs/README.md")
        );
        assert!(
            !raw_matcher(&["*.go", "!fileutils.go"])
                .unwrap()
                .legacy_matches("fileutils.go")
        );
        assert!(!raw_matcher(&["*.go"]).unwrap().legacy_matches("."));
        assert!(raw_matcher(&["!"]).is_err());
        assert!(
            raw_matcher(&["docs", "  !docs/README.md"])
                .unwrap()
                .has_exceptions()
        );
        assert!(
            raw_matcher(&["docs", "!docs/README.md  "])
                .unwrap()
                .has_exceptions()
        );
        assert_eq!(
            raw_matcher(&["docs", "config", ""]).unwrap().patterns.len(),
            2
        );
    }

    #[test]
    fn moby_compile_table() {
        let cases: &[(&str, MatchType, &str)] = &[
            ("*", MatchType::Regexp, "^[^/]*$"),
            ("file*", MatchType::Regexp, "^file[^/]*$"),
            ("*file", MatchType::Regexp, "^[^/]*file$"),
            ("a*/b", MatchType::Regexp, "^a[^/]*/b$"),
            ("**", MatchType::Suffix, ""),
            ("**/**", MatchType::Regexp, "^(.*/)?.*$"),
            ("dir/**", MatchType::Prefix, ""),
            ("**/dir", MatchType::Suffix, ""),
            ("**/dir2/*", MatchType::Regexp, "^(.*/)?dir2/[^/]*$"),
            ("**/dir2/**", MatchType::Regexp, "^(.*/)?dir2/.*$"),
            ("**file", MatchType::Suffix, ""),
            ("**/file*txt", MatchType::Regexp, "^(.*/)?file[^/]*txt$"),
            (
                "**/**/*.txt",
                MatchType::Regexp,
                "^(.*/)?(.*/)?[^/]*\\.txt$",
            ),
            ("a[b-d]e", MatchType::Regexp, "^a[b-d]e$"),
            (".*", MatchType::Regexp, "^\\.[^/]*$"),
            ("abc.def", MatchType::Exact, ""),
            ("abc?def", MatchType::Regexp, "^abc[^/]def$"),
            ("**/foo/bar", MatchType::Suffix, ""),
            ("a(b)c/def", MatchType::Exact, ""),
            ("a.|)$(}+{bc", MatchType::Exact, ""),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                MatchType::Exact,
                "",
            ),
        ];
        for &(pattern, kind, regex) in cases {
            let (got_kind, got_regex) = moby_compile(&go_clean(pattern));
            assert_eq!(got_kind, kind, "{pattern}");
            if kind == MatchType::Regexp {
                assert_eq!(got_regex, regex, "{pattern}");
                GoRegex::translate(&got_regex).unwrap();
            }
        }
    }

    #[test]
    fn moby_regression_malformed_class_is_rejected() {
        // moby/moby#52203: passes filepath.Match's check but Go's regexp rejects the `l-O` range.
        let err = raw_matcher(&["[Local-Only]/"]).unwrap_err();
        assert!(err.contains("invalid character class range"), "{err}");
    }

    // ---- matcher: the Go-regexp dialect, character by character ----

    fn pattern_matches(pattern: &str, path: &str) -> bool {
        Pattern::new(pattern).unwrap().unwrap().matches(path)
    }

    #[test]
    fn bang_inside_brackets_is_literal_and_caret_negates() {
        assert!(pattern_matches("[!x]", "!"));
        assert!(pattern_matches("[!x]", "x"));
        assert!(!pattern_matches("[!x]", "a"));
        assert!(pattern_matches("[^x]", "a"));
        assert!(!pattern_matches("[^x]", "x"));
        assert!(pattern_matches("[^x]", "!"));
    }

    #[test]
    fn star_and_question_never_cross_slash() {
        assert!(pattern_matches("*.txt", "a.txt"));
        assert!(!pattern_matches("*.txt", "dir/a.txt"));
        assert!(pattern_matches("*/*.txt", "dir/a.txt"));
        assert!(!pattern_matches("a?b", "a/b"));
        assert!(pattern_matches("**/*.txt", "x/y/z/a.txt"));
        assert!(pattern_matches("**/*.txt", "a.txt"));
        assert!(pattern_matches("x/**/y", "x/y"));
        assert!(pattern_matches("x/**/y", "x/a/b/y"));
        assert!(!pattern_matches("x/**/y", "x/ay"));
    }

    #[test]
    fn suffix_match_is_a_plain_string_suffix() {
        // `**file` is a suffix match in moby, so it also matches `myfile` (the regex alone would not).
        assert!(pattern_matches("**file", "dir/myfile"));
        assert!(pattern_matches("**.log", "a/b.log"));
        assert!(pattern_matches("**/dir", "dir"));
        assert!(!pattern_matches("**/dir", "xdir"));
    }

    #[test]
    fn brackets_absorb_moby_expansions_like_go_regexp() {
        // `a[*]` becomes the Go regexp `^a[[^/]*]$`: the class `[[^/]` repeated, then a literal `]`.
        assert!(pattern_matches("a[*]", "a]"));
        assert!(pattern_matches("a[*]", "a[[^]"));
        assert!(!pattern_matches("a[*]", "a*"));
        assert!(!pattern_matches("a[*]", "a"));
        // `[?]` becomes `^[[^/]]$`: one of `[`, `^`, `/`, then `]`.
        assert!(pattern_matches("[?]", "[]"));
        assert!(!pattern_matches("[?]", "x"));
        // `[**]` becomes `^[(.*/)?]$`.
        assert!(pattern_matches("[**]", "("));
        assert!(pattern_matches("[**]", "?"));
        assert!(!pattern_matches("[**]", "x"));
        // `[.]` is a class holding `\.`, i.e. a dot.
        assert!(pattern_matches("a[.]b", "a.b"));
        assert!(!pattern_matches("a[.]b", "axb"));
    }

    #[test]
    fn go_regexp_escapes_and_classes() {
        assert!(pattern_matches("a\\*b", "a*b"));
        assert!(!pattern_matches("a\\*b", "axb"));
        assert!(pattern_matches("\\[x\\]", "[x]"));
        assert!(pattern_matches("[[:digit:]]x", "5x"));
        assert!(!pattern_matches("[[:digit:]]x", "ax"));
        assert!(pattern_matches("[[:^digit:]]x", "ax"));
        // Go's Perl classes and escapes are ASCII and mean what they mean in RE2, not in filepath.Match.
        assert!(pattern_matches("\\d", "7"));
        assert!(!pattern_matches("\\d", "d"));
        assert!(!pattern_matches("\\d", "٣"));
        assert!(pattern_matches("\\w\\W", "a-"));
        assert!(pattern_matches("a\\x41", "aA"));
        assert!(pattern_matches("a\\101", "aA"));
        assert!(pattern_matches("\\<", "<"));
        assert!(pattern_matches("\\pL", "é"));
        // `\Q...\E` quotes moby's own expansion of `*`, so it matches that text literally.
        assert!(pattern_matches("\\Qa*\\E", "a[^/]*"));
        assert!(!pattern_matches("\\Qa*\\E", "a*"));
        // `\b` is a word boundary: `a\b` matches `a` at the end of the name.
        assert!(pattern_matches("a\\b", "a"));
        // A `^` outside a class is an anchor in the middle of the regexp: it never matches.
        assert!(!pattern_matches("a^b*", "a^b"));
        // ...but the same text without a regexp character is an exact match.
        assert!(pattern_matches("a^b", "a^b"));
        assert!(pattern_matches("[a-c]*/[!_]", "b/_"));
        assert!(
            Pattern::new("[!-]").is_err(),
            "filepath.Match rejects a range with no end"
        );
        assert!(pattern_matches("\u{feff}x*", "xy"));
    }

    #[test]
    fn patterns_that_go_regexp_rejects() {
        // `\p{Greek}` too: moby escapes the braces, and Go reads `\p\{` as the unknown class `\`.
        for pattern in [
            "[z-a]",
            "\\q",
            "\\1",
            "\\C",
            "[[:nope:]]",
            "a\\xZZ",
            "\\p{greek}",
            "x[\\b]",
            "\\p{Greek}",
        ] {
            assert!(
                Pattern::new(pattern).is_err(),
                "{pattern} should be rejected"
            );
        }
    }

    // ---- matcher: .dockerignore file semantics ----

    #[test]
    fn file_syntax_comments_blank_lines_whitespace() {
        let text = "\u{feff}# comment\n\n   \n  build  \r\n #not-a-comment\n! keep.txt\n/abs/path/\n./dot/../x//y/\n";
        let ignore = DockerIgnore::parse(Path::new(".dockerignore"), text).unwrap();
        let cleaned: Vec<(&str, bool)> = ignore
            .patterns
            .iter()
            .map(|p| (p.cleaned.as_str(), p.exclusion))
            .collect();
        assert_eq!(
            cleaned,
            [
                ("build", false),
                ("#not-a-comment", false),
                ("keep.txt", true),
                ("abs/path", false),
                ("x/y", false)
            ]
        );
        assert!(ignore.has_exceptions());
        assert!(ignore.is_excluded("abs/path/file"));
        assert!(ignore.is_excluded("#not-a-comment"));
    }

    #[test]
    fn invalid_pattern_names_file_line_and_pattern() {
        let err =
            DockerIgnore::parse(Path::new("ctx/.dockerignore"), "ok\n# c\n  a[b  \n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ctx/.dockerignore:3: invalid pattern `a[b`: unterminated `[` character class"
        );
        let err = DockerIgnore::parse(Path::new(".dockerignore"), "x\n!\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            ".dockerignore:2: invalid pattern `!`: a lone `!` is not a pattern (docker rejects it)"
        );
        let err = DockerIgnore::parse(Path::new(".dockerignore"), "[z-a]").unwrap_err();
        assert!(err.to_string().starts_with(
            ".dockerignore:1: invalid pattern `[z-a]`: invalid character class range"
        ));
        let long = "x".repeat(70_000);
        let err =
            DockerIgnore::parse(Path::new(".dockerignore"), &format!("a\n{long}\n")).unwrap_err();
        assert!(
            matches!(err, ContextError::IgnoreLineTooLong { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn parent_directory_matching_and_last_rule_wins() {
        let ignore = matcher(&["docs", "*.md", "!README.md", "README.md"]);
        assert!(ignore.is_excluded("docs"));
        assert!(ignore.is_excluded("docs/a/b.txt"));
        assert!(ignore.is_excluded("CHANGES.md"));
        assert!(ignore.is_excluded("README.md"));
        assert!(!ignore.is_excluded("sub/CHANGES.md"));
        assert!(!ignore.is_excluded("src/main.rs"));
        let ignore = matcher(&["*.md", "!README.md"]);
        assert!(!ignore.is_excluded("README.md"));
    }

    #[test]
    fn exception_reincludes_below_excluded_directory() {
        let ignore = matcher(&["vendor", "!vendor/keep/**"]);
        assert!(ignore.is_excluded("vendor"));
        assert!(ignore.is_excluded("vendor/other.go"));
        assert!(ignore.is_excluded("vendor/keep"));
        assert!(!ignore.is_excluded("vendor/keep/a.go"));
        assert!(!ignore.is_excluded("vendor/keep/deep/b.go"));
    }

    #[test]
    fn excluded_directory_is_pruned_unless_an_exception_starts_with_it() {
        // Docker prunes `src` (excluded by `*`) because no `!` rule literally starts with `src/`,
        // so `!**/*.go` cannot bring `src/main.go` back.
        let ignore = matcher(&["*", "!**/*.go"]);
        assert!(!ignore.is_excluded("main.go"));
        assert!(ignore.is_excluded("src/main.go"));
        assert!(
            !ignore.matches("src/main.go"),
            "the rules alone re-include it"
        );
        assert!(ignore.matches("src"));
        // `src/` is walked into, but `src/a` is excluded again by the inherited `*` and pruned.
        let ignore = matcher(&["*", "!src/**/*.go"]);
        assert!(!ignore.is_excluded("src/main.go"));
        assert!(ignore.is_excluded("src/a/b.go"));
        assert!(ignore.is_excluded("src/a/b.rs"));
        let ignore = matcher(&["*", "!src", "src/a", "!src/a/**/*.go"]);
        assert!(!ignore.is_excluded("src/x.rs"));
        assert!(!ignore.is_excluded("src/a/b.go"));
        assert!(ignore.is_excluded("src/a/b.rs"));
    }

    #[test]
    fn trailing_slash_means_nothing() {
        let ignore = matcher(&["build/"]);
        assert!(ignore.is_excluded("build"));
        assert!(ignore.is_excluded("build/out.o"));
        let ignore = matcher(&["/build/"]);
        assert!(ignore.is_excluded("build/out.o"));
        assert!(!ignore.is_excluded("sub/build/out.o"));
    }

    #[test]
    fn keep_build_files_adds_docker_cli_exceptions() {
        let rules = IgnoreRules {
            source: Some(PathBuf::from(".dockerignore")),
            text: "*\n".to_owned(),
        };
        let inside = DockerfileLocation::Inside {
            path: PathBuf::from("/ctx/Dockerfile"),
            rel: "Dockerfile".into(),
        };
        let ignore = DockerIgnore::for_build(&rules, &inside).unwrap();
        assert!(!ignore.is_excluded(".dockerignore"));
        assert!(!ignore.is_excluded("Dockerfile"));
        assert!(ignore.is_excluded("other"));
        let nested = DockerfileLocation::Inside {
            path: PathBuf::from("/ctx/deploy/docker/api.Dockerfile"),
            rel: "deploy/docker/api.Dockerfile".into(),
        };
        let ignore = DockerIgnore::for_build(&rules, &nested).unwrap();
        assert!(!ignore.is_excluded("deploy/docker/api.Dockerfile"));
        assert!(ignore.is_excluded("deploy/docker/other"));
        // Nothing to keep: no rule is added.
        let rules = IgnoreRules {
            source: None,
            text: "tmp\n".to_owned(),
        };
        let ignore = DockerIgnore::for_build(&rules, &inside).unwrap();
        assert!(!ignore.has_exceptions());
    }

    // ---- walk ----

    fn write(root: &Path, rel: &str, content: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn rels(files: &ContextFiles) -> Vec<&str> {
        files.entries.iter().map(|e| e.rel.as_str()).collect()
    }

    #[test]
    fn walk_applies_rules_and_sorts_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        write(
            root,
            ".dockerignore",
            "*.log\nvendor\n!vendor/keep.txt\nnode_modules\n",
        );
        write(root, "a.log", "x");
        write(root, "a-b", "x");
        write(root, "a/b", "x");
        write(root, "src/app.log", "kept: *.log does not cross /");
        write(root, "vendor/keep.txt", "kept");
        write(root, "vendor/drop.txt", "dropped");
        write(root, "node_modules/x/y.js", "dropped");
        fs::create_dir(root.join("empty")).unwrap();
        let files = walk(root, &root.join("Dockerfile")).unwrap();
        assert_eq!(
            rels(&files),
            [
                ".dockerignore",
                "Dockerfile",
                "a",
                "a-b",
                "a/b",
                "empty",
                "src",
                "src/app.log",
                "vendor/keep.txt"
            ]
        );
        assert_eq!(files.root, fs::canonicalize(root).unwrap());
        assert_eq!(files.ignore.source, Some(files.root.join(".dockerignore")));
        let a_b = &files.entries[3];
        assert_eq!(a_b.kind, EntryKind::File);
        assert_eq!(a_b.size, 1);
        let meta = fs::symlink_metadata(root.join("a-b")).unwrap();
        assert_eq!(
            (a_b.ino, a_b.dev, a_b.mode),
            (meta.ino(), meta.dev(), meta.mode())
        );
        assert_eq!(
            a_b.mtime_ns,
            meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
        );
        let empty = files.entries.iter().find(|e| e.rel == "empty").unwrap();
        assert_eq!((empty.kind.clone(), empty.size), (EntryKind::Dir, 0));
    }

    #[test]
    fn walk_keeps_ignored_dockerfile_and_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "deploy/api.Dockerfile", "FROM scratch\n");
        write(
            root,
            ".dockerignore",
            ".dockerignore\ndeploy\n**/*.Dockerfile\n",
        );
        write(root, "deploy/other", "x");
        write(root, "src/x", "x");
        let files = walk(root, &root.join("deploy/api.Dockerfile")).unwrap();
        assert_eq!(
            rels(&files),
            [".dockerignore", "deploy/api.Dockerfile", "src", "src/x"]
        );
    }

    #[test]
    fn walk_keeps_dockerfile_even_where_docker_would_prune_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "a/b/c/Dockerfile", "FROM scratch\n");
        write(root, ".dockerignore", "**/c\n");
        let files = walk(root, &root.join("a/b/c/Dockerfile")).unwrap();
        assert_eq!(
            rels(&files),
            [".dockerignore", "a", "a/b", "a/b/c/Dockerfile"]
        );
    }

    #[test]
    fn walk_keeps_symlinks_as_links_and_never_leaves_the_context() {
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret/data.txt", "outside");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        write(root, "real/file", "x");
        symlink(outside.path().join("secret"), root.join("escape")).unwrap();
        symlink("real", root.join("inner")).unwrap();
        symlink("does/not/exist", root.join("dangling")).unwrap();
        let files = walk(root, &root.join("Dockerfile")).unwrap();
        assert_eq!(
            rels(&files),
            [
                "Dockerfile",
                "dangling",
                "escape",
                "inner",
                "real",
                "real/file"
            ]
        );
        let escape = files.entries.iter().find(|e| e.rel == "escape").unwrap();
        assert_eq!(
            escape.kind,
            EntryKind::Symlink {
                target: outside.path().join("secret").to_str().unwrap().to_owned()
            }
        );
        assert_eq!(escape.mode & 0o170000, 0o120000);
        let inner = files.entries.iter().find(|e| e.rel == "inner").unwrap();
        assert_eq!(
            inner.kind,
            EntryKind::Symlink {
                target: "real".to_owned()
            }
        );
    }

    #[test]
    fn dockerfile_specific_ignore_file_takes_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "deploy/docker/api.Dockerfile", "FROM scratch\n");
        write(root, "deploy/docker/api.Dockerfile.dockerignore", "web\n");
        write(root, ".dockerignore", "api\n");
        write(root, "api/main.go", "x");
        write(root, "web/index.html", "x");
        let dockerfile = root.join("deploy/docker/api.Dockerfile");
        let rules = read_ignore_rules(root, &dockerfile).unwrap();
        assert_eq!(
            rules.source,
            Some(root.join("deploy/docker/api.Dockerfile.dockerignore"))
        );
        assert_eq!(rules.text, "web\n");
        let files = walk(root, &dockerfile).unwrap();
        assert!(rels(&files).contains(&"api/main.go"));
        assert!(!rels(&files).contains(&"web/index.html"));
        // Without it, the context's own file applies.
        fs::remove_file(root.join("deploy/docker/api.Dockerfile.dockerignore")).unwrap();
        let files = walk(root, &dockerfile).unwrap();
        assert!(!rels(&files).contains(&"api/main.go"));
        assert!(rels(&files).contains(&"web/index.html"));
        // Neither file: no rules.
        fs::remove_file(root.join(".dockerignore")).unwrap();
        assert_eq!(
            read_ignore_rules(root, &dockerfile).unwrap(),
            IgnoreRules::default()
        );
    }

    #[test]
    fn walk_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        let missing = root.join("nope");
        let err = walk(&missing, &root.join("Dockerfile")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("build context `{}` does not exist", missing.display())
        );
        let err = walk(&root.join("Dockerfile"), &root.join("Dockerfile")).unwrap_err();
        assert!(
            matches!(err, ContextError::ContextNotDirectory { .. }),
            "{err:?}"
        );
        let err = walk(root, &root.join("Missing.Dockerfile")).unwrap_err();
        assert!(
            matches!(err, ContextError::DockerfileMissing { .. }),
            "{err:?}"
        );
        write(root, ".dockerignore", "a\n[\n");
        let err = walk(root, &root.join("Dockerfile")).unwrap_err();
        assert!(
            err.to_string()
                .contains(".dockerignore:2: invalid pattern `[`"),
            "{err}"
        );
    }

    #[test]
    fn non_utf8_names_error_unless_excluded() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        let bad = root.join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
        fs::write(&bad, "x").unwrap();
        let err = walk(root, &root.join("Dockerfile")).unwrap_err();
        assert!(matches!(err, ContextError::NonUtf8Path { .. }), "{err:?}");
        write(root, ".dockerignore", "bad*\n");
        let files = walk(root, &root.join("Dockerfile")).unwrap();
        assert_eq!(rels(&files), [".dockerignore", "Dockerfile"]);
    }

    #[test]
    fn unreadable_directory_is_an_error_unless_only_walked_for_exceptions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        write(root, "locked/file", "x");
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let readable = fs::read_dir(root.join("locked")).is_ok(); // true when running as root
        let result = walk(root, &root.join("Dockerfile"));
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
        if readable {
            assert!(result.is_ok());
        } else {
            let err = result.unwrap_err();
            assert!(err.to_string().starts_with("cannot read `"), "{err}");
            assert!(err.to_string().contains("locked"), "{err}");
        }
    }

    // ---- tar ----

    fn tar_entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, u32, String, Vec<u8>)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8(l.into_owned()).unwrap())
                    .unwrap_or_default();
                let header = e.header();
                let (kind, mode) = (header.entry_type(), header.mode().unwrap());
                assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
                assert_eq!(header.mtime().unwrap(), TAR_MTIME);
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (path, kind, mode, link, data)
            })
            .collect()
    }

    #[test]
    fn tar_is_deterministic_and_faithful() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
        write(root, "bin/run.sh", "#!/bin/sh\n");
        fs::set_permissions(root.join("bin/run.sh"), fs::Permissions::from_mode(0o750)).unwrap();
        write(root, "with space.txt", "s p a c e");
        let long_dir = "d".repeat(60);
        let long_name = format!("{long_dir}/{}", "f".repeat(80));
        write(root, &long_name, "long");
        symlink("../../escape/./x/", root.join("link")).unwrap();
        symlink("t".repeat(150), root.join("longlink")).unwrap();
        fs::hard_link(root.join("with space.txt"), root.join("z-hardlink")).unwrap();
        let files = walk(root, &root.join("Dockerfile")).unwrap();
        let mut first = Vec::new();
        let name = write_tar(&files, &root.join("Dockerfile"), &mut first).unwrap();
        assert_eq!(name, "Dockerfile");
        let mut second = Vec::new();
        write_tar(
            &walk(root, &root.join("Dockerfile")).unwrap(),
            &root.join("Dockerfile"),
            &mut second,
        )
        .unwrap();
        assert_eq!(first, second, "two runs give the same bytes");

        let entries = tar_entries(&first);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "Dockerfile",
                "bin/",
                "bin/run.sh",
                &format!("{long_dir}/"),
                &long_name,
                "link",
                "longlink",
                "with space.txt",
                "z-hardlink"
            ]
        );
        let by_name = |n: &str| entries.iter().find(|e| e.0 == n).unwrap();
        assert_eq!(by_name("bin/run.sh").2, 0o750);
        assert_eq!(by_name("bin/run.sh").4, b"#!/bin/sh\n");
        assert_eq!(by_name("bin/").1, tar::EntryType::Directory);
        assert_eq!(by_name(&long_name).4, b"long");
        assert_eq!(
            (by_name("link").1, by_name("link").3.as_str()),
            (tar::EntryType::Symlink, "../../escape/./x/")
        );
        assert_eq!(by_name("longlink").3, "t".repeat(150));
        assert_eq!(by_name("with space.txt").4, b"s p a c e");
        assert_eq!(
            (by_name("z-hardlink").1, by_name("z-hardlink").3.as_str()),
            (tar::EntryType::Link, "with space.txt")
        );
    }

    #[test]
    fn tar_adds_an_outside_dockerfile_like_the_docker_cli() {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("api");
        write(&context, "main.go", "package main\n");
        let dockerfile = dir.path().join("deploy/docker/api.Dockerfile");
        write(
            dir.path(),
            "deploy/docker/api.Dockerfile",
            "FROM scratch\nCOPY . /ctx/\n",
        );
        let files = walk(&context, &dockerfile).unwrap();
        assert_eq!(rels(&files), ["main.go"]);
        let mut bytes = Vec::new();
        let name = write_tar(&files, &dockerfile, &mut bytes).unwrap();
        let digest = Sha256::digest(b"FROM scratch\nCOPY . /ctx/\n");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(name, format!(".dockerfile.{}", &hex[..20]));
        let entries = tar_entries(&bytes);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                ".dockerfile.".to_owned() + &hex[..20],
                ".dockerignore".to_owned(),
                "main.go".to_owned()
            ]
        );
        assert_eq!(entries[0].4, b"FROM scratch\nCOPY . /ctx/\n");
        assert_eq!(entries[0].2, 0o600);
        assert_eq!(
            String::from_utf8(entries[1].4.clone()).unwrap(),
            format!(".dockerignore\n{name}\n")
        );

        // An existing .dockerignore gets the name appended, keeping its content and mode.
        write(&context, ".dockerignore", "*.tmp");
        fs::set_permissions(
            context.join(".dockerignore"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let files = walk(&context, &dockerfile).unwrap();
        let mut bytes = Vec::new();
        write_tar(&files, &dockerfile, &mut bytes).unwrap();
        let entries = tar_entries(&bytes);
        let ignore = entries.iter().find(|e| e.0 == ".dockerignore").unwrap();
        assert_eq!(
            String::from_utf8(ignore.4.clone()).unwrap(),
            format!("*.tmp\n{name}\n")
        );
        assert_eq!(ignore.2, 0o644);
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn tar_refuses_a_file_that_changed_since_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        write(root, "data", "12345");
        let files = walk(root, &root.join("Dockerfile")).unwrap();
        write(root, "data", "1234567890");
        let err = write_tar(&files, &root.join("Dockerfile"), Vec::new()).unwrap_err();
        match &err {
            ContextError::FileChanged { path, detail } => {
                assert_eq!(path, &files.root.join("data"));
                assert_eq!(detail, "size was 5 bytes, now 10");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            err.to_string()
                .contains("changed while the build context was being sent")
        );
    }

    #[test]
    fn tar_needs_the_dockerfile_in_the_walked_set() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "x", "1");
        let files = walk(root, &root.join("x")).unwrap();
        write(root, "Dockerfile", "FROM scratch\n");
        let err = write_tar(&files, &root.join("Dockerfile"), Vec::new()).unwrap_err();
        assert!(
            matches!(err, ContextError::DockerfileNotInContext { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn tar_reports_writer_failures() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "receiver gone"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", &"x".repeat(300_000));
        let files = walk(root, &root.join("Dockerfile")).unwrap();
        let err = write_tar(&files, &root.join("Dockerfile"), Broken).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot write the build context tar stream: receiver gone"
        );
    }
}
