//! The two weight files of a run.
//!
//! `last.safetensors` is the run's single source of truth for resuming: the current weights
//! (plain state-dict names), the best epoch's weights (`best.<name>`), the optimiser state
//! (`optim.<name>.<buffer>`) and the training state (epochs done, best, patience counter and
//! the deterministic per-epoch scores) as JSON in the metadata key `ballast.checkpoint`. One
//! file, written atomically, so a kill can never pair weights with the wrong state. Everything
//! else in the run folder can be rebuilt from it and config.json.
//!
//! `model.safetensors` is the best epoch's weights with PyTorch state-dict names, plus a
//! self-description (architecture, classes, normalisation, epoch, scores) in `ballast.model`.
//!
//! Neither holds timings, so both are byte-identical for equal runs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use ballast_format::atomic::{self, Durability};
use ballast_format::checkpoint_record::CheckpointRecord;

use crate::error::{ModelError, Result};
use crate::spec::ModelSpec;
use crate::tensor_file::{self, HostTensor};

pub const CHECKPOINT_FORMAT: &str = "ballast-checkpoint/1";
pub const MODEL_FORMAT: &str = "ballast-model/1";
pub const CHECKPOINT_KEY: &str = "ballast.checkpoint";
pub const MODEL_KEY: &str = "ballast.model";
const BEST_PREFIX: &str = "best.";
const OPTIM_PREFIX: &str = "optim.";

/// The deterministic results of one epoch (1-based).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochScores {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub lr: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub format: String,
    /// The run identity (config + data) this state belongs to.
    pub identity: String,
    pub epochs_done: usize,
    pub optimizer_steps: u64,
    /// The epoch kept in model.safetensors: lowest val loss so far.
    pub best: Option<EpochScores>,
    /// Epochs since the val loss last improved (for --patience).
    pub epochs_without_improvement: usize,
    pub stopped_early: bool,
    pub history: Vec<EpochScores>,
}

impl TrainState {
    pub fn new(identity: &str) -> TrainState {
        TrainState {
            format: CHECKPOINT_FORMAT.into(),
            identity: identity.into(),
            epochs_done: 0,
            optimizer_steps: 0,
            best: None,
            epochs_without_improvement: 0,
            stopped_early: false,
            history: Vec::new(),
        }
    }

    /// Whether nothing remains to train for a run planned for `epochs`.
    pub fn complete(&self, epochs: usize) -> bool {
        self.stopped_early || self.epochs_done >= epochs
    }
}

pub struct Checkpoint {
    pub state: TrainState,
    pub weights: BTreeMap<String, HostTensor>,
    pub best_weights: BTreeMap<String, HostTensor>,
    pub optimizer: BTreeMap<String, HostTensor>,
}

impl Checkpoint {
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut all = self.weights.clone();
        for (k, v) in &self.best_weights {
            all.insert(format!("{BEST_PREFIX}{k}"), v.clone());
        }
        for (k, v) in &self.optimizer {
            all.insert(k.clone(), v.clone());
        }
        let mut meta = BTreeMap::new();
        meta.insert(CHECKPOINT_KEY.to_string(), json(&self.state));
        write_recorded(path, &tensor_file::encode(&all, &meta))
    }

    /// Reads a checkpoint and checks it belongs to the run `identity`.
    pub fn read(path: &Path, identity: &str) -> Result<Checkpoint> {
        let hint = "; use --force to start the run over";
        let (file, _) = read_recorded(path).map_err(|e| match e {
            ModelError::File { path, message }
            | ModelError::Format(ballast_format::FormatError::Invalid { path, message }) => {
                ModelError::File {
                    path,
                    message: format!("{message}{hint}"),
                }
            }
            other => other,
        })?;
        let state_json = file.metadata.get(CHECKPOINT_KEY).ok_or_else(|| {
            ModelError::file(
                path,
                format!("no `{CHECKPOINT_KEY}` metadata: not a trainer checkpoint{hint}"),
            )
        })?;
        let state: TrainState = serde_json::from_str(state_json)
            .map_err(|e| ModelError::file(path, format!("malformed training state: {e}{hint}")))?;
        if state.format != CHECKPOINT_FORMAT {
            return Err(ModelError::file(
                path,
                format!(
                    "format {:?}, expected {CHECKPOINT_FORMAT:?}{hint}",
                    state.format
                ),
            ));
        }
        if state.identity != identity {
            return Err(ModelError::file(
                path,
                format!("belongs to a different run configuration than config.json{hint}"),
            ));
        }
        let mut weights = BTreeMap::new();
        let mut best_weights = BTreeMap::new();
        let mut optimizer = BTreeMap::new();
        for (k, v) in file.tensors {
            if let Some(name) = k.strip_prefix(BEST_PREFIX) {
                best_weights.insert(name.to_string(), v);
            } else if k.starts_with(OPTIM_PREFIX) {
                optimizer.insert(k, v);
            } else {
                weights.insert(k, v);
            }
        }
        Ok(Checkpoint {
            state,
            weights,
            best_weights,
            optimizer,
        })
    }
}

