//! The layout of `src/`, checked: no import cycles between modules, leaves that import nothing of the crate, the
//! aggregate error used only at the top, files and functions a newcomer can read, every file opening with its
//! contract, hints worded in one place. Reads the source text (rustfmt-formatted), needs nothing else.
//!
//! A module is a top-level `crate::x`; inside a folder, its files are checked among themselves too (the folder's
//! `mod.rs` is its face and may use its files and be used by them). Test code (`tests.rs`, `#[cfg(test)]` items)
//! is free to import anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Leaves: modules every stage may use, so they import nothing of the crate.
const LEAVES: &[&str] = &[
    "hint",
    "event",
    "tag",
    "time",
    "labels",
    "daemon",
    "own_output",
];
/// The only modules that may use the aggregate error (`crate::error`).
const ERROR_USERS: &[&str] = &["runner", "commands", "error", "lib", "main"];
/// Longest file, in lines of code (blank and comment lines not counted).
const MAX_FILE_LINES: usize = 800;
/// Longest function, in lines of code.
const MAX_FN_LINES: usize = 120;

struct Source {
    rel: String,
    /// Module path, e.g. `["deploy", "kube"]`; empty for `lib.rs`/`main.rs`.
    module: Vec<String>,
    text: String,
    /// The text without test code and comment lines.
    code: String,
    test_only: bool,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    collect(&root, &mut paths);
    let mut files: Vec<Source> = paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).expect("readable source");
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_owned)
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            Source {
                code: strip_tests(&text),
                test_only: module.iter().any(|m| m == "tests"),
                rel,
                module,
                text,
            }
        })
        .collect();
    // Files declared behind `#[cfg(test)]` (`#[cfg(test)] mod fakes;`) are test code too.
    let mut test_modules = BTreeSet::new();
    for f in &files {
        let lines: Vec<&str> = f.text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() != "#[cfg(test)]" {
                continue;
            }
            let item = lines[i + 1..]
                .iter()
                .find(|l| !l.trim_start().starts_with("#["));
            if let Some(name) = item.and_then(|l| declared_module(l)) {
                let mut m = f.module.clone();
                m.push(name);
                test_modules.insert(m);
            }
        }
    }
    for f in &mut files {
        if test_modules.iter().any(|t| f.module.starts_with(t)) {
            f.test_only = true;
        }
    }
    files
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `mod name;` or `pub mod name;` → `name`.
fn declared_module(line: &str) -> Option<String> {
    let l = line.trim();
    let l = l.strip_prefix("pub ").unwrap_or(l);
    let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
    let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
    Some(name.to_owned())
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with("//")
}

/// The code without `#[cfg(test)]` items (rustfmt puts an item's closing brace at its own indentation) and without
/// comment lines.
fn strip_tests(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            // The gated item, past any further attributes.
            let mut at = i + 1;
            while at < lines.len() && lines[at].trim_start().starts_with("#[") {
                at += 1;
            }
            let Some(item) = lines.get(at) else { break };
            let indent = &item[..item.len() - item.trim_start().len()];
            if item.trim_end().ends_with('{') {
                let close = format!("{indent}}}");
                let mut j = at + 1;
                while j < lines.len() && lines[j] != close {
                    j += 1;
                }
                i = j + 1;
            } else {
                i = at + 1;
            }
            continue;
        }
        if !is_comment(lines[i]) {
            out.push_str(lines[i]);
            out.push('\n');
        }
        i += 1;
    }
    out
}

fn code_lines(lines: &[&str]) -> usize {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty() && !is_comment(l))
        .count()
}

/// The first path segments after each `prefix` (`crate::`, `super::`), expanding `prefix{a, b::c}` groups.
fn first_segments(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(found) = code[at..].find(prefix) {
        let start = at + found;
        at = start + prefix.len();
        // `foo_crate::x` or `self::super::x` is not ours.
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let rest = &code[at..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut expecting = true;
            let mut word = String::new();
            for c in group.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        expecting = false;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expecting = true,
                    c if expecting && (c.is_alphanumeric() || c == '_') => word.push(c),
                    _ => {
                        if !word.is_empty() {
                            out.insert(std::mem::take(&mut word));
                        }
                        if !c.is_whitespace() {
                            expecting = false;
                        }
                    }
                }
            }
            if !word.is_empty() {
                out.insert(word);
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                out.insert(word);
            }
        }
    }
    out
}

