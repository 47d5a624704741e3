//! Build context: the parts of Go's `path/filepath` that docker applies to `.dockerignore` patterns, ported
//! exactly — `Clean`, `Dir` and `Match`'s syntax check (a path or pattern → a cleaned path, or why Go rejects
//! it). Pure string work: it touches no file and knows nothing of patterns beyond Go's syntax.

/// Go's `filepath.Clean` on Unix: collapse `//`, drop `.`, resolve `..` lexically, no trailing `/`.
pub(super) fn go_clean(path: &str) -> String {
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
pub(super) fn go_dir(path: &str) -> std::borrow::Cow<'_, str> {
    match path.rfind('/') {
        None => ".".into(),
        Some(i) => go_clean(&path[..=i]).into(),
    }
}

/// Syntax check of Go's `filepath.Match(pattern, ".")`: an error for exactly the patterns Go rejects.
pub(super) fn validate_match_syntax(pattern: &str) -> Result<(), &'static str> {
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
