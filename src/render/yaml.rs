//! Render: YAML text ↔ documents; multi-document text → `serde_json::Value` per document (with positions for
//! errors), objects → deterministic multi-document text. It must not interpret Kubernetes semantics.

use serde_json::{Map, Value};

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
#[cfg(test)]
pub(crate) fn parse_stream(
    text: &str,
    origin: &ObjectSource,
) -> Result<Vec<Document>, RenderError> {
    let mut parsed = parse_streams(&[(text, origin)])?;
    Ok(parsed.pop().unwrap_or_default())
}

/// [`parse_stream`] for several streams at once: large inputs are parsed on all cores, each thread taking a
/// contiguous run of documents. The result keeps stream and document order; the first error in that order wins.
pub(crate) fn parse_streams(
    streams: &[(&str, &ObjectSource)],
) -> Result<Vec<Vec<Document>>, RenderError> {
    struct Job<'a> {
        stream: usize,
        index: usize,
        chunk: Chunk<'a>,
    }
    let mut jobs = Vec::new();
    for (stream, (text, _)) in streams.iter().enumerate() {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, chunk) in split(text).into_iter().enumerate() {
            if chunk.has_content {
                jobs.push(Job {
                    stream,
                    index: i + 1,
                    chunk,
                });
            }
        }
    }
    let values = map_in_order(
        &jobs,
        |job| job.chunk.text.len(),
        PARALLEL_MIN_BYTES,
        |job| {
            parse_document(job.chunk.text)
                .map_err(|err| yaml_error(&err, &job.chunk, streams[job.stream].1, job.index))
        },
    )?;
    let mut documents: Vec<Vec<Document>> = streams.iter().map(|_| Vec::new()).collect();
    for (job, value) in jobs.iter().zip(values) {
        if !value.is_null() {
            documents[job.stream].push(Document {
                index: job.index,
                value,
            });
        }
    }
    Ok(documents)
}

/// Below this much YAML, parsing stays on the calling thread (threads cost more than they save).
const PARALLEL_MIN_BYTES: usize = 256 * 1024;
/// Below this many objects, writing stays on the calling thread.
const PARALLEL_MIN_OBJECTS: usize = 256;

/// Maps `items` in order on up to `available_parallelism` scoped threads, each taking a contiguous run of about
/// equal `weight`; small inputs (total weight below `min_weight`) stay on the calling thread. Every thread stops
/// at its own first error, and the first error in item order is returned.
fn map_in_order<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    min_weight: usize,
    f: impl Fn(&T) -> Result<R, RenderError> + Sync,
) -> Result<Vec<R>, RenderError> {
    let total: usize = items.iter().map(&weight).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(8);
    if threads < 2 || items.len() < 2 || total < min_weight {
        return items.iter().map(f).collect();
    }
    let per_thread = total.div_ceil(threads);
    let mut runs = Vec::with_capacity(threads);
    let (mut start, mut sum) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        sum += weight(item);
        if sum >= per_thread {
            runs.push(&items[start..=i]);
            (start, sum) = (i + 1, 0);
        }
    }
    if start < items.len() {
        runs.push(&items[start..]);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let (first, rest) = runs
            .split_first()
            .map_or((&[][..], &[][..]), |(first, rest)| (*first, rest));
        let handles: Vec<_> = rest
            .iter()
            .map(|run| {
                scope.spawn(move || run.iter().map(f).collect::<Result<Vec<R>, RenderError>>())
            })
            .collect();
        let mut result = first.iter().map(f).collect::<Result<Vec<R>, RenderError>>();
        for handle in handles {
            let run = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            if let Ok(out) = &mut result {
                match run {
                    Ok(values) => out.extend(values),
                    Err(err) => result = Err(err),
                }
            }
        }
        result
    })
}

fn parse_document(text: &str) -> Result<Value, serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        with_snippet: false,
        // Every entry reaches the visitor, which keeps the last value of a repeated key, as kubectl does.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        budget: serde_saphyr::budget! { max_depth: MAX_DEPTH },
    };
    serde_saphyr::from_str_with_options::<KubectlValue>(text, options).map(|v| v.0)
}

