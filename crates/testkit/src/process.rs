//! Running a binary and checking how it ended.

use std::process::{Command, Output};

/// Variables that would change what a stage does if a developer's shell had them set.
const LEAKY_ENV: [&str; 6] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "RUST_LOG",
    "RAYON_NUM_THREADS",
    "BALLAST_LOCK",
];

/// `Command::new(bin)` without the environment variables that would change a stage's work.
pub fn clean(bin: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(bin);
    for v in LEAKY_ENV {
        c.env_remove(v);
    }
    c
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The exit status, or -1 when a signal ended the process.
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Runs `cmd` to the end.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd` and asserts exit status 0, showing both streams otherwise.
pub fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    out
}

/// Runs `cmd`, asserts it exits with `expected` (never a panic or a signal) and that stderr
/// holds every needle; returns stderr.
pub fn fails(cmd: &mut Command, expected: i32, needles: &[&str]) -> String {
    let out = run(cmd);
    let err = stderr(&out);
    assert_eq!(
        code(&out),
        expected,
        "{cmd:?}: expected exit {expected}, got {}:\n{err}",
        out.status
    );
    assert!(
        !err.contains("panicked at") && !err.contains("RUST_BACKTRACE"),
        "{cmd:?} panicked:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{cmd:?}: stderr lacks {n:?}:\n{err}");
    }
    // Each message once: no line of the error repeats an OS error text.
    if let Some(line) = err.lines().find(|l| l.starts_with("error: "))
        && let Some(pos) = line.find("(os error")
    {
        let os = &line[..pos];
        let tail = os.rsplit(": ").next().unwrap_or(os);
        assert_eq!(
            line.matches(tail.trim()).count(),
            1,
            "repeated cause: {line}"
        );
    }
    err
}

/// Runs `cmd` to the end, killing it (and failing the test) after `secs`: a reader blocked on a
/// FIFO shows up as a failure, not as a stuck test run.
pub fn run_within(cmd: &mut Command, secs: u64) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed().as_secs() >= secs {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {secs} s (blocked?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &std::path::Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}
