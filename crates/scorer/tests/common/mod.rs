//! Shared by the scorer's end-to-end tests: a small real pipeline (fixtures/photos → tiler →
//! packer → trainer, in-process through the libraries) built once per test binary, and the
//! real `scorer` binary.
#![allow(dead_code, unused_imports)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use ballast_testkit::trees::copy_dir;
pub use ballast_testkit::{code, stderr, stdout};
use std::sync::OnceLock;

use ballast_format::tiler_files::{SplitRule, WindowMode};
use clap::Parser;

/// Window side the fixture is tiled at: 480×320 photos give 5×3 windows each.
pub const TILE: u32 = 96;
/// Sample side the fixture is packed at.
pub const SIZE: u32 = 32;
/// Share of photos in val and the split seed, under the content-hash split: two g1-fine
/// photos and one g3-medium photo go to val; g2-medium-fine has none, so eval meets a class
/// without support (the stratified split would give every class a val photo).
pub const VAL_FRACTION: f64 = 0.25;
pub const SPLIT_SEED: u64 = 7;

pub struct Fixture {
    pub root: PathBuf,
    pub photos: PathBuf,
    pub tiles: PathBuf,
    pub cache: PathBuf,
    pub run: PathBuf,
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture_photos() -> PathBuf {
    repo().join("fixtures/photos")
}

#[derive(Parser)]
struct TrainCli {
    #[command(flatten)]
    args: ballast_trainer::args::TrainArgs,
}

/// The pipeline, built once per test binary under the target's tmp folder.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let bin = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tests".into());
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scorer-{bin}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        build(root)
    })
}

fn build(root: PathBuf) -> Fixture {
    let photos = fixture_photos();
    let tiles = root.join("tiles");
    let cache = root.join("cache");
    let run = root.join("run");
    let mut cfg = ballast_tiler::Config::new(&photos, &tiles);
    cfg.size = TILE;
    cfg.windows = WindowMode::Grid { stride: TILE };
    cfg.val_fraction = VAL_FRACTION;
    cfg.split_seed = SPLIT_SEED;
    cfg.split = SplitRule::ContentHash;
    cfg.quiet = true;
    ballast_tiler::run(&cfg).expect("tiler");
    let pack = ballast_packer::PackOptions {
        tiles: tiles.clone(),
        out: cache.clone(),
        settings: ballast_packer::Settings {
            size: SIZE,
            jitter: 0.25,
            copies: 1,
            seed: 0,
            shards: Some(2),
        },
        photos: None,
        job: ballast_format::JobShard::WHOLE,
        force: false,
        max_bad: 0,
        quiet: true,
    };
    ballast_packer::pack(&pack).expect("packer");
    let argv: Vec<String> = [
        "trainer",
        "--cache",
        cache.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--conv",
        "4,8",
        "--fc",
        "16",
        "--optimizer",
        "adamw",
        "--lr",
        "0.003",
        "--batch",
        "16",
        "--eval-batch",
        "32",
        "--epochs",
        "25",
        "--threads",
        "1",
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let args = TrainCli::try_parse_from(argv.iter().filter(|a| *a != "-q"))
        .expect("trainer arguments")
        .args;
    let req = ballast_trainer::train::TrainRequest {
        args,
        explicit: BTreeSet::new(),
        argv,
        threads: 1,
        quiet: true,
    };
    // One thread, as the scorer runs in these tests (CPU results are reproducible per count).
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| ballast_trainer::train::train(&req))
        .expect("trainer");
    Fixture {
        photos,
        tiles,
        cache,
        run,
        root,
    }
}

/// A fresh empty folder under the fixture root.
pub fn scratch(name: &str) -> PathBuf {
    let d = fixture().root.join("scratch").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The real `scorer` binary, without environment variables that would change its work.
pub fn scorer() -> Command {
    ballast_testkit::clean(env!("CARGO_BIN_EXE_scorer"))
}

pub fn run(args: &[&str]) -> Output {
    ballast_testkit::run(scorer().args(args))
}

/// Runs and asserts success.
pub fn ok(args: &[&str]) -> Output {
    let o = ballast_testkit::ok(scorer().args(args));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    o
}

/// Runs and asserts exit status 1 (a failure, not a usage error) with an error containing
/// every one of `needles`.
pub fn fails(args: &[&str], needles: &[&str]) -> String {
    fails_with(args, 1, needles)
}

/// Runs and asserts exit status `code` with an `error: ` line containing every needle.
pub fn fails_with(args: &[&str], code: i32, needles: &[&str]) -> String {
    let e = ballast_testkit::fails(scorer().args(args), code, needles);
    assert!(e.contains("error: "), "{e}");
    e
}

pub fn s(p: &Path) -> String {
    p.display().to_string()
}

pub fn json(p: &Path) -> serde_json::Value {
    ballast_testkit::read_json(p)
}

/// The fixture's val photos (relative paths), from the tiler's manifest.
pub fn val_photos() -> Vec<String> {
    let m = ballast_format::manifest::read(&fixture().tiles.join("manifest.jsonl")).unwrap();
    let set: BTreeSet<String> = m
        .into_iter()
        .filter(|r| r.split == ballast_format::Split::Val)
        .map(|r| r.photo)
        .collect();
    set.into_iter().collect()
}

/// Declares another sample size in an index (as a cache packed at `size` would), keeping the
/// index self-consistent (pixel sums scaled, mean/std recomputed) so that readers get past
/// its own checks to the one under test: the run and the cache not belonging together.
pub fn declare_size(idx: &mut serde_json::Value, size: u32) {
    let old = idx["size"].as_u64().unwrap();
    let scale = |v: &serde_json::Value| v.as_u64().unwrap() * (size as u64).pow(2) / old.pow(2);
    for s in idx["shards"].as_array_mut().unwrap() {
        s["pixel_sum"] = serde_json::json!(scale(&s["pixel_sum"]));
        s["pixel_sq_sum"] = serde_json::json!(scale(&s["pixel_sq_sum"]));
    }
    idx["size"] = serde_json::json!(size);
    idx["params"]["size"] = serde_json::json!(size);
    let index: ballast_format::cache_files::CacheIndex =
        serde_json::from_value(idx.clone()).unwrap();
    let (mean, std) = ballast_format::cache_files::train_moments(&index.shards, size).unwrap();
    idx["mean"] = serde_json::json!(mean);
    idx["std"] = serde_json::json!(std);
}

/// Records `path`'s current bytes in its run's checkpoints.json, as if the trainer had written
/// them, so a deliberately altered weight file reaches the check under test.
pub fn rerecord(path: &std::path::Path) {
    let digest = ballast_format::digest::of_file(path).unwrap();
    ballast_format::checkpoint_record::CheckpointRecord::settle(
        path.parent().unwrap(),
        path.file_name().unwrap().to_str().unwrap(),
        &digest,
    )
    .unwrap();
}

/// Arguments of `scorer photos --watch DIR --out OUT` with short poll and settle times, one
/// thread, then `extra`.
pub fn watch_args(dir: &Path, out: &Path, run: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "photos",
        "--run",
        &s(run),
        "--watch",
        &s(dir),
        "--out",
        &s(out),
        "--poll-ms",
        "50",
        "--settle-ms",
        "300",
        "--threads",
        "1",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}
