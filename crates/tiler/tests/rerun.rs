//! Reruns: nothing changed means nothing done; changes redo only what changed; a run killed at
//! any moment is finished by the next run, which ends exactly where an uninterrupted run ends.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const ARGS: &[&str] = &["--size", "64", "--per-photo", "4"];

/// Tile files of one photo, by manifest.
fn tiles_of(out: &Path, photo: &str) -> Vec<String> {
    manifest_rows(out)
        .iter()
        .filter(|r| r["photo"] == photo)
        .map(|r| r["tile"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn second_run_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 2, 4, 160, 120);
    write(&p.join("class1/broken.jpg"), b"not a photo");
    let out = dir.path().join("out");
    run_ok(&p, &out, ARGS);
    let before = mtimes(&out);
    let bytes_before = tree(&out);
    let log = run_ok(&p, &out, ARGS);
    assert!(log.contains("up to date"), "{log}");
    assert_eq!(mtimes(&out), before, "a file was rewritten");
    assert_eq!(tree(&out), bytes_before);
    // Sharded jobs agree that nothing is to be done, and leave nothing behind.
    for i in 0..2 {
        let log = run_ok(&p, &out, &[ARGS, &["--shard", &format!("{i}/2")]].concat());
        assert!(log.contains("up to date"), "{log}");
    }
    assert_eq!(mtimes(&out), before);
    assert!(!out.join(".parts").exists());
    // --force redoes everything, to the same bytes.
    let log = run_ok(&p, &out, &[ARGS, &["--force"]].concat());
    assert!(!log.contains("up to date"), "{log}");
    assert!(log.contains("32 tiles written"), "{log}");
    assert_eq!(tree(&out), bytes_before);
}

#[test]
fn changes_redo_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 2, 4, 160, 120);
    let out = dir.path().join("out");
    run_ok(&p, &out, ARGS);
    let first = tree(&out);

    // Touched, same content: re-hashed, nothing re-tiled, manifest and summary unchanged.
    shift_mtime(&p.join("class0/IMG_0001.jpg"), 5);
    let before = mtimes(&out);
    let log = run_ok(&p, &out, ARGS);
    assert!(log.contains("0 tiles written"), "{log}");
    let after = mtimes(&out);
    for (k, t) in &before {
        if k != ".tiler-state.json" {
            assert_eq!(after[k], *t, "{k} was rewritten");
        }
    }
    assert_eq!(
        fs::read(out.join("manifest.jsonl")).unwrap(),
        first["manifest.jsonl"]
    );
    assert_eq!(
        fs::read(out.join("tiler.json")).unwrap(),
        first["tiler.json"]
    );

    // New content in one photo: only its tiles are redone, under new names (a tile's name pins
    // its bytes), and its old tiles go; every other tile is left alone.
    let changed = "class1/IMG_0002.jpg";
    let old_tiles = tiles_of(&out, changed);
    assert_eq!(old_tiles.len(), 4);
    photo(&p.join(changed), 160, 120, 4242);
    let before = mtimes(&out);
    let log = run_ok(&p, &out, ARGS);
    assert!(log.contains("4 tiles written"), "{log}");
    let after = mtimes(&out);
    let changed_tiles = tiles_of(&out, changed);
    assert_eq!(changed_tiles.len(), 4);
    for t in &changed_tiles {
        assert!(!before.contains_key(t), "{t} rewritten in place");
        assert!(after.contains_key(t), "{t} missing");
    }
    for (k, t) in &before {
        if k.starts_with("train/") || k.starts_with("val/") {
            if old_tiles.contains(k) {
                assert!(!after.contains_key(k), "{k} left behind");
            } else {
                assert_eq!(after.get(k), Some(t), "{k} was redone");
            }
        }
    }
    let fresh = dir.path().join("fresh");
    run_ok(&p, &fresh, ARGS);
    assert_same_tree(&fresh, &out);

    // A removed photo takes its tiles with it.
    let removed = "class0/IMG_0003.jpg";
    let gone = tiles_of(&out, removed);
    assert_eq!(gone.len(), 4);
    fs::remove_file(p.join(removed)).unwrap();
    run_ok(&p, &out, ARGS);
    for t in &gone {
        assert!(!out.join(t).exists(), "{t} left behind");
    }
    let fresh2 = dir.path().join("fresh2");
    run_ok(&p, &fresh2, ARGS);
    assert_same_tree(&fresh2, &out);

    // A removed class folder takes its (now empty) folders with it.
    fs::remove_dir_all(p.join("class1")).unwrap();
    run_ok(&p, &out, ARGS);
    let fresh3 = dir.path().join("fresh3");
    run_ok(&p, &fresh3, ARGS);
    assert_same_tree(&fresh3, &out);
    assert!(!folders(&out).iter().any(|f| f.contains("class1")));

    // New parameters: everything redone to what a fresh run with them gives.
    let other = ["--size", "50", "--grid"];
    run_ok(&p, &out, &other);
    let fresh4 = dir.path().join("fresh4");
    run_ok(&p, &fresh4, &other);
    assert_same_tree(&fresh4, &out);
}

