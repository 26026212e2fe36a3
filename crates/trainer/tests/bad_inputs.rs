//! Bad caches and run folders: one clear error line naming the file and the problem, exit 1,
//! no panic, and no run folder created from bad data.

mod common;

use std::path::Path;

use ballast_format::Split;
use ballast_format::shard_file::{self, SHARD_FORMAT, ShardMeta};
use common::*;

fn args<'a>(cache: &'a str, run: &'a str) -> Vec<&'a str> {
    vec![
        "--cache", cache, "--run", run, "--conv", "4,8", "--fc", "16", "--epochs", "1", "-q",
    ]
}

fn meta(split: Split, n: usize, size: u32, classes: usize) -> ShardMeta {
    ShardMeta {
        format: SHARD_FORMAT.into(),
        split,
        index: 1,
        count: 2,
        size,
        classes: (0..classes).map(|c| format!("class{c}")).collect(),
        tiles: (0..n).map(|i| format!("t{i}.png")).collect(),
        photos: (0..n).map(|i| format!("p{i}.png")).collect(),
        copies: vec![0; n],
    }
}

/// A cache, and the run path that must not appear.
fn setup(t: &Path) -> (String, String) {
    let cache = small_cache(t);
    (s(&cache), s(&t.join("run")))
}

#[test]
fn missing_index_and_missing_shard() {
    let t = tempfile::tempdir().unwrap();
    let (cache, run) = setup(t.path());
    std::fs::remove_file(Path::new(&cache).join("train-00001-of-00002.safetensors")).unwrap();
    fails(
        &args(&cache, &run),
        &["train-00001-of-00002.safetensors", "missing"],
    );
    assert!(!Path::new(&run).exists());
    std::fs::remove_file(Path::new(&cache).join("index.json")).unwrap();
    fails(&args(&cache, &run), &["no index.json"]);
}

#[test]
fn digest_mismatch_is_named() {
    let t = tempfile::tempdir().unwrap();
    let (cache, run) = setup(t.path());
    let p = Path::new(&cache).join("val-00000-of-00002.safetensors");
    let mut bytes = read(&p);
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&p, bytes).unwrap();
    fails(
        &args(&cache, &run),
        &[
            "val-00000-of-00002.safetensors",
            "content digest",
            "differs from index.json",
        ],
    );
    assert!(!Path::new(&run).exists());
}

#[test]
fn shard_with_wrong_size_is_named() {
    let t = tempfile::tempdir().unwrap();
    let (cache, run) = setup(t.path());
    let file = "train-00001-of-00002.safetensors";
    // A valid shard of 8×8 samples where the index says 16×16.
    let n = 128;
    shard_file::write(
        &Path::new(&cache).join(file),
        &vec![7u8; n * 64],
        &vec![0i64; n],
        8,
        &meta(Split::Train, n, 8, 4),
    )
    .unwrap();
    reindex(Path::new(&cache), file);
    // The index now lists a file too small for its 16×16 samples: refused before any read.
    fails(
        &args(&cache, &run),
        &["index.json", file, "128 samples of 16x16 cannot fit"],
    );
}

#[test]
fn shard_with_wrong_dtype_is_named() {
    let t = tempfile::tempdir().unwrap();
    let (cache, run) = setup(t.path());
    let file = "train-00000-of-00002.safetensors";
    // Images stored as F32 instead of U8: a hand-written, otherwise valid safetensors file.
    // As many samples as the index lists, so the index itself is consistent.
    let (n, sz) = (128usize, 16usize);
    let m = serde_json::to_string(&meta(Split::Train, n, sz as u32, 4)).unwrap();
    let img_len = n * sz * sz * 4;
    let header = serde_json::json!({
        "__metadata__": {"ballast": m},
        "labels": {"dtype": "I64", "shape": [n], "data_offsets": [0, 8 * n]},
        "images": {"dtype": "F32", "shape": [n, 1, sz, sz], "data_offsets": [8 * n, 8 * n + img_len]},
    });
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&h);
    bytes.extend(vec![0u8; 8 * n + img_len]);
    std::fs::write(Path::new(&cache).join(file), bytes).unwrap();
    reindex(Path::new(&cache), file);
    fails(&args(&cache, &run), &[file, "`images` must be U8", "F32"]);
}

