//! `scorer photos --watch DIR`: scores photos as they appear in a folder, one output line each.
//!
//! The folder is polled (every `--poll-ms`): a portable loop that also works on network and
//! removable filesystems, where change notifications are unreliable. A photo is scored when
//! - its size and modification time have not changed for `--settle-ms`, and
//! - its own structure says it is whole ([`crate::complete`]: a JPEG's end-of-image marker, a
//!   PNG's `IEND` chunk, every strip or tile a TIFF references): a camera or copy tool that
//!   pauses mid-file is not read half-way. A file that stays incomplete for `--give-up-ms` is
//!   handed to the decoder, which reports it as truncated.
//!
//! Each (path, size, mtime) is scored once. On restart the output file is read back (CSV as
//! RFC 4180 records, so names with line breaks or quotes read back exactly) and a photo whose
//! path and content digest are already in it is skipped, so a restart does not duplicate
//! lines. A bad photo is reported (a line with its error) and remembered, never
//! stopping the loop; a photo changed after scoring is scored again.
//!
//! Lines are appended with one `write` and an fsync each: an append-only log cannot be
//! replaced atomically by rename without rewriting it whole for every photo, and a line
//! written in one call and synced is either there completely or (after a crash mid-write) a
//! torn last record, which the restart cuts off before appending.
//!
//! The loop stops on SIGINT or SIGTERM (between photos), after `--watch-limit` lines or after
//! `--watch-timeout` seconds, and exits 0.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ballast_tiler::photo;
use tracing::{debug, info, warn};

use crate::csv_text;
use crate::error::{Result, ScoreError};
use crate::figures::{self, MapFiles, Wanted};
use crate::inputs;
use crate::output::{Bad, Format, PhotoRow};
use crate::photo_scorer::PhotoScorer;
use crate::photos::{PhotosOptions, PhotosReport, Session};

/// Watch-mode settings.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    pub dir: PathBuf,
    pub poll: Duration,
    pub settle: Duration,
    pub give_up: Duration,
    /// Stop after this many lines (scored or bad).
    pub limit: Option<u64>,
    /// Stop after this long.
    pub timeout: Option<Duration>,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to a flag the loop checks, so it stops between photos with the
/// output complete. Idempotent.
pub fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// A file seen but not yet scored.
struct Pending {
    size: u64,
    mtime: Option<SystemTime>,
    /// When the file was first seen with this size and mtime.
    since: Instant,
}

/// The append-only output: a file (fsynced per line) or stdout.
struct AppendLog {
    file: Option<File>,
}

impl AppendLog {
    fn write_line(&mut self, line: &str) -> Result<()> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        match &mut self.file {
            Some(f) => f
                .write_all(&bytes)
                .and_then(|_| f.sync_data())
                .map_err(|e| ScoreError::io("the --out file", e)),
            None => ballast_cli::println(line).map_err(|e| ScoreError::io("stdout", e)),
        }
    }
}

/// Photos already in an existing output file: path → content digests.
type Previous = HashMap<String, HashSet<String>>;

/// What an earlier output holds: the photos already scored, and how many of its bytes are
/// complete records (less than its length when a crash tore the last one).
#[derive(Debug, PartialEq)]
struct Earlier {
    previous: Previous,
    complete: usize,
    /// No header yet (an empty file, or one holding only a torn header).
    needs_header: bool,
}

