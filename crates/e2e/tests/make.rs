//! scripts/pipeline.mk: real targets and prerequisites, so a second `make` does nothing,
//! touching one photo reruns only what depends on it, changing a parameter reruns its stage and
//! what follows, and `make -j2` with parallel tiler jobs gives the same tiles as one job.

use std::path::Path;
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
        .args(extra)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS");
    c
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(ok(cmd).stdout).unwrap()
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).and_then(|m| m.modified()).unwrap()
}

#[test]
fn make_reruns_exactly_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    synth_photos(&photos, 2, 4, 256, 192, 7);
    let work = tmp.path().join("work");

    let first = stdout(&mut make(&photos, &work, &["all"]));
    for stage in ["tiler", "packer", "trainer", "scorer eval"] {
        assert!(
            first.contains(stage),
            "first make did not run {stage}:\n{first}"
        );
    }
    assert!(work.join("eval/default/report.json").is_file());

    // Nothing changed: make has nothing to do (question mode exits 0).
    let q = make(&photos, &work, &["-q", "all"]).status().unwrap();
    assert!(
        q.success(),
        "make -q says something is out of date after a full build"
    );

    // Touch one photo: the chain reruns from the tiler, and each stage finds nothing changed.
    let model = work.join("runs/default/model.safetensors");
    let shard_mtimes = mtime(&work.join("cache/index.json"));
    let model_mtime = mtime(&model);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let photo = std::fs::read_dir(
        photos.join(
            std::fs::read_dir(&photos)
                .unwrap()
                .filter_map(|e| {
                    let e = e.unwrap();
                    e.file_type().unwrap().is_dir().then(|| e.file_name())
                })
                .next()
                .unwrap(),
        ),
    )
    .unwrap()
    .next()
    .unwrap()
    .unwrap()
    .path();
    let bytes = std::fs::read(&photo).unwrap();
    std::fs::write(&photo, bytes).unwrap();
    let second = stdout(&mut make(&photos, &work, &["all"]));
    assert!(
        second.contains("tiler"),
        "touching a photo did not rerun the tiler:\n{second}"
    );
    assert_eq!(
        mtime(&work.join("cache/index.json")),
        shard_mtimes,
        "unchanged cache rewritten"
    );
    assert_eq!(mtime(&model), model_mtime, "unchanged run retrained");
    assert!(
        make(&photos, &work, &["-q", "all"])
            .status()
            .unwrap()
            .success()
    );

    // A packer parameter changes: the packer and everything after it rerun, the tiler does not.
    let third = stdout(&mut make(&photos, &work, &["all", "JITTER=0.1"]));
    assert!(
        !third.contains("/tiler "),
        "tiler reran for a packer parameter:\n{third}"
    );
    assert!(
        third.contains("packer") && third.contains("trainer"),
        "{third}"
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
