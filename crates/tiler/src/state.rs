//! What the tiler remembers between runs, so unchanged photos are never decoded twice:
//!
//! * the committed output: `tiler.json` (whose `manifest_digest` seals `manifest.jsonl`) and
//!   `.tiler-state.json`, a stat cache mapping each photo's (size, mtime) to its content
//!   digest and, for skipped photos, the reason. It is not a contract file: delete it and the
//!   next run re-hashes the photos instead of trusting their timestamps.
//! * journals `.parts/tiler-journal-<job>.jsonl`: one line per photo finished by a job that has
//!   not been collected yet, so a rerun after a kill (or of a failed job) resumes instead of
//!   starting over. Cleared when a run is committed.
//!
//! Nothing here is trusted blindly: a photo is reused only when its size and mtime match the
//! record (else when its re-hashed content digest does), with its tiles present, and, for
//! journal records written without an fsync, with their tile digests re-checked.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ballast_format::manifest::{self, TileRecord};
use ballast_format::parts::PARTS_DIR;
use ballast_format::tiler_files::{TILER_FORMAT, TILER_SUMMARY_FILE, TilerParams, TilerSummary};
use ballast_format::{FormatError, digest};
use serde::{Deserialize, Serialize};

use crate::scan::FileStat;

pub const STATE_FILE: &str = ".tiler-state.json";
pub const STATE_FORMAT: &str = "ballast-tiler-state/1";
const JOURNAL_PREFIX: &str = "tiler-journal-";

/// A skipped photo's reason, and whether it counts against `--max-bad`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipNote {
    pub reason: String,
    pub bad: bool,
}

/// What is known of one photo file after a run: its stat, digest and whether it was skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoState {
    pub photo: String,
    pub bytes: u64,
    pub mtime_ns: i64,
    /// Content digest; `None` when the file could not be read (never reused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkipNote>,
}

impl PhotoState {
    pub fn stat(&self) -> FileStat {
        FileStat {
            bytes: self.bytes,
            mtime_ns: self.mtime_ns,
        }
    }
}

/// One photo's result: its state and its manifest rows (in window order; empty if skipped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhotoOutcome {
    pub state: PhotoState,
    #[serde(default)]
    pub tiles: Vec<TileRecord>,
}

/// The body of a job's part record (`ballast_format::parts`).
#[derive(Debug, Serialize, Deserialize)]
pub struct PartBody {
    pub outcomes: Vec<PhotoOutcome>,
}

/// `.tiler-state.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StateFile {
    pub format: String,
    /// The manifest this cache belongs to.
    pub manifest_digest: String,
    pub photos: Vec<PhotoState>,
}

/// The digest identifying a set of parameters (journal lines carry it).
pub fn params_digest(params: &TilerParams) -> String {
    let json = serde_json::to_string(params).unwrap_or_default();
    digest::of_bytes(json.as_bytes())
}

/// The committed output of an earlier run, if it is complete and consistent.
pub struct Committed {
    pub summary: TilerSummary,
    pub manifest_bytes: Vec<u8>,
    /// Per photo, its outcome as committed (only when the summary's params are current).
    pub outcomes: HashMap<String, PhotoOutcome>,
}

