//! Trust under concurrency and damage (issue #11), on the real binary: one writer per output
//! folder, a SIGKILLed holder never blocks the next run, byte-identical photos never straddle
//! the split, damaged JPEGs are refused, odd names, exit statuses.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Enough work that a run is still going when the test looks at it.
fn slow_set(p: &Path) {
    photo_tree(p, 2, 6, 640, 480);
}

fn spawn(input: &Path, out: &Path, extra: &[&str]) -> Child {
    tiler()
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `pid` holds `out`'s lock.
fn wait_for_holder(out: &Path, pid: u32) {
    ballast_testkit::signals::wait_for_holder(&out.join(".ballast.lock"), pid);
}

use ballast_testkit::signals::{signal, wait_stopped};

/// Every manifest row's tile exists with the recorded digest.
fn assert_consistent(out: &Path) {
    for row in manifest_rows(out) {
        let tile = out.join(row["tile"].as_str().unwrap());
        let bytes = std::fs::read(&tile).unwrap_or_else(|e| panic!("{}: {e}", tile.display()));
        assert_eq!(
            blake3::hash(&bytes).to_hex().to_string(),
            row["tile_digest"].as_str().unwrap(),
            "{}",
            tile.display()
        );
    }
}

const A: &[&str] = &["--size", "64", "--threads", "1"];

#[test]
fn a_second_writer_is_refused_at_once_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    slow_set(&p);
    // Another generation (other parameters) and the very same job twice: both refused.
    let others: [&[&str]; 4] = [
        &["--size", "96"],
        &["--size", "64", "--seed", "3", "--per-photo", "4"],
        &["--size", "64", "--val-fraction", "0.5"],
        A,
    ];
    for (trial, other) in others.iter().enumerate() {
        let out = dir.path().join(format!("out{trial}"));
        // A committed earlier output, which the refused run must not damage.
        if trial % 2 == 1 {
            run_ok(&p, &out, A);
            std::fs::write(
                p.join("class0/IMG_0000.jpg"),
                jpeg_bytes(&texture(640, 480, 99)),
            )
            .unwrap();
        }
        let mut first = spawn(&p, &out, A);
        wait_for_holder(&out, first.id());
        signal(first.id(), "-STOP");
        wait_stopped(first.id());
        let before = tree(&out);
        let t = Instant::now();
        let o = run(&p, &out, other);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "trial {trial}: {err}");
        assert!(
            err.contains(&format!("pid {}", first.id())) && err.contains("started"),
            "trial {trial}: holder not named:\n{err}"
        );
        assert!(t.elapsed() < Duration::from_secs(20), "not refused at once");
        assert!(
            tree(&out) == before,
            "trial {trial}: the refused run changed the folder"
        );
        signal(first.id(), "-CONT");
        let status = first.wait().unwrap();
        assert!(status.success(), "trial {trial}: the holder failed");
        assert_consistent(&out);
        if trial % 2 == 1 {
            // Restore the photo for the next trials.
            std::fs::write(
                p.join("class0/IMG_0000.jpg"),
                jpeg_bytes(&texture(640, 480, 0)),
            )
            .unwrap();
        } else {
            // A fresh reference: the stat cache records the photos' current mtimes.
            let reference = dir.path().join(format!("reference{trial}"));
            run_ok(&p, &reference, A);
            assert_same_tree(&reference, &out);
        }
    }
}

#[test]
fn jobs_of_one_build_share_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    slow_set(&p);
    let whole = dir.path().join("whole");
    run_ok(&p, &whole, A);
    for trial in 0..3 {
        let out = dir.path().join(format!("sharded{trial}"));
        let jobs: Vec<Child> = (0..3)
            .map(|i| spawn(&p, &out, &[A, &["--shard", &format!("{i}/3")]].concat()))
            .collect();
        for j in jobs {
            let out = j.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_same_tree(&whole, &out);
    }
}

#[test]
fn a_killed_holder_never_blocks_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    slow_set(&p);
    let reference = dir.path().join("reference");
    run_ok(&p, &reference, A);
    for trial in 0..3 {
        let out = dir.path().join(format!("out{trial}"));
        let mut first = spawn(&p, &out, A);
        wait_for_holder(&out, first.id());
        std::thread::sleep(Duration::from_millis(30 * trial));
        signal(first.id(), "-KILL");
        first.wait().unwrap();
        // Another generation may take the folder now, and the original run finishes later.
        run_ok(&p, &out, &["--size", "96"]);
        run_ok(&p, &out, A);
        assert_same_tree(&reference, &out);
    }
}

