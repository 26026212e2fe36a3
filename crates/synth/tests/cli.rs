//! End-to-end tests of the `synth` binary on small photos.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

fn synth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synth"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("RAYON_NUM_THREADS")
        .output()
        .expect("run synth")
}

fn ok(args: &[&str]) -> String {
    let out = synth(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "synth {args:?} failed: {stderr}");
    stderr
}

/// Every file under `root` (relative path → bytes).
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn mtimes(root: &Path) -> BTreeMap<String, SystemTime> {
    tree(root)
        .keys()
        .map(|k| {
            (
                k.clone(),
                fs::metadata(root.join(k)).unwrap().modified().unwrap(),
            )
        })
        .collect()
}

fn small(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--out",
        out.to_str().unwrap(),
        "--classes",
        "3",
        "--per-class",
        "2",
        "--width",
        "160",
        "--height",
        "120",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run_small(out: &Path, extra: &[&str]) -> String {
    let args = small(out, extra);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn thread_count_does_not_change_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    run_small(&a, &["--threads", "1"]);
    run_small(&b, &["--threads", "2"]);
    let (ta, tb) = (tree(&a), tree(&b));
    assert_eq!(ta.len(), 3 * 2 + 2);
    assert_eq!(ta, tb);
}

#[test]
fn same_seed_same_bytes_other_seed_other_photos() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    run_small(&a, &["--seed", "5"]);
    run_small(&b, &["--seed", "5"]);
    run_small(&c, &["--seed", "6"]);
    let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
    assert_eq!(ta, tb);
    let photos: Vec<&String> = ta.keys().filter(|k| k.ends_with(".jpg")).collect();
    assert_eq!(photos.len(), 6);
    for k in photos {
        assert_ne!(ta[k], tc[k], "{k} did not change with the seed");
    }
    assert_eq!(ta["class-map.toml"], tc["class-map.toml"]);
}

#[test]
fn writes_an_image_folder_with_summary_and_class_map() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("photos");
    ok(&[
        "--out",
        out.to_str().unwrap(),
        "--per-class",
        "2",
        "--width",
        "200",
        "--height",
        "150",
        "-q",
    ]);
    let classes = [
        "g1-fine",
        "g2-medium-fine",
        "g3-medium",
        "g4-medium-coarse",
        "g5-coarse",
    ];
    for c in classes {
        for i in 0..2 {
            let p = out.join(c).join(format!("{c}-{i:04}.jpg"));
            let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!((img.width(), img.height()), (200, 150));
        }
    }

    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("synth.json")).unwrap()).unwrap();
    assert_eq!(summary["format"], "ballast.synth/1");
    assert_eq!(summary["params"]["width"], 200);
    assert_eq!(summary["params"]["height"], 150);
    assert_eq!(summary["params"]["quality"], 90);
    let cls = summary["classes"].as_array().unwrap();
    let names: Vec<&str> = cls.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, classes);
    let mut last_dmax = 0.0;
    for c in cls {
        let g = &c["gradation"];
        let (dmin, dmax) = (
            g["d_min_px"].as_f64().unwrap(),
            g["d_max_px"].as_f64().unwrap(),
        );
        assert!(dmin < dmax && dmax > last_dmax, "{c}");
        last_dmax = dmax;
        let sieve = g["sieve"].as_array().unwrap();
        assert!(sieve.len() >= 3);
        assert_eq!(sieve[0]["passing"].as_f64(), Some(0.0));
        assert_eq!(sieve.last().unwrap()["passing"].as_f64(), Some(1.0));
    }
    let photos = summary["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 10);
    for p in photos {
        let file = out.join(p["file"].as_str().unwrap());
        let bytes = fs::read(&file).unwrap();
        assert_eq!(p["bytes"].as_u64(), Some(bytes.len() as u64));
        assert_eq!(
            p["digest"].as_str().unwrap(),
            ballast_format::digest::of_bytes(&bytes)
        );
    }

    let text = fs::read_to_string(out.join("class-map.toml")).unwrap();
    assert!(text.starts_with("# ballast class map: compaction value per class\n"));
    let map: toml::Table = text.parse().unwrap();
    assert_eq!(map["unit"].as_str(), Some("% of max dry density"));
    let table = map["classes"].as_table().unwrap();
    let values: Vec<f64> = classes
        .iter()
        .map(|c| table[*c]["compaction"].as_float().unwrap())
        .collect();
    assert!(values.windows(2).all(|w| w[0] > w[1]), "{values:?}");
    assert!(values.iter().all(|v| (80.0..=100.0).contains(v)));
    assert!(table["g1-fine"]["label"].as_str().unwrap().contains("fine"));
    // Nothing but the tree and the two summary files; no temporary leftovers.
    let all = tree(&out);
    assert_eq!(all.len(), 12, "{:?}", all.keys().collect::<Vec<_>>());
}

