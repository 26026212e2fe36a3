//! How far to trust the answers, end to end on the real binary: `scorer eval` fits the
//! temperature and the novelty check and stores them in the run folder; `scorer photos` then
//! reports calibrated probabilities and flags photos of a texture never seen in training,
//! while the val photos pass.

mod common;

use std::path::{Path, PathBuf};

use ballast_testkit::images::{jpeg_bytes, texture, write};
use common::*;

/// A copy of the fixture's run with `scorer eval` done on it.
fn evaluated(name: &str) -> (PathBuf, serde_json::Value) {
    let d = scratch(name);
    let run = d.join("run");
    copy_dir(&fixture().run, &run);
    eval(&run);
    let report = json(&run.join("eval/report.json"));
    (run, report)
}

/// `scorer eval` of `run` on the fixture's cache, one thread; must succeed.
fn eval(run: &Path) -> std::process::Output {
    let cache = s(&fixture().cache);
    ok(&[
        "eval",
        "--run",
        &s(run),
        "--cache",
        &cache,
        "--threads",
        "1",
    ])
}

/// `scorer photos --run RUN --threads 1 --out OUT PHOTOS...`, which must succeed.
fn photos_to(run: &Path, out: &Path, photos: &[PathBuf]) -> std::process::Output {
    let mut args = vec![
        "photos".to_string(),
        "--run".into(),
        s(run),
        "--threads".into(),
        "1".into(),
        "--out".into(),
        s(out),
    ];
    args.extend(photos.iter().map(|p| s(p)));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&a)
}

fn score(run: &Path, out: &Path, photos: &[PathBuf]) -> serde_json::Value {
    photos_to(run, out, photos);
    json(out)
}

/// Photos unlike any fixture class: colour gradients with noise (three seeds), a flat gray
/// card and hard stripes, at the fixture's photo size.
fn unseen_photos(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for seed in [1u32, 2, 3] {
        let p = dir.join(format!("gradient-{seed}.jpg"));
        write(&p, &jpeg_bytes(&texture(480, 320, seed)));
        out.push(p);
    }
    let flat = image::RgbImage::from_pixel(480, 320, image::Rgb([128, 128, 128]));
    let p = dir.join("flat.jpg");
    write(&p, &jpeg_bytes(&flat));
    out.push(p);
    let stripes = image::RgbImage::from_fn(480, 320, |x, _| {
        let v = if (x / 12) % 2 == 0 { 20 } else { 235 };
        image::Rgb([v, v, v])
    });
    let p = dir.join("stripes.jpg");
    write(&p, &jpeg_bytes(&stripes));
    out.push(p);
    out
}

