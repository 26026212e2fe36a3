//! Running the trained model over u8 samples already on its device, a batch at a time, and
//! bringing the per-sample results back to the host.
//!
//! Normalisation, logits and softmax are the trainer's own ([`TrainedRun::logits`],
//! `Logits::probabilities`, `Logits::predictions`): the predicted class is the argmax of the
//! logits exactly as the trainer counts val accuracy, so equal inputs give equal counts.

use ballast_model::classifier::TrainedRun;
use ballast_model::run_files::MODEL_FILE;
use candle_core::Tensor;

use crate::aggregate::TileScores;
use crate::error::{Result, ScoreError};

/// What a scoring pass returns besides logits and predictions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scoring {
    /// Probabilities are softmax(logits / temperature) (1: the model's own).
    pub temperature: f64,
    /// Also bring back the penultimate features (for the novelty check).
    pub features: bool,
}

impl Scoring {
    /// The model's own probabilities, no features.
    pub const RAW: Scoring = Scoring {
        temperature: 1.0,
        features: false,
    };
}

/// Scores every sample of `images` (u8 [N,1,S,S] on the run's device), `batch` at a time, in
/// order. `progress` is told how many samples each batch held.
pub fn score(
    run: &TrainedRun,
    images: &Tensor,
    batch: usize,
    how: Scoring,
    mut progress: impl FnMut(usize),
) -> Result<TileScores> {
    if batch == 0 {
        return Err(ScoreError::usage("--batch must be at least 1"));
    }
    let n = images.dim(0)?;
    let classes = run.classes().len();
    let mut out = TileScores {
        classes,
        probs: Vec::with_capacity(n * classes),
        preds: Vec::with_capacity(n),
        logits: Vec::with_capacity(n * classes),
        features: Vec::new(),
    };
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        let x = images.narrow(0, start, len)?;
        let logits = if how.features {
            let (groups, logits) = run.features(&x)?;
            out.features.resize_with(groups.len(), Default::default);
            for (g, t) in out.features.iter_mut().zip(groups) {
                g.dim = t.dim(1)?;
                let f = t.flatten_all()?.to_vec1::<f32>()?;
                check_finite(run, "features", &f, start, g.dim)?;
                g.values.extend(f);
            }
            logits
        } else {
            run.logits(&x)?
        };
        let l = logits.tensor().flatten_all()?.to_vec1::<f32>()?;
        let p = logits
            .probabilities_at(how.temperature)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        check_finite(run, "logits", &l, start, classes)?;
        check_finite(run, "probabilities", &p, start, classes)?;
        out.logits.extend(l);
        out.probs.extend(p);
        out.preds.extend(logits.predictions()?.to_vec1::<u32>()?);
        progress(len);
        start += len;
    }
    Ok(out)
}

/// Finite weights can still overflow (inf logits, then NaN probabilities): such a result must
/// stop the run, never become a row of NaN.
fn check_finite(
    run: &TrainedRun,
    what: &str,
    values: &[f32],
    first_sample: usize,
    classes: usize,
) -> Result<()> {
    let Some(i) = values.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    Err(ScoreError::NonFinite {
        path: run.dir.join(MODEL_FILE),
        message: format!(
            "the model's {what} are not finite ({} for sample {} of this input): its weights \
             overflow; retrain with a lower learning rate or restore the file",
            values[i],
            first_sample + i / classes.max(1)
        ),
    })
}
