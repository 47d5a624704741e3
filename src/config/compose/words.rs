//! Compose import, commands: a `command:`/`entrypoint:` string → argv, split exactly the way compose splits it
//! (go-shellwords without environment or backtick expansion). Pure.

/// A split command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub words: Vec<String>,
    /// The text compose drops: everything from the first unquoted `;`, `&`, `|`, `<` or `>` on (with the digits of
    /// a `2>` redirection), where compose stops splitting.
    pub dropped: Option<String>,
}

/// Splits `text` like compose: blanks separate words; `'…'` is literal; `"…"` keeps blanks; a backslash outside
/// single quotes takes the next character literally (`\t` and `\n` become a tab and a newline); `$(…)` and
/// `` `…` `` stay in one word, unexpanded. An unquoted `(` or `)` elsewhere, an unterminated quote or a trailing
/// backslash is an error, as in compose.
pub fn split(text: &str) -> Result<Split, String> {
    let mut words = Vec::new();
    let mut buf = String::new();
    let (mut escaped, mut single, mut double, mut backtick, mut dollar) =
        (false, false, false, false, false);
    // Whether the current word has started (`""` is a word).
    let mut started = false;
    let mut dropped = None;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            if backtick || dollar {
                buf.push('\\');
                buf.push(c);
            } else {
                buf.push(match c {
                    't' => '\t',
                    'n' => '\n',
                    other => other,
                });
            }
            started = true;
            continue;
        }
        if c == '\\' {
            if single {
                buf.push(c);
            } else {
                escaped = true;
            }
            continue;
        }
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if single || double || backtick || dollar {
                buf.push(c);
            } else if started {
                words.push(std::mem::take(&mut buf));
                started = false;
            }
            continue;
        }
        let plain = !(single || double || backtick || dollar);
        match c {
            '`' if !single && !double && !dollar => backtick = !backtick,
            ')' if !single && !double && !backtick => {
                if !dollar {
                    return Err("`)` outside quotes".to_string());
                }
                dollar = false;
            }
            '(' if !single && !double && !backtick => {
                if !dollar && buf.ends_with('$') {
                    dollar = true;
                } else {
                    return Err("`(` outside quotes".to_string());
                }
            }
            '"' if !single && !dollar && !backtick => {
                if double {
                    started = true;
                }
                double = !double;
                continue;
            }
            '\'' if !double && !dollar && !backtick => {
                if single {
                    started = true;
                }
                single = !single;
                continue;
            }
            ';' | '&' | '|' | '<' | '>' if plain => {
                let mut cut = i;
                if c == '>' && !buf.is_empty() && buf.chars().all(|d| d.is_ascii_digit()) {
                    // `2>&1`: the file descriptor belongs to the redirection.
                    cut -= buf.len();
                    started = false;
                }
                dropped = Some(text[cut..].to_string());
                break;
            }
            _ => {}
        }
        started = true;
        buf.push(c);
    }
    if started {
        words.push(buf);
    }
    if escaped {
        return Err("trailing `\\`".to_string());
    }
    if single || double || backtick || dollar {
        let open = if single {
            "'"
        } else if double {
            "\""
        } else if backtick {
            "`"
        } else {
            "$("
        };
        return Err(format!("unterminated `{open}`"));
    }
    Ok(Split { words, dropped })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        split(text).unwrap().words
    }

    #[test]
    fn splits_like_compose() {
        assert_eq!(
            words("bundle exec thin -p 3000"),
            ["bundle", "exec", "thin", "-p", "3000"]
        );
        assert_eq!(
            words("  sh -c 'echo \"hi $HOME\"; exit 1'  "),
            ["sh", "-c", "echo \"hi $HOME\"; exit 1"]
        );
        assert_eq!(
            words(r#"echo "a \"b\" \$c" d\ e"#),
            ["echo", r#"a "b" $c"#, "d e"]
        );
        assert_eq!(words(r"printf a\tb 'c\td'"), ["printf", "a\tb", r"c\td"]);
        assert_eq!(words(r#"a "" '' b"#), ["a", "", "", "b"]);
        assert_eq!(words("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(
            words("echo $(date +%s) `id -u`"),
            ["echo", "$(date +%s)", "`id -u`"]
        );
        assert!(words("").is_empty());
    }

    #[test]
    fn stops_at_shell_operators_like_compose() {
        let s = split("npm run migrate && npm start").unwrap();
        assert_eq!(s.words, ["npm", "run", "migrate"]);
        assert_eq!(s.dropped.as_deref(), Some("&& npm start"));
        let s = split("run > out.log").unwrap();
        assert_eq!(s.words, ["run"]);
        assert_eq!(s.dropped.as_deref(), Some("> out.log"));
        let s = split("run 2>&1").unwrap();
        assert_eq!(s.words, ["run"]);
        assert_eq!(s.dropped.as_deref(), Some("2>&1"));
        let s = split("sh -c 'a && b; c'").unwrap();
        assert_eq!(s.dropped, None);
    }

    #[test]
    fn errors_like_compose() {
        assert_eq!(split("echo 'a").unwrap_err(), "unterminated `'`");
        assert_eq!(split("echo \"a").unwrap_err(), "unterminated `\"`");
        assert_eq!(split("echo a\\").unwrap_err(), "trailing `\\`");
        assert_eq!(split("echo (a)").unwrap_err(), "`(` outside quotes");
        assert_eq!(split("echo a)").unwrap_err(), "`)` outside quotes");
        assert_eq!(split("echo $(a").unwrap_err(), "unterminated `$(`");
    }
}
