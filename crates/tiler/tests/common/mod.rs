//! Helpers for the tiler's end-to-end tests: photos made here with the `image` crate (noisy
//! textures, so PNG tiles are realistic), running the real binary, and snapshots of trees.
#![allow(dead_code, unused_imports)]

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_tiler");

pub use ballast_testkit::images::{
    crc32, jpeg_bytes, photo, photo_tree, png_bytes, png_declaring, texture, tiff_bytes, write,
};
pub use ballast_testkit::trees::{assert_same_tree, folders, mtimes, read_json, tree};

/// The tiler command with a clean environment (no Slurm variables, no RUST_LOG).
pub fn tiler() -> Command {
    ballast_testkit::clean(BIN)
}

pub fn run(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut c = tiler();
    c.arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(extra);
    c.output().unwrap()
}

pub use ballast_testkit::stderr;

/// Runs and asserts exit status 0, returning stderr.
pub fn run_ok(input: &Path, out: &Path, extra: &[&str]) -> String {
    let o = run(input, out, extra);
    let err = stderr(&o);
    assert!(o.status.success(), "tiler failed ({:?}):\n{err}", o.status);
    err
}

pub fn manifest_rows(out: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(out.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Moves a file's mtime by `secs` (without changing its content).
pub fn shift_mtime(path: &Path, secs: u64) {
    ballast_testkit::shift_mtime(path, secs as i64);
}
