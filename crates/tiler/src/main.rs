//! `tiler`: cut tiles from an ImageFolder tree of photos (see the README's tiler section).

use std::path::PathBuf;
use std::process::ExitCode;

use ballast_cli::CommonArgs;
use ballast_format::JobShard;
use ballast_format::tiler_files::{SplitRule, TileFiles, WindowMode};
use ballast_tiler::config::{self, Config, parse_pixels};
use ballast_tiler::encode::PngCompression;
use ballast_tiler::{RunOutcome, run};
use clap::Parser;

/// Cut square tiles from photos in INPUT/<class>/ into OUT/{train,val}/<class>/*.png, splitting
/// train/val by photo, with OUT/manifest.jsonl (one row per tile) and OUT/tiler.json.
#[derive(Debug, Parser)]
#[command(name = "tiler", version)]
struct Cli {
    /// Photo folder in ImageFolder layout: INPUT/<class>/**/*.{jpg,jpeg,png,tif,tiff}.
    #[arg(long)]
    input: PathBuf,
    /// Output folder (tiles, manifest.jsonl, tiler.json).
    #[arg(long)]
    out: PathBuf,
    /// Tile side in photo pixels.
    #[arg(long, default_value_t = config::DEFAULT_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
    size: u32,
    /// N random windows per photo (uniform over fully-inside positions, seeded by --seed and
    /// the photo's path) instead of a grid.
    #[arg(long, value_name = "N", conflicts_with_all = ["grid", "stride"], value_parser = clap::value_parser!(u32).range(1..))]
    per_photo: Option<u32>,
    /// A regular grid of fully-inside windows (the default).
    #[arg(long)]
    grid: bool,
    /// Grid step in pixels (default: --size, i.e. non-overlapping). Implies --grid.
    #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u32).range(1..))]
    stride: Option<u32>,
    /// Share of PHOTOS (not tiles) that go to val, per class with --split stratified.
    #[arg(long, default_value_t = config::DEFAULT_VAL_FRACTION, value_parser = parse_fraction)]
    val_fraction: f64,
    /// Train/val rule. stratified: per class, the first round(n × --val-fraction) of its n
    /// photos ranked by a hash of their content go to val, at least 1 and at most n−1 (a single
    /// photo trains); adding a photo moves at most one old photo per class. hash: each photo to
    /// val when its content's hash is below --val-fraction; nothing ever moves, but a small
    /// class can get no val photo. Byte-identical photos always share a side.
    #[arg(long, value_enum, default_value_t = SplitArg::Stratified)]
    split: SplitArg,
    /// Seed of the random window positions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the train/val split (separate from --seed, so new windows keep the split).
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// This job's share of the photos, I/N (0-based). Default: from SLURM_ARRAY_TASK_ID and
    /// SLURM_ARRAY_TASK_COUNT when set, else all.
    #[arg(long, value_name = "I/N", value_parser = ballast_cli::parse_shard)]
    shard: Option<JobShard>,
    /// Fail (exit 1, committing nothing) when more inputs than this are bad.
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_MAX_BAD)]
    max_bad: u64,
    /// Worker threads (default: RAYON_NUM_THREADS, else all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Redo every photo, ignoring earlier results.
    #[arg(long)]
    force: bool,
    /// PNG compression of the tiles: fast (fdeflate), none (stored: 0-15 % larger than fast,
    /// fastest to write and to pack), default (zlib 6: 20-25 % smaller than fast), best (zlib 9).
    #[arg(long, default_value = "fast", value_parser = parse_compression)]
    png_compression: PngCompression,
    /// png: write every window as a PNG tile (inspectable, ImageFolder tools read them). none:
    /// write only manifest.jsonl and tiler.json (which records INPUT); the packer then cuts
    /// the windows straight from the photos, with no intermediate pixels on disk.
    #[arg(long, value_enum, default_value_t = TileFilesArg::Png)]
    tile_files: TileFilesArg,
    /// Refuse photos declaring more pixels than this (decompression bombs), e.g. 250M.
    #[arg(long, default_value = "250M", value_parser = parse_pixels)]
    max_pixels: u64,
    /// Benchmark aid: only read, hash and decode this job's photos; write nothing.
    #[arg(long, hide = true)]
    decode_only: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SplitArg {
    // (Described in the flag's help: variant docs would switch clap to its long help layout.)
    Stratified,
    Hash,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum TileFilesArg {
    Png,
    None,
}

impl From<TileFilesArg> for TileFiles {
    fn from(t: TileFilesArg) -> TileFiles {
        match t {
            TileFilesArg::Png => TileFiles::Png,
            TileFilesArg::None => TileFiles::None,
        }
    }
}

impl From<SplitArg> for SplitRule {
    fn from(s: SplitArg) -> SplitRule {
        match s {
            SplitArg::Stratified => SplitRule::Stratified,
            SplitArg::Hash => SplitRule::ContentHash,
        }
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..=1"))
    }
}

fn parse_compression(s: &str) -> Result<PngCompression, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ballast_cli::init_logging(&cli.common);
    let classify: ballast_cli::Classifier = |e| {
        use ballast_format::Classify;
        e.downcast_ref::<ballast_tiler::TilerError>()
            .map(Classify::kind)
            .or_else(|| {
                e.downcast_ref::<ballast_tiler::scan::ScanError>()
                    .map(|_| ballast_format::ErrorKind::Data)
            })
    };
    ballast_cli::run_main_with(classify, || {
        ballast_cli::init_threads(cli.threads)?;
        let shard = ballast_cli::resolve_shard(cli.shard)?;
        let windows = match (cli.per_photo, cli.stride) {
            (Some(n), _) => WindowMode::Random { per_photo: n },
            (None, stride) => WindowMode::Grid {
                stride: stride.unwrap_or(cli.size),
            },
        };
        let cfg = Config {
            size: cli.size,
            windows,
            val_fraction: cli.val_fraction,
            seed: cli.seed,
            split_seed: cli.split_seed,
            split: cli.split.into(),
            png_compression: cli.png_compression,
            tile_files: cli.tile_files.into(),
            max_pixels: cli.max_pixels,
            shard,
            max_bad: cli.max_bad,
            force: cli.force,
            quiet: cli.common.quiet,
            decode_only: cli.decode_only,
            ..Config::new(cli.input, cli.out)
        };
        if let RunOutcome::Decoded(s) = run(&cfg)? {
            // One JSON line for benchmark scripts.
            ballast_cli::println(&format!(
                "{{\"photos\":{},\"failed\":{},\"megapixels\":{:.3},\"file_bytes\":{},\"seconds\":{:.4}}}",
                s.photos, s.failed, s.megapixels, s.file_bytes, s.seconds
            ))?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
