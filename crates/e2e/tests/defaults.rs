//! Issue 12: with every default, the trainer leaves the ln(C) plateau on a small cache within its
//! default epochs, where the field report's recipe (one flag away) still sits at it.

use std::fs;
use std::path::Path;

use ballast_e2e::{ok, stage, synth_photos};

/// Per-epoch metrics of a run.
fn metrics(run: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn train(cache: &Path, run: &Path, seed: u64, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut c = stage("trainer");
    c.arg("--cache").arg(cache).arg("--run").arg(run);
    c.args(["--threads", "2", "--seed", &seed.to_string(), "-q"]);
    c.args(extra);
    ok(&mut c);
    metrics(run)
}

#[test]
fn default_runs_leave_the_plateau_within_the_default_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let (photos, tiles, cache) = (w.join("photos"), w.join("tiles"), w.join("cache"));
    // A small data set, as a first user has it: 3 classes × 8 photos, 35 tiles each, 32×32
    // (about 600 train samples: 10 optimiser steps per epoch at batch 64).
    synth_photos(&photos, 3, 8, 480, 320, 5);
    ok(stage("tiler")
        .arg("--input")
        .arg(&photos)
        .arg("--out")
        .arg(&tiles)
        .args(["--size", "64", "--val-fraction", "0.25", "--threads", "2"]));
    ok(stage("packer")
        .arg("--tiles")
        .arg(&tiles)
        .arg("--out")
        .arg(&cache)
        .args(["--size", "32", "--threads", "2"]));
    let ln_c = 3f64.ln();
    let (mut defaults, mut report) = (Vec::new(), Vec::new());
    for seed in 0..3 {
        let m = train(&cache, &w.join(format!("default-{seed}")), seed, &[]);
        let last = m.last().unwrap();
        let (loss, acc) = (
            last["train_loss"].as_f64().unwrap(),
            last["val_acc"].as_f64().unwrap(),
        );
        assert!(
            loss < 0.5 * ln_c,
            "seed {seed}: train loss {loss} after the default epochs (ln C = {ln_c})"
        );
        assert!(acc > 1.0 / 3.0 + 0.25, "seed {seed}: val accuracy {acc}");
        defaults.push(acc);
        let r = train(
            &cache,
            &w.join(format!("report-{seed}")),
            seed,
            &["--recipe", "report"],
        );
        assert_eq!(r.len(), m.len(), "the same default epochs");
        report.push(r.last().unwrap()["val_acc"].as_f64().unwrap());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&defaults) > mean(&report) + 0.1,
        "defaults {defaults:?} against the report's recipe {report:?}"
    );
}