/// Opens (or creates) the output for appending and reads back what it already holds.
fn open_log(session: &Session, out: Option<&Path>) -> Result<(AppendLog, Previous)> {
    let format = session.format;
    if !format.is_line_based() {
        return Err(ScoreError::usage(
            "--watch appends one line per photo: use a .csv or .jsonl --out (or --format csv|jsonl)",
        ));
    }
    let header = session.layout.csv_header();
    let Some(path) = out else {
        let mut log = AppendLog { file: None };
        if format == Format::Csv {
            log.write_line(&header)?;
        }
        return Ok((log, Previous::new()));
    };
    let existing = match std::fs::symlink_metadata(path) {
        Ok(_) => {
            // Refuses a FIFO or device instead of blocking on it.
            let bytes = crate::run_model::read_regular(path)?;
            Some(String::from_utf8(bytes).map_err(|_| {
                ScoreError::file(path, "is not UTF-8 text: not a log this scorer wrote")
            })?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(ScoreError::io(path, e)),
    };
    let earlier = match &existing {
        Some(text) => read_earlier(path, text, format, &session.layout.csv_columns())?,
        None => Earlier {
            previous: Previous::new(),
            complete: 0,
            needs_header: true,
        },
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| ScoreError::io(path, e))?;
    if let Some(text) = &existing
        && earlier.complete < text.len()
    {
        // A record is appended with one write, so a crash can only tear the last one; cut it
        // off so that the next record does not run into it.
        warn!(
            "{}: the last record is incomplete (a crash mid-write?); its {} byte(s) are removed",
            path.display(),
            text.len() - earlier.complete
        );
        file.set_len(earlier.complete as u64)
            .and_then(|_| file.sync_data())
            .map_err(|e| ScoreError::io(path, e))?;
    }
    let mut log = AppendLog { file: Some(file) };
    if earlier.needs_header && format == Format::Csv {
        log.write_line(&header)?;
    }
    if existing.is_none() {
        // The new file's name must survive a crash too.
        ballast_format::atomic::sync_parent(path)?;
    }
    Ok((log, earlier.previous))
}

/// Photo name and digest of every complete record of an earlier output (see [`Earlier`]).
fn read_earlier(path: &Path, text: &str, format: Format, columns: &[String]) -> Result<Earlier> {
    let mut e = Earlier {
        previous: Previous::new(),
        complete: 0,
        needs_header: false,
    };
    let add = |e: &mut Earlier, photo: String, digest: String| {
        if !digest.is_empty() {
            e.previous.entry(photo).or_default().insert(digest);
        }
    };
    if format != Format::Csv {
        for line in text.split_inclusive('\n') {
            if !line.ends_with('\n') {
                break; // torn
            }
            e.complete += line.len();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && let (Some(p), Some(d)) = (
                    v.get("photo").and_then(|x| x.as_str()),
                    v.get("digest").and_then(|x| x.as_str()),
                )
            {
                add(&mut e, p.to_string(), d.to_string());
            }
        }
        return Ok(e);
    }
    let header = csv_text::join(columns);
    let mut records = csv_text::Records::new(text, false);
    match records.next() {
        None => {
            e.needs_header = true;
            return Ok(e);
        }
        Some(Ok(r)) if r.terminated && r.fields == columns => e.complete = r.end,
        // A header torn by a crash right after the file was made.
        _ if header.starts_with(text) => {
            e.needs_header = true;
            return Ok(e);
        }
        Some(_) => {
            let first = text.lines().next().unwrap_or_default();
            return Err(ScoreError::file(
                path,
                format!(
                    "exists with other columns than this run and class map write (its header: \
                     {first}); choose another --out"
                ),
            ));
        }
    }
    let digest_col = columns.iter().position(|c| c == "digest");
    loop {
        match records.next() {
            None => break,
            Some(Ok(r)) if r.terminated => {
                e.complete = r.end;
                if let (Some(photo), Some(d)) =
                    (r.fields.first(), digest_col.and_then(|i| r.fields.get(i)))
                {
                    add(&mut e, photo.clone(), d.clone());
                }
            }
            // The last record, unterminated or with an open quote: torn by a crash.
            Some(Ok(_)) => break,
            Some(Err(err)) if err.message.starts_with("unclosed quote") => break,
            Some(Err(err)) => {
                return Err(ScoreError::file(
                    path,
                    format!(
                        "line {}: {}: not a log this scorer wrote; choose another --out",
                        err.line, err.message
                    ),
                ));
            }
        }
    }
    Ok(e)
}

/// Runs the watch loop until a signal, the line limit or the timeout.
pub fn watch(session: &Session, o: &PhotosOptions, w: &WatchOptions) -> Result<PhotosReport> {
    if !w.dir.is_dir() {
        return Err(ScoreError::usage(format!(
            "--watch {}: not a folder",
            w.dir.display()
        )));
    }
    if w.poll.is_zero() {
        return Err(ScoreError::usage("--poll-ms must be at least 1"));
    }
    let scorer = session.scorer(o)?;
    let (mut log, previous) = open_log(session, o.out.as_deref())?;
    install_signal_handlers();
    info!(
        "watching {} for photos (poll {} ms, settle {} ms){}",
        w.dir.display(),
        w.poll.as_millis(),
        w.settle.as_millis(),
        if previous.is_empty() {
            String::new()
        } else {
            format!(
                "; {} photo(s) already in the output are skipped",
                previous.len()
            )
        }
    );
    let mut state = Watcher {
        scorer: &scorer,
        session,
        opts: w,
        previous,
        pending: HashMap::new(),
        done: HashMap::new(),
        list_errors: HashSet::new(),
        report: PhotosReport { scored: 0, bad: 0 },
        maps: o.maps.as_deref().map(MapFiles::new).transpose()?,
    };
    let start = Instant::now();
    let stop_reason = loop {
        if STOP.load(Ordering::SeqCst) {
            break "signal";
        }
        if w.timeout.is_some_and(|t| start.elapsed() >= t) {
            break "--watch-timeout";
        }
        if state.poll(&mut log)? {
            break "--watch-limit";
        }
        // Sleep in short slices so a signal or the timeout is noticed quickly.
        let wake = Instant::now() + w.poll;
        while Instant::now() < wake && !STOP.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20).min(w.poll));
        }
    };
    info!(
        "stopped ({stop_reason}): {} photo(s) scored, {} bad",
        state.report.scored, state.report.bad
    );
    Ok(state.report)
}