#[test]
fn rerun_does_nothing_and_force_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    run_small(&out, &[]);
    let before = mtimes(&out);
    let bytes = tree(&out);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let args = small(&out, &[]);
    let mut loud: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--quiet")
        .collect();
    let log = ok(&loud);
    assert!(log.contains("up to date"), "{log}");
    assert_eq!(
        mtimes(&out),
        before,
        "a rerun with nothing changed touched files"
    );

    loud.push("--force");
    ok(&loud);
    let after = mtimes(&out);
    for (k, t) in &after {
        if k.ends_with(".jpg") {
            assert!(*t > before[k], "{k} not rewritten by --force");
        }
    }
    assert_eq!(tree(&out), bytes, "--force must reproduce the same bytes");
}

#[test]
fn changed_parameters_redo_only_what_changed_and_drop_stale_photos() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    run_small(&out, &[]);
    let before = mtimes(&out);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // One more photo per class: the old ones stay untouched.
    let mut args = small(&out, &[]);
    let i = args.iter().position(|a| a == "--per-class").unwrap();
    args[i + 1] = "3".into();
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let after = mtimes(&out);
    for (k, t) in &before {
        if k.ends_with(".jpg") {
            assert_eq!(after[k], *t, "{k} was re-rendered");
        }
    }
    assert!(after.contains_key("g1-fine/g1-fine-0002.jpg"));
    // Fewer classes: the dropped class's photos and folder go; a foreign file stays.
    fs::write(out.join("g2-medium-fine/notes.txt"), b"mine").unwrap();
    let i = args.iter().position(|a| a == "--classes").unwrap();
    args[i + 1] = "1".into();
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let left = tree(&out);
    assert!(!out.join("g3-medium").exists());
    assert!(out.join("g2-medium-fine/notes.txt").exists());
    assert_eq!(
        left.keys().filter(|k| k.ends_with(".jpg")).count(),
        3,
        "{:?}",
        left.keys().collect::<Vec<_>>()
    );
    // A changed size re-renders everything, at the new size.
    let i = args.iter().position(|a| a == "--width").unwrap();
    args[i + 1] = "96".into();
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let img = image::open(out.join("g1-fine/g1-fine-0000.jpg")).unwrap();
    assert_eq!(img.width(), 96);
}

#[test]
fn a_damaged_photo_is_rendered_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    run_small(&out, &[]);
    let good = tree(&out);
    let victim = out.join("g2-medium-fine/g2-medium-fine-0001.jpg");
    fs::write(&victim, b"truncated").unwrap();
    fs::remove_file(out.join("g1-fine/g1-fine-0000.jpg")).unwrap();
    run_small(&out, &[]);
    assert_eq!(tree(&out), good);
}

#[test]
fn lossless_formats_decode_at_size() {
    let dir = tempfile::tempdir().unwrap();
    for (fmt, ext) in [("png", "png"), ("tif", "tif")] {
        let out = dir.path().join(fmt);
        run_small(&out, &["--format", fmt]);
        let img = image::open(out.join(format!("g3-medium/g3-medium-0001.{ext}"))).unwrap();
        assert_eq!((img.width(), img.height()), (160, 120));
        let summary: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("synth.json")).unwrap()).unwrap();
        assert_eq!(summary["params"]["format"], fmt);
        assert!(summary["params"].get("quality").is_none());
    }
}

#[test]
fn more_than_five_classes_are_interpolated() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    let args = small(&out, &[]);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let i = args.iter().position(|a| *a == "--classes").unwrap();
    args[i + 1] = "7";
    let i = args.iter().position(|a| *a == "--per-class").unwrap();
    args[i + 1] = "1";
    ok(&args);
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("synth.json")).unwrap()).unwrap();
    let names: Vec<String> = summary["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 7);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "folder order must be gradation order");
    for n in &names {
        assert!(out.join(n).join(format!("{n}-0000.jpg")).is_file());
    }
}

fn fails(args: &[&str], code: i32, needle: &str) {
    let out = synth(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[test]
fn bad_arguments_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    let o = out.to_str().unwrap();
    fails(&["--out", o, "--width", "0"], 2, "--width");
    fails(&["--out", o, "--height", "70000"], 2, "--height");
    fails(&["--out", o, "--classes", "0"], 2, "--classes");
    fails(&["--out", o, "--classes", "65"], 2, "--classes");
    fails(&["--out", o, "--per-class", "0"], 2, "--per-class");
    fails(&["--out", o, "--quality", "101"], 2, "--quality");
    fails(&["--out", o, "--format", "gif"], 2, "--format");
    fails(&["--width", "100"], 2, "--out");
    // Too many pixels for one photo: a usage error, refused before any work.
    fails(
        &["--out", o, "--width", "20000", "--height", "20000"],
        2,
        "pixels",
    );
    assert!(!out.exists());
    // An output folder that cannot be made (a file is in the way).
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let under: PathBuf = file.join("sub");
    fails(
        &[
            "--out",
            under.to_str().unwrap(),
            "--width",
            "32",
            "--height",
            "32",
        ],
        1,
        "error:",
    );
    fails(
        &[
            "--out",
            file.to_str().unwrap(),
            "--width",
            "32",
            "--height",
            "32",
        ],
        2,
        "not a folder",
    );
    assert_eq!(fs::read(&file).unwrap(), b"x");
}
