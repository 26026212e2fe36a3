//! Loading a trainer run for scoring, with the model file read exactly once.
//!
//! The trainer's [`TrainedRun::load`] reads model.safetensors itself, so hashing the file as
//! well would read it twice, and a model replaced between the two reads would be reported
//! under the other file's digest. Here the bytes are read once (refusing anything but a
//! regular file, so a FIFO cannot hang the scorer), hashed, decoded with the trainer's own
//! decoder and checked: every weight must be finite, since a NaN or infinite weight makes
//! every probability NaN.

use std::path::Path;

use ballast_trainer::checkpoint::{MODEL_KEY, ModelMeta};
use ballast_trainer::classifier::TrainedRun;
use ballast_trainer::model::{Model, Normalizer};
use ballast_trainer::run_files::{CONFIG_FILE, MODEL_FILE, RunConfig};
use ballast_trainer::tensor_file;
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

/// Loads `DIR/config.json` and `DIR/model.safetensors` (see the module docs).
pub fn load(dir: &Path, device: &Device) -> Result<LoadedRun> {
    let cfg_path = dir.join(CONFIG_FILE);
    match std::fs::metadata(&cfg_path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(ScoreError::file(&cfg_path, "not a regular file")),
        Err(_) => {
            return Err(ScoreError::file(
                &cfg_path,
                "missing: not a trainer run folder",
            ));
        }
    }
    let config = RunConfig::read(&cfg_path)?;
    let model_path = dir.join(MODEL_FILE);
    if !model_path.exists() {
        return Err(ScoreError::file(
            &model_path,
            "missing: the run has not finished an epoch yet (or this is not a run folder)",
        ));
    }
    let bytes = read_regular(&model_path)?;
    let model_digest = ballast_format::digest::of_bytes(&bytes);
    let file = tensor_file::decode(&model_path, &bytes)?;
    drop(bytes);
    let meta_json = file.metadata.get(MODEL_KEY).ok_or_else(|| {
        ScoreError::file(
            &model_path,
            format!("no `{MODEL_KEY}` metadata: not a ballast model"),
        )
    })?;
    let meta: ModelMeta = serde_json::from_str(meta_json).map_err(|e| {
        ScoreError::file(
            &model_path,
            format!("malformed `{MODEL_KEY}` metadata: {e}"),
        )
    })?;
    if meta.model != config.spec.model {
        return Err(ScoreError::file(
            &model_path,
            format!(
                "its architecture ({}) differs from config.json's ({})",
                meta.model.summary(),
                config.spec.model.summary()
            ),
        ));
    }
    for (name, t) in &file.tensors {
        if let Some((i, v)) = t.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            let bad = t.data.iter().filter(|v| !v.is_finite()).count();
            return Err(ScoreError::file(
                &model_path,
                format!(
                    "tensor `{name}` holds {bad} non-finite value(s) (the first, {v}, at index \
                     {i}): the weights are damaged, or training diverged; retrain or restore \
                     the file"
                ),
            ));
        }
    }
    // The trainer's Normalizer::check reports this as a usage error; here it is the file's.
    if !(meta.mean.is_finite() && meta.std.is_finite() && meta.std > 0.0) {
        return Err(ScoreError::file(
            &model_path,
            format!(
                "normalisation mean {} / std {} is unusable (std must be positive)",
                meta.mean, meta.std
            ),
        ));
    }
    let model = Model::from_weights(&config.spec.model, &file.tensors, &model_path, device)?;
    let normalizer = Normalizer {
        mean: meta.mean,
        std: meta.std,
    };
    Ok(LoadedRun {
        run: TrainedRun {
            dir: dir.to_path_buf(),
            config,
            meta,
            model,
            normalizer,
        },
        model_digest,
    })
}
