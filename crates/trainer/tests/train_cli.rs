//! The trainer binary end to end on small synthetic caches: learning, determinism, resume,
//! up-to-date, the NaN guard, the host→device counter, augmentation and `trainer runs`.

mod common;

use ballast_trainer::synthetic::SynthCache;
use common::*;

#[test]
fn loss_falls_and_val_accuracy_beats_chance() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let run = t.path().join("runs/learn");
    ok(&refs(&small_args(&cache, &run, 5)));
    let m = metrics(&run);
    assert_eq!(m.len(), 5);
    let first = m[0]["train_loss"].as_f64().unwrap();
    let last = m[4]["train_loss"].as_f64().unwrap();
    // Chance is 25 % and ln 4 = 1.386.
    assert!(last < 0.5 * first, "train loss {first} -> {last}");
    let best_acc = m
        .iter()
        .map(|r| r["val_acc"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(best_acc >= 0.7, "best val accuracy {best_acc}");
    for f in [
        "config.json",
        "metrics.jsonl",
        "model.safetensors",
        "last.safetensors",
        "curves.svg",
        "notes.md",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let notes = std::fs::read_to_string(run.join("notes.md")).unwrap();
    assert!(notes.contains("complete: 5 of 5 epochs"), "{notes}");
    assert!(notes.contains("best epoch"), "{notes}");
    let svg = std::fs::read_to_string(run.join("curves.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("accuracy"));
    // No temporaries left behind.
    for e in std::fs::read_dir(&run).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.contains(".tmp-"), "left {n}");
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let args = |run: &str, seed: &str| {
        let mut a = small_args(&cache, &t.path().join(run), 2);
        a.extend(["--dropout", "0.2", "--augment", "--seed", seed].map(String::from));
        a
    };
    ok(&refs(&args("a", "0")));
    ok(&refs(&args("b", "0")));
    ok(&refs(&args("c", "1")));
    let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
    for f in ["model.safetensors", "last.safetensors"] {
        assert_eq!(
            read(&a.join(f)),
            read(&b.join(f)),
            "{f} differs between equal runs"
        );
        assert_ne!(read(&a.join(f)), read(&c.join(f)), "{f} ignores the seed");
    }
    // Every file but the timing log is the same (run folders are named alike here: a/b).
    assert_eq!(metrics(&a), metrics(&b));
    assert_eq!(run_tree(&a).len(), run_tree(&b).len());
}

#[test]
fn resumed_run_equals_uninterrupted_run_bit_for_bit() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    // Runs named alike (notes.md and curves.svg carry the folder's name).
    let whole = t.path().join("whole/run");
    let mut args = small_args(&cache, &whole, 4);
    args.extend(["--dropout", "0.1", "--augment"].map(String::from));
    ok(&refs(&args));

    let parts = t.path().join("parts/run");
    let pargs: Vec<String> = args
        .iter()
        .map(|a| {
            if *a == s(&whole) {
                s(&parts)
            } else {
                a.clone()
            }
        })
        .collect();
    let mut first = pargs.clone();
    first.extend(["--stop-after", "2"].map(String::from));
    ok(&refs(&first));
    assert_eq!(checkpoint_state(&parts)["epochs_done"], 2);
    // Without --resume an unfinished run is refused, not silently redone.
    let e = usage_fails(&refs(&pargs), &["unfinished run", "--resume"]);
    assert!(e.contains("2 of 4"), "{e}");

    // Simulate a kill right after the epoch-2 checkpoint: the derived files lag behind and a
    // temporary is left over.
    std::fs::remove_file(parts.join("model.safetensors")).unwrap();
    let m = std::fs::read_to_string(parts.join("metrics.jsonl")).unwrap();
    let first_line = m.lines().next().unwrap();
    std::fs::write(parts.join("metrics.jsonl"), format!("{first_line}\n")).unwrap();
    std::fs::write(parts.join(".last.safetensors.tmp-x-1-0"), b"half").unwrap();

    // Resume with only --resume: the stored settings are used.
    ok(&[
        "--cache",
        &s(&cache),
        "--run",
        &s(&parts),
        "--resume",
        "--threads",
        "1",
        "-q",
    ]);
    for f in ["model.safetensors", "last.safetensors"] {
        assert_eq!(
            read(&whole.join(f)),
            read(&parts.join(f)),
            "{f} differs after resume"
        );
    }
    let pm = metrics(&parts);
    assert_eq!(pm.len(), 4);
    // Every file of the resumed run equals the uninterrupted run's, but the timing log, which
    // records both invocations.
    assert!(!parts.join(".last.safetensors.tmp-x-1-0").exists());
    assert_same_run(&whole, &parts);
    let inv = log_events(&parts, "invocation");
    assert_eq!(inv.len(), 2);
    assert_eq!(inv[1]["from_epoch"], 2);

    // Resuming a complete run does nothing.
    let before = std::fs::metadata(parts.join("last.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    let o = ok(&[
        "--cache",
        &s(&cache),
        "--run",
        &s(&parts),
        "--resume",
        "--threads",
        "1",
    ]);
    assert!(stderr(&o).contains("up to date"), "{}", stderr(&o));
    let after = std::fs::metadata(parts.join("last.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn killed_run_resumes_to_the_same_weights() {
    let t = tempfile::tempdir().unwrap();
    // Bigger samples so an epoch takes long enough for the kill to land mid-run (the result
    // must match wherever it lands).
    let cache = cache_with(
        t.path(),
        ballast_trainer::synthetic::SynthCache {
            size: 32,
            train_per_class: 128,
            ..Default::default()
        },
    );
    let whole = t.path().join("whole");
    let args = |run: &std::path::Path| {
        let mut a = small_args(&cache, run, 6);
        a.extend(["--conv", "6,16", "--fc", "32", "--lr", "0.01"].map(String::from));
        a
    };
    ok(&refs(&args(&whole)));

    let killed = t.path().join("killed");
    let mut child = trainer().args(args(&killed)).spawn().unwrap();
    let last = killed.join("last.safetensors");
    while !last.exists() {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut resume = args(&killed);
    resume.push("--resume".into());
    ok(&refs(&resume));
    for f in ["model.safetensors", "last.safetensors"] {
        assert_eq!(read(&whole.join(f)), read(&killed.join(f)), "{f}");
    }
}

#[test]
fn up_to_date_different_config_and_force() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let run = t.path().join("r");
    let args = small_args(&cache, &run, 1);
    ok(&refs(&args));
    let bytes = read(&run.join("last.safetensors"));
    let o = ok(&refs(&args)
        .iter()
        .map(|a| if *a == "-q" { "-v" } else { a })
        .collect::<Vec<_>>());
    assert!(stderr(&o).contains("up to date"), "{}", stderr(&o));
    assert_eq!(read(&run.join("last.safetensors")), bytes);

    // A deleted derived file is rebuilt without training.
    std::fs::remove_file(run.join("notes.md")).unwrap();
    ok(&refs(&args));
    assert!(run.join("notes.md").is_file());

    let mut other = args.clone();
    other.extend(["--lr", "0.02"].map(String::from));
    usage_fails(
        &refs(&other),
        &[
            "holds a different run",
            "optimizer.lr: 0.05 vs 0.02",
            "--force",
        ],
    );
    // --resume may not change settings either, and says which.
    let mut resume = other.clone();
    resume.push("--resume".into());
    usage_fails(&refs(&resume), &["optimizer.lr"]);
    // A cosine run cannot be extended; the error says why.
    let mut longer = args.clone();
    longer.extend(["--epochs", "3", "--resume"].map(String::from));
    usage_fails(&refs(&longer), &["epochs: 1 vs 3", "cosine"]);

    // --force with a config that cannot run leaves the old run alone.
    let mut broken = other.clone();
    broken.extend(["--force", "--batch", "0"].map(String::from));
    usage_fails(&refs(&broken), &["--batch must be at least 1"]);
    assert_eq!(read(&run.join("last.safetensors")), bytes);

    other.push("--force".into());
    ok(&refs(&other));
    let c: serde_json::Value = serde_json::from_slice(&read(&run.join("config.json"))).unwrap();
    assert_eq!(c["spec"]["optimizer"]["lr"], 0.02);
}

#[test]
fn restart_if_changed_replaces_only_a_different_run() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let run = t.path().join("r");
    let mut args = small_args(&cache, &run, 1);
    args.extend(["--resume", "--restart-if-changed"].map(String::from));
    ok(&refs(&args));
    let first = read(&run.join("model.safetensors"));
    // Same settings and data: up to date, nothing rewritten.
    ok(&refs(&args));
    assert_eq!(read(&run.join("model.safetensors")), first);
    // Other settings: the old run is replaced by a fresh one, not refused.
    let mut other = args.clone();
    other.extend(["--lr", "0.02"].map(String::from));
    ok(&refs(&other));
    let c: serde_json::Value = serde_json::from_slice(&read(&run.join("config.json"))).unwrap();
    assert_eq!(c["spec"]["optimizer"]["lr"], 0.02);
    assert_eq!(
        log_events(&run, "invocation").len(),
        1,
        "old run's history kept"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        1,
        "old run's metrics kept:\n{metrics}"
    );
    // Other data: replaced as well.
    let cache2 = cache_with(
        &t.path().join("second"),
        SynthCache {
            seed: 9,
            ..SynthCache::default().with_size(16)
        },
    );
    let mut moved = other.clone();
    for a in moved.iter_mut() {
        if *a == cache.display().to_string() {
            *a = cache2.display().to_string();
        }
    }
    ok(&refs(&moved));
    let c: serde_json::Value = serde_json::from_slice(&read(&run.join("config.json"))).unwrap();
    assert_eq!(c["data"]["cache"], cache2.display().to_string());
}

#[test]
fn constant_schedule_runs_can_be_extended() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let whole = t.path().join("whole");
    let mut a = small_args(&cache, &whole, 3);
    a.extend(["--schedule", "constant"].map(String::from));
    ok(&refs(&a));
    let ext = t.path().join("ext");
    let mut b: Vec<String> = small_args(&cache, &ext, 2);
    b.extend(["--schedule", "constant"].map(String::from));
    ok(&refs(&b));
    let mut c = small_args(&cache, &ext, 3);
    c.extend(["--schedule", "constant", "--resume"].map(String::from));
    ok(&refs(&c));
    for f in ["model.safetensors", "last.safetensors"] {
        assert_eq!(read(&whole.join(f)), read(&ext.join(f)), "{f}");
    }
}

#[test]
fn nan_guard_stops_and_keeps_the_last_good_checkpoint() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    // Epoch 1 at lr 0.05, then lr 0.05·1e9: the loss blows up in epoch 2.
    let extra = ["--schedule", "step", "--step-size", "1", "--gamma", "1e9"];
    let good = t.path().join("good");
    let mut g = small_args(&cache, &good, 3);
    g.extend(extra.map(String::from));
    g.extend(["--stop-after", "1"].map(String::from));
    ok(&refs(&g));

    let bad = t.path().join("bad");
    let mut b = small_args(&cache, &bad, 3);
    b.extend(extra.map(String::from));
    let e = fails(
        &refs(&b),
        &[
            "loss became",
            "at epoch 2 batch",
            "last.safetensors (epoch 1)",
        ],
    );
    assert!(e.contains("NaN") || e.contains("inf"), "{e}");
    // The checkpoint is epoch 1's, byte for byte.
    assert_eq!(
        read(&good.join("last.safetensors")),
        read(&bad.join("last.safetensors"))
    );
    assert_eq!(
        read(&good.join("model.safetensors")),
        read(&bad.join("model.safetensors"))
    );
    let notes = std::fs::read_to_string(bad.join("notes.md")).unwrap();
    assert!(
        notes.contains("FAILED") && notes.contains("loss became"),
        "{notes}"
    );
}

#[test]
fn images_cross_to_the_device_once() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let run = t.path().join("r");
    let mut a = small_args(&cache, &run, 3);
    a.push("--augment".into());
    a.extend(["--dropout", "0.5"].map(String::from));
    ok(&refs(&a));
    let epochs = log_events(&run, "epoch");
    assert_eq!(epochs.len(), 3);
    for m in epochs {
        assert_eq!(m["h2d_image_bytes"], 0, "{m}");
        assert!(m["h2d_other_bytes"].as_u64().unwrap() > 0);
    }
    let c: serde_json::Value = serde_json::from_slice(&read(&run.join("config.json"))).unwrap();
    // 4 classes × (64 train + 16 val) samples of 16×16 bytes, uploaded once.
    assert_eq!(c["data"]["load_image_bytes"], 4 * 80 * 16 * 16);
}

