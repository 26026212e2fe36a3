//! `scorer`: argument parsing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ballast_cli::CommonArgs;
use ballast_scorer::ScoreError;
use ballast_scorer::eval::{EvalOptions, EvalOutcome, Evaluation, eval};
use ballast_scorer::output::Format;
use ballast_scorer::photos::{PhotosOptions, photos};
use ballast_scorer::watch::WatchOptions;
use clap::{Parser, Subcommand};

/// Evaluate a trained run on the cache's val split, or score field photos with it.
#[derive(Parser)]
#[command(name = "scorer", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    common: CommonArgs,
}

/// Options both commands take.
#[derive(clap::Args)]
struct ModelArgs {
    /// Trainer run folder (config.json + model.safetensors).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// cpu, or cuda:N (needs the CUDA build).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// CPU threads [default: RAYON_NUM_THREADS, else all cores].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Accuracy, per-class precision/recall/F1, confusion matrix and per-photo accuracy on the
    /// cache's val split; writes report.json, confusion.svg, confusion-photos.svg and
    /// predictions.csv, and fits the run's calibration and novelty check (RUN/calibration.json).
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        /// Tensor cache folder (index.json + shards) with the same classes, size and
        /// preprocessing as the run's data.
        #[arg(long, value_name = "DIR")]
        cache: PathBuf,
        /// Output folder [default: RUN/eval].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Samples per model call [default: the run's --eval-batch].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        batch: Option<u64>,
        /// Evaluate again even if report.json already describes this model on this cache.
        #[arg(long)]
        force: bool,
    },
    /// Score photos: per photo the predicted class, mean (calibrated) probability per class,
    /// tile votes, agreement, ood_score and flag (ok / unlike-training), and with --class-map
    /// the expected compaction and gradation (D-values, Cu, Cc, envelope). CSV, JSON or JSON
    /// Lines; maps and an HTML report on request.
    Photos {
        #[command(flatten)]
        model: ModelArgs,
        /// Photo files and folders (searched recursively for jpg/jpeg/png/tif/tiff).
        #[arg(value_name = "PHOTO_OR_DIR")]
        inputs: Vec<PathBuf>,
        /// Compaction value per class (TOML or CSV), for the expected compaction.
        #[arg(long, value_name = "FILE")]
        class_map: Option<PathBuf>,
        /// Output file; the format follows its extension (.csv, .json, .jsonl) [default: CSV on
        /// stdout].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Output format, overriding the extension of --out.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Also write every window's probabilities (.csv or .jsonl) to FILE.
        #[arg(long, value_name = "FILE")]
        per_tile: Option<PathBuf>,
        /// Write one map per photo into DIR (NAME.map.png: windows tinted by predicted class,
        /// shaded by confidence, with a legend) and, with sieve curves in the class map, its
        /// expected curve with the class curves and envelope (NAME.curve.svg).
        #[arg(long, value_name = "DIR")]
        maps: Option<PathBuf>,
        /// Write one self-contained HTML report (table, maps, curves, flags; images embedded)
        /// to FILE. Batch mode only.
        #[arg(long, value_name = "FILE", conflicts_with = "watch")]
        html: Option<PathBuf>,
        /// Window side in photo pixels [default: the tile size of the run's data].
        #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u32).range(1..))]
        tile_size: Option<u32>,
        /// Grid step in photo pixels [default: the window side, a non-overlapping grid].
        #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u32).range(1..))]
        stride: Option<u32>,
        /// Refuse photos declaring more pixels than this (decompression bombs), e.g. 250M.
        #[arg(long, default_value = "250M", value_parser = ballast_tiler::config::parse_pixels)]
        max_pixels: u64,
        /// Fail (exit 1, writing nothing) when more photos than this cannot be scored.
        #[arg(long, value_name = "N", default_value_t = 10)]
        max_bad: u64,
        /// Samples per model call.
        #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
        /// Score photos as they appear in DIR (one output line each) until interrupted.
        #[arg(long, value_name = "DIR")]
        watch: Option<PathBuf>,
        /// Watch mode: how often to look at the folder.
        #[arg(long, value_name = "MS", default_value_t = 500, requires = "watch")]
        poll_ms: u64,
        /// Watch mode: a file must keep its size and mtime this long before it is read.
        #[arg(long, value_name = "MS", default_value_t = 1000, requires = "watch")]
        settle_ms: u64,
        /// Watch mode: a photo still incomplete after this long (a JPEG without its end marker,
        /// a PNG without IEND, a TIFF missing strips) is decoded anyway and reported as
        /// truncated.
        #[arg(long, value_name = "MS", default_value_t = 60_000, requires = "watch")]
        give_up_ms: u64,
        /// Watch mode: stop after N photos (scored or bad).
        #[arg(long, value_name = "N", requires = "watch")]
        watch_limit: Option<u64>,
        /// Watch mode: stop after S seconds.
        #[arg(long, value_name = "S", requires = "watch", allow_hyphen_values = true,
              value_parser = parse_seconds)]
        watch_timeout: Option<Duration>,
    },
}

