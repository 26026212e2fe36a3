//! One writer per output folder.
//!
//! Every stage holds a lock on its output folder for as long as it may write there. The lock is
//! a kernel lock (Linux open-file-description byte-range locks, `F_OFD_SETLK`), so a process
//! killed by any signal releases it: a SIGKILLed holder never blocks the next run. Jobs of one
//! *build* (the same stage, inputs, parameters and job count: `--shard I/N` jobs of one
//! generation) share it; a run of another generation is refused at once with the holder named.
//!
//! The lock file `DIR/.ballast.lock` holds the first holder's record (JSON) and three kinds of
//! byte-range locks, none of which depends on the file's contents:
//! - byte 0, the *mutex*: taken exclusively for the few microseconds in which a job decides
//!   whether it may join, so that deciding and recording are one step;
//! - byte 1, the *build* lock: shared by every running job of the build that holds the folder;
//!   a job that can take it exclusively knows nobody else is running and writes its record;
//! - byte 2 + I, the *job* lock of job I: two copies of the same job never run at once.
//!
//! The lock file is never removed (removing a lock file races with a process that has just
//! opened it), so it stays in the folder as a small hidden file; it is not an output.
//!
//! Network file systems: NFS (v3 through NLM, v4 natively) and Lustre mounted with `-o flock`
//! carry these locks between machines. Lustre's `localflock` makes them per machine only, and a
//! file system without lock support fails the lock with a clear error; `BALLAST_LOCK=off` then
//! turns locking off (at the user's own risk: nothing stops two writers any more).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};
use crate::job::JobShard;

/// The lock file's name inside an output folder.
pub const LOCK_FILE: &str = ".ballast.lock";
/// Environment variable that turns locking off (`off`) on file systems without lock support.
pub const LOCK_ENV: &str = "BALLAST_LOCK";

const MUTEX: u64 = 0;
const BUILD: u64 = 1;
const FIRST_JOB: u64 = 2;
/// The finishing section's byte, beyond any job slot.
const FINISH: u64 = 1 << 40;
/// How long a job waits for another job's decision (microseconds in practice).
const MUTEX_PATIENCE: Duration = Duration::from_secs(30);

/// Who holds an output folder: the first job of the build that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub stage: String,
    /// Digest of the build (stage inputs, parameters, job count).
    pub generation: String,
    /// `I/N` of the recording job.
    pub job: String,
    pub pid: u32,
    pub host: String,
    /// Start time, UTC, RFC 3339.
    pub started: String,
    pub command: Vec<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {} on {}, started {}, job {}): {}",
            self.stage,
            self.pid,
            self.host,
            self.started,
            self.job,
            self.command.join(" ")
        )
    }
}

/// What a job asks for.
#[derive(Clone, Debug)]
pub struct LockRequest<'a> {
    pub stage: &'a str,
    /// Identifies the build: equal for every job that may share the folder. Include the job
    /// count: `0/2` and `0/4` are different builds.
    pub generation: &'a str,
    pub job: JobShard,
}

/// A held lock; dropping it (or the process ending in any way) releases it.
#[derive(Debug)]
pub struct OutputLock {
    _file: Option<File>,
    path: PathBuf,
}

impl OutputLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for, then holds, the build's *finishing section*: the jobs of a sharded build take
    /// turns recording their part and collecting the parts, so exactly one of them (the last
    /// to record) finds the set complete and commits the stage's summary files; two jobs never
    /// commit at once.
    pub fn finishing(&self) -> Result<FinishingSection<'_>> {
        let Some(file) = &self._file else {
            return Ok(FinishingSection { file: None });
        };
        loop {
            if range_lock(file, FINISH, Mode::Exclusive).map_err(|e| lock_error(&self.path, e))? {
                return Ok(FinishingSection { file: Some(file) });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Held while a job finishes; dropping it lets the next job in.
#[derive(Debug)]
pub struct FinishingSection<'a> {
    file: Option<&'a File>,
}

impl Drop for FinishingSection<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.file {
            let _ = range_unlock(f, FINISH);
        }
    }
}

