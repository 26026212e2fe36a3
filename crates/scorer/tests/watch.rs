//! `scorer photos --watch`: photos appearing in a folder are scored exactly once, never
//! half-written; bad files are reported without stopping the loop; a restart does not repeat
//! lines; SIGTERM stops it cleanly.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn start(dir: &Path, out: &Path, extra: &[&str]) -> Child {
    let f = fixture();
    let args = watch_args(dir, out, &f.run, extra);
    scorer()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scorer starts")
}

fn lines(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is complete JSON"))
        .collect()
}

/// Waits until `out` holds `n` lines (or panics after `secs`).
fn wait_lines(out: &Path, n: usize, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while lines(out).len() < n {
        assert!(
            Instant::now() < end,
            "no {n} lines in {} in time: {:?}",
            out.display(),
            lines(out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn finish(child: Child) -> (i32, String) {
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (o.status.code().unwrap_or(-1), err)
}

fn count(lines: &[serde_json::Value], photo: &str) -> usize {
    lines.iter().filter(|l| l["photo"] == photo).count()
}

#[test]
fn scores_new_photos_once_and_never_half_written() {
    let f = fixture();
    let d = scratch("watch");
    let dir = d.join("incoming");
    std::fs::create_dir_all(&dir).unwrap();
    let out = d.join("scores.jsonl");
    let photo = |p: &str| std::fs::read(f.photos.join(p)).unwrap();
    std::fs::write(dir.join("before.jpg"), photo("g1-fine/g1-fine-0000.jpg")).unwrap();

    let child = start(&dir, &out, &["--watch-limit", "4", "--watch-timeout", "60"]);
    wait_lines(&out, 1, 30);

    // Written slowly in two halves, with a pause longer than --settle-ms in between.
    let slow = photo("g3-medium/g3-medium-0001.jpg");
    let half = slow.len() / 2;
    let mut file = std::fs::File::create(dir.join("slow.jpg")).unwrap();
    file.write_all(&slow[..half]).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    file.write_all(&slow[half..]).unwrap();
    drop(file);
    // Written under a hidden name, then renamed into place.
    std::fs::write(
        dir.join(".part-renamed.jpg"),
        photo("g2-medium-fine/g2-medium-fine-0003.jpg"),
    )
    .unwrap();
    std::fs::rename(dir.join(".part-renamed.jpg"), dir.join("renamed.jpg")).unwrap();
    // A bad file in a subfolder.
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/bad.jpg"), b"not a photo at all").unwrap();

    let (code, err) = finish(child);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopped (--watch-limit)"), "{err}");
    let got = lines(&out);
    assert_eq!(got.len(), 4, "{got:?}");
    for good in ["before.jpg", "slow.jpg", "renamed.jpg"] {
        assert_eq!(count(&got, good), 1, "{good}: {got:?}");
        let l = got.iter().find(|l| l["photo"] == good).unwrap();
        assert_eq!(l["n_tiles"].as_u64(), Some(15), "{l}");
        assert!(l.get("error").is_none(), "{l}");
    }
    let bad = got.iter().find(|l| l["photo"] == "sub/bad.jpg").unwrap();
    assert_eq!(bad["error"], "not a JPEG, PNG or TIFF file");
    assert!(err.contains("skipped sub/bad.jpg"), "{err}");
    // The slow photo was read whole: its digest is the complete file's.
    let slow_line = got.iter().find(|l| l["photo"] == "slow.jpg").unwrap();
    assert_eq!(
        slow_line["digest"].as_str().unwrap(),
        ballast_format::digest::of_bytes(&slow)
    );

    // A restart on the same output adds nothing for the photos already there.
    let before = std::fs::read(&out).unwrap();
    let child = start(&dir, &out, &["--watch-timeout", "2"]);
    let (code, err) = finish(child);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopped (--watch-timeout)"), "{err}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "a restart repeated lines"
    );

    // A changed photo (same name, new content) is scored again.
    std::fs::write(
        dir.join("before.jpg"),
        photo("g3-medium/g3-medium-0002.jpg"),
    )
    .unwrap();
    let child = start(&dir, &out, &["--watch-limit", "1", "--watch-timeout", "60"]);
    let (code, err) = finish(child);
    assert_eq!(code, 0, "{err}");
    let got = lines(&out);
    assert_eq!(got.len(), 5);
    assert_eq!(count(&got, "before.jpg"), 2);
}

#[test]
fn csv_log_and_sigterm() {
    let f = fixture();
    let d = scratch("watch-csv");
    let dir = d.join("in");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(f.photos.join("g1-fine/g1-fine-0003.jpg"), dir.join("a.jpg")).unwrap();
    let out = d.join("log.csv");
    let child = start(
        &dir,
        &out,
        &[
            "--class-map",
            &s(&f.photos.join("class-map.toml")),
            "--watch-timeout",
            "60",
        ],
    );
    let end = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(Instant::now() < end, "no CSV line in time");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child process.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let (code, err) = finish(child);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopped (signal)"), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].starts_with("photo,width,height,n_tiles,predicted,agreement,"));
    assert!(rows[0].contains(",expected_compaction,"));
    assert!(rows[1].starts_with("a.jpg,480,320,15,"), "{}", rows[1]);

    // JSON cannot be appended a line at a time (a usage error).
    fails_with(
        &[
            "photos",
            "--run",
            &s(&f.run),
            "--watch",
            &s(&dir),
            "--out",
            &s(&d.join("x.json")),
        ],
        2,
        &["--watch appends one line per photo"],
    );
    // An existing CSV log with other columns is not appended to.
    fails(
        &[
            "photos",
            "--run",
            &s(&f.run),
            "--watch",
            &s(&dir),
            "--out",
            &s(&out),
            "--watch-timeout",
            "1",
        ],
        &["other columns", "choose another --out"],
    );
}
