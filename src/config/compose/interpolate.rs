//! Compose import, variables: `${VAR}` interpolation and the `.env`/`env_file` format, as compose reads them →
//! strings, with where each value came from. Pure: the caller supplies the variables.

use crate::event::VariableSource as Source;

/// One variable reference that was substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub name: String,
    pub source: Source,
}

/// Looks a variable up: its value and where it came from, or `None` when unset.
pub type Lookup<'a> = dyn Fn(&str) -> Option<(String, Source)> + 'a;

/// Interpolates `text` like compose: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
/// `${VAR?error}`, `${VAR:+alternative}`, `${VAR+alternative}` (defaults and alternatives may hold references
/// themselves) and `$$` for a literal `$`. Every reference used is appended to `uses`. Errors say why (a
/// required variable is unset, a `$` that starts no reference).
pub fn interpolate(text: &str, lookup: &Lookup<'_>, uses: &mut Vec<Use>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(inner_start) = after.strip_prefix('{') {
            let end = closing_brace(inner_start)
                .ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
            out.push_str(&braced(&inner_start[..end], text, lookup, uses)?);
            rest = &inner_start[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                return Err(format!(
                    "`$` in `{text}` starts no variable; write `$$` for a literal `$`"
                ));
            }
            out.push_str(&plain(&after[..len], lookup, uses));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The byte index of the `}` that closes a `${`, counting nested `${…}`.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn name_len(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

fn plain(name: &str, lookup: &Lookup<'_>, uses: &mut Vec<Use>) -> String {
    match lookup(name) {
        Some((value, source)) => {
            uses.push(Use {
                name: name.to_string(),
                source,
            });
            value
        }
        None => {
            uses.push(Use {
                name: name.to_string(),
                source: Source::Unset,
            });
            String::new()
        }
    }
}

fn braced(
    inner: &str,
    text: &str,
    lookup: &Lookup<'_>,
    uses: &mut Vec<Use>,
) -> Result<String, String> {
    let len = name_len(inner);
    if len == 0 {
        return Err(format!("`${{{inner}}}` in `{text}` names no variable"));
    }
    let (name, op) = inner.split_at(len);
    if op.is_empty() {
        return Ok(plain(name, lookup, uses));
    }
    let (colon, op) = match op.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, op),
    };
    let mut chars = op.chars();
    let kind = chars.next();
    let arg = chars.as_str();
    let value = lookup(name);
    // With `:`, an empty value counts as unset.
    let set = match &value {
        Some((v, _)) => !(colon && v.is_empty()),
        None => false,
    };
    let used = |uses: &mut Vec<Use>, source| {
        uses.push(Use {
            name: name.to_string(),
            source,
        })
    };
    match (kind, value) {
        (Some('-'), Some((v, source))) if set => {
            used(uses, source);
            Ok(v)
        }
        (Some('-'), _) => {
            used(uses, Source::Default);
            interpolate(arg, lookup, uses)
        }
        (Some('?'), Some((v, source))) if set => {
            used(uses, source);
            Ok(v)
        }
        (Some('?'), _) => {
            let message = interpolate(arg, lookup, uses)?;
            Err(format!(
                "required variable `{name}` is not set{}",
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ))
        }
        (Some('+'), Some((_, source))) if set => {
            used(uses, source);
            interpolate(arg, lookup, uses)
        }
        (Some('+'), _) => {
            used(uses, Source::Unset);
            Ok(String::new())
        }
        _ => Err(format!(
            "`${{{inner}}}` in `{text}` is not a supported reference (`${{VAR}}`, `${{VAR:-default}}`, `${{VAR:?error}}`, `${{VAR:+value}}`)"
        )),
    }
}

/// One assignment of an env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line of the name.
    pub line: usize,
    pub name: String,
    /// `None` for a name alone (`VAR`): compose leaves the variable unset.
    pub value: Option<String>,
}

/// Reads an env file (`.env`, `env_file:`) the way compose does: `#` comments and blank lines skipped, an
/// optional `export `, `VAR=VAL`; unquoted values end at ` #` and are trimmed; `'…'` is literal (`\'` is a
/// quote); `"…"` takes `\n`, `\r`, `\t`, `\\`, `\"`, `\$` and may span lines. Unquoted and double-quoted values
/// are interpolated with `lookup`, after the file's own earlier assignments (unless `raw`). Errors carry the line.
pub fn read_env_file(
    text: &str,
    raw: bool,
    lookup: &Lookup<'_>,
    uses: &mut Vec<Use>,
) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries: Vec<Entry> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut n = 0;
    while n < lines.len() {
        let line_no = n + 1;
        let line = lines[n].trim_start();
        n += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once('=') else {
            let name = line.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err((line_no, format!("`{name}` is not `NAME=value`")));
            }
            entries.push(Entry {
                line: line_no,
                name: name.to_string(),
                value: None,
            });
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err((line_no, format!("`{name}` is not a variable name")));
        }
        let value = value.trim_start();
        let earlier: Vec<(String, Option<String>)> = entries
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect();
        let scoped = |k: &str| -> Option<(String, Source)> {
            match earlier.iter().rev().find(|(n, _)| n == k) {
                Some((_, Some(v))) => Some((v.clone(), Source::DotEnv)),
                _ => lookup(k),
            }
        };
        let value = if raw {
            value.trim_end().to_string()
        } else if let Some(body) = value.strip_prefix('\'') {
            let mut out = String::new();
            let mut text = body.to_string();
            loop {
                if let Some(v) = single_quoted(&text) {
                    out.push_str(&v);
                    break;
                }
                if n >= lines.len() {
                    return Err((line_no, "unterminated `'`".to_string()));
                }
                text.push('\n');
                text.push_str(lines[n]);
                n += 1;
            }
            out
        } else if let Some(body) = value.strip_prefix('"') {
            let mut text = body.to_string();
            let v = loop {
                if let Some(v) = double_quoted(&text) {
                    break v;
                }
                if n >= lines.len() {
                    return Err((line_no, "unterminated `\"`".to_string()));
                }
                text.push('\n');
                text.push_str(lines[n]);
                n += 1;
            };
            interpolate(&v, &scoped, uses).map_err(|e| (line_no, e))?
        } else {
            let v = match value.find(" #").or_else(|| value.find("\t#")) {
                Some(i) => &value[..i],
                None => value,
            };
            interpolate(v.trim_end(), &scoped, uses).map_err(|e| (line_no, e))?
        };
        entries.push(Entry {
            line: line_no,
            name: name.to_string(),
            value: Some(value),
        });
    }
    Ok(entries)
}

