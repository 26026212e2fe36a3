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
    /// Write a synthetic cache (oriented stripes) for benchmarks and device checks.
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

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let explicit: BTreeSet<String> = matches
        .ids()
        .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect();
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
