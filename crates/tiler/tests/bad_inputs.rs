//! Bad inputs: each is named with its reason on stderr and in tiler.json, good photos are still
//! tiled, and earlier output is never damaged.

mod common;

use std::fs;
use std::path::Path;

use common::*;

const ARGS: &[&str] = &["--size", "64", "--val-fraction", "0.5"];

/// Can this process read a file after `chmod 000`? (True for root.)
fn permissions_bypassed(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join("probe");
    fs::write(&probe, b"x").unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o000)).unwrap();
    let readable = fs::read(&probe).is_ok();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(&probe).unwrap();
    readable
}

/// Adds every kind of bad input to `p`; returns (relative path, expected reason, counts as bad).
fn add_bad_inputs(p: &Path, scratch: &Path) -> Vec<(String, String, bool)> {
    let mut cases = Vec::new();
    let mut add = |rel: &str, reason: &str, bad: bool| {
        cases.push((rel.to_string(), reason.to_string(), bad));
    };
    write(&p.join("class0/zero.jpg"), b"");
    add("class0/zero.jpg", "empty file (0 bytes)", true);

    let jpeg = jpeg_bytes(&texture(200, 150, 77));
    write(&p.join("class0/truncated.jpg"), &jpeg[..jpeg.len() / 2]);
    add("class0/truncated.jpg", "truncated JPEG data", true);

    write(&p.join("class1/notes.jpg"), b"these are my field notes\n");
    add("class1/notes.jpg", "not a JPEG, PNG or TIFF file", true);

    photo(&p.join("class1/small.png"), 60, 40, 3);
    add(
        "class1/small.png",
        "photo is 60×40, smaller than the 64×64 tile",
        false,
    );

    write(&p.join("class1/bomb.png"), &png_declaring(100_000, 100_000));
    add(
        "class1/bomb.png",
        "declares 100000×100000 pixels (10000 MP), over the 250 MP limit",
        true,
    );

    std::os::unix::fs::symlink(p.join("class0/moved-away.jpg"), p.join("class0/link.jpg")).unwrap();
    add("class0/link.jpg", "cannot read: broken symbolic link", true);

    if !permissions_bypassed(scratch) {
        use std::os::unix::fs::PermissionsExt;
        photo(&p.join("class0/locked.jpg"), 100, 100, 9);
        fs::set_permissions(
            p.join("class0/locked.jpg"),
            fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        add(
            "class0/locked.jpg",
            "cannot read: Permission denied (os error 13)",
            true,
        );
    }

    fs::create_dir_all(p.join("empty-class")).unwrap();
    add("empty-class", "class folder has no photos", false);
    cases
}

#[test]
fn each_bad_input_is_named_and_good_photos_are_tiled() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 2, 3, 150, 140);
    let cases = add_bad_inputs(&p, dir.path());
    let n_bad = cases.iter().filter(|c| c.2).count();
    let out = dir.path().join("out");
    let log = run_ok(&p, &out, ARGS);

    let summary = read_json(&out.join("tiler.json"));
    let skipped = summary["skipped"].as_array().unwrap();
    for (rel, reason, _) in &cases {
        let line = format!("skipped {}: {reason}", p.join(rel).display());
        assert_eq!(
            log.matches(&line).count(),
            1,
            "expected one line {line:?} in:\n{log}"
        );
        assert!(
            skipped
                .iter()
                .any(|s| s["path"] == rel.as_str() && s["reason"] == reason.as_str()),
            "{rel} missing from tiler.json skipped: {skipped:?}"
        );
    }
    assert_eq!(skipped.len(), cases.len());
    let counts = &summary["counts"];
    assert_eq!(counts["bad"], n_bad as u64);
    assert_eq!(counts["skipped"], cases.len() as u64);
    assert_eq!(counts["photos_tiled"], 6);
    assert_eq!(counts["tiles"], 6 * 4);
    // Listed sorted by path.
    let paths: Vec<&str> = skipped
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    // Good photos are all there.
    let rows = manifest_rows(&out);
    assert_eq!(rows.len(), 24);
    assert!(
        rows.iter()
            .all(|r| out.join(r["tile"].as_str().unwrap()).is_file())
    );

    // Unchanged bad inputs are not retried: the rerun is up to date.
    let log = run_ok(&p, &out, ARGS);
    assert!(log.contains("up to date"), "{log}");
}