struct Watcher<'a> {
    scorer: &'a PhotoScorer<'a>,
    session: &'a Session,
    opts: &'a WatchOptions,
    previous: Previous,
    pending: HashMap<String, Pending>,
    /// (size, mtime) of every path handled this session.
    done: HashMap<String, (u64, Option<SystemTime>)>,
    list_errors: HashSet<String>,
    report: PhotosReport,
    /// With --maps: each scored photo's map and curve, written as it is scored.
    maps: Option<MapFiles>,
}

impl Watcher<'_> {
    /// One pass over the folder. Returns true when the line limit is reached.
    fn poll(&mut self, log: &mut AppendLog) -> Result<bool> {
        let mut seen = HashSet::new();
        for entry in inputs::photo_files(&self.opts.dir) {
            let (name, path) = match entry {
                Ok(x) => x,
                Err(e) => {
                    if self.list_errors.insert(e.name.clone()) {
                        warn!("{}: {}", e.name, e.reason);
                    }
                    continue;
                }
            };
            if STOP.load(Ordering::SeqCst) {
                return Ok(false);
            }
            seen.insert(name.clone());
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // gone since the listing
            };
            let key = (meta.len(), meta.modified().ok());
            if self.done.get(&name) == Some(&key) {
                continue;
            }
            let stable_for = match self.pending.get(&name) {
                Some(p) if (p.size, p.mtime) == key => p.since.elapsed(),
                _ => {
                    self.pending.insert(
                        name.clone(),
                        Pending {
                            size: key.0,
                            mtime: key.1,
                            since: Instant::now(),
                        },
                    );
                    continue;
                }
            };
            if stable_for < self.opts.settle {
                continue;
            }
            if let Some(line) = self.handle(&name, &path, key, stable_for)? {
                log.write_line(&line)?;
                let lines = (self.report.scored + self.report.bad) as u64;
                if self.opts.limit.is_some_and(|l| lines >= l) {
                    return Ok(true);
                }
            }
        }
        self.pending.retain(|k, _| seen.contains(k));
        Ok(false)
    }

    /// Scores one settled file. Returns the output line, or None when there is nothing to
    /// write (still incomplete, changed meanwhile, or already in the output).
    fn handle(
        &mut self,
        name: &str,
        path: &Path,
        key: (u64, Option<SystemTime>),
        stable_for: Duration,
    ) -> Result<Option<String>> {
        let layout = &self.session.layout;
        let format = self.session.format;
        let bytes = match photo::read(path) {
            Ok(b) => b,
            Err(e) => {
                return Ok(Some(self.bad(name, key, e.to_string(), None, format)));
            }
        };
        if bytes.len() as u64 != key.0 {
            self.pending.remove(name); // still being written: start settling again
            return Ok(None);
        }
        if !crate::complete::is_complete(&bytes) && stable_for < self.opts.give_up {
            debug!("{name}: waiting for the rest of the file");
            return Ok(None);
        }
        let digest = ballast_format::digest::of_bytes(&bytes);
        if self.previous.get(name).is_some_and(|d| d.contains(&digest)) {
            debug!("{name}: already in the output");
            self.done.insert(name.to_string(), key);
            self.pending.remove(name);
            return Ok(None);
        }
        let row = match self.scorer.score_bytes(&bytes)? {
            Ok(ps) => {
                self.report.scored += 1;
                let v = &ps.scored.verdict;
                info!(
                    "{name}: {} ({:.0} % mean probability, {}/{} tiles agree)",
                    layout.classes[v.predicted],
                    100.0 * v.mean[v.predicted],
                    v.votes[v.predicted],
                    v.n_tiles
                );
                if let Some(m) = &mut self.maps
                    && let Some(f) = figures::draw(
                        layout,
                        name,
                        &ps,
                        self.session.geometry.tile,
                        Wanted {
                            png: true,
                            jpeg: false,
                        },
                    )?
                {
                    m.write(name, &f)?;
                }
                PhotoRow {
                    photo: name.to_string(),
                    outcome: Ok(ps.scored),
                }
            }
            Err(b) => return Ok(Some(self.bad(name, key, b.reason, b.digest, format))),
        };
        self.done.insert(name.to_string(), key);
        self.pending.remove(name);
        Ok(Some(layout.line(format, &row)))
    }

    fn bad(
        &mut self,
        name: &str,
        key: (u64, Option<SystemTime>),
        reason: String,
        digest: Option<String>,
        format: Format,
    ) -> String {
        warn!("skipped {name}: {reason}");
        self.report.bad += 1;
        self.done.insert(name.to_string(), key);
        self.pending.remove(name);
        let row = PhotoRow {
            photo: name.to_string(),
            outcome: Err(Bad { reason, digest }),
        };
        self.session.layout.line(format, &row)
    }
}
