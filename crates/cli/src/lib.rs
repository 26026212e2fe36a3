//! What every ballast stage binary shares: logging to stderr through `tracing`, progress bars
//! that appear only on a terminal, the rayon thread count, `--shard I/N` with the Slurm
//! fallback, and the exit-status convention (0 done, 1 failed, 2 usage).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use ballast_format::{Classify, ErrorKind, FormatError, JobShard};
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
        if n == 0 {
            return usage("--threads must be at least 1");
        }
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

/// A usage error raised by a binary itself (a flag combination clap cannot express): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `Err` of a [`UsageError`], for `return usage(...)` in binaries.
pub fn usage<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(message.into()).into())
}

/// Finds a library error of the stage in a cause chain and tells its kind (each binary passes
/// one that knows its own crate's error types; [`FormatError`] and I/O errors are known here).
pub type Classifier = fn(&(dyn std::error::Error + 'static)) -> Option<ErrorKind>;

/// The kind of `e`: the first cause in its chain that a classifier recognises.
pub fn kind_of(e: &anyhow::Error, classify: Classifier) -> ErrorKind {
    for cause in e.chain() {
        if let Some(k) = classify(cause) {
            return k;
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return ErrorKind::Usage;
        }
        if let Some(f) = cause.downcast_ref::<FormatError>() {
            return f.kind();
        }
        if cause.downcast_ref::<clap::Error>().is_some() {
            return ErrorKind::Usage;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return ErrorKind::Io;
        }
    }
    ErrorKind::Data
}

/// True when the error is a write to a closed stdout pipe (`stage ... | head -1`): the reader
/// has what it wanted, so that is success, not failure.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `e` with its causes, each message once: a cause whose text its parent already shows (an
/// I/O error inside "path: error") is not repeated.
pub fn render_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut shown = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || shown.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        shown = text;
    }
    out
}

/// Runs a stage's main body: errors print once as `error: ...` and give the exit status of
/// their kind (2 usage, 1 otherwise); a closed stdout pipe ends quietly with 0.
pub fn run_main(body: impl FnOnce() -> anyhow::Result<ExitCode>) -> ExitCode {
    run_main_with(|_| None, body)
}

/// As [`run_main`], with the stage's own classifier.
pub fn run_main_with(
    classify: Classifier,
    body: impl FnOnce() -> anyhow::Result<ExitCode>,
) -> ExitCode {
    match body() {
        Ok(code) => code,
        Err(e) if is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            ExitCode::from(kind_of(&e, classify).exit_code())
        }
    }
}

/// Writes `text` to stdout, reporting (not panicking on) a closed pipe.
pub fn print(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Writes `text` and a newline to stdout, as [`print`].
pub fn println(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn os_errors_are_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(FormatError::io(PathBuf::from("/x/y"), io));
        let text = render_error(&e);
        assert_eq!(text.matches("not found").count(), 1, "{text}");
        assert!(text.starts_with("/x/y: "), "{text}");
        let e = e.context("reading the cache");
        assert_eq!(render_error(&e).matches("not found").count(), 1);
    }

    #[test]
    fn kinds_become_exit_codes() {
        let none: Classifier = |_| None;
        let usage = anyhow::Error::new(UsageError("bad flag".into())).context("while starting");
        assert_eq!(kind_of(&usage, none).exit_code(), 2);
        let f = anyhow::Error::new(FormatError::Usage("--shard".into()));
        assert_eq!(kind_of(&f, none).exit_code(), 2);
        let data = anyhow::Error::new(FormatError::invalid("/a", "malformed"));
        assert_eq!(kind_of(&data, none), ErrorKind::Data);
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_closed_pipe(&pipe));
        assert!(!is_closed_pipe(&data));
        let custom: Classifier = |c| c.downcast_ref::<std::fmt::Error>().map(|_| ErrorKind::Busy);
        let e = anyhow::Error::new(std::fmt::Error);
        assert_eq!(kind_of(&e, custom), ErrorKind::Busy);
    }
}