/// Locks output folder `dir` (created if missing) for job `req`.
pub fn acquire(dir: &Path, req: &LockRequest) -> Result<OutputLock> {
    std::fs::create_dir_all(dir).map_err(|e| FormatError::io(dir, e))?;
    acquire_file(&dir.join(LOCK_FILE), dir, req)
}

/// Locks the single output file `file` (for stages whose output is one file among others in
/// a folder), through `.NAME.ballast.lock` beside it.
pub fn acquire_for_file(file: &Path, req: &LockRequest) -> Result<OutputLock> {
    let name = file
        .file_name()
        .ok_or_else(|| FormatError::invalid(file, "output has no file name"))?;
    let lock = file.with_file_name(format!(".{}{LOCK_FILE}", name.to_string_lossy()));
    acquire_file(&lock, file, req)
}

/// True when locking is turned off by `BALLAST_LOCK=off`.
fn disabled() -> bool {
    std::env::var(LOCK_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("off") || v == "0")
}

fn acquire_file(lock_path: &Path, target: &Path, req: &LockRequest) -> Result<OutputLock> {
    if disabled() {
        return Ok(OutputLock {
            _file: None,
            path: lock_path.to_path_buf(),
        });
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path)
        .map_err(|e| FormatError::io(lock_path, e))?;
    let sys = |e: std::io::Error| lock_error(lock_path, e);

    let deadline = Instant::now() + MUTEX_PATIENCE;
    while !range_lock(&file, MUTEX, Mode::Exclusive).map_err(sys)? {
        if Instant::now() > deadline {
            return Err(FormatError::Busy {
                path: target.to_path_buf(),
                message: format!(
                    "could not take {} within {} s (another job is stuck deciding)",
                    lock_path.display(),
                    MUTEX_PATIENCE.as_secs()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let decided = decide(&mut file, lock_path, target, req);
    // The mutex goes whatever was decided; on error the file (and every lock) is dropped too.
    let _ = range_unlock(&file, MUTEX);
    decided?;
    Ok(OutputLock {
        _file: Some(file),
        path: lock_path.to_path_buf(),
    })
}

/// Under the mutex: join the running build, start a new one, or refuse.
fn decide(file: &mut File, lock_path: &Path, target: &Path, req: &LockRequest) -> Result<()> {
    let sys = |e: std::io::Error| lock_error(lock_path, e);
    if range_lock(file, BUILD, Mode::Exclusive).map_err(sys)? {
        // Nobody runs: this job starts the build and records itself.
        write_record(file, &holder(req)).map_err(|e| FormatError::io(lock_path, e))?;
        if !range_lock(file, BUILD, Mode::Shared).map_err(sys)? {
            return Err(FormatError::invalid(
                lock_path,
                "cannot share the build lock",
            ));
        }
    } else {
        let current = read_record(file);
        match current {
            Some(h) if h.generation == req.generation && h.stage == req.stage => {
                if !range_lock(file, BUILD, Mode::Shared).map_err(sys)? {
                    return Err(FormatError::invalid(
                        lock_path,
                        "cannot share the build lock",
                    ));
                }
            }
            other => {
                let who = other
                    .map(|h| format!("held by {h}"))
                    .unwrap_or_else(|| "held by a process whose record is unreadable".into());
                return Err(FormatError::Busy {
                    path: target.to_path_buf(),
                    message: format!(
                        "another {} run with other inputs or parameters is writing here: {who}; \
                         wait for it to finish, or choose another output",
                        req.stage
                    ),
                });
            }
        }
    }
    let slot = FIRST_JOB
        .checked_add(req.job.index as u64)
        .ok_or_else(|| FormatError::Usage("job index too large".into()))?;
    if !range_lock(file, slot, Mode::Exclusive).map_err(sys)? {
        let who = read_record(file)
            .map(|h| format!(" (build {h})"))
            .unwrap_or_default();
        return Err(FormatError::Busy {
            path: target.to_path_buf(),
            message: format!(
                "job {} of this {} build is already running{who}",
                req.job, req.stage
            ),
        });
    }
    Ok(())
}

fn holder(req: &LockRequest) -> Holder {
    Holder {
        stage: req.stage.to_string(),
        generation: req.generation.to_string(),
        job: req.job.to_string(),
        pid: std::process::id(),
        host: hostname(),
        started: rfc3339(SystemTime::now()),
        command: std::env::args().collect(),
    }
}

fn write_record(file: &mut File, h: &Holder) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(h).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&bytes)?;
    file.flush()
}

fn read_record(file: &mut File) -> Option<Holder> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(1 << 20).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn lock_error(path: &Path, e: std::io::Error) -> FormatError {
    FormatError::invalid(
        path,
        format!(
            "cannot lock the output ({e}); on a file system without lock support (Lustre \
             without -o flock, some FUSE mounts) set {LOCK_ENV}=off and make sure no two \
             runs share an output folder"
        ),
    )
}

#[derive(Clone, Copy)]
enum Mode {
    Shared,
    Exclusive,
}

/// Tries to lock one byte; `Ok(false)` when another holder conflicts.
fn range_lock(file: &File, offset: u64, mode: Mode) -> std::io::Result<bool> {
    let kind = match mode {
        Mode::Shared => libc::F_RDLCK,
        Mode::Exclusive => libc::F_WRLCK,
    };
    set_lock(file, offset, kind as libc::c_short)
}

fn range_unlock(file: &File, offset: u64) -> std::io::Result<bool> {
    set_lock(file, offset, libc::F_UNLCK as libc::c_short)
}

fn set_lock(file: &File, offset: u64, kind: libc::c_short) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let start = libc::off_t::try_from(offset)
        .map_err(|_| std::io::Error::other("lock offset out of range"))?;
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start;
    fl.l_len = 1;
    #[cfg(target_os = "linux")]
    let cmd = libc::F_OFD_SETLK;
    // Elsewhere: process-associated locks, which behave the same for one descriptor per process.
    #[cfg(not(target_os = "linux"))]
    let cmd = libc::F_SETLK;
    // SAFETY: fcntl on a valid descriptor with a pointer to a live, initialised flock struct.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl as *mut libc::flock) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(generation: &'a str, i: usize, n: usize) -> LockRequest<'a> {
        LockRequest {
            stage: "tiler",
            generation,
            job: JobShard::new(i, n).unwrap(),
        }
    }

    #[test]
    fn other_generation_is_refused_same_build_shares() {
        let dir = tempfile::tempdir().unwrap();
        let a = acquire(dir.path(), &req("g1", 0, 2)).unwrap();
        // Another job of the same build joins.
        let b = acquire(dir.path(), &req("g1", 1, 2)).unwrap();
        // The same job twice, or another build, is refused and names the holder.
        let e = acquire(dir.path(), &req("g1", 1, 2))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("job 1/2") && e.contains("already running"),
            "{e}"
        );
        let e = acquire(dir.path(), &req("g2", 0, 1)).unwrap_err();
        assert!(matches!(e, FormatError::Busy { .. }));
        let e = e.to_string();
        assert!(
            e.contains(&format!("pid {}", std::process::id())) && e.contains("started"),
            "{e}"
        );
        drop(a);
        // One job of the build still runs: the folder is still the build's.
        assert!(acquire(dir.path(), &req("g2", 0, 1)).is_err());
        drop(b);
        // Everyone left: a new build takes the folder and records itself.
        let c = acquire(dir.path(), &req("g2", 0, 1)).unwrap();
        let e = acquire(dir.path(), &req("g1", 0, 2))
            .unwrap_err()
            .to_string();
        assert!(e.contains("job 0/1"), "{e}");
        drop(c);
    }

    #[test]
    fn lock_for_a_file_sits_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("scores.csv");
        let l = acquire_for_file(&out, &req("g", 0, 1)).unwrap();
        assert_eq!(l.path(), dir.path().join(".scores.csv.ballast.lock"));
        assert!(acquire_for_file(&out, &req("h", 0, 1)).is_err());
        // Another file in the same folder is independent.
        let _m = acquire_for_file(&dir.path().join("other.csv"), &req("h", 0, 1)).unwrap();
    }

    #[test]
    fn unreadable_record_still_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let _a = acquire(dir.path(), &req("g", 0, 1)).unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), b"garbage").unwrap();
        let e = acquire(dir.path(), &req("g", 0, 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unreadable"), "{e}");
    }

    #[test]
    fn dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_211_000);
        assert_eq!(rfc3339(t), "2026-12-02T11:30:00Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
