//! scripts/pipeline.mk: real targets and prerequisites, so a second `make` runs no stage,
//! touching one photo reruns only what depends on it (each stage then finds its own output up to
//! date), changing a parameter reruns its stage and what follows, and `make -j2` with parallel
//! tiler jobs gives the same tiles as one job.

use std::path::{Path, PathBuf};
use std::process::Command;

use ballast_e2e::{assert_same_tree, bin_dir, ok, root, synth_photos};

fn make(photos: &Path, work: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new("make");
    c.arg("-f")
        .arg(root().join("scripts/pipeline.mk"))
        .arg(format!("PHOTOS={}", photos.display()))
        .arg(format!("WORK={}", work.display()))
        .arg(format!("BIN={}", bin_dir().display()))
        .args([
            "TILE_SIZE=64",
            "SIZE=16",
            "EPOCHS=2",
            "BATCH=32",
            "THREADS=1",
        ])
        .arg("VAL_FRACTION=0.3")
        .args(extra)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("SPLIT")
        .env_remove("TILE_FILES");
    c
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(ok(cmd).stdout).unwrap()
}

/// Which stages a make run invoked (from the recipe lines make echoes).
fn stages_run(make_stdout: &str) -> Vec<&'static str> {
    ["tiler", "packer", "trainer", "scorer"]
        .into_iter()
        .filter(|s| make_stdout.contains(&format!("/{s} ")))
        .collect()
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).and_then(|m| m.modified()).unwrap()
}

fn first_photo(photos: &Path) -> PathBuf {
    let mut classes: Vec<PathBuf> = std::fs::read_dir(photos)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    classes.sort();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&classes[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.remove(0)
}

#[test]
fn make_reruns_exactly_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    synth_photos(&photos, 2, 6, 256, 192, 7);
    let work = tmp.path().join("work");

    let first = stdout(&mut make(&photos, &work, &["all"]));
    assert_eq!(
        stages_run(&first),
        ["tiler", "packer", "trainer", "scorer"],
        "{first}"
    );
    assert!(work.join("eval/default/report.json").is_file());

    // Nothing changed: no stage runs.
    let again = stdout(&mut make(&photos, &work, &["all"]));
    assert!(
        stages_run(&again).is_empty(),
        "second make ran a stage:\n{again}"
    );

    // Touch one photo (same bytes, new mtime): the chain reruns from the tiler, and each stage
    // finds nothing really changed, so the cache and the model are not rewritten.
    let index = work.join("cache/index.json");
    let model = work.join("runs/default/model.safetensors");
    let (index_mtime, model_mtime) = (mtime(&index), mtime(&model));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let photo = first_photo(&photos);
    let bytes = std::fs::read(&photo).unwrap();
    std::fs::write(&photo, bytes).unwrap();
    let touched = stdout(&mut make(&photos, &work, &["all"]));
    assert_eq!(
        stages_run(&touched),
        ["tiler", "packer", "trainer", "scorer"],
        "{touched}"
    );
    assert_eq!(mtime(&index), index_mtime, "unchanged cache rewritten");
    assert_eq!(mtime(&model), model_mtime, "unchanged run retrained");
    let again = stdout(&mut make(&photos, &work, &["all"]));
    assert!(
        stages_run(&again).is_empty(),
        "make after the touch ran a stage:\n{again}"
    );

    // A packer parameter changes: the packer and everything after it rerun, the tiler does not,
    // and the trainer replaces the stale run.
    let changed = stdout(&mut make(&photos, &work, &["all", "JITTER=0.1"]));
    assert_eq!(
        stages_run(&changed),
        ["packer", "trainer", "scorer"],
        "{changed}"
    );
    assert_ne!(
        mtime(&model),
        model_mtime,
        "run not retrained on the new cache"
    );
}

