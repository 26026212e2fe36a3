//! Stopping, resuming and killing a running stage from a test, to catch it holding its lock
//! or in the middle of a write.

use std::path::Path;
use std::time::{Duration, Instant};

/// Sends `sig` (`-STOP`, `-CONT`, `-KILL`, ...) to `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Waits until `pid` is recorded as the holder in the lock file `lock` (an output folder's
/// `.ballast.lock`, or a file output's `.NAME.ballast.lock`).
pub fn wait_for_holder(lock: &Path, pid: u32) {
    let t = Instant::now();
    let needle = format!("\"pid\":{pid},");
    loop {
        let rec = std::fs::read_to_string(lock).unwrap_or_default();
        if rec.contains(&needle) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{pid} never took the lock {}",
            lock.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until every thread of `pid` is stopped (a signal is delivered asynchronously).
pub fn wait_stopped(pid: u32) {
    let t = Instant::now();
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let all = tasks.flatten().all(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // pid (comm) STATE ...; comm may hold spaces, the state follows the last ')'.
            stat.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                == Some("T")
        });
        if all {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{pid} did not stop");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Stops `pid` and waits until it is stopped.
pub fn pause(pid: u32) {
    signal(pid, "-STOP");
    wait_stopped(pid);
}