/// The value of `'…` up to its closing quote, or `None` when the quote is not closed in `text`.
fn single_quoted(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\'') => out.push('\''),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            },
            '\'' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// The value of `"…` up to its closing quote with escapes applied (a `\$` stays `$$` so that interpolation
/// keeps it literal), or `None` when the quote is not closed in `text`.
fn double_quoted(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('$') => out.push_str("$$"),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            },
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(k: &str) -> Option<(String, Source)> {
        match k {
            "TAG" => Some(("16".into(), Source::Environment)),
            "EMPTY" => Some((String::new(), Source::DotEnv)),
            "PORT" => Some(("9000".into(), Source::DotEnv)),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<(String, Vec<Use>), String> {
        let mut uses = Vec::new();
        interpolate(text, &vars, &mut uses).map(|s| (s, uses))
    }

    #[test]
    fn substitutes_like_compose() {
        assert_eq!(run("postgres:${TAG}").unwrap().0, "postgres:16");
        assert_eq!(run("postgres:$TAG-alpine").unwrap().0, "postgres:16-alpine");
        assert_eq!(run("${NOPE:-8080}:80").unwrap().0, "8080:80");
        assert_eq!(run("${EMPTY:-x}").unwrap().0, "x");
        assert_eq!(run("${EMPTY-x}").unwrap().0, "");
        assert_eq!(run("${NOPE-x}").unwrap().0, "x");
        assert_eq!(run("${NOPE:-${PORT}}").unwrap().0, "9000");
        assert_eq!(run("${NOPE:-${ALSO:-y}}").unwrap().0, "y");
        assert_eq!(run("${TAG:+set}${NOPE:+no}").unwrap().0, "set");
        assert_eq!(run("$$HOME and $${TAG}").unwrap().0, "$HOME and ${TAG}");
        assert_eq!(run("a${NOPE}b").unwrap().0, "ab");
        assert_eq!(run("no variables").unwrap().0, "no variables");
    }

    #[test]
    fn records_where_each_value_came_from() {
        let (_, uses) = run("${TAG} ${PORT} ${NOPE:-1} $NOPE").unwrap();
        let got: Vec<(&str, Source)> = uses.iter().map(|u| (u.name.as_str(), u.source)).collect();
        assert_eq!(
            got,
            [
                ("TAG", Source::Environment),
                ("PORT", Source::DotEnv),
                ("NOPE", Source::Default),
                ("NOPE", Source::Unset)
            ]
        );
    }

    #[test]
    fn errors_for_required_and_malformed_references() {
        assert_eq!(
            run("${DB_PASSWORD:?set it in .env}").unwrap_err(),
            "required variable `DB_PASSWORD` is not set: set it in .env"
        );
        assert_eq!(
            run("${EMPTY:?}").unwrap_err(),
            "required variable `EMPTY` is not set"
        );
        assert_eq!(run("${EMPTY?}").unwrap().0, "");
        assert!(run("echo $1").unwrap_err().contains("`$$`"));
        assert!(run("${TAG").unwrap_err().contains("closing"));
        assert!(run("${TAG/a/b}").unwrap_err().contains("not a supported"));
        assert!(run("${}").unwrap_err().contains("names no variable"));
    }

    #[test]
    fn reads_env_files_like_compose() {
        let text = "# comment\n\nexport A=1\nB = spaced  # comment\nC=\"line\\nnext $PORT\" # c\nD='lit $PORT \\'q\\''\nE=val# not a comment\nF\nG=${A}-${TAG}\nH=\"two\nlines\"\nI=\n";
        let mut uses = Vec::new();
        let got = read_env_file(text, false, &vars, &mut uses).unwrap();
        let pairs: Vec<(&str, Option<&str>)> = got
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("A", Some("1")),
                ("B", Some("spaced")),
                ("C", Some("line\nnext 9000")),
                ("D", Some("lit $PORT 'q'")),
                ("E", Some("val# not a comment")),
                ("F", None),
                ("G", Some("1-16")),
                ("H", Some("two\nlines")),
                ("I", Some("")),
            ]
        );
        assert_eq!(got[8].line, 12);
        let raw = read_env_file("A=\"$X\"  \n", true, &vars, &mut uses).unwrap();
        assert_eq!(raw[0].value.as_deref(), Some("\"$X\""));
        assert_eq!(
            read_env_file("A=\"open\n", false, &vars, &mut uses).unwrap_err(),
            (1, "unterminated `\"`".to_string())
        );
        assert_eq!(
            read_env_file("NOT A NAME\n", false, &vars, &mut uses)
                .unwrap_err()
                .0,
            1
        );
    }
}
