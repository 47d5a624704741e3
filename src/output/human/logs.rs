//! Output, human: container log lines → `pod/container │ line` on stderr, the prefix coloured by workload (the
//! same colour for a workload across runs and pods). Never writes stdout; reads no logs itself.

use super::Printer;

/// The prefix colours, picked by [`colour_of`].
const COLOURS: [&str; 6] = ["36", "35", "33", "32", "34", "31"];

impl Printer {
    /// Prints one line a container wrote.
    pub(super) fn log_line(&mut self, pod: &str, container: &str, workload: &str, line: &str) {
        let prefix = self.paint(
            COLOURS[colour_of(workload)],
            &format!("{pod}/{container} │"),
        );
        self.line(&format!("{prefix} {line}"));
    }
}

/// Colour index (0..6) for a workload: stable across runs and pods.
pub(super) fn colour_of(workload: &str) -> usize {
    // FNV-1a: tiny, stable, no dependency.
    let mut h: u32 = 0x811c_9dc5;
    for b in workload.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % 6) as usize
}