/// A JSON value read the way kubectl (sigs.k8s.io/yaml over YAML 1.1) reads it. Unlike `serde_json::Value`,
/// plain mapping keys are resolved like values and then turned into strings: `on:`, `yes:` and `y:` are the
/// key `"true"`, `0644:` is `"420"`, `1.10:` is `"1.1"`; a null key is an error; a repeated key keeps its first
/// position and its last value.
struct KubectlValue(Value);

impl<'de> serde::Deserialize<'de> for KubectlValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor).map(KubectlValue)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // kubectl sends a whole float as an integer (Go's JSON encoder writes 1e3 as `1000`), which integer
        // fields accept; `1000.0` would be rejected by them. Beyond 2^53 a float is no exact integer: keep it.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        if v.fract() == 0.0 && v.abs() < EXACT {
            #[allow(clippy::cast_possible_truncation)] // whole and below 2^53: exact
            return Ok(Value::from(v as i64));
        }
        // Non-finite floats are rejected by the parser options before they get here.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(KubectlValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(KubectlKey(key)) = map.next_key()? {
            let KubectlValue(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key as kubectl turns it into a JSON object key.
struct KubectlKey(String);

impl<'de> serde::Deserialize<'de> for KubectlKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyVisitor).map(KubectlKey)
    }
}

struct KeyVisitor;

