//! Trust under concurrency, kills and damage (issue #11), on the real binary: one trainer per
//! run folder, a killed run resumes to the very bytes of an uninterrupted one, damaged or
//! non-finite weights and crafted indexes are refused with the file named, exit statuses.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ballast_format::rng::SeededRng;
use ballast_testkit::signals::{pause, signal, wait_for_holder};
use ballast_trainer::synthetic::SynthCache;
use common::*;

/// A cache big enough that an epoch takes a while (tens of milliseconds), so signals land
/// inside epochs and inside writes.
fn slow_cache(dir: &Path) -> PathBuf {
    cache_with(
        dir,
        SynthCache {
            size: 16,
            classes: 3,
            train_per_class: 400,
            val_per_class: 40,
            shards: 2,
            noise: 20.0,
            seed: 3,
        },
    )
}

fn args(cache: &Path, run: &Path, epochs: usize, seed: &str) -> Vec<String> {
    let mut a = small_args(cache, run, epochs);
    a.extend(["--seed", seed, "--augment", "--dropout", "0.1"].map(String::from));
    a
}

fn spawn(args: &[String]) -> Child {
    trainer()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_second_trainer_on_a_run_folder_is_refused_and_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let cache = slow_cache(t.path());
    for trial in 0..3 {
        let run = t.path().join(format!("run{trial}"));
        let mut holder = spawn(&args(&cache, &run, 30, "0"));
        let pid = holder.id();
        wait_for_holder(&run.join(".ballast.lock"), pid);
        pause(pid);
        let before = ballast_testkit::tree(&run);
        // Other settings, and the very same settings: both refused at once.
        for seed in ["1", "0"] {
            let t0 = Instant::now();
            let e = fails(
                &refs(&args(&cache, &run, 30, seed)),
                &[&format!("pid {pid}"), "started"],
            );
            assert!(e.contains(&run.display().to_string()), "{e}");
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "not refused at once"
            );
        }
        assert_eq!(ballast_testkit::tree(&run), before, "the refused run wrote");
        signal(pid, "-CONT");
        // Trial 1 stops the holder the hard way: the kernel drops its lock.
        if trial == 1 {
            signal(pid, "-KILL");
            let _ = holder.wait();
            let mut r = args(&cache, &run, 30, "0");
            r.push("--resume".into());
            ok(&refs(&r));
        } else {
            let out = holder.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }
}

