//! Build context: Go's regexp syntax (RE2, Perl flags) → the same expression in `regex` crate syntax. moby
//! compiles each `.dockerignore` pattern to a Go regular expression; this re-reads that text with Go's parsing
//! rules and re-emits it, so brackets, escapes and classes mean what they mean in Go, and what Go rejects is
//! rejected. Pure string work: it knows nothing of patterns, paths or files.

const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Re-reads a Go regular expression with Go's parsing rules and writes an equivalent `regex` crate pattern.
/// Only Go's default (Perl) flags are needed: moby never emits flag groups.
pub(super) struct GoRegex {
    chars: Vec<char>,
    pos: usize,
}

impl GoRegex {
    pub(super) fn translate(go: &str) -> Result<String, String> {
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