#[test]
fn impossible_configs_are_rejected_before_training() {
    let t = tempfile::tempdir().unwrap();
    let cache = cache_with(
        t.path(),
        ballast_trainer::synthetic::SynthCache::default(), // 32x32
    );
    let run = t.path().join("valid");
    usage_fails(
        &[
            "--cache",
            &s(&cache),
            "--run",
            &s(&run),
            "--padding",
            "valid",
        ],
        &["conv3", "5x5", "32→28→14→10→5→1", "--padding same"],
    );
    assert!(
        !run.exists(),
        "a rejected config must not create a run folder"
    );
    usage_fails(
        &["--cache", &s(&cache), "--run", &s(&run), "--batch", "0"],
        &["--batch must be at least 1"],
    );
    usage_fails(
        &["--cache", &s(&cache), "--run", &s(&run), "--kernel", "4"],
        &["odd kernel"],
    );
    usage_fails(
        &[
            "--cache",
            &s(&cache),
            "--run",
            &s(&run),
            "--device",
            "cuda:0",
        ],
        &[],
    );
    assert!(!run.exists());
}

#[test]
fn runs_table_compares_runs() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let runs = t.path().join("runs");
    ok(&refs(&small_args(&cache, &runs.join("good"), 4)));
    let mut weak = small_args(&cache, &runs.join("weak"), 1);
    weak.extend(["--lr", "0.001"].map(String::from));
    ok(&refs(&weak));
    std::fs::create_dir_all(runs.join("not-a-run")).unwrap();
    let o = ok(&["runs", &s(&runs)]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("#  run") && lines[0].contains("val acc"),
        "{out}"
    );
    assert!(lines[2].starts_with("1  good"), "best first: {out}");
    assert!(lines[3].starts_with("2  weak"), "{out}");
    assert!(
        lines[2].contains("4/4") && lines[3].contains("1/1"),
        "{out}"
    );
    assert!(!out.contains("not-a-run"));
    let o = ok(&["runs", &s(&runs), "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["name"], "good");
    assert_eq!(
        (rows[0]["rank"].as_u64(), rows[1]["rank"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(rows[1]["lr"], 0.001);
    assert!(rows[0]["best_val_acc"].as_f64().unwrap() > rows[1]["best_val_acc"].as_f64().unwrap());
}

/// The default build must not link the CUDA libraries: a CUDA-feature binary cannot even start
/// on a machine without them (CPU work included), so CUDA is a separate artefact
/// (scripts/build-cuda.sh).
#[cfg(not(feature = "cuda"))]
#[test]
fn cpu_build_links_no_cuda_library() {
    let bin = read(std::path::Path::new(env!("CARGO_BIN_EXE_trainer")));
    for lib in [&b"libcuda.so"[..], b"libcublas", b"libcudart", b"libcurand"] {
        assert!(
            !bin.windows(lib.len()).any(|w| w == lib),
            "the CPU trainer references {}",
            String::from_utf8_lossy(lib)
        );
    }
    let o = ok(&["--version"]);
    assert!(stdout(&o).starts_with("trainer "));
}

#[test]
fn plateau_risk_is_warned_before_training_and_a_loss_at_ln_c_after() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    // Plain SGD, 2 epochs × 4 batches of 64, an lr too small to move: both warnings.
    let run = t.path().join("sgd");
    let mut a: Vec<String> = small_args(&cache, &run, 2)
        .into_iter()
        .filter(|a| a != "-q")
        .collect();
    a.extend(["--batch", "64", "--optimizer", "sgd", "--lr", "0.00001"].map(String::from));
    let o = ok(&refs(&a));
    let err = stderr(&o);
    assert!(
        err.contains("plateau risk: plain SGD with 8 optimiser steps"),
        "{err}"
    );
    assert!(err.contains("ln(4) = 1.386"), "{err}");
    assert!(err.contains("after epoch 2:"), "{err}");
    let notes = std::fs::read_to_string(run.join("notes.md")).unwrap();
    assert!(
        notes.contains("## Warnings") && notes.contains("plateau risk"),
        "{notes}"
    );
    assert!(notes.contains("has not started to learn"), "{notes}");

    // AdamW with enough signal: neither warning, in the log or in notes.md.
    let run = t.path().join("adamw");
    let mut a: Vec<String> = small_args(&cache, &run, 3)
        .into_iter()
        .filter(|a| a != "-q")
        .collect();
    a.extend(["--optimizer", "adamw", "--lr", "0.003"].map(String::from));
    let o = ok(&refs(&a));
    assert!(!stderr(&o).contains("plateau"), "{}", stderr(&o));
    let notes = std::fs::read_to_string(run.join("notes.md")).unwrap();
    assert!(!notes.contains("## Warnings"), "{notes}");
}