#[test]
fn sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run() {
    let t = tempfile::tempdir().unwrap();
    let cache = slow_cache(t.path());
    let epochs = 6;
    let whole = t.path().join("whole/run");
    let t0 = Instant::now();
    ok(&refs(&args(&cache, &whole, epochs, "5")));
    let span = t0.elapsed().as_secs_f64();

    for trial in 0..6u64 {
        let run = t.path().join(format!("killed{trial}/run"));
        let mut a = args(&cache, &run, epochs, "5");
        a.push("--resume".into());
        let mut rng = SeededRng::for_key("trainer-kill-test", trial, &[]);
        let mut kills = 0;
        // Kill at seeded moments across the run's length until a run gets to its end.
        loop {
            let mut child = spawn(&a);
            let wait = Duration::from_secs_f64(rng.uniform(0.0, span * 0.6));
            let t = Instant::now();
            let mut finished = None;
            while t.elapsed() < wait {
                if let Some(status) = child.try_wait().unwrap() {
                    finished = Some(status);
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            match finished {
                Some(status) => {
                    assert!(
                        status.success(),
                        "trial {trial}: run failed after {kills} kills"
                    );
                    break;
                }
                None => {
                    signal(child.id(), "-KILL");
                    let _ = child.wait();
                    kills += 1;
                }
            }
            assert!(kills < 60, "trial {trial}: never finished");
        }
        assert_same_run(&whole, &run);
    }
}

#[test]
fn stop_after_and_resume_equals_an_uninterrupted_run_in_every_file() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let whole = t.path().join("a/run");
    ok(&refs(&args(&cache, &whole, 5, "2")));
    let parts = t.path().join("b/run");
    for stop in ["1", "3"] {
        let mut a = args(&cache, &parts, 5, "2");
        a.extend(["--resume", "--stop-after", stop].map(String::from));
        ok(&refs(&a));
    }
    let mut a = args(&cache, &parts, 5, "2");
    a.push("--resume".into());
    ok(&refs(&a));
    assert_same_run(&whole, &parts);
    assert_eq!(log_events(&parts, "invocation").len(), 3);
}

/// Flips one bit in the middle of `path`.
fn flip(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let i = b.len() - 9;
    b[i] ^= 0x10;
    std::fs::write(path, b).unwrap();
}

#[test]
fn damaged_and_non_finite_weights_are_refused_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let run = t.path().join("run");
    let mut a = args(&cache, &run, 3, "0");
    a.extend(["--stop-after", "2"].map(String::from));
    ok(&refs(&a));
    let record = ballast_testkit::read_json(&run.join("checkpoints.json"));
    for f in ["last.safetensors", "model.safetensors"] {
        let digest = ballast_format::digest::of_file(&run.join(f)).unwrap();
        assert_eq!(record["files"][f], serde_json::json!([digest]), "{f}");
    }

    // A flipped weight byte in last.safetensors: --resume refuses it.
    let last = run.join("last.safetensors");
    let good = std::fs::read(&last).unwrap();
    flip(&last);
    let mut r = args(&cache, &run, 3, "0");
    r.push("--resume".into());
    fails(&refs(&r), &["last.safetensors", "damaged"]);
    std::fs::write(&last, &good).unwrap();

    // The same in model.safetensors: loading the run refuses it.
    let model = run.join("model.safetensors");
    let good = std::fs::read(&model).unwrap();
    flip(&model);
    let e = ballast_trainer::classifier::TrainedRun::load(&run, &candle_core::Device::Cpu)
        .err()
        .expect("a damaged model loads")
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("damaged"),
        "{e}"
    );
    std::fs::write(&model, &good).unwrap();

    // NaN in the last weights, written through the trainer's own writer (so the digest is
    // recorded): still refused, never used for a prediction.
    let (mut weights, meta) = ballast_trainer::checkpoint::read_model(&model).unwrap();
    let last_name = weights.keys().last().unwrap().clone();
    let w = weights.get_mut(&last_name).unwrap();
    let n = w.data.len();
    w.data[n - 1] = f32::NAN;
    ballast_trainer::checkpoint::write_model(&model, &weights, &meta).unwrap();
    let e = ballast_trainer::classifier::TrainedRun::load(&run, &candle_core::Device::Cpu)
        .err()
        .expect("NaN weights load")
        .to_string();
    assert!(e.contains("model.safetensors") && e.contains("NaN"), "{e}");

    // The resumed run rewrites the model it derives from the checkpoint and finishes.
    ok(&refs(&r));
    ballast_trainer::classifier::TrainedRun::load(&run, &candle_core::Device::Cpu).unwrap();
}

#[test]
fn crafted_indexes_are_refused_naming_index_json() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let run = t.path().join("run");
    let good = index(&cache);
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("mean", Box::new(|v| v["mean"] = serde_json::json!(1e308))),
        ("mean", Box::new(|v| v["std"] = serde_json::json!(0.0))),
        (
            "samples",
            Box::new(|v| v["shards"][0]["samples"] = serde_json::json!(1u64 << 62)),
        ),
        (
            "digests",
            Box::new(|v| v["shards"][0]["digest"] = serde_json::json!("é".repeat(40))),
        ),
        (
            "expected a file named",
            Box::new(|v| v["shards"][1]["file"] = serde_json::json!("../other/x.safetensors")),
        ),
        (
            "listed twice",
            Box::new(|v| {
                let first = v["shards"][0].clone();
                v["shards"][1] = first;
            }),
        ),
    ];
    for (needle, mutate) in cases {
        let mut v = serde_json::to_value(&good).unwrap();
        mutate(&mut v);
        std::fs::write(cache.join("index.json"), serde_json::to_vec(&v).unwrap()).unwrap();
        fails(&refs(&small_args(&cache, &run, 1)), &["index.json", needle]);
    }
    write_index(&cache, &good);
    ok(&refs(&small_args(&cache, &run, 1)));
}

