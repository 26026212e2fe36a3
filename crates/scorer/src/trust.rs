//! `RUN/calibration.json`: how far to trust the run's answers, fitted by `scorer eval` on the
//! val split and used by `scorer photos`: the temperature that calibrates its probabilities
//! ([`crate::calibration`]) and the feature statistics that flag photos unlike its training
//! data ([`crate::novelty`]).
//!
//! The file names the model it was fitted for (the digest of model.safetensors): a retrained
//! model makes it stale, and `scorer photos` then ignores it with a warning rather than apply
//! another model's calibration. It is written atomically, so a concurrent reader sees the old
//! file or the new one; two evaluations of the same model write equivalent files.

use std::path::{Path, PathBuf};

use ballast_format::atomic;
use serde::{Deserialize, Serialize};

use crate::calibration::Temperature;
use crate::error::{Result, ScoreError};
use crate::novelty::Novelty;
use crate::run_model::read_regular;

pub const TRUST_FILE: &str = "calibration.json";
pub const TRUST_FORMAT: &str = "ballast-calibration/1";

/// The file's contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trust {
    pub format: String,
    /// BLAKE3 of the model.safetensors this was fitted for.
    pub model_digest: String,
    /// The cache (index.json digest) whose val split it was fitted on.
    pub cache_index_digest: String,
    pub calibration: Temperature,
    /// `None` when the statistics could not be fitted; `novelty_note` says why.
    pub novelty: Option<Novelty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub novelty_note: Option<String>,
}

/// Where a run keeps it.
pub fn path(run: &Path) -> PathBuf {
    run.join(TRUST_FILE)
}

impl Trust {
    pub fn write(&self, run: &Path) -> Result<()> {
        atomic::write_json(&path(run), self)?;
        Ok(())
    }

    /// Reads and checks `RUN/calibration.json`: `Ok(None)` when there is none.
    pub fn read(run: &Path, classes: usize) -> Result<Option<Trust>> {
        let p = path(run);
        if !p.exists() {
            return Ok(None);
        }
        let bytes = read_regular(&p)?;
        let t: Trust = serde_json::from_slice(&bytes).map_err(|e| {
            ScoreError::file(
                &p,
                format!("not a calibration file ({e}); run `scorer eval` again to refit it"),
            )
        })?;
        if t.format != TRUST_FORMAT {
            return Err(ScoreError::file(
                &p,
                format!(
                    "format {:?}, expected {TRUST_FORMAT:?}; run scorer eval again",
                    t.format
                ),
            ));
        }
        let temp = t.calibration.temperature;
        if !(temp.is_finite() && temp > 0.0) {
            return Err(ScoreError::file(
                &p,
                format!("temperature {temp} is not a positive number"),
            ));
        }
        if let Some(n) = &t.novelty {
            n.check(classes).map_err(|m| ScoreError::file(&p, m))?;
        }
        Ok(Some(t))
    }
}

/// At most this many train samples (evenly spaced) are used for the feature statistics: means
/// and covariances of a few dozen features are estimated well long before, and eval stays
/// cheap on big caches.
pub const MAX_TRAIN_SAMPLES: usize = 20_000;

/// What fitting needs: the run, its model digest, the cache, and the val pass (with features).
pub struct FitInputs<'a> {
    pub run: &'a ballast_model::classifier::TrainedRun,
    pub model_digest: &'a str,
    pub cache: &'a ballast_model::data::CacheInfo,
    pub device: &'a candle_core::Device,
    pub batch: usize,
    pub val: &'a crate::aggregate::TileScores,
    pub val_labels: &'a [usize],
    pub quiet: bool,
}

/// Fits the temperature on val and the novelty statistics on (evenly spaced) train samples,
/// with the threshold on val.
pub fn fit(i: FitInputs<'_>) -> Result<Trust> {
    use crate::novelty::Novelty;
    let classes = i.run.classes().len();
    let calibration = crate::calibration::fit(&i.val.logits, classes, i.val_labels);
    let train = i.cache.load_split(
        ballast_format::Split::Train,
        i.device,
        &ballast_model::data::Transfers::default(),
    )?;
    let n = train.len();
    let take = n.min(MAX_TRAIN_SAMPLES);
    // Evenly spaced, so every shard and class is represented in split order.
    let ids: Vec<u32> = (0..take).map(|k| (k * n / take.max(1)) as u32).collect();
    let labels: Vec<usize> = ids
        .iter()
        .map(|&k| train.labels_host[k as usize] as usize)
        .collect();
    let (novelty, novelty_note) = if labels.iter().any(|&l| l >= classes) {
        (None, Some("a train label is out of range".to_string()))
    } else {
        let t = candle_core::Tensor::new(ids.as_slice(), i.device)?;
        let (images, _) = train.gather(&t)?;
        drop(train);
        let bar = ballast_cli::progress(take as u64, "train features", i.quiet);
        let how = crate::inference::Scoring {
            temperature: 1.0,
            features: true,
        };
        let tr = crate::inference::score(i.run, &images, i.batch, how, |k| bar.inc(k as u64))?;
        bar.finish_and_clear();
        match Novelty::fit(classes, &tr.features, &labels, &i.val.features) {
            Ok(m) => (Some(m), None),
            Err(e) => {
                tracing::warn!("no novelty check for this run: {e}");
                (None, Some(e.to_string()))
            }
        }
    };
    Ok(Trust {
        format: TRUST_FORMAT.into(),
        model_digest: i.model_digest.into(),
        cache_index_digest: i.cache.index_digest.clone(),
        calibration,
        novelty,
        novelty_note,
    })
}
