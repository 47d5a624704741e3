//! Deploy, Docker backend, start order: the plan's containers and their `depends_on` → start levels, each
//! depending only on earlier ones. Pure: talks to no daemon.

use crate::config::deploy::Container;

/// Groups containers into start levels: each level depends only on earlier ones.
pub(super) fn levels(containers: &[Container]) -> Vec<Vec<usize>> {
    let mut placed: Vec<Option<usize>> = vec![None; containers.len()];
    let mut out: Vec<Vec<usize>> = Vec::new();
    while placed.iter().any(Option::is_none) {
        let level = out.len();
        let ready: Vec<usize> = (0..containers.len())
            .filter(|&i| placed[i].is_none())
            .filter(|&i| {
                containers[i].depends_on.iter().all(|d| {
                    containers
                        .iter()
                        .position(|c| c.name == d.name)
                        .is_some_and(|j| placed[j].is_some_and(|l| l < level))
                })
            })
            .collect();
        // Validation rejects cycles and unknown names; should one slip through, start the rest rather than hang.
        let ready = if ready.is_empty() {
            (0..containers.len())
                .filter(|&i| placed[i].is_none())
                .collect()
        } else {
            ready
        };
        for &i in &ready {
            placed[i] = Some(level);
        }
        out.push(ready);
    }
    out
}