impl serde::de::Visitor<'_> for KeyVisitor {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a mapping key that is a string, number or boolean")
    }

    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(go_float_key(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<String, E> {
        Err(E::custom("a mapping key is null, which kubectl rejects"))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<String, E> {
        self.visit_unit()
    }
}

/// Formats a float key like sigs.k8s.io/yaml: Go's `strconv.FormatFloat(v, 'g', -1, 32)`, i.e. the shortest
/// float32 digits, in exponent form (`1e+06`, `1e-05`) when the exponent is below -4 or at least 6.
fn go_float_key(v: f64) -> String {
    #[allow(clippy::cast_possible_truncation)] // float32 precision is what kubectl uses for keys
    let v = v as f32;
    let sci = format!("{v:e}");
    let Some((mantissa, exponent)) = sci.split_once('e') else {
        return sci;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return sci;
    };
    if (-4..6).contains(&exponent) {
        return v.to_string();
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
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
        } else if !has_content {
            // Directives (`%YAML`) may only precede a document's `---`; after it, `%` starts content.
            let is_directive = line.starts_with('%') && !has_marker;
            has_content = !is_directive && is_content(line);
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
/// multi-line strings become literal blocks; long lines are never folded. Large outputs are written on all
/// cores, one document per task, and joined in order.
pub(crate) fn write_stream(values: &[&Map<String, Value>]) -> Result<String, RenderError> {
    let documents = map_in_order(
        values,
        |_| 1,
        PARALLEL_MIN_OBJECTS,
        |value| {
            let mut out = String::new();
            let options = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX };
            serde_saphyr::to_fmt_writer_with_options(&mut out, value, options).map_err(|err| {
                RenderError::Serialize {
                    message: err.to_string(),
                }
            })?;
            if !out.ends_with('\n') {
                out.push('\n');
            }
            Ok(out)
        },
    )?;
    let mut out = String::with_capacity(documents.iter().map(|d| d.len() + 4).sum());
    for (i, document) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(document);
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
        let text = "--- # first\na: 1\n--- {b: 2}\n";
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
            "mode: 0644\nenabled: yes\nt: t\nversion: 1.10\nq: \"0644\"\nd: 2026-01-01\nm: 12:30\n",
        )[0]
        .1;
        assert_eq!(
            *v,
            json!({"mode": 420, "enabled": true, "t": "t", "version": 1.1, "q": "0644", "d": "2026-01-01", "m": "12:30"})
        );
        let v = &values("base: &b {x: 1}\nmerged:\n  <<: *b\n  z: 2\n")[0].1;
        assert_eq!(v["merged"], json!({"x": 1, "z": 2}));
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

        let err = parse_stream("a: 1\n b: 2\n", &origin()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "k8s/app.yaml: document 1: line 2, column 3: mapping values are not allowed in this context"
        );
    }

    #[test]
    fn errors_never_span_lines() {
        let err = parse_stream("a: \"unterminated\n\n", &origin()).unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    fn write(v: Value) -> String {
        let Value::Object(map) = v else { panic!() };
        write_stream(&[&map]).unwrap()
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
        let a = json!({"z": 1, "a": {"x": 2, "b": 3}});
        let b = json!({"kind": "x"});
        let (Value::Object(a), Value::Object(b)) = (a, b) else {
            panic!()
        };
        assert_eq!(
            write_stream(&[&a, &b]).unwrap(),
            "z: 1\na:\n  x: 2\n  b: 3\n---\nkind: x\n"
        );
        assert_eq!(write_stream(&[]).unwrap(), "");
    }

    fn big_stream(n: usize) -> String {
        (0..n)
            .map(|i| {
                format!(
                    "---\nkind: ConfigMap\nmetadata: {{name: c{i}}}\ndata: {{k: \"{}\"}}\n",
                    "x".repeat(100)
                )
            })
            .collect()
    }

    #[test]
    fn large_inputs_keep_order_across_threads() {
        let text = big_stream(3000);
        assert!(text.len() > PARALLEL_MIN_BYTES);
        let other = ObjectSource::File {
            path: PathBuf::from("other.yaml"),
        };
        let parsed =
            parse_streams(&[(&text, &origin()), ("a: 1\n", &other), (&text, &origin())]).unwrap();
        assert_eq!(
            parsed.iter().map(Vec::len).collect::<Vec<_>>(),
            [3000, 1, 3000]
        );
        for documents in [&parsed[0], &parsed[2]] {
            for (i, d) in documents.iter().enumerate() {
                assert_eq!(
                    (d.index, d.value["metadata"]["name"].as_str()),
                    (i + 1, Some(format!("c{i}").as_str()))
                );
            }
        }
        let maps: Vec<&Map<String, Value>> = parsed[0]
            .iter()
            .map(|d| d.value.as_object().unwrap())
            .collect();
        let written = write_stream(&maps).unwrap();
        let one_by_one: Vec<String> = maps.iter().map(|m| write_stream(&[m]).unwrap()).collect();
        assert_eq!(written, one_by_one.join("---\n"));
    }

    #[test]
    fn first_error_in_order_wins_across_threads() {
        let mut docs: Vec<String> = big_stream(3000)
            .split_inclusive("---\n")
            .map(str::to_owned)
            .collect();
        // Two broken documents far apart (likely on different threads): the earlier one is reported.
        docs[2901] = docs[2901].replace("data: {", "data: [");
        docs[1501] = docs[1501].replace("data: {", "data: [");
        let text: String = docs.concat();
        let err = parse_stream(&text, &origin()).unwrap_err();
        let RenderError::Yaml { document, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(document, 1501);
    }

    #[test]
    fn keys_resolve_like_kubectl() {
        // Figures from `kubectl label --local -f - -o json` (kubectl 1.32) on the same input.
        let text = "yes: a\non: b\n0644: c\n1.10: d\n1e6: e\n100000.5: f\n0.00001: g\nn: h\ny: i\nOff: j\nplain: y\nother: n\nx: NO\n\"on\": k\n";
        assert_eq!(
            values(text)[0].1,
            json!({"true": "i", "420": "c", "1.1": "d", "1e+06": "e", "100000.5": "f", "1e-05": "g", "false": "j",
                   "plain": true, "other": false, "x": false, "on": "k"})
        );
        assert_eq!(
            values("a: 1\nb: 2\na: 3\n")[0].1,
            json!({"a": 3, "b": 2}),
            "last value, first position"
        );
        // Whole floats become integers, as kubectl sends them; other floats stay floats.
        assert_eq!(
            values("a: 1e3\nb: 1.0\nc: -2.0\nd: 0.5\ne: 1e300\n")[0].1,
            json!({"a": 1000, "b": 1, "c": -2, "d": 0.5, "e": 1e300})
        );
        let err = parse_stream("~: 1\n", &origin()).unwrap_err();
        assert!(err.to_string().contains("a mapping key is null"), "{err}");
    }
}
