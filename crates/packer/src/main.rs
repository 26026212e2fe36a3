//! `packer`: tiles → safetensors tensor cache. `packer verify DIR` checks a cache.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ballast_cli::CommonArgs;
use ballast_format::JobShard;
use ballast_packer::{Finish, PackOptions, Settings, pack};
use clap::{Parser, Subcommand};

/// Turn the tiler's tiles into a reproducible tensor cache: BT.601 luma, antialiased
/// downsample, seeded brightness/contrast jitter, safetensors shards + index.json.
#[derive(Parser, Debug)]
#[command(
    name = "packer",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    pack: PackArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Re-hash every shard against index.json; name any missing, truncated or altered one.
    Verify {
        /// The cache folder (holding index.json).
        dir: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct PackArgs {
    /// The tiler's output folder (holding manifest.jsonl).
    #[arg(long, required = true)]
    tiles: Option<PathBuf>,
    /// The cache folder to create or update.
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    /// Where the photos of a `tiler --tile-files none` manifest are, when they moved since
    /// tiling (default: the input folder tiler.json records). Digests are checked either way.
    #[arg(long, value_name = "DIR")]
    photos: Option<PathBuf>,
    /// Sample side in pixels (at least 8).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(8..=4096))]
    size: u32,
    /// Brightness/contrast jitter strength j: factors uniform in [1-j, 1+j]; 0 disables.
    #[arg(long, default_value_t = 0.25, value_parser = parse_jitter)]
    jitter: f64,
    /// Jittered copies stored per train tile (val tiles: always one, unjittered).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    copies: u32,
    /// Shards per split (default: about 50 000 samples or 256 MiB of images per shard).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=ballast_packer::pack::MAX_SHARDS as i64))]
    shards: Option<u32>,
    /// Seed of the jitter draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Build only this job's shards (0-based I of N); default from SLURM_ARRAY_TASK_* or all.
    #[arg(long, value_parser = ballast_cli::parse_shard)]
    shard: Option<JobShard>,
    /// Worker threads (default: RAYON_NUM_THREADS, else all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Rebuild every shard even if up to date.
    #[arg(long)]
    force: bool,
    /// Skip up to N missing/corrupt/changed inputs (tiles, or photos of window references;
    /// listed in packer.json) instead of failing.
    #[arg(long, default_value_t = 0)]
    max_bad: u64,
}

fn parse_jitter(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{v} is outside [0, 1]"));
    }
    Ok(v)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ballast_cli::init_logging(&cli.common);
    let classify: ballast_cli::Classifier = |e| {
        use ballast_format::Classify;
        e.downcast_ref::<ballast_packer::PackError>()
            .map(Classify::kind)
    };
    ballast_cli::run_main_with(classify, || match cli.command {
        Some(Command::Verify { dir }) => {
            ballast_cli::init_threads(None)?;
            let r = ballast_packer::verify::verify(&dir)?;
            for p in &r.problems {
                ballast_cli::println(p)?;
            }
            if r.ok() {
                ballast_cli::println(&format!("ok: {} shards, {} samples", r.shards, r.samples))?;
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "error: {} problem(s) in {}, {} of {} shards do not match index.json; rerun \
                     the packer to rebuild (--force if files were altered without a change of \
                     mtime)",
                    r.problems.len(),
                    dir.display(),
                    r.bad_shards,
                    r.shards
                );
                Ok(ExitCode::from(1))
            }
        }
        None => run_pack(cli.pack, &cli.common),
    })
}

fn run_pack(a: PackArgs, common: &CommonArgs) -> anyhow::Result<ExitCode> {
    let (Some(tiles), Some(out)) = (a.tiles, a.out) else {
        anyhow::bail!("--tiles and --out are required");
    };
    let threads = ballast_cli::init_threads(a.threads)?;
    let job = ballast_cli::resolve_shard(a.shard)?;
    let opts = PackOptions {
        tiles,
        out,
        settings: Settings {
            size: a.size,
            jitter: a.jitter,
            copies: a.copies,
            seed: a.seed,
            shards: a.shards,
        },
        photos: a.photos,
        job,
        force: a.force,
        max_bad: a.max_bad,
        quiet: common.quiet,
    };
    let r = if job.is_whole() {
        pack(&opts)?
    } else {
        pack(&opts).with_context(|| format!("packer job {job}"))?
    };
    let rate = r.tiles_decoded as f64 / r.seconds.max(1e-9);
    for f in &r.stale_removed {
        tracing::info!("removed stale {f}");
    }
    match &r.finish {
        Finish::Unchanged if r.shards_written == 0 => tracing::info!(
            "up to date: {} shards unchanged, nothing written ({:.2} s)",
            r.shards_unchanged,
            r.seconds
        ),
        Finish::Waiting(missing) => tracing::info!(
            "job {job}: {} shards written, {} unchanged, {} tiles in {:.1} s ({rate:.0} tiles/s, \
             {threads} threads); index.json will be written by the last job: waiting for jobs {missing:?}",
            r.shards_written,
            r.shards_unchanged,
            r.tiles_decoded,
            r.seconds
        ),
        _ => tracing::info!(
            "{} shards written, {} unchanged, {} tiles in {:.1} s ({rate:.0} tiles/s, {threads} \
             threads){}; cache in {}",
            r.shards_written,
            r.shards_unchanged,
            r.tiles_decoded,
            r.seconds,
            if r.bad_tiles > 0 {
                format!(", {} bad tiles skipped (see packer.json)", r.bad_tiles)
            } else {
                String::new()
            },
            opts.out.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