#[test]
fn over_max_bad_fails_and_keeps_earlier_output() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 2, 3, 150, 140);
    let out = dir.path().join("out");
    run_ok(&p, &out, ARGS);
    let good = tree(&out);
    let good_times = mtimes(&out);

    let cases = add_bad_inputs(&p, dir.path());
    let n_bad = cases.iter().filter(|c| c.2).count();
    // A new good photo is tiled, but not committed.
    photo(&p.join("class0/new.jpg"), 150, 140, 5555);
    // A changed photo is re-tiled too, beside its committed tiles, never over them.
    photo(&p.join("class1/IMG_0001.jpg"), 150, 140, 6666);

    let o = run(&p, &out, &[ARGS, &["--max-bad", "2"]].concat());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: {n_bad} bad inputs, over the --max-bad limit of 2"
        )),
        "{err}"
    );
    for (rel, reason, _) in &cases {
        assert!(
            err.contains(&format!("skipped {}: {reason}", p.join(rel).display())),
            "{rel} not named:\n{err}"
        );
    }
    // The committed output is untouched: same manifest, summary and tiles, same times.
    let now = tree(&out);
    let now_times = mtimes(&out);
    for (k, v) in &good {
        assert_eq!(now.get(k), Some(v), "{k} changed");
        assert_eq!(now_times.get(k), good_times.get(k), "{k} rewritten");
    }

    // Within the limit, the same input commits (resuming the tiles already cut).
    let log = run_ok(
        &p,
        &out,
        &[ARGS, &["--max-bad", &n_bad.to_string()]].concat(),
    );
    assert!(log.contains("0 tiles written"), "{log}");
    let summary = read_json(&out.join("tiler.json"));
    assert_eq!(summary["counts"]["bad"], n_bad as u64);
    assert_eq!(summary["counts"]["photos_tiled"], 7);
    let fresh = dir.path().join("fresh");
    run_ok(&p, &fresh, ARGS);
    assert_same_tree(&fresh, &out);
}

#[test]
fn missing_or_bad_input_folder_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let missing = dir.path().join("no-such-photos");
    let o = run(&missing, &out, ARGS);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "input folder {}: does not exist",
            missing.display()
        )),
        "{err}"
    );
    assert!(!out.exists(), "output folder created for a failed run");

    // A file instead of a folder.
    let file = dir.path().join("file.jpg");
    write(&file, b"x");
    let o = run(&file, &out, ARGS);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a folder"), "{}", stderr(&o));
    assert!(!out.exists());

    // An existing output stays intact when the input goes missing.
    let p = dir.path().join("photos");
    photo_tree(&p, 1, 2, 100, 100);
    run_ok(&p, &out, ARGS);
    let before = tree(&out);
    fs::rename(&p, dir.path().join("elsewhere")).unwrap();
    let o = run(&p, &out, ARGS);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(tree(&out), before);

    // Usage errors are exit 2 (clap).
    let o = tiler()
        .args(["--input", "a", "--out", "b", "--per-photo", "3", "--grid"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn photos_outside_class_folders_are_reported_not_tiled() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 1, 1, 100, 100);
    photo(&p.join("loose.jpg"), 100, 100, 1);
    write(&p.join("README.txt"), b"ignored");
    let out = dir.path().join("out");
    let log = run_ok(&p, &out, ARGS);
    assert!(
        log.contains(&format!(
            "skipped {}: not inside a class folder",
            p.join("loose.jpg").display()
        )),
        "{log}"
    );
    let summary = read_json(&out.join("tiler.json"));
    assert_eq!(summary["counts"]["photos"], 1);
    assert_eq!(summary["counts"]["bad"], 0);
    assert_eq!(summary["skipped"][0]["path"], "loose.jpg");
}

#[test]
fn output_inside_input_is_left_out_of_the_listing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 1, 2, 100, 100);
    let out = p.join("tiles");
    run_ok(&p, &out, ARGS);
    let log = run_ok(&p, &out, ARGS);
    assert!(log.contains("up to date"), "{log}");
    let summary = read_json(&out.join("tiler.json"));
    assert_eq!(summary["counts"]["photos"], 2);
    // The reverse (input inside the output's tile folders) is refused as a usage error.
    let o = run(&out.join("train"), &out, ARGS);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