#[test]
fn parallel_tiler_jobs_under_make_j_equal_one_job() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    synth_photos(&photos, 2, 5, 256, 192, 8);
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    ok(&mut make(&photos, &one, &["tiles"]));
    ok(&mut make(&photos, &two, &["-j2", "tiles", "TILER_JOBS=2"]));
    assert_same_tree(&one.join("tiles"), &two.join("tiles"));
}

#[test]
fn the_split_variable_reaches_the_tiler_and_reruns_it() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    synth_photos(&photos, 2, 4, 256, 192, 9);
    let work = tmp.path().join("work");
    let rule = || {
        let summary = std::fs::read(work.join("tiles/tiler.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&summary).unwrap();
        v["params"]["split"].as_str().unwrap().to_string()
    };
    // Empty SPLIT: the tiler's default.
    let first = stdout(&mut make(&photos, &work, &["tiles"]));
    assert!(!first.contains("--split"), "{first}");
    assert_eq!(rule(), "stratified");
    let hash = stdout(&mut make(&photos, &work, &["tiles", "SPLIT=hash"]));
    assert_eq!(stages_run(&hash), ["tiler"], "{hash}");
    assert!(hash.contains("--split hash"), "{hash}");
    assert_eq!(rule(), "content-hash");
    let again = stdout(&mut make(&photos, &work, &["tiles", "SPLIT=hash"]));
    assert!(stages_run(&again).is_empty(), "{again}");
}

#[test]
fn tile_files_none_packs_the_same_cache_without_tile_files() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    synth_photos(&photos, 2, 3, 256, 192, 4);
    let (png, none) = (tmp.path().join("png"), tmp.path().join("none"));
    stdout(&mut make(&photos, &png, &["cache"]));
    let out = stdout(&mut make(&photos, &none, &["cache", "TILE_FILES=none"]));
    assert!(out.contains("--tile-files none"), "{out}");
    let files = ballast_e2e::tree(&none.join("tiles"));
    assert!(!files.keys().any(|f| f.ends_with(".png")), "{files:?}");
    let shards = |work: &Path| {
        let t = ballast_e2e::tree(&work.join("cache"));
        t.into_iter()
            .filter(|(f, _)| f.ends_with(".safetensors"))
            .count()
    };
    assert!(shards(&none) > 0 && shards(&none) == shards(&png));
    let again = stdout(&mut make(&photos, &none, &["cache", "TILE_FILES=none"]));
    assert!(stages_run(&again).is_empty(), "{again}");
}