#[test]
fn adding_photos_never_moves_old_ones_under_the_hash_split() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 2, 12, 100, 80);
    let out = dir.path().join("out");
    let args = ["--size", "64", "--val-fraction", "0.3", "--split", "hash"];
    run_ok(&p, &out, &args);
    let split_of = |out: &Path| -> std::collections::BTreeMap<String, String> {
        let mut m = std::collections::BTreeMap::new();
        for r in manifest_rows(out) {
            let photo = r["photo"].as_str().unwrap().to_string();
            let split = r["split"].as_str().unwrap().to_string();
            // No photo feeds both splits.
            if let Some(old) = m.insert(photo.clone(), split.clone()) {
                assert_eq!(old, split, "{photo} in both splits");
            }
        }
        m
    };
    let before = split_of(&out);
    assert!(before.values().any(|s| s == "val") && before.values().any(|s| s == "train"));
    for i in 100..130 {
        photo(&p.join(format!("class{}/new_{i}.jpg", i % 3)), 100, 80, i);
    }
    let log = run_ok(&p, &out, &args);
    assert!(log.contains("24 unchanged"), "{log}");
    let after = split_of(&out);
    assert_eq!(after.len(), 54);
    for (photo, split) in &before {
        assert_eq!(&after[photo], split, "{photo} moved");
    }
}

#[test]
fn rerun_after_sigkill_equals_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 2, 24, 800, 600);
    let args = ["--size", "64", "--threads", "2"];
    let reference = dir.path().join("reference");
    run_ok(&p, &reference, &args);
    let n_tiles = manifest_rows(&reference).len();
    assert_eq!(n_tiles, 48 * 12 * 9);

    // Kill at different moments: while the first photos are being cut, and after some or most
    // photos are finished. Each time the rerun must end exactly where an uninterrupted run ends.
    for (attempt, photos_done) in [0usize, 8, 30].into_iter().enumerate() {
        let out = dir.path().join(format!("killed{attempt}"));
        let mut child = tiler()
            .arg("--input")
            .arg(&p)
            .arg("--out")
            .arg(&out)
            .args(args)
            .arg("--quiet")
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let reached = if photos_done == 0 {
                out.join("train").exists() || out.join("val").exists()
            } else {
                journal_lines(&out) >= photos_done
            };
            if reached || Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success() && !out.join("tiler.json").exists(),
            "the run finished before it could be killed; make the fixture larger"
        );
        let log = run_ok(&p, &out, &args);
        assert!(!log.contains("up to date"), "{log}");
        if photos_done > 0 {
            // Photos finished before the kill are resumed, not redone.
            let written = tiles_written(&log);
            assert!(
                written <= n_tiles - photos_done * 108,
                "rerun redid finished photos ({written} tiles):\n{log}"
            );
        }
        assert_same_tree(&reference, &out);
        assert!(!out.join(".parts").exists());
    }
}

/// Photos recorded in the job's journal so far.
fn journal_lines(out: &Path) -> usize {
    fs::read(out.join(".parts/tiler-journal-00000-of-00001.jsonl"))
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// The "N tiles written" count of a job's log.
fn tiles_written(log: &str) -> usize {
    let at = log.find(" tiles written").expect("no tiles-written line");
    let digits: String = log[..at]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}
