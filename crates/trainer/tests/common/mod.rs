//! Helpers shared by the trainer's end-to-end tests: small synthetic caches and the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ballast_format::cache_files::CacheIndex;
use ballast_trainer::synthetic::{self, SynthCache};

pub fn trainer() -> Command {
    ballast_testkit::clean(env!("CARGO_BIN_EXE_trainer"))
}

/// Runs the trainer with `args`; returns its output.
pub fn run(args: &[&str]) -> Output {
    ballast_testkit::run(trainer().args(args))
}

#[allow(unused_imports)]
pub use ballast_testkit::{stderr, stdout};

/// Runs and asserts success.
pub fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "trainer {args:?} failed: {}",
        stderr(&o)
    );
    o
}

/// Runs and asserts exit status 1 with an error line containing every one of `needles`.
pub fn fails(args: &[&str], needles: &[&str]) -> String {
    let o = run(args);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "trainer {args:?}: {e}");
    assert!(e.contains("error: "), "{e}");
    for n in needles {
        assert!(e.contains(n), "expected {n:?} in: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
    e
}

/// The stripes task: 16×16, 4 classes, 64 train and 16 val samples per class.
pub fn small_cache(dir: &Path) -> PathBuf {
    cache_with(dir, SynthCache::default().with_size(16))
}

pub fn cache_with(dir: &Path, spec: SynthCache) -> PathBuf {
    let c = dir.join("cache");
    synthetic::write(&c, &spec).expect("synthetic cache");
    c
}

pub trait WithSize {
    fn with_size(self, size: u32) -> Self;
}

impl WithSize for SynthCache {
    fn with_size(mut self, size: u32) -> Self {
        self.size = size;
        self
    }
}

pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A small, fast model that learns the stripes task within a few epochs.
pub fn small_args(cache: &Path, run: &Path, epochs: usize) -> Vec<String> {
    [
        "--cache",
        &s(cache),
        "--run",
        &s(run),
        "--conv",
        "4,8",
        "--fc",
        "16",
        "--recipe",
        "report",
        "--lr",
        "0.05",
        "--batch",
        "16",
        "--epochs",
        &epochs.to_string(),
        "--threads",
        "1",
        "-q",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn index(cache: &Path) -> CacheIndex {
    CacheIndex::read(cache).unwrap()
}

pub fn write_index(cache: &Path, index: &CacheIndex) {
    ballast_format::atomic::write_json(&cache.join("index.json"), index).unwrap();
}

/// Re-points the index entry of `file` at the file's current bytes (digest and length), so a
/// deliberately malformed shard gets past the digest check to the check under test.
pub fn reindex(cache: &Path, file: &str) {
    let mut idx = index(cache);
    let p = cache.join(file);
    let e = idx.shards.iter_mut().find(|e| e.file == file).unwrap();
    e.digest = ballast_format::digest::of_file(&p).unwrap();
    e.bytes = std::fs::metadata(&p).unwrap().len();
    write_index(cache, &idx);
}

/// The checkpoint's training state (from last.safetensors' metadata).
pub fn checkpoint_state(run: &Path) -> serde_json::Value {
    let f = ballast_trainer::tensor_file::read(&run.join("last.safetensors")).unwrap();
    serde_json::from_str(&f.metadata["ballast.checkpoint"]).unwrap()
}

/// log.jsonl's lines (invocations and epoch timings).
pub fn log_events(run: &Path, event: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == event)
        .collect()
}

/// Every file of a run folder but log.jsonl (the one file that records when and how fast).
pub fn run_tree(run: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut t = ballast_testkit::tree(run);
    t.remove("log.jsonl");
    t
}

/// Asserts two run folders are equal in every file but log.jsonl, naming the first difference.
pub fn assert_same_run(a: &Path, b: &Path) {
    let (ta, tb) = (run_tree(a), run_tree(b));
    assert_eq!(
        ta.keys().collect::<Vec<_>>(),
        tb.keys().collect::<Vec<_>>(),
        "different files"
    );
    for (k, v) in &ta {
        assert!(
            v == &tb[k],
            "{k} differs:\n{}\n---\n{}",
            String::from_utf8_lossy(v)
                .chars()
                .take(3000)
                .collect::<String>(),
            String::from_utf8_lossy(&tb[k])
                .chars()
                .take(3000)
                .collect::<String>()
        );
    }
}

/// Records `path`'s current bytes in its run's checkpoints.json, as if the trainer had written
/// them: a deliberately malformed weight file then gets past the digest check to the check
/// under test.
pub fn rerecord(path: &Path) {
    let digest = ballast_format::digest::of_file(path).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    ballast_format::checkpoint_record::CheckpointRecord::settle(
        path.parent().unwrap(),
        name,
        &digest,
    )
    .unwrap();
}

/// Runs and asserts exit status 2 (a usage error) with every one of `needles` in stderr.
pub fn usage_fails(args: &[&str], needles: &[&str]) -> String {
    let o = run(args);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "trainer {args:?}: {e}");
    for n in needles {
        assert!(e.contains(n), "expected {n:?} in: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
    e
}
