//! Bad input, end to end: a clear error naming the row or file, exit 1, and the previous good
//! cache untouched. `--max-bad` skips and reports instead.

mod common;

use ballast_format::Split;
use ballast_format::cache_files::{CacheIndex, PackerSummary};
use common::*;

struct Case {
    root: tempfile::TempDir,
    tiles: std::path::PathBuf,
    out: std::path::PathBuf,
    rows: Vec<ballast_format::manifest::TileRecord>,
}

/// A data set with a good cache built from it.
fn with_good_cache() -> Case {
    let root = tempfile::tempdir().unwrap();
    let (tiles, rows) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(&tiles, &out, &["--size", "16", "--shards", "2", "-q"]);
    Case {
        root,
        tiles,
        out,
        rows,
    }
}

/// Runs the packer (a changed manifest forces work), expects exit 1 with every `needle` in the
/// message, and the earlier cache byte for byte as it was.
fn fails_cleanly(c: &Case, needles: &[&str]) -> String {
    let before = snapshot(&c.out);
    let o = packer(&pack_args(
        &c.tiles,
        &c.out,
        &["--size", "16", "--shards", "2"],
    ));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    for n in needles {
        assert!(e.contains(n), "expected {n:?} in: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(snapshot(&c.out), before, "previous cache changed");
    e
}

#[test]
fn missing_tile_is_named_with_its_line() {
    let c = with_good_cache();
    let mut rows = c.rows.clone();
    rows.extend(add_photo(&c.tiles, "fine/extra.jpg", Split::Train, 2, 40));
    write_manifest(&c.tiles, &rows);
    std::fs::remove_file(c.tiles.join(rows[37].tile.as_deref().unwrap())).unwrap();
    fails_cleanly(
        &c,
        &[
            rows[37].tile.as_deref().unwrap(),
            "manifest.jsonl:38",
            "missing",
            "--max-bad",
        ],
    );
}

#[test]
fn corrupt_png_is_named_and_max_bad_skips_it() {
    let c = with_good_cache();
    let mut rows = c.rows.clone();
    rows.extend(add_photo(&c.tiles, "medium/extra.jpg", Split::Train, 3, 40));
    // Truncated PNG whose digest the manifest records (the tiler wrote it like that).
    let bad = &mut rows[38];
    let p = c.tiles.join(bad.tile.as_deref().unwrap());
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
    bad.tile_digest = Some(ballast_format::digest::of_file(&p).unwrap());
    let bad_tile = bad.tile.clone().unwrap();
    write_manifest(&c.tiles, &rows);
    fails_cleanly(&c, &[&bad_tile, "manifest.jsonl:39", "not a valid PNG"]);

    // Within --max-bad: skipped, reported in packer.json, exit 0; reruns stay up to date.
    pack_ok(
        &c.tiles,
        &c.out,
        &["--size", "16", "--shards", "2", "--max-bad", "1", "-q"],
    );
    let s = PackerSummary::read(&c.out).unwrap();
    assert_eq!(s.bad_tiles.len(), 1);
    assert_eq!(s.bad_tiles[0].tile, bad_tile);
    assert!(s.bad_tiles[0].reason.contains("not a valid PNG"));
    assert_eq!(s.counts.tiles_packed, 38);
    let index = CacheIndex::read(&c.out).unwrap();
    assert_eq!(index.splits.train.tiles, 29);
    assert_eq!(index.splits.train.samples, 29);
    let o = pack_ok(
        &c.tiles,
        &c.out,
        &["--size", "16", "--shards", "2", "--max-bad", "1"],
    );
    assert!(stderr(&o).contains("up to date"), "{}", stderr(&o));
    // ...but not with a lower --max-bad.
    let o = packer(&pack_args(
        &c.tiles,
        &c.out,
        &["--size", "16", "--shards", "2"],
    ));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&bad_tile), "{}", stderr(&o));
}

#[test]
fn skipped_missing_tile_is_packed_once_restored() {
    let c = with_good_cache();
    let rel = c.rows[10].tile.clone().unwrap();
    let saved = std::fs::read(c.tiles.join(&rel)).unwrap();
    std::fs::remove_file(c.tiles.join(&rel)).unwrap();
    // The cache is up to date by its manifest, but a shard's tile is gone: rebuilt, skipped.
    let o = pack_ok(
        &c.tiles,
        &c.out,
        &["--size", "16", "--shards", "2", "--max-bad", "3"],
    );
    assert!(stderr(&o).contains("skipped bad tile"), "{}", stderr(&o));
    let s = PackerSummary::read(&c.out).unwrap();
    assert_eq!(s.bad_tiles.len(), 1);
    assert!(
        s.bad_tiles[0].reason.starts_with("missing"),
        "{:?}",
        s.bad_tiles
    );
    let o = pack_ok(
        &c.tiles,
        &c.out,
        &["--size", "16", "--shards", "2", "--max-bad", "3"],
    );
    assert!(stderr(&o).contains("up to date"), "{}", stderr(&o));

    std::fs::write(c.tiles.join(&rel), saved).unwrap();
    pack_ok(
        &c.tiles,
        &c.out,
        &["--size", "16", "--shards", "2", "--max-bad", "3", "-q"],
    );
    assert!(PackerSummary::read(&c.out).unwrap().bad_tiles.is_empty());
    let fresh = c.root.path().join("fresh");
    pack_ok(&c.tiles, &fresh, &["--size", "16", "--shards", "2", "-q"]);
    assert_eq!(snapshot(&fresh), snapshot(&c.out));
}

