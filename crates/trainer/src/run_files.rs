//! The run folder: config.json (what was run, on what data, by what), metrics.jsonl (one line
//! per epoch), and the paths of every file the trainer keeps there.

use std::path::{Path, PathBuf};

use ballast_format::atomic::{self, Durability};
use ballast_format::digest::KeyHasher;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::spec::TrainSpec;

pub const RUN_FORMAT: &str = "ballast-run/1";
pub const CONFIG_FILE: &str = "config.json";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const MODEL_FILE: &str = "model.safetensors";
pub const LAST_FILE: &str = "last.safetensors";
pub const CURVES_FILE: &str = "curves.svg";
pub const NOTES_FILE: &str = "notes.md";
/// Every file the trainer writes (and `--force` removes); nothing else in the folder is touched.
pub const RUN_FILES: [&str; 6] = [
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    LAST_FILE,
    CURVES_FILE,
    NOTES_FILE,
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

/// Who ran it, how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub threads: usize,
    pub device: String,
    pub trainer_version: String,
    /// `git rev-parse HEAD` of the trainer's source tree, when available.
    pub git_revision: Option<String>,
    /// Epochs already done when this invocation started (0 for the first).
    pub from_epoch: usize,
}

/// config.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub format: String,
    /// Digest of `spec` and the data's index digest: names the experiment.
    pub identity: String,
    pub spec: TrainSpec,
    pub data: DataRecord,
    /// The first invocation, then every resume.
    pub invocations: Vec<Invocation>,
}

impl RunConfig {
    pub fn read(path: &Path) -> Result<RunConfig> {
        let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
        let c: RunConfig = serde_json::from_slice(&bytes).map_err(|e| {
            TrainError::file(
                path,
                format!("malformed run config: {e} (use --force to start over)"),
            )
        })?;
        if c.format != RUN_FORMAT {
            return Err(TrainError::file(
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

/// One line of metrics.jsonl.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub lr: f64,
    /// Wall time of the epoch (training and validation); null for epochs whose line was
    /// rebuilt from the checkpoint after a kill.
    pub seconds: Option<f64>,
    /// Training time only, and the training throughput.
    pub train_seconds: Option<f64>,
    pub samples_per_s: Option<f64>,
    /// Image bytes copied host→device during the epoch: 0, the cache is already there.
    pub h2d_image_bytes: Option<u64>,
    /// Other host→device bytes (sample order, jitter factors, dropout masks).
    pub h2d_other_bytes: Option<u64>,
}

pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::io(path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                TrainError::file(path, format!("line {}: malformed metrics: {e}", i + 1))
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
    Ok(atomic::write_bytes(path, &out, Durability::Fsync)?)
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
                Err(e) => return Err(TrainError::io(p, e)),
            }
        }
        self.remove_temps()
    }

    /// Removes temporaries left by a killed writer.
    pub fn remove_temps(&self) -> Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(TrainError::io(&self.dir, e)),
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