/// What model.safetensors says about itself (metadata `ballast.model`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub format: String,
    pub model: ModelSpec,
    pub classes: Vec<String>,
    /// Input normalisation: (x/255 − mean)/std.
    pub mean: f64,
    pub std: f64,
    /// The epoch these weights come from, and its scores.
    pub epoch: usize,
    pub val_loss: f64,
    pub val_acc: f64,
}

pub fn write_model(
    path: &Path,
    weights: &BTreeMap<String, HostTensor>,
    meta: &ModelMeta,
) -> Result<()> {
    let mut m = BTreeMap::new();
    m.insert(MODEL_KEY.to_string(), json(meta));
    write_recorded(path, &tensor_file::encode(weights, &m))
}

/// Reads model.safetensors: its weights and self-description.
pub fn read_model(path: &Path) -> Result<(BTreeMap<String, HostTensor>, ModelMeta)> {
    read_model_file(path).map(|m| (m.weights, m.meta))
}

/// model.safetensors as loaded, with the digest of the very bytes that were decoded.
pub struct ModelFile {
    pub weights: BTreeMap<String, HostTensor>,
    pub meta: ModelMeta,
    pub digest: String,
}

/// Reads model.safetensors once: checked against the run's `checkpoints.json`, every weight
/// finite.
pub fn read_model_file(path: &Path) -> Result<ModelFile> {
    if !path.exists() {
        return Err(ModelError::file(
            path,
            "missing: the run has not finished an epoch yet (or this is not a run folder)",
        ));
    }
    let (file, digest) = read_recorded(path)?;
    let meta_json = file.metadata.get(MODEL_KEY).ok_or_else(|| {
        ModelError::file(
            path,
            format!("no `{MODEL_KEY}` metadata: not a ballast model"),
        )
    })?;
    let meta: ModelMeta = serde_json::from_str(meta_json)
        .map_err(|e| ModelError::file(path, format!("malformed `{MODEL_KEY}` metadata: {e}")))?;
    Ok(ModelFile {
        weights: file.tensors,
        meta,
        digest,
    })
}

/// Writes a weight file of a run folder and records its digest in `checkpoints.json`, in the
/// order that keeps the record accepting whatever file a kill leaves on disk.
fn write_recorded(path: &Path, bytes: &[u8]) -> Result<()> {
    let (run_dir, file) = split_path(path)?;
    let digest = ballast_format::digest::of_bytes(bytes);
    CheckpointRecord::begin(run_dir, file, &digest)?;
    atomic::write_bytes(path, bytes, Durability::Fsync)?;
    CheckpointRecord::settle(run_dir, file, &digest)?;
    Ok(())
}

/// Reads a weight file of a run folder once, checks its bytes against `checkpoints.json` and
/// refuses non-finite weights. Returns the file and the digest of its bytes.
fn read_recorded(path: &Path) -> Result<(tensor_file::TensorFile, String)> {
    let (run_dir, file) = split_path(path)?;
    let bytes = read_regular(path)?;
    let digest = CheckpointRecord::verify(run_dir, file, &bytes)?;
    let decoded = tensor_file::decode(path, &bytes)?;
    for (name, t) in &decoded.tensors {
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::file(
                path,
                format!(
                    "tensor `{name}` holds a non-finite value ({}) at element {i}: the weights \
                     are not usable (training diverged, or the file was altered)",
                    t.data[i]
                ),
            ));
        }
    }
    Ok((decoded, digest))
}

fn split_path(path: &Path) -> Result<(&Path, &str)> {
    let file = path.file_name().and_then(|f| f.to_str());
    match (path.parent(), file) {
        (Some(dir), Some(file)) => Ok((
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            },
            file,
        )),
        _ => Err(ModelError::file(path, "not a file in a run folder")),
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Reads a file of a run folder whole, refusing anything but a regular file before opening it
/// (a FIFO named like a weight file would block the read forever).
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    ballast_format::regular::read(path).map_err(|e| ModelError::io(path, e))
}

/// Leaves `checkpoints.json` accepting only the file now on disk at `path`, once that file has
/// been verified: a kill between the two steps of a replacement leaves the record accepting
/// two digests, which an uninterrupted run's record never does.
pub fn settle_record(path: &Path) -> Result<()> {
    let (run_dir, file) = split_path(path)?;
    let Some(rec) = CheckpointRecord::read(run_dir)? else {
        return Ok(());
    };
    if rec.files.get(file).is_some_and(|d| d.len() > 1) {
        let bytes = read_regular(path)?;
        let digest = CheckpointRecord::verify(run_dir, file, &bytes)?;
        CheckpointRecord::settle(run_dir, file, &digest)?;
    }
    Ok(())
}
