//! Tests of the build context's port of Go's `filepath.Clean` and `Dir`, on Go's own cases.

use crate::context::filepath::{go_clean, go_dir};

#[test]
fn go_clean_matches_go() {
    // Cases from Go's path/filepath tests.
    let cases = [
        ("", "."),
        ("abc", "abc"),
        ("abc/def", "abc/def"),
        (".", "."),
        ("..", ".."),
        ("../..", "../.."),
        ("../../abc", "../../abc"),
        ("/abc", "/abc"),
        ("/", "/"),
        ("abc/", "abc"),
        ("abc/def/", "abc/def"),
        ("./", "."),
        ("../", ".."),
        ("/abc/", "/abc"),
        ("abc//def//ghi", "abc/def/ghi"),
        ("//abc", "/abc"),
        ("///abc", "/abc"),
        ("//abc//", "/abc"),
        ("abc//", "abc"),
        ("abc/./def", "abc/def"),
        ("/./abc/def", "/abc/def"),
        ("abc/.", "abc"),
        ("abc/def/ghi/../jkl", "abc/def/jkl"),
        ("abc/def/../ghi/../jkl", "abc/jkl"),
        ("abc/def/..", "abc"),
        ("abc/def/../..", "."),
        ("/abc/def/../..", "/"),
        ("abc/def/../../..", ".."),
        ("/abc/def/../../..", "/"),
        ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
        ("/../abc", "/abc"),
        ("abc/./../def", "def"),
        ("abc//./../def", "def"),
        ("abc/../../././../def", "../../def"),
    ];
    for (input, want) in cases {
        assert_eq!(go_clean(input), want, "Clean({input:?})");
    }
    assert_eq!(go_dir("a/b/c"), "a/b");
    assert_eq!(go_dir("dir/file/"), "dir/file");
    assert_eq!(go_dir("file"), ".");
    assert_eq!(go_dir("/"), "/");
}
