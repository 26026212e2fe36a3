//! A trained run, loaded for scoring: the scorer's entry point.
//!
//! ```no_run
//! # fn main() -> Result<(), ballast_model::ModelError> {
//! use ballast_model::classifier::TrainedRun;
//! use ballast_model::data::{CacheInfo, Transfers};
//! let device = candle_core::Device::Cpu;
//! let run = TrainedRun::load("runs/demo".as_ref(), &device)?;
//! let cache = CacheInfo::open("cache".as_ref())?;
//! let val = cache.load_split(ballast_format::Split::Val, &device, &Transfers::default())?;
//! let (images, _labels) = val.range(0, 16.min(val.len()))?;
//! let probs = run.probabilities(&images)?; // [16, classes], rows sum to 1
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::checkpoint::{self, ModelMeta};
use crate::error::{ModelError, Result};
use crate::model::{Logits, Model, Normalizer};
use crate::run_files::{CONFIG_FILE, MODEL_FILE, RunConfig};

/// A run's config and best model, on a device.
pub struct TrainedRun {
    pub dir: PathBuf,
    pub config: RunConfig,
    pub meta: ModelMeta,
    pub model: Model,
    pub normalizer: Normalizer,
    /// BLAKE3 of model.safetensors as it was read (and checked against checkpoints.json): what
    /// reports record, with no second read that could race a trainer writing the file.
    pub model_digest: String,
}

impl TrainedRun {
    /// Loads `DIR/config.json` and `DIR/model.safetensors`, checking every tensor against the
    /// architecture in the config. Errors name the file and the problem (missing file, corrupt
    /// safetensors, missing tensor, wrong shape, config and model disagreeing).
    pub fn load(dir: &Path, device: &Device) -> Result<TrainedRun> {
        let cfg_path = dir.join(CONFIG_FILE);
        if !cfg_path.is_file() {
            return Err(ModelError::file(
                &cfg_path,
                "missing: not a trainer run folder",
            ));
        }
        let config = RunConfig::read(&cfg_path)?;
        let model_path = dir.join(MODEL_FILE);
        let checkpoint::ModelFile {
            weights,
            meta,
            digest: model_digest,
        } = checkpoint::read_model_file(&model_path)?;
        if meta.model != config.spec.model {
            return Err(ModelError::file(
                &model_path,
                format!(
                    "its architecture ({}) differs from config.json's ({})",
                    meta.model.summary(),
                    config.spec.model.summary()
                ),
            ));
        }
        let model = Model::from_weights(&config.spec.model, &weights, &model_path, device)?;
        let normalizer = Normalizer {
            mean: meta.mean,
            std: meta.std,
        };
        // The normalisation comes from the model file: unusable values are that file's fault.
        normalizer
            .check()
            .map_err(|e| ModelError::file(&model_path, e.to_string()))?;
        Ok(TrainedRun {
            dir: dir.to_path_buf(),
            config,
            meta,
            model,
            normalizer,
            model_digest,
        })
    }

    /// Class names in label order.
    pub fn classes(&self) -> &[String] {
        &self.meta.classes
    }

    /// Logits of a u8 batch [B,1,S,S] (on the model's device), normalised exactly as in
    /// training.
    pub fn logits(&self, images: &Tensor) -> Result<Logits> {
        let x = self.normalizer.apply(images)?;
        self.model.forward_logits(&x)
    }

    /// Feature groups (see [`Model::forward_features`]) and logits of a u8 batch, normalised
    /// as in training.
    pub fn features(&self, images: &Tensor) -> Result<(Vec<Tensor>, Logits)> {
        let x = self.normalizer.apply(images)?;
        self.model.forward_features(&x)
    }

    /// Class probabilities [B, classes] (softmax of the logits).
    pub fn probabilities(&self, images: &Tensor) -> Result<Tensor> {
        self.logits(images)?.probabilities()
    }
}
