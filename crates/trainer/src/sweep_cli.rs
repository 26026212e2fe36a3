//! `trainer sweep` in the binary: each setting becomes a trainer command line, parsed by the
//! same parser as a hand-typed one, so a sweep run is exactly `trainer --cache C --run RUNS/NAME
//! BASE... SETTING... --resume --restart-if-changed`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ballast_format::JobShard;
use ballast_trainer::sweep::{self, Setting};
use ballast_trainer::train::{Outcome, TrainRequest};
use clap::{CommandFactory, FromArgMatches};

use super::{Cli, explicit_ids};

pub struct SweepCli {
    pub cache: PathBuf,
    pub runs: PathBuf,
    pub grid: Vec<String>,
    pub list: Option<PathBuf>,
    pub shard: Option<JobShard>,
    pub threads: Option<usize>,
    pub base: Vec<String>,
    pub quiet: bool,
}

/// Whether trainer flag `--key` takes no value (`None`: no such flag).
fn is_switch(key: &str) -> Option<bool> {
    Cli::command()
        .get_arguments()
        .find(|a| a.get_long() == Some(key))
        .map(|a| !a.get_action().takes_values())
}

fn settings(cli: &SweepCli) -> anyhow::Result<Vec<Setting>> {
    let mut named = Vec::new();
    if let Some(file) = &cli.list {
        let text = ballast_format::regular::read_to_string(file)
            .with_context(|| format!("reading the settings list {}", file.display()))?;
        let listed = sweep::list(&text, &is_switch)
            .map_err(|e| ballast_cli::UsageError(format!("{}: {e}", file.display())))?;
        named.extend(listed);
    }
    let grid =
        sweep::grid(&cli.grid, &is_switch).map_err(|e| ballast_cli::UsageError(e.to_string()))?;
    named.extend(grid.into_iter().map(|p| (None, p)));
    Ok(sweep::settings(named).map_err(|e| ballast_cli::UsageError(e.to_string()))?)
}

/// The command line of `setting`'s run, as a user would type it.
fn argv(cli: &SweepCli, setting: &Setting) -> Vec<String> {
    let mut a = vec![
        "trainer".to_string(),
        "--cache".into(),
        cli.cache.display().to_string(),
        "--run".into(),
        cli.runs.join(&setting.name).display().to_string(),
    ];
    a.extend(sweep::base_without(&cli.base, setting, &is_switch));
    a.extend(setting.flags());
    if !cli.base.iter().any(|f| f == "--force") {
        a.extend(["--resume".into(), "--restart-if-changed".into()]);
    }
    if cli.quiet {
        a.push("--quiet".into());
    }
    a
}

/// Every setting's command line parsed up front: a typo fails the sweep before any training.
fn requests(
    cli: &SweepCli,
    settings: &[Setting],
    threads: usize,
) -> anyhow::Result<Vec<TrainRequest>> {
    for flag in &cli.base {
        let key = flag.trim_start_matches("--");
        let key = key.split('=').next().unwrap_or(key);
        if ["cache", "run", "threads"].contains(&key) {
            return ballast_cli::usage(format!(
                "--{key} cannot be a base flag of a sweep (give it to `trainer sweep` itself)"
            ));
        }
    }
    settings
        .iter()
        .map(|s| {
            let argv = argv(cli, s);
            let matches = Cli::command().try_get_matches_from(&argv).map_err(|e| {
                ballast_cli::UsageError(format!("setting {}: {}", s.name, e.render()))
            })?;
            let parsed = Cli::from_arg_matches(&matches)
                .map_err(|e| ballast_cli::UsageError(format!("setting {}: {e}", s.name)))?;
            if parsed.command.is_some() {
                return ballast_cli::usage(format!("setting {}: not a training run", s.name));
            }
            Ok(TrainRequest {
                args: parsed.train,
                explicit: explicit_ids(&matches),
                argv,
                threads,
                quiet: cli.quiet,
            })
        })
        .collect()
}

pub fn run(cli: &SweepCli) -> anyhow::Result<ExitCode> {
    let threads = ballast_trainer::runtime::init(cli.threads)?;
    let shard = ballast_cli::resolve_shard(cli.shard)?;
    let settings = settings(cli)?;
    let requests = requests(cli, &settings, threads)?;
    sweep::record(&cli.runs, &cli.base, &settings)?;
    let owned = sweep::owned(settings.len(), shard);
    tracing::info!(
        "sweep {}: {} settings, job {shard} trains {}",
        cli.runs.display(),
        settings.len(),
        owned.len()
    );
    let mut failed = Vec::new();
    for (n, &k) in owned.iter().enumerate() {
        let name = &settings[k].name;
        tracing::info!("run {}/{} of this job: {name}", n + 1, owned.len());
        match ballast_trainer::train::train(&requests[k]) {
            Ok(Outcome::UpToDate { .. } | Outcome::Finished { .. } | Outcome::Paused { .. }) => {}
            Err(e) => {
                let e = anyhow::Error::from(e);
                tracing::error!("run {name}: {}", ballast_cli::render_error(&e));
                failed.push(name.clone());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} runs of job {shard} did not finish: {}",
            failed.len(),
            owned.len(),
            failed.join(", ")
        );
    }
    tracing::info!(
        "sweep job {shard} done; compare with: trainer runs {}",
        cli.runs.display()
    );
    Ok(ExitCode::SUCCESS)
}