/// Strongly connected components with more than one member (each is an import cycle).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Kosaraju: order by finish time, then walk the reversed graph.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(n.to_owned()) {
            return;
        }
        for m in g.get(n).into_iter().flatten() {
            visit(m, g, seen, order);
        }
        order.push(n.to_owned());
    }
    let nodes: BTreeSet<String> = graph
        .iter()
        .flat_map(|(k, v)| std::iter::once(k.clone()).chain(v.iter().cloned()))
        .collect();
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for n in &nodes {
        visit(n, graph, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (k, vs) in graph {
        for v in vs {
            reversed.entry(v.clone()).or_default().insert(k.clone());
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.iter().rev() {
        let mut component = Vec::new();
        visit(n, &reversed, &mut assigned, &mut component);
        if component.len() > 1 {
            component.sort();
            out.push(component);
        }
    }
    out
}

/// Top-level module → the top-level modules its (non-test) code names.
fn module_graph(files: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let top: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.module.first().cloned())
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files.iter().filter(|f| !f.test_only) {
        let from = f.module.first().cloned().unwrap_or_else(|| "lib".into());
        for to in first_segments(&f.code, "crate::") {
            if to != from && top.contains(&to) {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

#[test]
fn modules_import_no_cycle() {
    let files = sources();
    let found = cycles(&module_graph(&files));
    assert!(
        found.is_empty(),
        "import cycles between modules (each line is one cycle; break it by moving the shared type down):\n{}",
        found
            .iter()
            .map(|c| c.join(" ⇄ "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn files_of_a_folder_import_no_cycle() {
    let files = sources();
    let mut folders: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let file_modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    for f in files.iter().filter(|f| !f.test_only && f.module.len() >= 2) {
        let rel_is_mod = f.rel.ends_with("mod.rs");
        if rel_is_mod {
            continue;
        }
        let folder = f.module[..f.module.len() - 1].to_vec();
        let me = f.module.last().cloned().unwrap_or_default();
        let mut named = first_segments(&f.code, "super::");
        let crate_prefix = format!("crate::{}::", folder.join("::"));
        named.extend(first_segments(&f.code, &crate_prefix));
        for to in named {
            let mut sibling = folder.clone();
            sibling.push(to.clone());
            if to != me && file_modules.contains(&sibling) {
                folders
                    .entry(folder.clone())
                    .or_default()
                    .entry(me.clone())
                    .or_default()
                    .insert(to);
            }
        }
    }
    let mut problems = Vec::new();
    for (folder, graph) in &folders {
        for c in cycles(graph) {
            problems.push(format!("{}/: {}", folder.join("/"), c.join(" ⇄ ")));
        }
    }
    assert!(
        problems.is_empty(),
        "import cycles between the files of a folder:\n{}",
        problems.join("\n")
    );
}

#[test]
fn leaves_import_nothing_of_the_crate() {
    let files = sources();
    let graph = module_graph(&files);
    let mut problems = Vec::new();
    for leaf in LEAVES {
        assert!(
            files
                .iter()
                .any(|f| f.module.first().map(String::as_str) == Some(leaf)),
            "leaf module `{leaf}` does not exist"
        );
        if let Some(uses) = graph.get(*leaf) {
            problems.push(format!("{leaf} imports {uses:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "leaves must import nothing of the crate:\n{}",
        problems.join("\n")
    );
}

#[test]
fn only_the_top_uses_the_aggregate_error() {
    let files = sources();
    let graph = module_graph(&files);
    let users: Vec<&String> = graph
        .iter()
        .filter(|(from, to)| to.contains("error") && !ERROR_USERS.contains(&from.as_str()))
        .map(|(from, _)| from)
        .collect();
    assert!(
        users.is_empty(),
        "`crate::error` is the aggregate of every stage's error; only {ERROR_USERS:?} may use it, but so do {users:?}"
    );
}

#[test]
fn files_and_functions_stay_readable() {
    let mut problems = Vec::new();
    for f in sources() {
        let lines: Vec<&str> = f.text.lines().collect();
        let n = code_lines(&lines);
        if n > MAX_FILE_LINES {
            problems.push(format!(
                "src/{}: {n} lines of code (at most {MAX_FILE_LINES})",
                f.rel
            ));
        }
        for (start, name, len) in functions(&lines) {
            if len > MAX_FN_LINES {
                problems.push(format!(
                    "src/{}:{}: fn `{name}` has {len} lines of code (at most {MAX_FN_LINES})",
                    f.rel,
                    start + 1
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "split these by concept:\n{}",
        problems.join("\n")
    );
}

/// `(line index, name, lines of code)` of every function with a body.
fn functions(lines: &[&str]) -> Vec<(usize, String, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let mut rest = trimmed;
        for q in [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "async ",
            "unsafe ",
        ] {
            rest = rest.strip_prefix(q).unwrap_or(rest);
        }
        let Some(sig) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = sig
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // The signature ends at the first line ending in `{` (a body) or `;` (a declaration).
        let Some(open) = (i..lines.len()).find(|&j| {
            let l = lines[j].trim_end();
            l.ends_with('{') || l.ends_with(';') || l.ends_with('}')
        }) else {
            continue;
        };
        let l = lines[open].trim_end();
        if !l.ends_with('{') {
            continue;
        }
        let close = format!("{indent}}}");
        let end = (open + 1..lines.len())
            .find(|&j| lines[j] == close)
            .unwrap_or(lines.len() - 1);
        out.push((i, name, code_lines(&lines[i..=end])));
    }
    out
}

#[test]
fn every_file_opens_with_its_contract() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|f| !f.text.starts_with("//!"))
        .map(|f| format!("src/{}", f.rel))
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` line (stage, input → output, what it must not do):\n{}",
        missing.join("\n")
    );
}

#[test]
fn hints_are_worded_in_one_place() {
    let mut problems = Vec::new();
    for f in sources()
        .into_iter()
        .filter(|f| !f.test_only && f.rel != "hint.rs")
    {
        for (i, line) in f.code.lines().enumerate() {
            if line.contains("\\n\\nhint:") {
                problems.push(format!(
                    "src/{} (code line {}): {}",
                    f.rel,
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "write hints with `crate::hint::Hint` (or `hint::suffix`), not by hand:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_crate_doc_maps_every_module() {
    let files = sources();
    let lib = files.iter().find(|f| f.rel == "lib.rs").expect("lib.rs");
    let doc: String = lib
        .text
        .lines()
        .filter(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<String> = lib
        .text
        .lines()
        .filter_map(declared_module)
        .filter(|m| !doc.contains(&format!("[`{m}`]")))
        .collect();
    assert!(
        missing.is_empty(),
        "lib.rs's module map does not mention {missing:?}"
    );
}

#[test]
fn only_their_owners_touch_signals_yaml_tasks_and_the_daemon() {
    let mut problems = Vec::new();
    for f in sources().into_iter().filter(|f| !f.test_only) {
        let top = f.module.first().map(String::as_str).unwrap_or("lib");
        if f.code.contains("tokio::signal") && f.rel != "commands/signal.rs" {
            problems.push(format!(
                "src/{} reads signals (only commands/signal.rs may)",
                f.rel
            ));
        }
        if f.code.contains("serde_saphyr") && !matches!(top, "config" | "render") {
            problems.push(format!(
                "src/{} knows YAML (only config/ and render/ may)",
                f.rel
            ));
        }
        if f.code.contains("tokio::spawn(") || f.code.contains("task::spawn(") {
            problems.push(format!(
                "src/{} spawns a task (stages are futures the runner drives; `spawn_blocking` for one awaited job)",
                f.rel
            ));
        }
        if (f.code.contains("thread::spawn") || f.code.contains("thread::Builder"))
            && top != "watch"
        {
            problems.push(format!(
                "src/{} starts a thread (only the watcher owns threads)",
                f.rel
            ));
        }
        if f.code.contains("env::var(\"DOCKER_HOST\")") && top != "daemon" {
            problems.push(format!(
                "src/{} finds the Docker daemon itself (the `daemon` leaf does)",
                f.rel
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checks_see_what_they_check() {
    // A check that finds nothing to check cannot fail: make sure the reader sees the crate as it is.
    let files = sources();
    assert!(files.iter().any(|f| f.rel == "lib.rs"));
    let graph = module_graph(&files);
    assert!(
        graph
            .get("commands")
            .is_some_and(|to| to.contains("runner")),
        "{graph:?}"
    );
    let uses = first_segments(
        "use crate::{a::b, c, d::{e, f}};\nlet x = crate::g::h();",
        "crate::",
    );
    assert_eq!(uses.into_iter().collect::<Vec<_>>(), ["a", "c", "d", "g"]);
    let g = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(cycles(&g), vec![vec!["a".to_owned(), "b".to_owned()]]);
    let lines = ["fn f() {", "    let x = 1;", "}", "fn g();"];
    assert_eq!(functions(&lines), vec![(0, "f".to_owned(), 3)]);
}
