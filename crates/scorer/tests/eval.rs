//! `scorer eval` end to end on a real fixture run, and the run-folder errors of both commands.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

fn eval_into(out: &Path, extra: &[&str]) -> std::process::Output {
    let f = fixture();
    let mut args = vec![
        "eval".to_string(),
        "--run".into(),
        s(&f.run),
        "--cache".into(),
        s(&f.cache),
        "--out".into(),
        s(out),
        "--threads".into(),
        "1".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn accuracy_equals_the_trainers_logged_val_accuracy() {
    let f = fixture();
    let out = scratch("eval-acc");
    let o = eval_into(&out, &[]);
    let r = json(&out.join("report.json"));
    let epoch = r["run"]["checkpoint_epoch"].as_u64().unwrap();
    let metrics = std::fs::read_to_string(f.run.join("metrics.jsonl")).unwrap();
    let logged: serde_json::Value = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|m| m["epoch"].as_u64() == Some(epoch))
        .expect("metrics.jsonl has the checkpoint's epoch");
    // Equal accuracies could be a coincidence (a tiny fixture run may get none or all right at
    // its best epoch); the mean val loss is a continuous function of every logit, so agreeing
    // to 1e-6 shows the scorer saw the same samples and the same model outputs as the trainer.
    let loss = r["loss"].as_f64().unwrap();
    let logged_loss = logged["val_loss"].as_f64().unwrap();
    assert!(
        (loss - logged_loss).abs() <= 1e-6 * logged_loss.max(1.0),
        "eval loss {loss} vs the trainer's {logged_loss}"
    );
    assert_eq!(r["run"]["logged_val_loss"].as_f64(), Some(logged_loss));
    // The same counts, so the same f64.
    assert_eq!(r["accuracy"].as_f64(), logged["val_acc"].as_f64(), "{r:#}");
    assert_eq!(r["matches_logged_accuracy"], serde_json::json!(true));
    assert_eq!(
        r["cache"]["same_cache_as_training"],
        serde_json::json!(true)
    );
    let config = json(&f.run.join("config.json"));
    assert_eq!(r["counts"]["samples"], config["data"]["val_samples"]);
    let out_text = stdout(&o);
    assert!(
        out_text.contains("= the trainer's logged val accuracy"),
        "{out_text}"
    );
    assert!(out_text.contains("macro F1") && out_text.contains("per-photo accuracy"));
}

#[test]
fn report_confusion_and_predictions_agree() {
    let out = scratch("eval-report");
    eval_into(&out, &[]);
    let r = json(&out.join("report.json"));
    let classes: Vec<String> = r["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(classes, ["g1-fine", "g2-medium-fine", "g3-medium"]);
    let n = r["counts"]["samples"].as_u64().unwrap();
    let matrix: Vec<Vec<u64>> = serde_json::from_value(r["confusion"]["matrix"].clone()).unwrap();
    assert_eq!(matrix.iter().flatten().sum::<u64>(), n);

    // predictions.csv: one row per val sample; recount the confusion matrix from it.
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "tile,photo,copy,shard,position,true,predicted,p_g1-fine,p_g2-medium-fine,p_g3-medium"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len() as u64, n);
    let mut recount = vec![vec![0u64; 3]; 3];
    let ix = |c: &str| classes.iter().position(|x| x == c).unwrap();
    let mut by_photo: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    for row in &rows {
        recount[ix(row[5])][ix(row[6])] += 1;
        let p: Vec<f64> = row[7..].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{row:?}");
        let e = by_photo
            .entry(row[1].to_string())
            .or_insert((ix(row[5]), vec![0.0; 3]));
        for (a, b) in e.1.iter_mut().zip(&p) {
            *a += b;
        }
    }
    assert_eq!(recount, matrix);

    // Per-class numbers from the matrix (rows = true, columns = predicted).
    for (c, m) in r["metrics"]["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let support: u64 = matrix[c].iter().sum();
        let predicted: u64 = matrix.iter().map(|row| row[c]).sum();
        assert_eq!(m["support"].as_u64(), Some(support));
        assert_eq!(m["predicted"].as_u64(), Some(predicted));
        let want_recall = if support == 0 {
            0.0
        } else {
            matrix[c][c] as f64 / support as f64
        };
        assert_eq!(m["recall"].as_f64(), Some(want_recall));
    }
    // A class without val samples, or never predicted, is reported as 0 with a note naming it
    // (the fixture's split leaves g3-medium without val photos).
    let warnings = r["metrics"]["warnings"].to_string();
    let names = r["metrics"]["per_class"].as_array().unwrap();
    let mut noted = 0;
    for (c, m) in names.iter().enumerate() {
        let name = m["class"].as_str().unwrap();
        let support: u64 = matrix[c].iter().sum();
        let predicted: u64 = matrix.iter().map(|row| row[c]).sum();
        if support == 0 || predicted == 0 {
            assert!(warnings.contains(name), "{name}: {warnings}");
            noted += 1;
        }
    }
    assert!(
        noted >= 1,
        "the fixture has a class without val samples: {warnings}"
    );

    // Per-photo: mean of the tiles' probabilities (6-decimal CSV values, so within 1e-5).
    let photos = r["per_photo"]["rows"].as_array().unwrap();
    assert_eq!(photos.len(), by_photo.len());
    assert_eq!(photos.len(), val_photos().len());
    let mut correct = 0;
    for p in photos {
        let name = p["photo"].as_str().unwrap();
        let (truth, sums) = &by_photo[name];
        let n_tiles = p["n_tiles"].as_u64().unwrap() as f64;
        assert_eq!(n_tiles, 15.0, "480x320 photos in 96 px windows");
        let probs: Vec<f64> = serde_json::from_value(p["probabilities"].clone()).unwrap();
        for (got, sum) in probs.iter().zip(sums) {
            assert!((got - sum / n_tiles).abs() < 1e-5, "{name}: {probs:?}");
        }
        assert_eq!(p["class"].as_str(), Some(classes[*truth].as_str()));
        correct += usize::from(p["correct"].as_bool().unwrap());
    }
    assert_eq!(r["per_photo"]["correct"].as_u64(), Some(correct as u64));
    // Every mistake is listed with its provenance.
    let tiles_wrong = r["misclassified_tiles"].as_array().unwrap();
    assert_eq!(
        tiles_wrong.len() as u64,
        r["counts"]["misclassified"].as_u64().unwrap()
    );
    for t in tiles_wrong {
        assert!(t["tile"].as_str().unwrap().starts_with("val/"));
        assert!(t["shard"].as_str().unwrap().starts_with("val-"));
        assert_ne!(t["class"], t["predicted"]);
    }
    assert_eq!(
        r["misclassified_photos"].as_array().unwrap().len(),
        photos.len() - correct
    );
    let svg = std::fs::read_to_string(out.join("confusion.svg")).unwrap();
    assert!(svg.contains(">g2-medium-fine</text>"));
    for row in &matrix {
        for v in row {
            assert!(svg.contains(&format!(">{v}</text>")));
        }
    }
    assert!(out.join("confusion-photos.svg").is_file());
}

#[test]
fn up_to_date_then_force_gives_identical_files() {
    let out = scratch("eval-again");
    eval_into(&out, &[]);
    let read = |f: &str| std::fs::read(out.join(f)).unwrap();
    let first: Vec<Vec<u8>> = ["report.json", "predictions.csv", "confusion.svg"]
        .iter()
        .map(|f| read(f))
        .collect();
    let o = eval_into(&out, &[]);
    assert!(stderr(&o).contains("up to date"), "{}", stderr(&o));
    let o = eval_into(&out, &["--force"]);
    assert!(!stderr(&o).contains("up to date"));
    for (f, before) in ["report.json", "predictions.csv", "confusion.svg"]
        .iter()
        .zip(&first)
    {
        assert_eq!(&read(f), before, "{f} is not deterministic");
    }
    // Another batch size is another evaluation (rounding may differ), and is recorded.
    let o = eval_into(&out, &["--batch", "7"]);
    assert!(!stderr(&o).contains("up to date"));
    assert_eq!(
        json(&out.join("report.json"))["eval_batch"].as_u64(),
        Some(7)
    );
}

/// A copy of the fixture cache with index.json edited by `edit`.
fn edited_cache(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> std::path::PathBuf {
    let d = scratch(name);
    copy_dir(&fixture().cache, &d);
    let mut idx = json(&d.join("index.json"));
    edit(&mut idx);
    std::fs::write(
        d.join("index.json"),
        serde_json::to_string_pretty(&idx).unwrap(),
    )
    .unwrap();
    d
}

/// A run and a cache that do not belong together are a usage error: exit 2.
#[test]
fn refuses_a_cache_with_other_classes_size_or_preprocessing() {
    let f = fixture();
    let run = s(&f.run);
    let c = edited_cache("cache-classes", |v| {
        v["classes"] = serde_json::json!(["g1-fine", "g3-medium", "g2-medium-fine"]);
    });
    fails_with(
        &[
            "eval",
            "--run",
            &run,
            "--cache",
            &s(&c),
            "--out",
            &s(&c.join("e")),
        ],
        2,
        &[
            "classes: the run has [g1-fine, g2-medium-fine, g3-medium], the cache has [g1-fine, g3-medium, g2-medium-fine]",
        ],
    );
    let c = edited_cache("cache-size", |v| declare_size(v, 16));
    fails_with(
        &["eval", "--run", &run, "--cache", &s(&c)],
        2,
        &["size: the run was trained on 32x32 samples, the cache holds 16x16"],
    );
    let c = edited_cache("cache-luma", |v| {
        v["params"]["luma"] = serde_json::json!("bt709");
    });
    fails_with(
        &["eval", "--run", &run, "--cache", &s(&c)],
        2,
        &["preprocessing (luma)", "\"bt601-pil\"", "\"bt709\""],
    );
    assert!(!f.run.join("eval").exists() || f.run.join("eval/report.json").is_file());
}

#[test]
fn another_cache_of_the_same_shape_is_evaluated_with_a_warning() {
    let f = fixture();
    // Same shards, an index that differs only in a recorded parameter: another digest.
    let c = edited_cache("cache-other", |v| {
        v["seed"] = serde_json::json!(99);
    });
    let out = c.join("eval");
    let o = ok(&[
        "eval",
        "--run",
        &s(&f.run),
        "--cache",
        &s(&c),
        "--out",
        &s(&out),
        "--threads",
        "1",
    ]);
    assert!(
        stderr(&o).contains("not the one the run was trained on"),
        "{}",
        stderr(&o)
    );
    let r = json(&out.join("report.json"));
    assert_eq!(
        r["cache"]["same_cache_as_training"],
        serde_json::json!(false)
    );
    assert_eq!(r["matches_logged_accuracy"], serde_json::Value::Null);
    assert!(r["warnings"][0].as_str().unwrap().contains("not the one"));
}

/// A copy of the fixture run folder.
fn run_copy(name: &str) -> std::path::PathBuf {
    let d = scratch(name);
    for f in [
        "config.json",
        "model.safetensors",
        "metrics.jsonl",
        "checkpoints.json",
    ] {
        std::fs::copy(fixture().run.join(f), d.join(f)).unwrap();
    }
    d
}

#[test]
fn run_folder_errors_name_the_file() {
    let f = fixture();
    let cache = s(&f.cache);
    let photo = s(&fixture_photos().join("g1-fine/g1-fine-0000.jpg"));
    let missing = f.root.join("no-such-run");
    for cmd in [
        vec![
            "eval",
            "--run",
            missing.to_str().unwrap(),
            "--cache",
            &cache,
        ],
        vec!["photos", "--run", missing.to_str().unwrap(), &photo],
    ] {
        fails(&cmd, &["config.json", "not a trainer run folder"]);
    }

    let r = run_copy("run-no-model");
    std::fs::remove_file(r.join("model.safetensors")).unwrap();
    fails(
        &["eval", "--run", &s(&r), "--cache", &cache],
        &["model.safetensors", "missing"],
    );

    let r = run_copy("run-corrupt-model");
    std::fs::write(
        r.join("model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage",
    )
    .unwrap();
    fails(&["photos", "--run", &s(&r), &photo], &["model.safetensors"]);
    let r = run_copy("run-truncated-model");
    let bytes = std::fs::read(f.run.join("model.safetensors")).unwrap();
    std::fs::write(r.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &["eval", "--run", &s(&r), "--cache", &cache],
        &["model.safetensors"],
    );

    // Weights whose shapes do not match the architecture in config.json.
    let r = run_copy("run-shapes");
    let path = r.join("model.safetensors");
    let (mut weights, meta) = ballast_trainer::checkpoint::read_model(&path).unwrap();
    let w = weights.get_mut("conv1.weight").unwrap();
    w.shape = vec![w.shape[0] * 2, 1, 5, 5];
    w.data = vec![0.0; w.shape.iter().product()];
    ballast_trainer::checkpoint::write_model(&path, &weights, &meta).unwrap();
    fails(
        &["photos", "--run", &s(&r), &photo],
        &["model.safetensors", "conv1.weight", "shape"],
    );

    // A config.json describing another architecture than the model file.
    let r = run_copy("run-config");
    let mut cfg = json(&r.join("config.json"));
    cfg["spec"]["model"]["conv"] = serde_json::json!([6, 16]);
    std::fs::write(r.join("config.json"), cfg.to_string()).unwrap();
    fails(
        &["eval", "--run", &s(&r), "--cache", &cache],
        &["model.safetensors", "differs from config.json"],
    );
    std::fs::write(r.join("config.json"), b"{ not json").unwrap();
    fails(
        &["eval", "--run", &s(&r), "--cache", &cache],
        &["config.json"],
    );

    // A cache that is not there.
    fails(
        &[
            "eval",
            "--run",
            &s(&f.run),
            "--cache",
            &s(&f.root.join("nope")),
        ],
        &["index.json"],
    );
}