#[test]
fn byte_identical_photos_share_a_split_and_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 2, 8, 200, 150);
    let copy = jpeg_bytes(&texture(200, 150, 4242));
    let names = [
        "class0/a.jpg",
        "class0/b.jpg",
        "class0/sub/c.jpg",
        "class0/d.jpg",
        "class0/e.jpg",
        "class0/f.jpg",
        "class1/g.jpg",
    ];
    for n in names {
        write(&p.join(n), &copy);
    }
    let out = dir.path().join("tiles");
    for fraction in ["0.2", "0.5", "0.8"] {
        let log = run_ok(&p, &out, &["--size", "64", "--val-fraction", fraction]);
        let rows = manifest_rows(&out);
        let splits: std::collections::BTreeSet<&str> = rows
            .iter()
            .filter(|r| names.contains(&r["photo"].as_str().unwrap()))
            .map(|r| r["split"].as_str().unwrap())
            .collect();
        assert_eq!(splits.len(), 1, "copies straddle the split at {fraction}");
        let summary = read_json(&out.join("tiler.json"));
        let groups = summary["duplicates"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{summary}");
        assert_eq!(groups[0]["photos"].as_array().unwrap().len(), names.len());
        assert_eq!(
            groups[0]["classes"],
            serde_json::json!(["class0", "class1"])
        );
        assert_eq!(summary["counts"]["duplicates"], names.len() as u64 - 1);
        assert!(
            log.contains("byte-identical photos in different classes")
                && log.contains("class0/sub/c.jpg"),
            "{log}"
        );
    }
}

#[test]
fn corrupt_jpeg_data_is_a_bad_photo() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 1, 3, 300, 200);
    let good = jpeg_bytes(&texture(300, 200, 1234));
    let bad = ballast_testkit::images::corrupt_jpeg_entropy(&good, 200);
    write(&p.join("class0/damaged.jpg"), &bad);
    let out = dir.path().join("tiles");
    let log = run_ok(&p, &out, &["--size", "64"]);
    assert!(
        log.contains(&format!(
            "skipped {}: corrupt JPEG data",
            p.join("class0/damaged.jpg").display()
        )),
        "{log}"
    );
    let summary = read_json(&out.join("tiler.json"));
    assert_eq!(summary["counts"]["bad"], 1);
    assert!(
        manifest_rows(&out)
            .iter()
            .all(|r| r["photo"] != "class0/damaged.jpg")
    );
}

#[test]
fn control_characters_in_names() {
    let dir = tempfile::tempdir().unwrap();
    // A photo name with a newline and a tab round-trips through the manifest exactly.
    let p = dir.path().join("photos");
    photo_tree(&p, 1, 1, 100, 100);
    let odd = "class0/line\nbreak\tand \u{1b}esc.jpg";
    photo(&p.join(odd), 100, 100, 7);
    let out = dir.path().join("tiles");
    run_ok(&p, &out, &["--size", "64"]);
    assert!(manifest_rows(&out).iter().any(|r| r["photo"] == odd));
    assert!(run_ok(&p, &out, &["--size", "64"]).contains("up to date"));
    // A class folder with one is refused, naming it.
    let q = dir.path().join("photos2");
    photo(&q.join("bad\nclass/IMG.jpg"), 100, 100, 1);
    let o = run(&q, &dir.path().join("tiles2"), &["--size", "64"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad\\nclass") && err.contains("control character"),
        "{err}"
    );
}

#[test]
fn exit_status_follows_the_error_kind() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 1, 2, 100, 100);
    let out = dir.path().join("tiles");
    let code = |extra: &[&str]| run(&p, &out, extra).status.code();
    assert_eq!(code(&["--threads", "0"]), Some(2));
    assert_eq!(code(&["--shard", "3/2"]), Some(2));
    assert_eq!(code(&["--size", "0"]), Some(2));
    let o = run(&dir.path().join("missing"), &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Each cause once: an OS error is not repeated.
    let err = stderr(&o);
    assert_eq!(err.matches("does not exist").count(), 1, "{err}");
}

#[test]
fn max_bad_holds_on_an_up_to_date_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    photo_tree(&p, 1, 3, 100, 100);
    for i in 0..4 {
        write(&p.join(format!("class0/bad{i}.jpg")), b"not an image");
    }
    let out = dir.path().join("tiles");
    run_ok(&p, &out, &["--size", "64", "--max-bad", "4"]);
    let before = tree(&out);
    let fresh = run(
        &p,
        &dir.path().join("fresh"),
        &["--size", "64", "--max-bad", "3"],
    );
    assert_eq!(fresh.status.code(), Some(1));
    let o = run(&p, &out, &["--size", "64", "--max-bad", "3"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("4 bad inputs, over the --max-bad limit of 3"),
        "{err}"
    );
    assert!(tree(&out) == before, "the refused rerun changed the output");
}