#[test]
fn labels_out_of_range_are_named() {
    let t = tempfile::tempdir().unwrap();
    let (cache, run) = setup(t.path());
    let file = "val-00001-of-00002.safetensors";
    let n = 32;
    let mut labels = vec![1i64; n];
    labels[5] = 9;
    shard_file::write(
        &Path::new(&cache).join(file),
        &vec![100u8; n * 256],
        &labels,
        16,
        &meta(Split::Val, n, 16, 4),
    )
    .unwrap();
    reindex(Path::new(&cache), file);
    fails(
        &args(&cache, &run),
        &[file, "sample 5 has label 9, outside 0..4"],
    );
}

#[test]
fn empty_val_split_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let cache = cache_with(
        t.path(),
        ballast_trainer::synthetic::SynthCache {
            size: 16,
            val_per_class: 0,
            ..Default::default()
        },
    );
    let run = t.path().join("run");
    fails(
        &args(&s(&cache), &s(&run)),
        &["index.json", "the val split is empty"],
    );
    assert!(!run.exists());
}

#[test]
fn zero_batch_and_bad_flags() {
    let t = tempfile::tempdir().unwrap();
    let (cache, run) = setup(t.path());
    let mut a = args(&cache, &run);
    a.extend(["--batch", "0"]);
    usage_fails(&a, &["--batch must be at least 1"]);
    let mut a = args(&cache, &run);
    a.push("--lr=-1");
    usage_fails(&a, &["--lr -1 must be a positive number"]);
    let mut a = args(&cache, &run);
    a.extend(["--dropout", "1"]);
    usage_fails(&a, &["--dropout 1 is outside [0, 1)"]);
    let mut a = args(&cache, &run);
    a.extend(["--patience", "0"]);
    usage_fails(&a, &["--patience must be at least 1"]);
    assert!(!Path::new(&run).exists());
    // clap's own usage errors exit 2.
    let o = run_args(&["--cache", &cache]);
    assert_eq!(o.status.code(), Some(2));
    let o = run_args(&["--cache", &cache, "--run", &run, "--conv", "6,x"]);
    assert_eq!(o.status.code(), Some(2));
}

fn run_args(a: &[&str]) -> std::process::Output {
    common::run(a)
}

#[test]
fn corrupt_checkpoint_on_resume_is_named() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let run = t.path().join("r");
    let mut a = small_args(&cache, &run, 3);
    a.extend(["--stop-after", "1"].map(String::from));
    ok(&refs(&a));
    let last = run.join("last.safetensors");
    let bytes = read(&last);
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    let mut r = small_args(&cache, &run, 3);
    r.push("--resume".into());
    // Refused first by its digest, then (recorded as if the trainer wrote it) by its content.
    fails(&refs(&r), &["last.safetensors", "damaged", "--force"]);
    rerecord(&last);
    fails(
        &refs(&r),
        &[
            "last.safetensors",
            "not a valid safetensors file",
            "--force",
        ],
    );
    // A checkpoint of another run is refused too.
    std::fs::write(&last, &bytes).unwrap();
    let other = t.path().join("other");
    let mut o = small_args(&cache, &other, 3);
    o.extend(["--seed", "5", "--stop-after", "1"].map(String::from));
    ok(&refs(&o));
    std::fs::copy(other.join("last.safetensors"), &last).unwrap();
    fails(&refs(&r), &["last.safetensors", "damaged or replaced"]);
    // Even recorded as this run's, its training state names another run.
    rerecord(&last);
    fails(
        &refs(&r),
        &["last.safetensors", "different run configuration"],
    );
    // A corrupt config.json is named as well.
    std::fs::write(run.join("config.json"), b"{not json").unwrap();
    fails(&refs(&r), &["config.json", "malformed run config"]);
}

#[test]
fn changed_cache_is_refused_for_an_existing_run() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let run = t.path().join("r");
    ok(&refs(&small_args(&cache, &run, 1)));
    let mut idx = index(&cache);
    idx.seed += 1;
    write_index(&cache, &idx);
    fails(
        &refs(&small_args(&cache, &run, 1)),
        &["different cache", "--force"],
    );
}
