//! What every ballast stage binary shares: logging to stderr through `tracing`, progress bars
//! that appear only on a terminal, the rayon thread count, `--shard I/N` with the Slurm
//! fallback, and the exit-status convention (0 done, 1 failed, 2 usage).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use ballast_format::JobShard;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Options every stage accepts.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct CommonArgs {
    /// Silence logs and progress bars (errors are still printed).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// More log detail (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(long, short = 'v', action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// Sets up `tracing` to stderr. `RUST_LOG` wins over the flags.
pub fn init_logging(common: &CommonArgs) {
    use tracing_subscriber::EnvFilter;
    let default = if common.quiet {
        "error"
    } else {
        match common.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Sizes rayon's global pool: `--threads`, else `RAYON_NUM_THREADS`, else all cores.
pub fn init_threads(threads: Option<usize>) -> anyhow::Result<usize> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        anyhow::ensure!(n >= 1, "--threads must be at least 1");
        builder = builder.num_threads(n);
    }
    // Ignore "already initialised" (tests calling twice in one process).
    let _ = builder.build_global();
    Ok(rayon::current_num_threads())
}

/// The job's share of the work: `--shard`, else the Slurm array environment, else everything.
pub fn resolve_shard(cli: Option<JobShard>) -> anyhow::Result<JobShard> {
    let s = JobShard::resolve(cli)?;
    ballast_format::atomic::set_temp_tag(&format!("j{}", s.tag()));
    Ok(s)
}

/// Parser for `--shard I/N` (clap value parser).
pub fn parse_shard(s: &str) -> Result<JobShard, String> {
    s.parse::<JobShard>().map_err(|e| e.to_string())
}

/// A progress bar on stderr, drawn only when stderr is a terminal and not `--quiet`.
pub fn progress(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>8} [{bar:32}] {pos}/{len} {msg} ({per_sec}, eta {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs a stage's main body: errors print as `error: ...` with their causes and exit 1.
pub fn run_main(body: impl FnOnce() -> anyhow::Result<ExitCode>) -> ExitCode {
    match body() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
