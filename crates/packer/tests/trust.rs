//! Trust under concurrency and damage (issue #11), on the real binary: one packer per cache
//! folder (jobs of one sharded build side by side), no train/val leak by content, `packer
//! verify` re-deriving the index, bounded counts, messages for unfinished builds.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};

use ballast_format::Split;
use ballast_format::cache_files::CacheIndex;
use ballast_testkit::signals::{pause, signal, wait_for_holder};
use common::*;

/// Enough tiles and copies that a build is still running when the test looks at it.
fn slow_tiles(root: &Path) -> std::path::PathBuf {
    let tiles = root.join("tiles");
    write_dataset(&tiles, &["a", "b", "c"], 6, 6, 120);
    tiles
}

fn spawn(tiles: &Path, out: &Path, extra: &[&str]) -> Child {
    ballast_testkit::clean(BIN)
        .args(pack_args(tiles, out, extra))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

const SLOW: [&str; 6] = ["--size", "32", "--copies", "100", "--threads", "1"];

#[test]
fn a_second_packer_with_other_parameters_is_refused_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let tiles = slow_tiles(root.path());
    let reference = root.path().join("reference");
    pack_ok(
        &tiles,
        &reference,
        &[&SLOW[..], &["--seed", "1", "-q"]].concat(),
    );
    for trial in 0..3 {
        let out = root.path().join(format!("cache{trial}"));
        // A good cache first (seed 1), then a rebuild with seed 2 caught in the middle.
        pack_ok(&tiles, &out, &[&SLOW[..], &["--seed", "1", "-q"]].concat());
        let holder = spawn(&tiles, &out, &[&SLOW[..], &["--seed", "2", "-q"]].concat());
        let pid = holder.id();
        wait_for_holder(&out.join(".ballast.lock"), pid);
        pause(pid);
        let before = snapshot(&out);
        let o = packer(&pack_args(
            &tiles,
            &out,
            &[&SLOW[..], &["--seed", "3"]].concat(),
        ));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(
            e.contains(&format!("pid {pid}")) && e.contains("started"),
            "{e}"
        );
        assert!(!e.contains("panicked"), "{e}");
        assert_eq!(snapshot(&out), before, "the refused packer wrote");
        if trial == 1 {
            // A SIGKILLed holder leaves no lock behind: the next run repairs the cache.
            signal(pid, "-KILL");
            let _ = holder.wait_with_output();
        } else {
            signal(pid, "-CONT");
            let done = holder.wait_with_output().unwrap();
            assert!(
                done.status.success(),
                "{}",
                String::from_utf8_lossy(&done.stderr)
            );
        }
        pack_ok(&tiles, &out, &[&SLOW[..], &["--seed", "1", "-q"]].concat());
        assert_eq!(snapshot(&out), snapshot(&reference), "trial {trial}");
        let v = packer(&["verify", out.to_str().unwrap()]);
        assert!(v.status.success(), "{}", stdout(&v));
    }
}

#[test]
fn jobs_of_one_sharded_build_run_side_by_side() {
    let root = tempfile::tempdir().unwrap();
    let tiles = slow_tiles(root.path());
    let whole = root.path().join("whole");
    let args = ["--size", "16", "--copies", "4", "--shards", "3", "-q"];
    pack_ok(&tiles, &whole, &args);
    for trial in 0..2 {
        let out = root.path().join(format!("sharded{trial}"));
        let jobs: Vec<Child> = (0..3)
            .map(|i| {
                spawn(
                    &tiles,
                    &out,
                    &[&args[..], &["--shard", &format!("{i}/3")]].concat(),
                )
            })
            .collect();
        for j in jobs {
            let o = j.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert_eq!(snapshot(&out), snapshot(&whole), "trial {trial}");
    }
}

#[test]
fn train_and_val_sharing_a_photo_or_tile_digest_is_refused_naming_both() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, mut rows) = standard(root.path());
    let out = root.path().join("cache");
    let val = rows.iter().position(|r| r.split == Split::Val).unwrap();
    let train = rows.iter().position(|r| r.split == Split::Train).unwrap();
    // An older tiler split a byte-identical copy into val.
    let copy = rows[train].photo_digest.clone();
    let val_photo = rows[val].photo.clone();
    for r in rows.iter_mut().filter(|r| r.photo == val_photo) {
        r.photo_digest = copy.clone();
    }
    write_manifest(&tiles, &rows);
    let o = packer(&pack_args(&tiles, &out, &["--size", "16"]));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&rows[val].photo)
            && e.contains(&rows[train].photo)
            && e.contains("same content"),
        "{e}"
    );
    assert!(!out.join("index.json").exists());

    // The same through a tile: identical pixels on both sides.
    let (tiles, mut rows) = standard(&root.path().join("t2"));
    let val = rows.iter().position(|r| r.split == Split::Val).unwrap();
    let train = rows.iter().position(|r| r.split == Split::Train).unwrap();
    rows[val].tile_digest = rows[train].tile_digest.clone();
    write_manifest(&tiles, &rows);
    let o = packer(&pack_args(
        &tiles,
        &root.path().join("c2"),
        &["--size", "16"],
    ));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(rows[val].tile.as_deref().unwrap())
            && e.contains(rows[train].tile.as_deref().unwrap()),
        "{e}"
    );
}