/// Loads the committed output. `Ok(None)` when there is none or it is incomplete (a run killed
/// between writing manifest.jsonl and tiler.json): then nothing of it is reused.
pub fn load_committed(out: &Path, params: &TilerParams) -> Result<Option<Committed>, FormatError> {
    let summary_path = out.join(TILER_SUMMARY_FILE);
    let text = match ballast_format::regular::read(&summary_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FormatError::io(&summary_path, e)),
    };
    let summary: TilerSummary = match serde_json::from_slice(&text) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "{}: unreadable ({e}); its output will be redone",
                summary_path.display()
            );
            return Ok(None);
        }
    };
    if summary.format != TILER_FORMAT {
        return Ok(None);
    }
    let manifest_path = out.join(manifest::MANIFEST_FILE);
    let manifest_bytes = match ballast_format::regular::read(&manifest_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FormatError::io(&manifest_path, e)),
    };
    if digest::of_bytes(&manifest_bytes) != summary.manifest_digest {
        tracing::info!("manifest.jsonl does not match tiler.json (interrupted run?); redoing");
        return Ok(None);
    }
    let mut outcomes = HashMap::new();
    if summary.params == *params {
        let text = String::from_utf8_lossy(&manifest_bytes);
        let rows = manifest::parse(&manifest_path, &text)?;
        let mut by_photo: HashMap<String, Vec<TileRecord>> = HashMap::new();
        for r in rows {
            by_photo.entry(r.photo.clone()).or_default().push(r);
        }
        let states = load_state_file(out, &summary.manifest_digest);
        match states {
            Some(states) => {
                for s in states {
                    let tiles = by_photo.remove(&s.photo).unwrap_or_default();
                    outcomes.insert(s.photo.clone(), PhotoOutcome { state: s, tiles });
                }
            }
            None => {
                // No stat cache: keep the rows, but force a re-hash (mtime never matches).
                for (photo, tiles) in by_photo {
                    let state = PhotoState {
                        photo: photo.clone(),
                        bytes: u64::MAX,
                        mtime_ns: i64::MIN,
                        digest: tiles.first().map(|t| t.photo_digest.clone()),
                        skipped: None,
                    };
                    outcomes.insert(photo, PhotoOutcome { state, tiles });
                }
            }
        }
    }
    Ok(Some(Committed {
        summary,
        manifest_bytes,
        outcomes,
    }))
}

fn load_state_file(out: &Path, manifest_digest: &str) -> Option<Vec<PhotoState>> {
    let bytes = ballast_format::regular::read(&out.join(STATE_FILE)).ok()?;
    let file: StateFile = serde_json::from_slice(&bytes).ok()?;
    (file.format == STATE_FORMAT && file.manifest_digest == manifest_digest).then_some(file.photos)
}

/// Every photo state in `.tiler-state.json`, whatever manifest or parameters it was written
/// with (the digest pre-pass only needs what each file's content was at its size and mtime).
pub fn recorded_states(out: &Path) -> Vec<PhotoState> {
    let Ok(bytes) = ballast_format::regular::read(&out.join(STATE_FILE)) else {
        return Vec::new();
    };
    match serde_json::from_slice::<StateFile>(&bytes) {
        Ok(file) if file.format == STATE_FORMAT => file.photos,
        _ => Vec::new(),
    }
}

/// The bytes of `.tiler-state.json` for a manifest about to be committed.
pub fn state_file_bytes(manifest_digest: &str, photos: Vec<PhotoState>) -> Vec<u8> {
    let file = StateFile {
        format: STATE_FORMAT.into(),
        manifest_digest: manifest_digest.into(),
        photos,
    };
    let mut bytes = serde_json::to_vec(&file).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[derive(Serialize, Deserialize)]
struct JournalLine {
    params: String,
    outcome: PhotoOutcome,
}

fn journal_dir(out: &Path) -> PathBuf {
    out.join(PARTS_DIR)
}

/// Outcomes recorded in every job's journal under `params_digest` (later lines win; a torn
/// last line from a killed writer is ignored).
pub fn load_journals(out: &Path, params_digest: &str) -> HashMap<String, PhotoOutcome> {
    let mut found = HashMap::new();
    let Ok(entries) = fs::read_dir(journal_dir(out)) else {
        return found;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(JOURNAL_PREFIX) && n.ends_with(".jsonl"))
        })
        .collect();
    paths.sort();
    for p in paths {
        let Ok(text) = ballast_format::regular::read_to_string(&p) else {
            continue;
        };
        for line in text.lines() {
            if let Ok(j) = serde_json::from_str::<JournalLine>(line)
                && j.params == params_digest
            {
                found.insert(j.outcome.state.photo.clone(), j.outcome);
            }
        }
    }
    found
}

/// Appends finished photos to this job's journal.
pub struct Journal {
    file: Mutex<fs::File>,
    path: PathBuf,
    params: String,
}

