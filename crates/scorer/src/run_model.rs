//! Loading a trainer run for scoring, with the model file read exactly once (by the trainer's
//! own loader, which records the digest of the bytes it decoded), and reading small inputs
//! without ever opening a FIFO.

use std::path::Path;

use ballast_model::classifier::TrainedRun;
use candle_core::Device;

use crate::error::{Result, ScoreError};

/// A run ready to score, with the digest of the model bytes it was built from.
pub struct LoadedRun {
    pub run: TrainedRun,
    /// BLAKE3 of model.safetensors, of the very bytes the weights came from.
    pub model_digest: String,
}

/// Reads a small input file whole, refusing non-regular files before opening them (the
/// tiler's reader: stat first, then a non-blocking open).
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    use ballast_tiler::photo::{PhotoError, read};
    read(path).map_err(|e| match e {
        PhotoError::Read(source) => ScoreError::io(path, source),
        other => ScoreError::file(path, other.to_string()),
    })
}

/// Loads `DIR/config.json` and `DIR/model.safetensors` through the trainer's loader, which
/// reads the model once, checks it against the run's `checkpoints.json`, refuses non-finite
/// weights or normalisation, and keeps the digest of the bytes it decoded.
pub fn load(dir: &Path, device: &Device) -> Result<LoadedRun> {
    let run = TrainedRun::load(dir, device)?;
    let model_digest = run.model_digest.clone();
    Ok(LoadedRun { run, model_digest })
}
