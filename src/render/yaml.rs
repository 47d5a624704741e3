//! Render: YAML text ↔ documents; multi-document text → `serde_json::Value` per document (with positions for
//! errors), objects → deterministic multi-document text. It must not interpret Kubernetes semantics.

use serde_json::Value;

use super::{ObjectSource, RenderError};

/// One non-empty document of a YAML stream.
#[derive(Debug)]
pub(crate) struct Document {
    /// 1-based position of the document in its stream, counting empty documents.
    pub index: usize,
    pub value: Value,
}

/// A slice of the stream holding at most one document, with the 0-based line number it starts at.
#[derive(Debug, PartialEq)]
struct Chunk<'a> {
    first_line: usize,
    text: &'a str,
    has_marker: bool,
    has_content: bool,
}

/// Deepest nesting accepted in a manifest; CRD schemas nest deeply, but this still bounds recursion.
const MAX_DEPTH: usize = 128;

/// Parses every document of `text`, the way kubectl reads manifests (YAML 1.1: `0644` is octal, `yes`/`on` are
/// booleans). Empty documents (`---` alone, comments only, `~`) are skipped but still counted in `index`.
pub(crate) fn parse_stream(
    text: &str,
    origin: &ObjectSource,
) -> Result<Vec<Document>, RenderError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut documents = Vec::new();
    for (i, chunk) in split(text).into_iter().enumerate() {
        let index = i + 1;
        if !chunk.has_content {
            continue;
        }
        let value =
            parse_document(chunk.text).map_err(|err| yaml_error(&err, &chunk, origin, index))?;
        if !value.is_null() {
            documents.push(Document { index, value });
        }
    }
    Ok(documents)
}

fn parse_document(text: &str) -> Result<Value, serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        with_snippet: false,
        budget: serde_saphyr::budget! { max_depth: MAX_DEPTH },
    };
    serde_saphyr::from_str_with_options(text, options)
}

fn yaml_error(
    err: &serde_saphyr::Error,
    chunk: &Chunk<'_>,
    origin: &ObjectSource,
    index: usize,
) -> RenderError {
    use serde_saphyr::MessageFormatter as _;
    let err = err.without_snippet();
    let message = serde_saphyr::UserMessageFormatter.format_message(err);
    // The formatter's text may echo input; keep the error on one line whatever the input holds.
    let message: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let (line, column) = match err.location() {
        Some(l) if l.line() > 0 => (Some(chunk.first_line as u64 + l.line()), Some(l.column())),
        _ => (None, None),
    };
    RenderError::Yaml {
        origin: origin.clone(),
        document: index,
        line,
        column,
        message,
    }
}

/// Splits a stream at its document markers. A line that is `---` or `...` (alone or followed by a space or
/// tab) at column 0 can only be a marker in YAML: such lines are forbidden inside any scalar, so splitting
/// here never cuts through a value. Splitting first lets every document be parsed on its own (independent
/// budgets, a document index and exact line numbers in errors).
fn split(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut first_line = 0;
    let mut has_marker = false;
    let mut has_content = false;
    let mut offset = 0;
    for (line_no, raw_line) in text.split_inclusive('\n').enumerate() {
        let line = raw_line.trim_end_matches(['\n', '\r']);
        if let Some(rest) = marker_rest(line, "---") {
            // Comments and directives before the first `---` belong to the document it opens.
            if has_marker || has_content {
                chunks.push(Chunk {
                    first_line,
                    text: &text[start..offset],
                    has_marker,
                    has_content,
                });
                start = offset;
                first_line = line_no;
                has_content = false;
            }
            has_marker = true;
            has_content |= is_content(rest);
        } else if marker_rest(line, "...").is_some() {
            let end = offset + raw_line.len();
            chunks.push(Chunk {
                first_line,
                text: &text[start..end],
                has_marker,
                has_content,
            });
            start = end;
            first_line = line_no + 1;
            has_marker = false;
            has_content = false;
        } else if !has_content && !(line.starts_with('%') && !has_marker) {
            has_content = is_content(line);
        }
        offset += raw_line.len();
    }
    chunks.push(Chunk {
        first_line,
        text: &text[start..],
        has_marker,
        has_content,
    });
    // A stretch with neither a marker nor content (blank lines, comments, a lone `...`) is no document.
    chunks.retain(|c| c.has_marker || c.has_content);
    chunks
}