#[test]
fn usage_errors_exit_2_and_a_closed_pipe_exits_0() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    let runs = t.path().join("runs");
    let mut a = small_args(&cache, &runs.join("r1"), 1);
    a.extend(["--patience", "0"].map(String::from));
    let o = run(&refs(&a));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--patience"), "{}", stderr(&o));

    for i in 0..3 {
        ok(&refs(&small_args(&cache, &runs.join(format!("r{i}")), 1)));
    }
    // `trainer runs DIR | head -c 1`: the reader goes away; the trainer ends quietly with 0.
    let mut child = trainer()
        .args(["runs", &s(&runs)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// The command in notes.md's "Reproduce" section, as arguments (without the program name).
fn reproduce_command(run: &Path) -> Vec<String> {
    let notes = std::fs::read_to_string(run.join("notes.md")).unwrap();
    let at = notes.find("## Reproduce").expect("a Reproduce section");
    let line = notes[at..].lines().find(|l| l.starts_with('`')).unwrap();
    let cmd = line.trim_start_matches('`').split('`').next().unwrap();
    // Quoting in notes.md is shell quoting of plain paths and numbers here.
    cmd.split_whitespace()
        .skip(1)
        .map(|a| a.trim_matches('\'').to_string())
        .collect()
}

#[test]
fn the_reproduce_command_in_notes_retrains_the_same_run() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    // Settings that apply only to some choices, given where they do not apply (momentum and
    // --nesterov with AdamW, --gamma with cosine), and ones that do (min-lr, betas).
    let recipes: [&[&str]; 2] = [
        &[
            "--optimizer",
            "adamw",
            "--momentum",
            "0.5",
            "--gamma",
            "0.3",
            "--beta1",
            "0.8",
            "--min-lr",
            "0.0001",
        ],
        &[
            "--optimizer",
            "sgd",
            "--momentum",
            "0.8",
            "--nesterov",
            "--schedule",
            "step",
            "--step-size",
            "1",
            "--gamma",
            "0.5",
            "--beta2",
            "0.9",
        ],
    ];
    for (i, extra) in recipes.iter().enumerate() {
        let run = t.path().join(format!("r{i}/run"));
        let mut a = small_args(&cache, &run, 2);
        a.extend(extra.iter().map(|s| s.to_string()));
        ok(&refs(&a));
        let first = run_tree(&run);
        // Into the same folder: up to date, not "holds a different run".
        let cmd: Vec<String> = reproduce_command(&run)
            .into_iter()
            .map(|a| if a == "NEW_RUN_DIR" { s(&run) } else { a })
            .collect();
        let o = ok(&refs(&cmd));
        assert!(
            stderr(&o).contains("up to date") || stderr(&o).is_empty(),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            run_tree(&run),
            first,
            "the reproduce command changed the run"
        );
        // Into a new folder: the same run, byte for byte.
        let again = t.path().join(format!("again{i}/run"));
        let cmd: Vec<String> = reproduce_command(&run)
            .into_iter()
            .map(|a| if a == "NEW_RUN_DIR" { s(&again) } else { a })
            .collect();
        ok(&refs(&cmd));
        assert_same_run(&run, &again);
    }
}

#[test]
fn a_fifo_for_index_json_or_a_shard_is_refused_without_hanging() {
    let t = tempfile::tempdir().unwrap();
    let cache = small_cache(t.path());
    for f in ["index.json", "train-00000-of-00002.safetensors"] {
        let c = t.path().join(format!("c-{f}"));
        ballast_testkit::trees::copy_dir(&cache, &c);
        std::fs::remove_file(c.join(f)).unwrap();
        ballast_testkit::process::mkfifo(&c.join(f));
        let run_dir = t.path().join(format!("r-{f}"));
        let o =
            ballast_testkit::process::run_within(trainer().args(small_args(&c, &run_dir, 1)), 60);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(f) && stderr(&o).contains("not a regular file"),
            "{}",
            stderr(&o)
        );
    }
}
