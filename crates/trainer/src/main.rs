//! `trainer`: argument parsing only; the work is in the library.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ballast_cli::CommonArgs;
use ballast_trainer::args::TrainArgs;
use ballast_trainer::train::{Outcome, TrainRequest};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Train the texture CNN on a ballast tensor cache (or compare runs: `trainer runs DIR`).
#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    args_conflicts_with_subcommands = true,
    args_override_self = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Compare every run in DIR: key settings, best val accuracy, epoch, time.
    Runs {
        dir: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Train one run per setting over one cache, each an ordinary run folder RUNS/NAME
    /// (rerun: finished runs are up to date, unfinished ones resume); rank with `trainer runs`.
    #[command(
        after_help = "Examples:\n  trainer sweep --cache cache --runs runs/lr --grid lr=0.001,0.003,0.01 \
                      --grid batch=16,32 -- --epochs 20\n  trainer sweep --cache cache --runs \
                      runs/recipes --list recipes.txt --shard 0/4\n\nA --list file holds one \
                      setting per line as KEY=VALUE words (name=NAME names its folder; # starts \
                      a comment). Grid values are separated by commas, or by / for --conv and \
                      --fc; a switch such as augment takes true/false."
    )]
    Sweep {
        /// Tensor cache folder made by packer: every run trains on it.
        #[arg(long, value_name = "DIR")]
        cache: PathBuf,
        /// Folder of the runs: one run folder per setting, named for its flags.
        #[arg(long, value_name = "DIR")]
        runs: PathBuf,
        /// A swept flag and its values, KEY=V1,V2,... (repeatable: every combination is run).
        #[arg(long, value_name = "KEY=VALUES")]
        grid: Vec<String>,
        /// A file of settings, one per line (runs before the --grid combinations).
        #[arg(long, value_name = "FILE")]
        list: Option<PathBuf>,
        /// Train only this job's part of the settings, I/N (0-based; settings k with k % N ==
        /// I) [default: SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT, else all].
        #[arg(long, value_name = "I/N", value_parser = ballast_cli::parse_shard)]
        shard: Option<ballast_format::JobShard>,
        /// CPU threads of every run [default: RAYON_NUM_THREADS, else all cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Trainer flags given to every run (after --), e.g. -- --epochs 20 --augment.
        #[arg(last = true, value_name = "TRAINER FLAGS")]
        base: Vec<String>,
    },
    /// Write a synthetic cache (oriented stripes) for benchmarks and device checks. Its classes
    /// are angles: train on it with --flips false.
    #[command(hide = true)]
    SynthCache {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 32)]
        size: u32,
        #[arg(long, default_value_t = 4)]
        classes: usize,
        #[arg(long, default_value_t = 64)]
        train_per_class: usize,
        #[arg(long, default_value_t = 16)]
        val_per_class: usize,
        #[arg(long, default_value_t = 2)]
        shards: u32,
        #[arg(long, default_value_t = 20.0)]
        noise: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

mod sweep_cli;

/// The ids of the flags given on the command line (what `--resume` compares).
fn explicit_ids(matches: &clap::ArgMatches) -> BTreeSet<String> {
    matches
        .ids()
        .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect()
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let explicit = explicit_ids(&matches);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    ballast_cli::init_logging(&cli.common);
    let classify: ballast_cli::Classifier = |e| {
        use ballast_format::Classify;
        e.downcast_ref::<ballast_trainer::TrainError>()
            .map(Classify::kind)
    };
    ballast_cli::run_main_with(classify, || match cli.command {
        Some(Command::Runs { dir, json }) => {
            let rows = ballast_trainer::runs_table::collect(&dir)?;
            if json {
                ballast_cli::println(&serde_json::to_string_pretty(&rows)?)?;
            } else if rows.is_empty() {
                eprintln!("no runs (folders with config.json) in {}", dir.display());
            } else {
                ballast_cli::print(&ballast_trainer::runs_table::render(&rows))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Sweep {
            cache,
            runs,
            grid,
            list,
            shard,
            threads,
            base,
        }) => sweep_cli::run(&sweep_cli::SweepCli {
            cache,
            runs,
            grid,
            list,
            shard,
            threads,
            base,
            quiet: cli.common.quiet,
        }),
        Some(Command::SynthCache {
            out,
            size,
            classes,
            train_per_class,
            val_per_class,
            shards,
            noise,
            seed,
        }) => {
            let spec = ballast_trainer::synthetic::SynthCache {
                size,
                classes,
                train_per_class,
                val_per_class,
                shards,
                noise,
                seed,
            };
            ballast_trainer::synthetic::write(&out, &spec)
                .with_context(|| format!("writing a synthetic cache to {}", out.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let threads = ballast_trainer::runtime::init(cli.train.threads)?;
            let req = TrainRequest {
                args: cli.train,
                explicit,
                argv: std::env::args().collect(),
                threads,
                quiet: cli.common.quiet,
            };
            match ballast_trainer::train::train(&req)? {
                Outcome::UpToDate { .. } | Outcome::Finished { .. } | Outcome::Paused { .. } => {
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    })
}
