//! Unit tests of the human printer's parts.

use super::logs::colour_of;

#[test]
fn a_workload_keeps_its_colour() {
    assert_eq!(colour_of("api"), colour_of("api"));
    // The same colours as before they were chosen here (FNV-1a of the name, modulo 6).
    assert_eq!(
        ["api", "web", "migrate", "frontend"].map(colour_of),
        [5, 1, 0, 3]
    );
}
