//! The train/val split rules (`--split stratified|hash`) through the real binary: per-class
//! shares on a small data set, sharded jobs agreeing, the hash rule unchanged, warnings for
//! thin classes, and the stratified rule's stability as photos are added.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

/// Photos per class and side, from the manifest: class → (train, val).
fn photos_per_side(out: &Path) -> BTreeMap<String, (usize, usize)> {
    let mut sides: BTreeMap<(String, String), String> = BTreeMap::new();
    for r in manifest_rows(out) {
        let key = (
            r["class"].as_str().unwrap().to_string(),
            r["photo"].as_str().unwrap().to_string(),
        );
        let split = r["split"].as_str().unwrap().to_string();
        if let Some(old) = sides.insert(key.clone(), split.clone()) {
            assert_eq!(old, split, "{key:?} feeds both sides");
        }
    }
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for ((class, _), split) in sides {
        let c = counts.entry(class).or_default();
        match split.as_str() {
            "train" => c.0 += 1,
            "val" => c.1 += 1,
            other => panic!("split {other}"),
        }
    }
    counts
}

/// photo → split, from the manifest.
fn side_of_photos(out: &Path) -> BTreeMap<String, String> {
    manifest_rows(out)
        .iter()
        .map(|r| {
            (
                r["photo"].as_str().unwrap().to_string(),
                r["split"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn warnings(out: &Path) -> Vec<String> {
    read_json(&out.join("tiler.json"))["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

const ISSUE: &[&str] = &["--size", "64", "--val-fraction", "0.34"];

#[test]
fn six_photos_per_class_give_two_val_and_four_train_in_every_class() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 5, 6, 100, 80);
    let out = dir.path().join("tiles");
    let log = run_ok(&p, &out, ISSUE);
    let counts = photos_per_side(&out);
    assert_eq!(counts.len(), 5);
    for (class, c) in &counts {
        assert_eq!(*c, (4, 2), "class {class}");
        // Also on stderr, and in tiler.json.
        assert!(
            log.contains(&format!(
                "class {class}: 4 train photos (4 tiles), 2 val photos (2 tiles)"
            )),
            "{log}"
        );
    }
    let summary = read_json(&out.join("tiler.json"));
    assert_eq!(summary["params"]["split"], "stratified");
    for c in summary["classes"].as_array().unwrap() {
        assert_eq!(
            (&c["train_photos"], &c["val_photos"]),
            (&4.into(), &2.into())
        );
    }
    assert!(warnings(&out).is_empty(), "{:?}", warnings(&out));
    assert!(log.contains("hashed 30 of 30 photos"), "{log}");

    // A rerun is up to date and makes the same split; switching the rule redoes the output,
    // and switching back needs no hashing: the recorded digests still hold.
    assert!(run_ok(&p, &out, ISSUE).contains("up to date"));
    let hash = run_ok(&p, &out, &[ISSUE, &["--split", "hash"]].concat());
    assert!(
        !hash.contains("up to date") && !hash.contains("hashed"),
        "{hash}"
    );
    assert_eq!(
        read_json(&out.join("tiler.json"))["params"]["split"],
        "content-hash"
    );
    let again = run_ok(&p, &out, ISSUE);
    assert!(
        !again.contains("up to date") && !again.contains("hashed"),
        "{again}"
    );
    assert_eq!(photos_per_side(&out), counts);
}

/// An uneven tree: classes of 1, 2, 5 and 9 photos, a photo copied within a class and one
/// copied into another class.
fn uneven(p: &Path) {
    for (c, n) in [(0usize, 1usize), (1, 2), (2, 5), (3, 9)] {
        for i in 0..n {
            photo(
                &p.join(format!("class{c}/IMG_{i:04}.jpg")),
                100,
                80,
                (c * 1000 + i) as u32,
            );
        }
    }
    let copy = std::fs::read(p.join("class3/IMG_0004.jpg")).unwrap();
    write(&p.join("class3/sub/again.jpg"), &copy);
    write(&p.join("class2/stray.jpg"), &copy);
}

#[test]
fn sharded_jobs_make_the_single_job_split() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    uneven(&p);
    let args = ["--size", "48", "--stride", "40", "--val-fraction", "0.3"];
    let whole = dir.path().join("whole");
    run_ok(&p, &whole, &args);
    let counts = photos_per_side(&whole);
    assert_eq!(counts["class3"].1, 3, "{counts:?}"); // 9 distinct contents (+1 copy): k = 3
    // Each copy on one side: the copied content is counted once.
    let sides = side_of_photos(&whole);
    assert_eq!(sides["class3/IMG_0004.jpg"], sides["class3/sub/again.jpg"]);
    assert_eq!(sides["class3/IMG_0004.jpg"], sides["class2/stray.jpg"]);

    for jobs in [2, 3] {
        let out = dir.path().join(format!("sharded-{jobs}"));
        for i in (0..jobs).rev() {
            run_ok(
                &p,
                &out,
                &[&args[..], &["--shard", &format!("{i}/{jobs}")]].concat(),
            );
        }
        assert_same_tree(&whole, &out);
    }
}

/// The tree and arguments `HASH_MANIFEST_BLAKE3` was recorded with.
fn hash_fixture(p: &Path) {
    photo_tree(p, 3, 7, 100, 80);
    photo(&p.join("class1/extra.png"), 90, 90, 77);
    photo(&p.join("class2/nested/extra.tif"), 120, 70, 78);
}
const HASH_ARGS: &[&str] = &[
    "--size",
    "48",
    "--stride",
    "32",
    "--val-fraction",
    "0.3",
    "--split-seed",
    "5",
];
/// BLAKE3 of the manifest.jsonl that the tiler of commit ce63707 (before the stratified rule,
/// when the content hash was the only rule) wrote for `hash_fixture` and `HASH_ARGS`; its tile
/// files were byte-identical too.
const HASH_MANIFEST_BLAKE3: &str =
    "a96622dcdfedf46b35a0f90a0bf25b2a4e9dacb72bb2b3ec0942ddd0b1d22f56";

#[test]
fn the_hash_rule_reproduces_the_earlier_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    hash_fixture(&p);
    let out = dir.path().join("tiles");
    run_ok(&p, &out, &[HASH_ARGS, &["--split", "hash"]].concat());
    let manifest = std::fs::read(out.join("manifest.jsonl")).unwrap();
    assert_eq!(
        blake3::hash(&manifest).to_hex().as_str(),
        HASH_MANIFEST_BLAKE3
    );
    // The stratified rule splits the same photos differently (one tile set, other sides).
    let strat = dir.path().join("strat");
    run_ok(&p, &strat, HASH_ARGS);
    assert_ne!(
        std::fs::read(strat.join("manifest.jsonl")).unwrap(),
        manifest
    );
    assert_eq!(manifest_rows(&strat).len(), manifest_rows(&out).len());
}

#[test]
fn a_class_of_one_photo_is_warned_about_under_either_rule() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 2, 6, 100, 80);
    photo(&p.join("lonely/only.jpg"), 100, 80, 4242);
    for rule in ["stratified", "hash"] {
        let out = dir.path().join(format!("tiles-{rule}"));
        let args = ["--size", "64", "--val-fraction", "0.34", "--split", rule];
        let log = run_ok(&p, &out, &args);
        let w = warnings(&out);
        // One photo trains (the stratified rule keeps a single photo in train; the hash rule
        // has it on whichever side its hash falls).
        let (t, v) = photos_per_side(&out)["lonely"];
        assert_eq!(t + v, 1);
        let expected = if t == 1 {
            [
                "class lonely has no val photo (1 train, 0 val): it is never validated",
                "class lonely has a single train photo (1 train, 0 val): it is trained on one photo",
            ]
        } else {
            [
                "class lonely has no train photo (0 train, 1 val): it is never trained on",
                "class lonely has a single val photo (0 train, 1 val): its val accuracy rests on one photo",
            ]
        };
        if rule == "stratified" {
            assert_eq!(t, 1);
        }
        for e in expected {
            assert!(w.iter().any(|x| x == e), "{rule}: {w:?}");
            assert!(log.contains(e), "{rule}: {log}");
        }
        assert!(
            w.iter().all(|x| x.contains("lonely") || rule == "hash"),
            "{w:?}"
        );
        // Up to date, the warnings are repeated.
        let again = run_ok(&p, &out, &args);
        assert!(
            again.contains("up to date") && again.contains(expected[0]),
            "{again}"
        );
    }
}

#[test]
fn adding_photos_moves_at_most_one_old_photo_per_class() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 3, 4, 100, 80);
    let out = dir.path().join("tiles");
    let args = ["--size", "64", "--val-fraction", "0.3"];
    run_ok(&p, &out, &args);
    let mut before = side_of_photos(&out);
    let mut moves = 0;
    for round in 0..4u32 {
        for c in 0..3u32 {
            photo(
                &p.join(format!("class{c}/new_{round}.jpg")),
                100,
                80,
                5000 + round * 10 + c,
            );
        }
        let log = run_ok(&p, &out, &args);
        let after = side_of_photos(&out);
        let mut moved: BTreeMap<&str, usize> = BTreeMap::new();
        for (photo, side) in &before {
            if after[photo] != *side {
                *moved.entry(photo.split('/').next().unwrap()).or_default() += 1;
            }
        }
        assert!(moved.values().all(|&n| n <= 1), "round {round}: {moved:?}");
        moves += moved.values().sum::<usize>();
        // Photos that kept their side were not tiled again.
        let kept = before.len() - moved.values().sum::<usize>();
        assert!(log.contains(&format!("{kept} unchanged")), "{log}");
        for (class, (t, v)) in photos_per_side(&out) {
            let n = t + v;
            let k = ((n as f64 * 0.3).round() as usize).clamp(1, n - 1);
            assert_eq!(v, k, "round {round}, class {class}");
        }
        before = after;
    }
    // The trade-off is real: some old photo did change side (and was tiled again).
    assert!(moves > 0);
}

#[test]
fn a_photo_rewritten_behind_its_recorded_stat_stops_the_run_until_forced() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 2, 4, 100, 80);
    let out = dir.path().join("tiles");
    run_ok(&p, &out, &["--size", "64", "--val-fraction", "0.3"]);
    // Same size and mtime, other bytes: the recorded digest no longer holds.
    let victim = p.join("class1/IMG_0002.jpg");
    let mtime = std::fs::metadata(&victim).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let f = std::fs::File::options().write(true).open(&victim).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    // Other parameters, so the stat cache (not the committed tiles) supplies the digest.
    let args = ["--size", "64", "--val-fraction", "0.4"];
    let o = common::run(&p, &out, &args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("IMG_0002.jpg") && err.contains("--force"),
        "{err}"
    );
    run_ok(&p, &out, &[&args[..], &["--force"]].concat());
    let rows = manifest_rows(&out);
    let digest = blake3::hash(&bytes).to_hex().to_string();
    assert!(rows.iter().any(|r| r["photo_digest"] == digest.as_str()));
}
