//! Tests of one pattern: the Go-regexp dialect, character by character.

use crate::context::pattern::Pattern;

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
