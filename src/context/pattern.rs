//! Build context: one `.dockerignore` pattern as moby/patternmatcher compiles it — a cleaned pattern → its match
//! type (exact, prefix, suffix or Go regexp) and a matcher for `/`-separated relative paths. It reads no file and
//! knows nothing of rule order, exceptions or parent directories (the whole rule set is `dockerignore`'s).

use regex::Regex;

use super::filepath::{go_clean, validate_match_syntax};
use super::go_regex::GoRegex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

/// moby/patternmatcher `Pattern.compile`: the match type and the Go regular expression for a pattern.
pub(super) fn moby_compile(pattern: &str) -> (MatchType, String) {
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

#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Prefix(String),
    /// Bytes, because Go slices the pattern bytewise (`cleanedPattern[2:]`).
    Suffix(Vec<u8>),
    Regex(Regex),
}

#[derive(Debug, Clone)]
pub(super) struct Pattern {
    /// moby's `cleanedPattern` (without the `!`): used for the "can this excluded directory be pruned" test.
    pub(super) cleaned: String,
    /// Number of `/`-separated parts of `cleaned` (moby's `len(dirs)`), for the legacy parent check.
    pub(super) dirs: usize,
    pub(super) exclusion: bool,
    matcher: Matcher,
}

impl Pattern {
    /// `patternmatcher.New` for one pattern; `None` for a blank one.
    pub(super) fn new(raw: &str) -> Result<Option<Pattern>, String> {
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

    pub(super) fn matches(&self, path: &str) -> bool {
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
