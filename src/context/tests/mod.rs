//! Tests of the build-context stage, one file per concept (bottom-up, as the stage's files), and the fixture
//! helpers the walk and tar tests share.

mod dockerignore;
mod filepath;
mod pattern;
mod patternmatcher;
mod tar_stream;
mod walk;

use std::fs;
use std::path::Path;

use super::*;

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn rels(files: &ContextFiles) -> Vec<&str> {
    files.entries.iter().map(|e| e.rel.as_str()).collect()
}
