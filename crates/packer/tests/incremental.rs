//! Incremental rebuilds: only shards whose inputs changed are rewritten; an unchanged cache is
//! left alone; --force rewrites identical bytes.

mod common;

use ballast_format::Split;
use ballast_format::cache_files::CacheIndex;
use ballast_format::shard_file;
use ballast_packer::plan::shard_of_photo;
use common::*;

const ARGS: [&str; 6] = ["--size", "16", "--shards", "3", "--copies", "2"];

/// Files whose bytes or mtime differ between two snapshots.
fn changed(
    before: &std::collections::BTreeMap<String, Vec<u8>>,
    before_t: &std::collections::BTreeMap<String, std::time::SystemTime>,
    dir: &std::path::Path,
) -> Vec<String> {
    let after = snapshot(dir);
    let after_t = mtimes(dir);
    let mut v: Vec<String> = after
        .keys()
        .chain(before.keys())
        .filter(|k| before.get(*k) != after.get(*k) || before_t.get(*k) != after_t.get(*k))
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn unchanged_rerun_does_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, _) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(&tiles, &out, &ARGS);
    age_shards(&out);
    let (snap, times) = (snapshot(&out), mtimes(&out));
    let o = pack_ok(&tiles, &out, &ARGS);
    assert!(stderr(&o).contains("up to date"), "{}", stderr(&o));
    assert!(changed(&snap, &times, &out).is_empty());

    // A tile rewritten with identical bytes (newer mtime) is re-hashed and accepted.
    let rel = CacheIndex::read(&out).unwrap().shards[0].file.clone();
    let meta = shard_file::read_meta(&out.join(&rel)).unwrap();
    let t = tiles.join(&meta.tiles[0]);
    std::fs::write(&t, std::fs::read(&t).unwrap()).unwrap();
    let o = pack_ok(&tiles, &out, &ARGS);
    assert!(stderr(&o).contains("up to date"), "{}", stderr(&o));
    assert!(changed(&snap, &times, &out).is_empty());
}

#[test]
fn new_photo_rewrites_only_its_shard() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, mut rows) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(&tiles, &out, &ARGS);
    age_shards(&out);
    let (snap, times) = (snapshot(&out), mtimes(&out));

    let photo = "fine/photo9.jpg";
    rows.extend(add_photo(&tiles, photo, Split::Train, 2, 40));
    write_manifest(&tiles, &rows);
    let o = pack_ok(&tiles, &out, &ARGS);
    let k = shard_of_photo(photo, 3);
    let shard = shard_file::file_name(Split::Train, k, 3);
    assert_eq!(
        changed(&snap, &times, &out),
        vec![
            "index.json".to_string(),
            "packer.json".into(),
            shard.clone()
        ],
        "{}",
        stderr(&o)
    );
    let index = CacheIndex::read(&out).unwrap();
    assert_eq!(index.splits.train.tiles, 29);
    let data = shard_file::read(&out.join(&shard), 3).unwrap();
    assert!(data.meta.photos.iter().any(|p| p == photo));

    // The incremental result equals a fresh build.
    let fresh = root.path().join("fresh");
    pack_ok(&tiles, &fresh, &ARGS);
    assert_eq!(snapshot(&fresh), snapshot(&out));
}

#[test]
fn changed_tile_rewrites_only_its_shard_and_force_rewrites_identically() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, mut rows) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(&tiles, &out, &ARGS);
    age_shards(&out);
    let (snap, times) = (snapshot(&out), mtimes(&out));

    // The tiler rewrote one val tile with new content and a new digest.
    let i = rows.iter().position(|r| r.split == Split::Val).unwrap();
    let new = write_tile(&tiles, &rows[i].photo.clone(), Split::Val, 0, 40, 1);
    assert_eq!(new.tile, rows[i].tile);
    assert_ne!(new.tile_digest, rows[i].tile_digest);
    let photo = rows[i].photo.clone();
    rows[i] = new;
    write_manifest(&tiles, &rows);
    pack_ok(&tiles, &out, &ARGS);
    let shard = shard_file::file_name(Split::Val, shard_of_photo(&photo, 3), 3);
    assert_eq!(
        changed(&snap, &times, &out),
        vec!["index.json".to_string(), "packer.json".into(), shard]
    );

    // --force rebuilds every shard with identical bytes.
    age_shards(&out);
    let (snap, times) = (snapshot(&out), mtimes(&out));
    pack_ok(&tiles, &out, &[&ARGS[..], &["--force"]].concat());
    assert_eq!(snap, snapshot(&out));
    let t2 = mtimes(&out);
    for f in shard_files(&out) {
        assert_ne!(times[&f], t2[&f], "{f} was not rewritten by --force");
    }
}

#[test]
fn tile_altered_behind_the_manifest_is_named() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, rows) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(&tiles, &out, &ARGS);
    let snap = snapshot(&out);
    // Overwrite a tile's bytes without updating the manifest (newer mtime than index.json).
    let other = write_tile(
        &root.path().join("scratch"),
        "x/y.jpg",
        Split::Train,
        0,
        40,
        7,
    );
    std::fs::copy(
        root.path()
            .join("scratch")
            .join(other.tile.as_deref().unwrap()),
        tiles.join(rows[5].tile.as_deref().unwrap()),
    )
    .unwrap();
    let o = packer(&pack_args(&tiles, &out, &ARGS));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(rows[5].tile.as_deref().unwrap()) && e.contains("rerun the tiler"),
        "{e}"
    );
    assert!(e.contains("manifest.jsonl:6"), "{e}");
    assert_eq!(
        snapshot(&out),
        snap,
        "the previous cache must stay as it was"
    );
}

#[test]
fn shard_count_change_removes_stale_shards_and_sharded_rebuild_retires_the_index() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, mut rows) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(&tiles, &out, &ARGS);
    pack_ok(
        &tiles,
        &out,
        &["--size", "16", "--shards", "2", "--copies", "2"],
    );
    assert_eq!(
        shard_files(&out),
        [
            "train-00000-of-00002.safetensors",
            "train-00001-of-00002.safetensors",
            "val-00000-of-00002.safetensors",
            "val-00001-of-00002.safetensors"
        ]
    );

    // A sharded incremental build: while jobs are pending, later stages see no index (the
    // changed shard no longer matches it) and are told which jobs are missing.
    rows.extend(add_photo(&tiles, "coarse/photo7.jpg", Split::Train, 2, 40));
    write_manifest(&tiles, &rows);
    let k = shard_of_photo("coarse/photo7.jpg", 2) as usize; // train shards are 0..2
    let job = format!("{}/4", k % 4);
    pack_ok(
        &tiles,
        &out,
        &[
            "--size", "16", "--shards", "2", "--copies", "2", "--shard", &job,
        ],
    );
    let e = CacheIndex::read(&out).unwrap_err().to_string();
    assert!(e.contains("has not finished"), "{e}");
    for j in (0..4).filter(|j| *j != k % 4) {
        pack_ok(
            &tiles,
            &out,
            &[
                "--size",
                "16",
                "--shards",
                "2",
                "--copies",
                "2",
                "--shard",
                &format!("{j}/4"),
            ],
        );
    }
    let fresh = root.path().join("fresh");
    pack_ok(
        &tiles,
        &fresh,
        &["--size", "16", "--shards", "2", "--copies", "2"],
    );
    assert_eq!(snapshot(&fresh), snapshot(&out));
}
