//! The run folder: config.json (what was run, on what data, by what), metrics.jsonl (one line
//! per epoch), and the paths of every file the trainer keeps there.

use std::path::{Path, PathBuf};

use ballast_format::atomic::{self, Durability};
use ballast_format::digest::KeyHasher;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::spec::TrainSpec;

pub const RUN_FORMAT: &str = "ballast-run/1";
pub const CONFIG_FILE: &str = "config.json";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const MODEL_FILE: &str = "model.safetensors";
pub const LAST_FILE: &str = "last.safetensors";
pub const CURVES_FILE: &str = "curves.svg";
pub const NOTES_FILE: &str = "notes.md";
/// The one file of a run that is not a pure function of its inputs: who ran it, when, how
/// fast (one JSON line per invocation and per epoch, appended).
pub const LOG_FILE: &str = "log.jsonl";
/// Every file the trainer writes (and `--force` removes); nothing else in the folder is touched.
pub const RUN_FILES: [&str; 8] = [
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    LAST_FILE,
    CURVES_FILE,
    NOTES_FILE,
    LOG_FILE,
    ballast_format::checkpoint_record::CHECKPOINT_RECORD_FILE,
];

/// The data a run was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The cache folder as given on the command line.
    pub cache: String,
    /// BLAKE3 of its index.json.
    pub index_digest: String,
    pub classes: Vec<String>,
    pub size: usize,
    pub mean: f64,
    pub std: f64,
    pub train_samples: u64,
    pub val_samples: u64,
    /// Image bytes uploaded to the device when the cache was loaded (the only image upload).
    pub load_image_bytes: u64,
    /// The packer's preprocessing (index.json `params.luma` / `params.resize`) and the tile
    /// sizes it packed: what a scorer must reproduce on field photos.
    #[serde(default)]
    pub luma: String,
    #[serde(default)]
    pub resize: String,
    #[serde(default)]
    pub tile_sizes: Vec<u32>,
}

/// One line of log.jsonl.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum LogEvent {
    /// A trainer invocation that trained (the first, then every resume).
    Invocation {
        argv: Vec<String>,
        threads: usize,
        device: String,
        trainer_version: String,
        /// `git rev-parse HEAD` of the trainer's source tree, when available.
        git_revision: Option<String>,
        /// Epochs already done when this invocation started (0 for the first).
        from_epoch: usize,
        /// RFC 3339, UTC.
        started: String,
    },
    /// Timings of one epoch (1-based).
    Epoch {
        epoch: usize,
        /// Wall time of the epoch (training and validation).
        seconds: f64,
        /// Training time only, and the training throughput.
        train_seconds: f64,
        samples_per_s: f64,
        /// Image bytes copied host→device during the epoch: 0, the cache is already there.
        h2d_image_bytes: u64,
        /// Other host→device bytes (sample order, jitter factors, dropout masks).
        h2d_other_bytes: u64,
    },
}

/// Appends one line to log.jsonl (a single write, so lines never interleave).
pub fn append_log(path: &Path, event: &LogEvent) -> Result<()> {
    use std::io::Write;
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&line))
        .map_err(|e| ModelError::io(path, e))
}

/// log.jsonl's lines; unreadable lines are skipped (it is a log, not a contract).
pub fn read_log(path: &Path) -> Vec<LogEvent> {
    ballast_format::regular::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// config.json: what was trained, on what data. Deterministic: a resumed run's config equals
/// an uninterrupted one's (invocations and timings are in log.jsonl).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub format: String,
    /// Digest of `spec` and the data's index digest: names the experiment.
    pub identity: String,
    pub spec: TrainSpec,
    pub data: DataRecord,
    /// CPU threads of the first invocation: bitwise reproducibility holds per thread count.
    #[serde(default = "one")]
    pub threads: usize,
}

fn one() -> usize {
    1
}

impl RunConfig {
    pub fn read(path: &Path) -> Result<RunConfig> {
        let bytes = crate::checkpoint::read_regular(path)?;
        let c: RunConfig = serde_json::from_slice(&bytes).map_err(|e| {
            ModelError::file(
                path,
                format!("malformed run config: {e} (use --force to start over)"),
            )
        })?;
        if c.format != RUN_FORMAT {
            return Err(ModelError::file(
                path,
                format!("format {:?}, expected {RUN_FORMAT:?}", c.format),
            ));
        }
        Ok(c)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        Ok(atomic::write_json(path, self)?)
    }
}

/// The identity of an experiment: its spec and its data.
pub fn identity(spec: &TrainSpec, index_digest: &str) -> String {
    let spec_json = serde_json::to_string(spec).unwrap_or_default();
    KeyHasher::new("ballast.trainer.run.v1")
        .str(&spec_json)
        .str(index_digest)
        .finish_hex()
}

/// One line of metrics.jsonl: an epoch's deterministic results (timings are in log.jsonl).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub lr: f64,
}

impl From<&crate::checkpoint::EpochScores> for EpochMetrics {
    fn from(h: &crate::checkpoint::EpochScores) -> Self {
        EpochMetrics {
            epoch: h.epoch,
            train_loss: h.train_loss,
            train_acc: h.train_acc,
            val_loss: h.val_loss,
            val_acc: h.val_acc,
            lr: h.lr,
        }
    }
}

pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text = match ballast_format::regular::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ModelError::io(path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                ModelError::file(path, format!("line {}: malformed metrics: {e}", i + 1))
            })
        })
        .collect()
}

pub fn write_metrics(path: &Path, lines: &[EpochMetrics]) -> Result<()> {
    let mut out = Vec::new();
    for m in lines {
        out.extend_from_slice(serde_json::to_string(m).unwrap_or_default().as_bytes());
        out.push(b'\n');
    }
    write_if_changed(path, &out)
}

/// Writes a derived file of the run folder atomically, unless it already holds `bytes` (a
/// rerun then changes nothing, and a file left stale by a kill is always brought up to date).
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if ballast_format::regular::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    Ok(atomic::write_bytes(path, bytes, Durability::Fsync)?)
}

/// Paths in a run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub dir: PathBuf,
}

impl RunDir {
    pub fn new(dir: &Path) -> RunDir {
        RunDir {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.dir.display().to_string())
    }

    /// Removes the trainer's own files (and its leftover temporaries), nothing else.
    pub fn clear(&self) -> Result<()> {
        for f in RUN_FILES {
            let p = self.path(f);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ModelError::io(p, e)),
            }
        }
        self.remove_temps()
    }

    /// Removes temporaries left by a killed writer.
    pub fn remove_temps(&self) -> Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ModelError::io(&self.dir, e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = RUN_FILES.iter().any(|f| name.starts_with(&format!(".{f}")));
            if ours && atomic::is_temp_name(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

/// `git rev-parse HEAD` in the trainer's source tree; None when git or the tree is absent.
pub fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}
