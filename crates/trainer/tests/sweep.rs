//! `trainer sweep`: one ordinary run per setting; split across jobs it gives the same runs as one
//! job, a rerun is up to date, and a bad setting fails before any training.

mod common;

use std::path::Path;

use common::*;

/// The base flags of every sweep here: the small model of the other tests.
fn base() -> Vec<String> {
    [
        "--conv", "4,8", "--fc", "16", "--recipe", "report", "--batch", "16", "--epochs", "2",
    ]
    .map(String::from)
    .into()
}

fn sweep(cache: &Path, runs: &Path, extra: &[&str]) -> std::process::Output {
    let mut a: Vec<String> = [
        "sweep",
        "--cache",
        &s(cache),
        "--runs",
        &s(runs),
        "--threads",
        "1",
    ]
    .map(String::from)
    .into();
    a.extend(["--grid", "lr=0.02,0.05", "--grid", "seed=0,1", "-q"].map(String::from));
    a.extend(extra.iter().map(|e| e.to_string()));
    a.push("--".into());
    a.extend(base());
    run(&refs(&a))
}

fn run_folders(runs: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_sweep_split_across_jobs_equals_one_job_and_reruns_up_to_date() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let one = t.path().join("one/runs");
    let o = sweep(&cache, &one, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        run_folders(&one),
        [
            "lr0.02-seed0",
            "lr0.02-seed1",
            "lr0.05-seed0",
            "lr0.05-seed1"
        ]
    );
    // Each is an ordinary run of exactly its settings.
    let config = ballast_testkit::read_json(&one.join("lr0.05-seed1/config.json"));
    assert_eq!(config["spec"]["optimizer"]["lr"], 0.05);
    assert_eq!(config["spec"]["seed"], 1);
    assert_eq!(config["spec"]["epochs"], 2);
    assert_eq!(metrics(&one.join("lr0.05-seed1")).len(), 2);

    let split = t.path().join("split/runs");
    for shard in ["1/2", "0/2"] {
        let o = sweep(&cache, &split, &["--shard", shard]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(run_folders(&split), run_folders(&one));
    for name in run_folders(&one) {
        assert_same_run(&one.join(&name), &split.join(&name));
    }
    assert_eq!(
        read(&one.join("sweep.json")),
        read(&split.join("sweep.json"))
    );

    // The Slurm array variables split it the same way.
    let slurm = t.path().join("slurm/runs");
    for task in ["0", "1"] {
        let mut a: Vec<String> = ["sweep", "--cache", &s(&cache), "--runs", &s(&slurm)]
            .map(String::from)
            .into();
        a.extend(
            [
                "--threads",
                "1",
                "--grid",
                "lr=0.02,0.05",
                "--grid",
                "seed=0,1",
                "-q",
                "--",
            ]
            .map(String::from),
        );
        a.extend(base());
        let o = ballast_testkit::run(
            trainer()
                .args(&a)
                .env("SLURM_ARRAY_TASK_ID", task)
                .env("SLURM_ARRAY_TASK_COUNT", "2"),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let trained = run_folders(&slurm).len();
        assert_eq!(trained, if task == "0" { 2 } else { 4 }, "task {task}");
    }
    for name in run_folders(&one) {
        assert_same_run(&one.join(&name), &slurm.join(&name));
    }

    // A rerun trains nothing: every run is up to date.
    let before = ballast_testkit::mtimes(&one);
    let o = sweep(&cache, &one, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = ballast_testkit::mtimes(&one);
    for (k, m) in &before {
        if !k.ends_with("log.jsonl") {
            assert_eq!(
                Some(m),
                after.get(k),
                "{k} was rewritten by an up-to-date rerun"
            );
        }
    }

    // `trainer runs` ranks them.
    let o = ok(&["runs", &s(&one), "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ranks: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rank"].as_u64().unwrap())
        .collect();
    assert_eq!(ranks, [1, 2, 3, 4]);
    let accs: Vec<f64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["best_val_acc"].as_f64().unwrap())
        .collect();
    assert!(accs.windows(2).all(|w| w[0] >= w[1]), "{accs:?}");
}

#[test]
fn a_killed_sweep_continues_where_it_stopped() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let whole = t.path().join("whole/runs");
    let o = sweep(&cache, &whole, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A job that stopped inside its second run (as a time limit would stop it): one run
    // finished, one half done, two not started.
    let cut = t.path().join("cut/runs");
    let mut first = base();
    first.extend(["--lr", "0.02", "--seed", "0"].map(String::from));
    let mut a = vec![
        "--cache".to_string(),
        s(&cache),
        "--run".into(),
        s(&cut.join("lr0.02-seed0")),
    ];
    a.extend(first);
    a.extend(["--threads", "1", "-q"].map(String::from));
    ok(&refs(&a));
    let mut half = base();
    half.extend(["--lr", "0.02", "--seed", "1", "--stop-after", "1"].map(String::from));
    let mut a = vec![
        "--cache".to_string(),
        s(&cache),
        "--run".into(),
        s(&cut.join("lr0.02-seed1")),
    ];
    a.extend(half);
    a.extend(["--threads", "1", "-q"].map(String::from));
    ok(&refs(&a));
    let o = sweep(&cache, &cut, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for name in run_folders(&whole) {
        assert_same_run(&whole.join(&name), &cut.join(&name));
    }
}

#[test]
fn bad_settings_fail_before_any_training() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let runs = t.path().join("runs");
    let cases: [(&[&str], &str); 5] = [
        (&["--grid", "learning-rate=0.1"], "learning-rate"),
        (&["--grid", "lr="], "lr"),
        (&["--grid", "lr=0.1,fast"], "fast"),
        (&["--grid", "run=elsewhere"], "run"),
        (&["--grid", "lr=0.1,0.1"], "lr0.1"),
    ];
    for (grid, needle) in cases {
        let mut a: Vec<String> = ["sweep", "--cache", &s(&cache), "--runs", &s(&runs), "-q"]
            .map(String::from)
            .into();
        a.extend(grid.iter().map(|g| g.to_string()));
        a.push("--".into());
        a.extend(base());
        let o = run(&refs(&a));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{grid:?}: {e}");
        assert!(e.contains(needle), "{grid:?}: expected {needle:?} in {e}");
        assert!(!e.contains("panicked"), "{e}");
        let trained = runs.exists() && !run_folders(&runs).is_empty();
        assert!(!trained, "{grid:?} trained something");
    }
    // A list file's error names the file and line.
    let list = t.path().join("settings.txt");
    std::fs::write(&list, "lr=0.02\nlr=0.05 bogus=1\n").unwrap();
    let o = run(&[
        "sweep",
        "--cache",
        &s(&cache),
        "--runs",
        &s(&runs),
        "--list",
        &s(&list),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("settings.txt") && e.contains("line 2") && e.contains("bogus"),
        "{e}"
    );
}