impl Journal {
    pub fn open(out: &Path, job_tag: &str, params_digest: &str) -> Result<Journal, FormatError> {
        let dir = journal_dir(out);
        fs::create_dir_all(&dir).map_err(|e| FormatError::io(&dir, e))?;
        let path = dir.join(format!("{JOURNAL_PREFIX}{job_tag}.jsonl"));
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| FormatError::io(&path, e))?;
        Ok(Journal {
            file: Mutex::new(file),
            path,
            params: params_digest.to_string(),
        })
    }

    /// Records a photo. The line is written with one call, so a kill leaves at worst one torn
    /// last line, which readers skip.
    pub fn record(&self, outcome: &PhotoOutcome) -> Result<(), FormatError> {
        let line = JournalLine {
            params: self.params.clone(),
            outcome: outcome.clone(),
        };
        let mut bytes = serde_json::to_vec(&line)
            .map_err(|e| FormatError::invalid(&self.path, format!("cannot serialise: {e}")))?;
        bytes.push(b'\n');
        let mut f = self
            .file
            .lock()
            .map_err(|_| FormatError::invalid(&self.path, "journal lock poisoned"))?;
        f.write_all(&bytes)
            .map_err(|e| FormatError::io(&self.path, e))
    }
}

/// Removes every job's journal.
pub fn clear_journals(out: &Path) -> Result<(), FormatError> {
    let dir = journal_dir(out);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(FormatError::io(&dir, e)),
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(JOURNAL_PREFIX) && name.ends_with(".jsonl") {
            match fs::remove_file(e.path()) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(FormatError::io(e.path(), err)),
            }
        }
    }
    let _ = fs::remove_dir(&dir);
    Ok(())
}

/// True when any tiler part or journal is present.
pub fn has_pending(out: &Path) -> bool {
    fs::read_dir(journal_dir(out)).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("tiler-"))
    })
}

/// Every tiler file (tile or temporary) under `out/train` and `out/val`, as `/`-separated paths relative to `out`.
pub fn existing_tiles(out: &Path) -> Result<HashSet<String>, FormatError> {
    let mut found = HashSet::new();
    for split in ["train", "val"] {
        let root = out.join(split);
        if !root.exists() {
            continue;
        }
        for item in walkdir::WalkDir::new(&root).min_depth(1) {
            let e = item.map_err(|e| {
                let p = e.path().unwrap_or(&root).to_path_buf();
                FormatError::invalid(p, format!("cannot list: {e}"))
            })?;
            if e.file_type().is_dir()
                || !crate::commit::is_tiler_file(&e.file_name().to_string_lossy())
            {
                continue;
            }
            if let Ok(rel) = ballast_format::relpath::relative_to(out, e.path()) {
                found.insert(rel);
            } else {
                found.insert(format!("{}", e.path().display()));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_format::Split;

    fn outcome(photo: &str) -> PhotoOutcome {
        PhotoOutcome {
            state: PhotoState {
                photo: photo.into(),
                bytes: 3,
                mtime_ns: 5,
                digest: Some("d".into()),
                skipped: None,
            },
            tiles: vec![TileRecord {
                tile: Some(format!("train/c/{photo}.png")),
                photo: photo.into(),
                class: "c".into(),
                split: Split::Train,
                x: 0,
                y: 0,
                size: 1,
                photo_digest: "d".into(),
                tile_digest: Some("t".into()),
                photo_width: 1,
                photo_height: 1,
            }],
        }
    }

    #[test]
    fn journal_survives_a_torn_line_and_filters_params() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), "j0", "p1").unwrap();
        j.record(&outcome("c/a.jpg")).unwrap();
        j.record(&outcome("c/b.jpg")).unwrap();
        let other = Journal::open(dir.path(), "j1", "p2").unwrap();
        other.record(&outcome("c/z.jpg")).unwrap();
        // A torn line, as a kill mid-write would leave.
        let path = dir.path().join(PARTS_DIR).join("tiler-journal-j0.jsonl");
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"params\":\"p1\",\"outc").unwrap();
        let got = load_journals(dir.path(), "p1");
        let mut keys: Vec<_> = got.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["c/a.jpg", "c/b.jpg"]);
        assert_eq!(got["c/a.jpg"], outcome("c/a.jpg"));
        assert!(has_pending(dir.path()));
        clear_journals(dir.path()).unwrap();
        assert!(!dir.path().join(PARTS_DIR).exists());
    }
}