#[test]
fn leftovers_of_a_killed_run_are_removed() {
    let c = with_good_cache();
    let temp = c
        .out
        .join(".train-00000-of-00002.safetensors.tmp-j00000_of_00001-999-0");
    std::fs::write(&temp, b"half a shard").unwrap();
    let staged = c
        .out
        .join(".val-00001-of-00002.safetensors.tmp-j00001_of_00002-staged");
    std::fs::write(&staged, b"a staged shard").unwrap();
    pack_ok(&c.tiles, &c.out, &["--size", "16", "--shards", "2", "-q"]);
    assert!(!temp.exists() && !staged.exists());
}

#[test]
fn rows_pointing_outside_are_refused() {
    for evil in ["../x.png", "/etc/passwd"] {
        let c = with_good_cache();
        let mut rows = c.rows.clone();
        rows[4].tile = Some(evil.into());
        write_manifest(&c.tiles, &rows);
        fails_cleanly(&c, &["manifest.jsonl:5", evil, "outside the tiles folder"]);
    }
}

#[test]
fn malformed_line_is_named() {
    let c = with_good_cache();
    let path = c.tiles.join("manifest.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"tile\": \"train/a/x.png\", \"photo\": \n");
    std::fs::write(&path, text).unwrap();
    fails_cleanly(&c, &["manifest.jsonl:37:", "malformed manifest row"]);
}

#[test]
fn class_only_in_val_and_empty_train_are_errors() {
    let c = with_good_cache();
    let mut rows = c.rows.clone();
    rows.extend(add_photo(&c.tiles, "zeolite/v.jpg", Split::Val, 1, 40));
    write_manifest(&c.tiles, &rows);
    fails_cleanly(&c, &["\"zeolite\"", "no train tiles", "manifest.jsonl:37"]);

    let only_val: Vec<_> = c
        .rows
        .iter()
        .filter(|r| r.split == Split::Val)
        .cloned()
        .collect();
    write_manifest(&c.tiles, &only_val);
    fails_cleanly(&c, &["no train tiles", "train split is empty"]);

    write_manifest(&c.tiles, &[]);
    fails_cleanly(&c, &["manifest is empty"]);
}

#[test]
fn empty_val_split_is_a_warning() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, rows) = standard(root.path());
    let train: Vec<_> = rows
        .into_iter()
        .filter(|r| r.split == Split::Train)
        .collect();
    write_manifest(&tiles, &train);
    let out = root.path().join("cache");
    let o = pack_ok(&tiles, &out, &["--size", "16"]);
    assert!(stderr(&o).contains("val split is empty"), "{}", stderr(&o));
    let index = CacheIndex::read(&out).unwrap();
    assert_eq!(index.splits.val.samples, 0);
    // The empty val shard is a valid zero-sample file.
    let val = index.shards.iter().find(|e| e.split == Split::Val).unwrap();
    assert_eq!(val.samples, 0);
    assert_eq!(
        ballast_format::shard_file::read(&out.join(&val.file), 3)
            .unwrap()
            .len(),
        0
    );
    let s = PackerSummary::read(&out).unwrap();
    assert!(s.warnings.iter().any(|w| w.contains("val split is empty")));
}

#[test]
fn missing_manifest_and_unfinished_tiler() {
    let c = with_good_cache();
    std::fs::remove_file(c.tiles.join("manifest.jsonl")).unwrap();
    fails_cleanly(&c, &["manifest.jsonl", "run the tiler first"]);
    // Job 1 of 2 has reported, job 0 has not: the message names it.
    std::fs::create_dir(c.tiles.join(".parts")).unwrap();
    std::fs::write(c.tiles.join(".parts/tiler-00001-of-00002.json"), "{}").unwrap();
    fails_cleanly(
        &c,
        &["a sharded build has not finished", "tiler job(s) 0 of 2"],
    );
    let o = packer(&pack_args(&c.root.path().join("nope"), &c.out, &[]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no such tiles folder"),
        "{}",
        stderr(&o)
    );
}