#[test]
fn eval_fits_calibration_and_novelty_into_the_run() {
    let (run, report) = evaluated("fit");
    let c = &report["calibration"];
    let t = c["temperature"].as_f64().unwrap();
    assert!(t.is_finite() && t > 0.0, "{c}");
    // Temperature scaling minimises the val NLL, T = 1 included: it can only lower it.
    assert!(c["nll_after"].as_f64().unwrap() <= c["nll_before"].as_f64().unwrap() + 1e-12);
    for k in ["ece_before", "ece_after"] {
        let e = c[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&e), "{k} {e}");
    }
    let n = &report["novelty"];
    assert_eq!(n["fitted"], true, "{n}");
    // The fixture's network (conv 4,8 → fc 16): two conv blocks' channel mean/std, then
    // the last hidden layer.
    let dims: Vec<u64> = n["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["dim"].as_u64().unwrap())
        .collect();
    assert_eq!(dims, [8, 16, 16], "{n}");
    assert_eq!(n["val_photos_flagged"], 0, "{n}");
    // The run folder holds the same fit, keyed to the model.
    let file = json(&run.join("calibration.json"));
    assert_eq!(file["calibration"]["temperature"].as_f64(), Some(t));
    assert_eq!(file["model_digest"], report["run"]["model_digest"]);
    for (g, r) in file["novelty"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .zip(n["groups"].as_array().unwrap())
    {
        assert_eq!(g["threshold"], r["threshold"]);
    }

    // A second eval is up to date; deleting the calibration file makes it fit again.
    let o = eval(&run);
    assert!(stdout(&o).contains("from "), "{}", stdout(&o));
    std::fs::remove_file(run.join("calibration.json")).unwrap();
    eval(&run);
    assert_eq!(json(&run.join("calibration.json")), file, "deterministic");
}

#[test]
fn unseen_textures_are_flagged_and_val_photos_are_not() {
    let f = fixture();
    let (run, _) = evaluated("flag");
    let d = run.parent().unwrap().to_path_buf();
    let val: Vec<PathBuf> = val_photos().iter().map(|p| f.photos.join(p)).collect();
    let unseen = unseen_photos(&d.join("unseen"));
    let mut all = val.clone();
    all.extend(unseen.iter().cloned());
    let doc = score(&run, &d.join("scores.json"), &all);
    let photos = doc["photos"].as_array().unwrap();
    assert_eq!(photos.len(), all.len());
    for p in photos {
        let name = p["photo"].as_str().unwrap();
        let is_val = val.iter().any(|v| s(v) == name);
        let want = if is_val { "ok" } else { "unlike-training" };
        assert_eq!(p["flag"].as_str(), Some(want), "{name}: {p}");
        let score = p["ood_score"].as_f64().unwrap();
        assert_eq!(score > 1.0, !is_val, "{name}: score {score}");
    }

    // CSV carries the same two columns.
    let csv = d.join("scores.csv");
    photos_to(&run, &csv, &unseen[..1]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let flag = header.iter().position(|h| *h == "flag").unwrap();
    assert_eq!(header[flag - 1], "ood_score");
    assert_eq!(row[flag], "unlike-training");
}

#[test]
fn photos_report_calibrated_probabilities() {
    let f = fixture();
    let (run, report) = evaluated("calibrated");
    let t = report["calibration"]["temperature"].as_f64().unwrap();
    let d = run.parent().unwrap().to_path_buf();
    let photo = f.photos.join(&val_photos()[0]);
    let calibrated = score(&run, &d.join("cal.json"), std::slice::from_ref(&photo));
    // The same model without its calibration file: the model's own probabilities.
    std::fs::remove_file(run.join("calibration.json")).unwrap();
    let out = d.join("raw.json");
    let o = photos_to(&run, &out, std::slice::from_ref(&photo));
    assert!(stderr(&o).contains("calibration.json"), "{}", stderr(&o));
    let raw = json(&out);
    let (c, r) = (&calibrated["photos"][0], &raw["photos"][0]);
    assert_eq!(calibrated["calibration"]["temperature"].as_f64(), Some(t));
    assert!(raw["calibration"].is_null());
    assert!(r["flag"].is_null() && r["ood_score"].is_null());
    // Tiles keep their classes (votes); only the confidence moves, towards 1/classes when
    // T > 1 and away from it when T < 1.
    assert_eq!(c["votes"], r["votes"]);
    let top = |v: &serde_json::Value| {
        v["probabilities"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_f64().unwrap())
            .fold(0.0, f64::max)
    };
    if (t - 1.0).abs() > 1e-3 {
        assert_eq!(top(c) < top(r), t > 1.0, "T {t}: {} vs {}", top(c), top(r));
    }
}

#[test]
fn watch_mode_appends_the_flag_too() {
    let (run, _) = evaluated("watch");
    let d = run.parent().unwrap().to_path_buf();
    let inbox = d.join("inbox");
    let unseen = unseen_photos(&inbox);
    let out = d.join("watch.csv");
    let mut args = watch_args(&inbox, &out, &run, &["--watch-limit"]);
    args.push(unseen.len().to_string());
    args.extend(["--watch-timeout".to_string(), "120".to_string()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&a);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let flag = header.iter().position(|h| *h == "flag").unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), unseen.len(), "{text}");
    for r in rows {
        assert_eq!(r[flag], "unlike-training", "{r:?}");
        assert!(r[flag - 1].parse::<f64>().unwrap() > 1.0);
    }
}

#[test]
fn a_damaged_calibration_file_is_named_and_refitted() {
    let f = fixture();
    let (run, _) = evaluated("damaged");
    let good = std::fs::read(run.join("calibration.json")).unwrap();
    let photo = s(&f.photos.join(&val_photos()[0]));
    for bad in [
        &b"{\"format\": \"ballast-calibration/1\"}"[..],
        b"\x00\xff not json",
        b"",
    ] {
        std::fs::write(run.join("calibration.json"), bad).unwrap();
        let e = fails(
            &["photos", "--run", &s(&run), &photo],
            &["calibration.json", "scorer eval"],
        );
        assert!(!e.contains("panicked"), "{e}");
        // eval sees the file is not a current fit and writes it again.
        eval(&run);
        assert_eq!(std::fs::read(run.join("calibration.json")).unwrap(), good);
    }
}