/// Manifest rows' (photo, class) pairs.
fn manifest_photos(work: &Path) -> std::collections::BTreeSet<(String, String)> {
    std::fs::read_to_string(work.join("tiles/manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["photo"].as_str().unwrap().to_string(),
                v["class"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn deleted_moved_and_old_mtime_photos_rerun_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    // The set of the test above (seed 7): each class keeps photos on both sides of the split
    // through the deletion and the move below (the stratified split keeps at least one photo
    // on each side of a class of two or more).
    synth_photos(&photos, 2, 6, 256, 192, 7);
    let extra = tmp.path().join("extra");
    synth_photos(&extra, 2, 1, 256, 192, 10);
    let work = tmp.path().join("work");
    stdout(&mut make(&photos, &work, &["cache"]));
    let index = work.join("cache/index.json");
    let settled = |what: &str| {
        let again = stdout(&mut make(&photos, &work, &["cache"]));
        assert!(
            stages_run(&again).is_empty(),
            "make after {what} ran a stage again:\n{again}"
        );
    };

    // Deleted: the photo leaves the manifest and the cache is rebuilt.
    let gone = first_photo(&photos);
    let gone_rel = gone
        .strip_prefix(&photos)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let before = std::fs::read(&index).unwrap();
    std::fs::remove_file(&gone).unwrap();
    let out = stdout(&mut make(&photos, &work, &["cache"]));
    assert_eq!(stages_run(&out), ["tiler", "packer"], "{out}");
    assert!(!manifest_photos(&work).iter().any(|(p, _)| *p == gone_rel));
    assert_ne!(
        std::fs::read(&index).unwrap(),
        before,
        "cache kept the deleted photo"
    );
    settled("a deletion");

    // Moved to the other class folder, mtime kept (mv): its class changes.
    let moved = first_photo(&photos);
    let name = moved.file_name().unwrap().to_owned();
    let mut classes: Vec<_> = std::fs::read_dir(&photos)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    classes.sort();
    std::fs::rename(&moved, photos.join(&classes[1]).join(&name)).unwrap();
    let out = stdout(&mut make(&photos, &work, &["cache"]));
    assert_eq!(stages_run(&out), ["tiler", "packer"], "{out}");
    let rel = format!("{}/{}", classes[1], name.to_string_lossy());
    assert!(
        manifest_photos(&work).contains(&(rel.clone(), classes[1].clone())),
        "moved photo {rel} not re-labelled"
    );
    settled("a move");

    // Added with an mtime years old (cp -p, rsync -a, unzip): tiled anyway.
    let newcomer = first_photo(&extra);
    let ext = newcomer.extension().unwrap().to_string_lossy().into_owned();
    let dest = photos.join(&classes[0]).join(format!("from-archive.{ext}"));
    std::fs::copy(&newcomer, &dest).unwrap();
    ballast_testkit::shift_mtime(&dest, -10 * 365 * 24 * 3600);
    let out = stdout(&mut make(&photos, &work, &["cache"]));
    assert_eq!(stages_run(&out), ["tiler", "packer"], "{out}");
    let rel = format!("{}/from-archive.{ext}", classes[0]);
    assert!(
        manifest_photos(&work).iter().any(|(p, _)| *p == rel),
        "{rel} not tiled"
    );
    settled("an old-mtime copy");
}

#[test]
fn make_sweep_runs_every_setting_in_parallel_jobs_and_then_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    synth_photos(&photos, 2, 4, 256, 192, 3);
    let work = tmp.path().join("work");
    let sweep = [
        "SWEEP=lr=0.002,0.004 seed=0,1",
        "SWEEP_NAME=lr",
        "SWEEP_JOBS=2",
    ];
    let mut args = vec!["-j2", "sweep"];
    args.extend(sweep);
    let first = stdout(&mut make(&photos, &work, &args));
    assert!(
        first.contains("--shard 0/2") && first.contains("--shard 1/2"),
        "{first}"
    );
    let ranking = std::fs::read_to_string(work.join("sweeps/lr/ranking.txt")).unwrap();
    let rows: Vec<&str> = ranking.lines().skip(2).collect();
    assert_eq!(rows.len(), 4, "{ranking}");
    assert!(rows[0].starts_with("1 "), "{ranking}");
    for name in [
        "lr0.002-seed0",
        "lr0.002-seed1",
        "lr0.004-seed0",
        "lr0.004-seed1",
    ] {
        assert!(ranking.contains(name), "{name} missing: {ranking}");
        assert!(
            work.join("sweeps/lr")
                .join(name)
                .join("model.safetensors")
                .is_file()
        );
    }
    // Nothing changed: no stage runs.
    let again = stdout(&mut make(&photos, &work, &args));
    assert!(stages_run(&again).is_empty(), "{again}");
    // Another sweep value reruns the sweep jobs only; the trained runs are up to date.
    let mut wider = vec!["-j2", "sweep", "SWEEP=lr=0.002,0.004,0.008 seed=0,1"];
    wider.extend(["SWEEP_NAME=lr", "SWEEP_JOBS=2"]);
    let out = stdout(&mut make(&photos, &work, &wider));
    assert_eq!(stages_run(&out), ["trainer"], "{out}");
    let ranking = std::fs::read_to_string(work.join("sweeps/lr/ranking.txt")).unwrap();
    assert_eq!(ranking.lines().skip(2).count(), 6, "{ranking}");
}