/// Seconds ≥ 0, finite (clap value parser: a bad value is a usage error, exit 2).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("{s}: expected seconds ≥ 0"));
    }
    Duration::try_from_secs_f64(v).map_err(|e| format!("{s}: {e}"))
}

/// The exit status of a failure: the kind of the first ballast error in its chain.
fn classify(e: &(dyn std::error::Error + 'static)) -> Option<ballast_format::ErrorKind> {
    use ballast_format::Classify;
    if let Some(s) = e.downcast_ref::<ScoreError>() {
        return Some(s.kind());
    }
    if let Some(t) = e.downcast_ref::<ballast_model::ModelError>() {
        return Some(t.kind());
    }
    e.downcast_ref::<ballast_packer::preprocess::PreprocessError>()
        .map(Classify::kind)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ballast_cli::init_logging(&cli.common);
    let quiet = cli.common.quiet;
    ballast_cli::run_main_with(classify, || match cli.command {
        Command::Eval {
            model,
            cache,
            out,
            batch,
            force,
        } => {
            ballast_model::runtime::init(model.threads)?;
            let device = ballast_model::device::open(&model.device)?;
            let opts = EvalOptions {
                run: model.run,
                cache,
                out,
                batch: batch.map(|b| b as usize),
                device,
                force,
                quiet,
            };
            // The lock is held until the summary is out.
            let Evaluation { outcome, lock } = eval(&opts)?;
            match outcome {
                EvalOutcome::UpToDate { out, summary } => {
                    tracing::info!(
                        "{}: up to date (same model and cache); --force evaluates again",
                        out.display()
                    );
                    ballast_cli::println(&summary)?;
                }
                EvalOutcome::Written { out, summary, .. } => {
                    ballast_cli::print(&summary)?;
                    ballast_cli::println(&format!("wrote {}", out.display()))?;
                }
            }
            drop(lock);
            Ok(ExitCode::SUCCESS)
        }
        Command::Photos {
            model,
            inputs,
            class_map,
            out,
            format,
            per_tile,
            maps,
            html,
            tile_size,
            stride,
            max_pixels,
            max_bad,
            batch,
            watch,
            poll_ms,
            settle_ms,
            give_up_ms,
            watch_limit,
            watch_timeout,
        } => {
            ballast_model::runtime::init(model.threads)?;
            let device = ballast_model::device::open(&model.device)?;
            let watch = watch.map(|dir| WatchOptions {
                dir,
                poll: Duration::from_millis(poll_ms),
                settle: Duration::from_millis(settle_ms),
                give_up: Duration::from_millis(give_up_ms),
                limit: watch_limit,
                timeout: watch_timeout,
            });
            let opts = PhotosOptions {
                run: model.run,
                inputs,
                class_map,
                out,
                format,
                per_tile,
                tile_size,
                stride,
                max_pixels,
                max_bad,
                batch: batch as usize,
                device,
                quiet,
                watch,
                maps,
                html,
            };
            photos(&opts)?;
            Ok(ExitCode::SUCCESS)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        for bad in ["-1", "nan", "inf", "x", "1e300"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
