//! The Slurm job scripts run as array tasks without Slurm: the environment set as Slurm sets
//! it, tasks in a shuffled order, and the result byte-identical to a single run.

use std::path::Path;
use std::process::Command;

use ballast_e2e::{assert_same_tree, bin_dir, ok, root, synth_photos};

fn job(script: &str, photos: &Path, work: &Path, task: Option<(usize, usize, usize)>) -> Command {
    let mut c = Command::new("bash");
    c.arg(root().join("scripts/slurm").join(script))
        .env("BALLAST_BIN", bin_dir())
        .env("BALLAST_SLURM_DIR", root().join("scripts/slurm"))
        .env("PHOTOS", photos)
        .env("WORK", work)
        .env("TILE_SIZE", "64")
        .env("SIZE", "16")
        .env("PACK_SHARDS", "4")
        .env("SLURM_CPUS_PER_TASK", "1")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env_remove("SLURM_ARRAY_TASK_MIN")
        .env_remove("SPLIT")
        .env_remove("TILE_FILES");
    if let Some((id, count, min)) = task {
        c.env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", count.to_string())
            .env("SLURM_ARRAY_TASK_MIN", min.to_string());
    }
    c
}

#[test]
fn four_array_tasks_in_shuffled_order_equal_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    synth_photos(&photos, 3, 6, 320, 192, 5);
    let single = tmp.path().join("single");
    let array = tmp.path().join("array");

    ok(&mut job("tile.sbatch", &photos, &single, None));
    ok(&mut job("pack.sbatch", &photos, &single, None));

    // Tiler array --array=0-3, tasks finishing in the order 2, 0, 3, 1.
    for (n, id) in [2, 0, 3, 1].into_iter().enumerate() {
        ok(&mut job("tile.sbatch", &photos, &array, Some((id, 4, 0))));
        let done = array.join("tiles/manifest.jsonl").exists();
        assert_eq!(
            done,
            n == 3,
            "manifest must appear exactly when the last task finishes"
        );
    }
    // Packer array --array=1-4 (ids start at 1), in the order 4, 2, 1, 3.
    for (n, id) in [4, 2, 1, 3].into_iter().enumerate() {
        ok(&mut job("pack.sbatch", &photos, &array, Some((id, 4, 1))));
        let done = array.join("cache/index.json").exists();
        assert_eq!(
            done,
            n == 3,
            "index.json must appear exactly when the last task finishes"
        );
    }

    assert_same_tree(&single.join("tiles"), &array.join("tiles"));
    assert_same_tree(&single.join("cache"), &array.join("cache"));
    assert!(!array.join("tiles/.parts").exists() && !array.join("cache/.parts").exists());
}

/// Every file of a runs folder but the timing logs (log.jsonl holds times and pids).
fn runs_tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut t = ballast_testkit::tree(dir);
    t.retain(|k, _| !k.ends_with("log.jsonl"));
    t
}

#[test]
fn sweep_array_tasks_equal_one_sweep_job_and_train_takes_the_trainer_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    synth_photos(&photos, 3, 6, 320, 192, 5);
    // One work folder (run configs name the cache's path): the single job's sweep is moved
    // aside before the array tasks run.
    let single = tmp.path().join("work");
    ok(&mut job("tile.sbatch", &photos, &single, None));
    ok(&mut job("pack.sbatch", &photos, &single, None));
    let sweep = |task: Option<(usize, usize, usize)>| {
        let mut c = job("sweep.sbatch", &photos, &single, task);
        c.env("SWEEP_GRID", "lr=0.002,0.004 seed=0,1")
            .env("SWEEP_NAME", "lr")
            .env("EPOCHS", "1");
        c
    };
    ok(&mut sweep(None));
    let (a, b) = (tmp.path().join("one-job"), single.join("sweeps/lr"));
    std::fs::rename(&b, &a).unwrap();
    // --array=1-2, the second task first.
    for id in [2, 1] {
        ok(&mut sweep(Some((id, 2, 1))));
    }
    let (ta, tb) = (runs_tree(&a), runs_tree(&b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (k, v) in &ta {
        assert!(
            v == &tb[k],
            "{k} differs between one sweep job and two array tasks"
        );
    }
    let runs: Vec<&String> = ta.keys().filter(|k| k.ends_with("/config.json")).collect();
    assert_eq!(runs.len(), 4, "{runs:?}");
    // No grid: a clear usage error, not a run.
    let o = ballast_testkit::run(&mut job("sweep.sbatch", &photos, &single, None));
    assert_eq!(o.status.code(), Some(2));

    // train.sbatch with no training settings set trains with the trainer's own defaults.
    ok(job("train.sbatch", &photos, &single, None).env("EPOCHS", "1"));
    let config = ballast_testkit::read_json(&single.join("runs/default/config.json"));
    let defaults = ballast_trainer::args::Recipe::Ballast.settings();
    assert_eq!(config["spec"]["optimizer"]["lr"], defaults.lr);
    assert_eq!(config["spec"]["batch"], defaults.batch);
}

#[test]
fn the_split_setting_reaches_the_tiler() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    synth_photos(&photos, 2, 3, 192, 128, 6);
    for (split, rule) in [(None, "stratified"), (Some("hash"), "content-hash")] {
        let work = tmp.path().join(format!("work-{rule}"));
        let mut tile = job("tile.sbatch", &photos, &work, None);
        if let Some(s) = split {
            tile.env("SPLIT", s);
        }
        ok(&mut tile);
        let summary = std::fs::read(work.join("tiles/tiler.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&summary).unwrap();
        assert_eq!(v["params"]["split"], rule);
    }
}

#[test]
fn tile_files_none_array_tasks_equal_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    synth_photos(&photos, 2, 4, 256, 160, 2);
    let (single, array) = (tmp.path().join("single"), tmp.path().join("array"));
    ok(job("tile.sbatch", &photos, &single, None).env("TILE_FILES", "none"));
    ok(&mut job("pack.sbatch", &photos, &single, None));
    for id in [1, 0] {
        ok(job("tile.sbatch", &photos, &array, Some((id, 2, 0))).env("TILE_FILES", "none"));
    }
    for id in [3, 1, 0, 2] {
        ok(&mut job("pack.sbatch", &photos, &array, Some((id, 4, 0))));
    }
    let summary = ballast_testkit::read_json(&single.join("tiles/tiler.json"));
    assert_eq!(summary["params"]["tile_files"], "none");
    assert_same_tree(&single.join("cache"), &array.join("cache"));
    assert_same_tree(&single.join("tiles"), &array.join("tiles"));
}
