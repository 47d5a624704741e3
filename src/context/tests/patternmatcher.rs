//! Tests of the build context's matcher on moby/patternmatcher's own tables (and a moby regression).

use super::*;
use crate::context::filepath::{go_clean, go_dir};
use crate::context::go_regex::GoRegex;
use crate::context::pattern::{MatchType, moby_compile};

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