fn marker_rest<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(marker)?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

fn is_content(line: &str) -> bool {
    let line = line.trim_start_matches([' ', '\t']);
    !line.is_empty() && !line.starts_with('#')
}

/// Writes documents as one multi-document stream separated by `---`. Key order is kept; strings that a
/// YAML 1.1 reader would take for another type (`"yes"`, `"0644"`, `"1.10"`, `"~"`, `"2026-01-01"`) are quoted;
/// multi-line strings become literal blocks; long lines are never folded.
pub(crate) fn write_stream<'a, I>(values: I) -> Result<String, RenderError>
where
    I: IntoIterator<Item = &'a serde_json::Map<String, Value>>,
{
    let mut out = String::new();
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let options = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX };
        serde_saphyr::to_fmt_writer_with_options(&mut out, value, options).map_err(|err| {
            RenderError::Serialize {
                message: err.to_string(),
            }
        })?;
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    fn origin() -> ObjectSource {
        ObjectSource::File {
            path: PathBuf::from("k8s/app.yaml"),
        }
    }

    fn values(text: &str) -> Vec<(usize, Value)> {
        parse_stream(text, &origin())
            .unwrap()
            .into_iter()
            .map(|d| (d.index, d.value))
            .collect()
    }

    #[test]
    fn splits_documents_and_counts_empty_ones() {
        let text = "# leading comment\n---\na: 1\n---\n---\n# only a comment\n---\nb: 2\n...\n---\nc: ~\n---\n~\n";
        assert_eq!(
            values(text),
            [
                (1, json!({"a": 1})),
                (4, json!({"b": 2})),
                (5, json!({"c": null}))
            ]
        );
    }

    #[test]
    fn document_without_leading_marker_is_first() {
        assert_eq!(
            values("a: 1\n---\nb: 2\n"),
            [(1, json!({"a": 1})), (2, json!({"b": 2}))]
        );
        assert_eq!(values(""), []);
        assert_eq!(values("\n\n# nothing\n"), []);
    }

    #[test]
    fn marker_lines_need_column_zero_and_a_separator() {
        // `----`, `---x` and an indented `---` are content, not markers.
        let text = "a: |\n  ---\n  text\nb: ----\n---x: 1\n";
        assert_eq!(
            values(text),
            [(1, json!({"a": "---\ntext\n", "b": "----", "---x": 1}))]
        );
    }

    #[test]
    fn marker_line_may_carry_content_and_comments() {
        let text = "--- # first\na: 1\n--- {b: 2}\n--- |\n  text\n";
        assert_eq!(values(text), [(1, json!({"a": 1})), (2, json!({"b": 2}))]);
        // A scalar document is returned as is; the caller rejects it.
        assert_eq!(
            parse_stream("--- |\n  text\n", &origin()).unwrap()[0].value,
            json!("text\n")
        );
    }

    #[test]
    fn directives_stay_with_their_document() {
        let text = "%YAML 1.1\n---\na: 1\n...\n%YAML 1.1\n---\nb: yes\n";
        assert_eq!(
            values(text),
            [(1, json!({"a": 1})), (2, json!({"b": true}))]
        );
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let text = "\u{feff}a: 1\r\n---\r\nb: x\r\n";
        assert_eq!(values(text), [(1, json!({"a": 1})), (2, json!({"b": "x"}))]);
    }

    #[test]
    fn reads_like_kubectl() {
        let v = &values(
            "mode: 0644\non: yes\nt: t\nversion: 1.10\nq: \"0644\"\nd: 2026-01-01\nm: 12:30\n",
        )[0]
        .1;
        assert_eq!(
            *v,
            json!({"mode": 420, "on": true, "t": "t", "version": 1.1, "q": "0644", "d": "2026-01-01", "m": "12:30"})
        );
        let v = &values("base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n")[0].1;
        assert_eq!(v["merged"], json!({"x": 1, "y": 2}));
    }

    #[test]
    fn errors_name_the_document_line_and_column_in_the_file() {
        let text = "a: 1\n---\n# two\nb:\n  - x\n   y: [\n";
        let err = parse_stream(text, &origin()).unwrap_err();
        let RenderError::Yaml {
            document,
            line,
            column,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!((*document, *line), (2, Some(6)), "{err}");
        assert!(column.is_some(), "{err}");
        assert!(
            err.to_string()
                .starts_with("k8s/app.yaml: document 2: line 6, column "),
            "{err}"
        );

        let err = parse_stream("a: 1\na: 2\n", &origin()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("k8s/app.yaml: document 1: line 2, column 1: "),
            "{err}"
        );
        assert!(err.to_string().contains("duplicate"), "{err}");
    }

    #[test]
    fn errors_never_span_lines() {
        let err = parse_stream("a: \"unterminated\n\n", &origin()).unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    fn write(v: Value) -> String {
        let Value::Object(map) = v else { panic!() };
        write_stream([&map]).unwrap()
    }

    #[test]
    fn strings_that_look_like_other_types_stay_strings() {
        let input = json!({
            "yes": "yes", "off": "off", "octal": "0644", "version": "1.10", "null": "null", "tilde": "~",
            "date": "2026-01-01", "int": "123", "y": "y", "n": "N", "float": "1e3", "hex": "0x1F",
            "empty": "", "colon": "a: b", "dash": "- x", "hash": "# x", "star": "*x", "amp": "&x",
            "bang": "!x", "lead": " x", "trail": "x ", "true": "true", "sexagesimal": "1:20",
        });
        let out = write(input.clone());
        insta::assert_snapshot!(out);
        assert_eq!(values(&out)[0].1, input, "{out}");
    }

    #[test]
    fn numbers_and_booleans_keep_their_types() {
        let input = json!({"i": 123, "neg": -7, "f": 1.5, "big": 9_223_372_036_854_775_808u64, "t": true,
            "f2": false, "nil": null, "e": {}, "l": []});
        let out = write(input.clone());
        assert_eq!(
            out,
            "i: 123\nneg: -7\nf: 1.5\nbig: 9223372036854775808\nt: true\nf2: false\nnil: null\ne: {}\nl: []\n"
        );
        assert_eq!(values(&out)[0].1, input);
    }

    #[test]
    fn multi_line_and_odd_strings_round_trip() {
        let strings = [
            "#!/bin/sh\necho hi\n",
            "no trailing newline\nsecond",
            "two trailing\n\n",
            "  leading spaces\nline\n",
            "tab\tinside\n",
            "trailing space \nx\n",
            "\n\nleading newlines\n",
            "a very long single line that is much longer than eighty characters and must never be folded by the writer",
            "quote ' and \" and \\ backslash",
            "unicode ✓ ünïcode",
            "\u{7}bell",
            "---\n...\n",
        ];
        for s in strings {
            let input = json!({ "data": { "k": s }, "list": [s, {"x": s}] });
            let out = write(input.clone());
            assert_eq!(values(&out)[0].1, input, "{s:?} →\n{out}");
        }
        let out = write(json!({"script": "#!/bin/sh\necho hi\n"}));
        assert_eq!(out, "script: |\n  #!/bin/sh\n  echo hi\n");
    }

    #[test]
    fn keeps_key_order_and_separates_documents() {
        let a = json!({"z": 1, "a": {"y": 2, "b": 3}});
        let b = json!({"kind": "x"});
        let (Value::Object(a), Value::Object(b)) = (a, b) else {
            panic!()
        };
        assert_eq!(
            write_stream([&a, &b]).unwrap(),
            "z: 1\na:\n  y: 2\n  b: 3\n---\nkind: x\n"
        );
        assert_eq!(write_stream([]).unwrap(), "");
    }
}