/// Rewrites index.json through `f`, runs `packer verify`, and returns its problem lines.
fn verify_after(out: &Path, good: &CacheIndex, f: impl Fn(&mut serde_json::Value)) -> String {
    let mut v = serde_json::to_value(good).unwrap();
    f(&mut v);
    std::fs::write(out.join("index.json"), serde_json::to_vec(&v).unwrap()).unwrap();
    let o = packer(&["verify", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "verify passed: {}", stdout(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn verify_re_derives_the_index_and_names_each_disagreement() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, _) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(&tiles, &out, &["--size", "16", "--shards", "2", "-q"]);
    let good = CacheIndex::read(&out).unwrap();
    let name = |i: usize| good.shards[i].file.clone();

    let p = verify_after(&out, &good, |v| v["mean"] = serde_json::json!(0.9));
    assert!(p.contains("index.json") && p.contains("mean 0.9"), "{p}");

    let p = verify_after(&out, &good, |v| {
        let first = v["shards"][0].clone();
        v["shards"][1] = first;
    });
    assert!(p.contains(&format!("{:?} is listed twice", name(0))), "{p}");

    for bad in [
        "../other/train-00001-of-00002.safetensors",
        "/tmp/train-00001-of-00002.safetensors",
    ] {
        let p = verify_after(&out, &good, |v| {
            v["shards"][1]["file"] = serde_json::json!(bad)
        });
        assert!(
            p.contains(bad) && p.contains("not a file name inside the cache folder"),
            "{p}"
        );
    }

    // Pixel sums changed together with a mean/std that agree with them: only the shard's own
    // bytes can tell.
    let mut forged = good.clone();
    forged.shards[0].pixel_sum += 1000;
    let (m, s) = ballast_format::cache_files::train_moments(&forged.shards, forged.size).unwrap();
    forged.mean = m;
    forged.std = s;
    let p = verify_after(&out, &forged, |_| {});
    assert!(
        p.contains(&name(0)) && p.contains("pixel sums differ"),
        "{p}"
    );

    // Per-class counts moved between classes (totals unchanged).
    let mut forged = good.clone();
    let pc = &mut forged.shards[0].per_class;
    let (i, j) = (pc.iter().position(|&c| c > 0).unwrap(), 0);
    let k = if i == 0 { 1 } else { j };
    pc[i] -= 1;
    pc[k] += 1;
    forged.splits.train.per_class = vec![0; forged.classes.len()];
    for e in forged.shards.iter().filter(|e| e.split == Split::Train) {
        for (a, b) in forged.splits.train.per_class.iter_mut().zip(&e.per_class) {
            *a += b;
        }
    }
    let p = verify_after(&out, &forged, |_| {});
    assert!(p.contains(&name(0)) && p.contains("per class"), "{p}");

    // Restored, verify is happy again.
    ballast_format::atomic::write_json(&out.join("index.json"), &good).unwrap();
    let o = packer(&["verify", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stdout(&o));
}

#[test]
fn counts_are_bounded_and_unfinished_builds_are_explained() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, _) = standard(root.path());
    let out = root.path().join("cache");
    let o = packer(&pack_args(&tiles, &out, &["--shards", "4294967295"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!out.exists(), "a refused run created its output");

    // One job of two: the cache names the job still to run.
    pack_ok(
        &tiles,
        &out,
        &["--size", "16", "--shards", "2", "--shard", "0/2", "-q"],
    );
    let o = packer(&["verify", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("a sharded build has not finished: packer job(s) 1 of 2"),
        "{}",
        stderr(&o)
    );
    pack_ok(
        &tiles,
        &out,
        &["--size", "16", "--shards", "2", "--shard", "1/2", "-q"],
    );
    assert!(packer(&["verify", out.to_str().unwrap()]).status.success());

    // A whole run stopped before its index: said so, not called a sharded build.
    std::fs::remove_file(out.join("index.json")).unwrap();
    let o = packer(&["verify", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("did not finish") && !e.contains("sharded"),
        "{e}"
    );
}

#[test]
fn fifos_in_place_of_contract_files_are_refused_without_hanging() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, rows) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(&tiles, &out, &["--size", "16", "-q"]);
    // A FIFO for the manifest, for a tile, and for the cache's own index.
    let manifest = tiles.join("manifest.jsonl");
    let saved = std::fs::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    ballast_testkit::process::mkfifo(&manifest);
    let o = ballast_testkit::process::run_within(
        ballast_testkit::clean(BIN).args(pack_args(&tiles, &out, &["--size", "16"])),
        60,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    std::fs::remove_file(&manifest).unwrap();
    std::fs::write(&manifest, saved).unwrap();

    let tile = tiles.join(rows[0].tile.as_deref().unwrap());
    std::fs::remove_file(&tile).unwrap();
    ballast_testkit::process::mkfifo(&tile);
    let o = ballast_testkit::process::run_within(
        ballast_testkit::clean(BIN).args(pack_args(&tiles, &out, &["--size", "16", "--force"])),
        60,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(rows[0].tile.as_deref().unwrap()),
        "{}",
        stderr(&o)
    );

    let index = out.join("index.json");
    std::fs::remove_file(&index).unwrap();
    ballast_testkit::process::mkfifo(&index);
    let o = ballast_testkit::process::run_within(
        ballast_testkit::clean(BIN).args(["verify", out.to_str().unwrap()]),
        60,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
}
