//! From tile scores to one photo's verdict: the same rule for `scorer eval` (per-photo
//! accuracy) and `scorer photos` (field photos), so the two can be compared.
//!
//! A photo's class probabilities are the mean of its tiles' probability vectors (summed in tile
//! order in f64); its predicted class is their argmax (first on ties). Votes count each tile's
//! own predicted class; agreement is the share of tiles that voted for the photo's class.

use serde::Serialize;

use crate::metrics::argmax;

/// Per-tile model outputs on the host: `probs` is row-major [tiles, classes].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TileScores {
    pub classes: usize,
    pub probs: Vec<f32>,
    /// The model's predicted class of each tile (argmax of its logits).
    pub preds: Vec<u32>,
    /// Logits, row-major [tiles, classes] (for the loss).
    pub logits: Vec<f32>,
    /// The model's feature groups (see `Model::forward_features`), when asked for (else
    /// empty).
    pub features: Vec<FeatureGroup>,
}

/// One group of features of every tile, row-major [tiles, dim].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeatureGroup {
    pub dim: usize,
    pub values: Vec<f32>,
}

impl TileScores {
    pub fn len(&self) -> usize {
        self.preds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.preds.is_empty()
    }

    /// Probabilities of tile `i`.
    pub fn probs_of(&self, i: usize) -> &[f32] {
        &self.probs[i * self.classes..(i + 1) * self.classes]
    }

    pub fn logits_of(&self, i: usize) -> &[f32] {
        &self.logits[i * self.classes..(i + 1) * self.classes]
    }

    /// Cross-entropy of tile `i` against `label`, in f64: logsumexp(logits) − logit[label].
    pub fn loss_of(&self, i: usize, label: usize) -> f64 {
        let l = self.logits_of(i);
        let max = l.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let sum: f64 = l.iter().map(|&v| (v as f64 - max).exp()).sum();
        max + sum.ln() - l[label] as f64
    }
}

/// One photo's verdict from its tiles.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhotoVerdict {
    pub n_tiles: usize,
    /// Mean probability per class (class order).
    pub mean: Vec<f64>,
    /// Tiles whose own prediction is each class (class order).
    pub votes: Vec<u64>,
    /// argmax of `mean`.
    pub predicted: usize,
    /// votes[predicted] / n_tiles.
    pub agreement: f64,
}

/// Combines the tiles `rows` of `scores` (indices into it, in tile order).
pub fn verdict(scores: &TileScores, rows: &[usize]) -> PhotoVerdict {
    let c = scores.classes;
    let mut sum = vec![0f64; c];
    let mut votes = vec![0u64; c];
    for &i in rows {
        for (s, &p) in sum.iter_mut().zip(scores.probs_of(i)) {
            *s += p as f64;
        }
        votes[scores.preds[i] as usize] += 1;
    }
    let n = rows.len();
    let mean: Vec<f64> = if n == 0 {
        sum
    } else {
        sum.iter().map(|s| s / n as f64).collect()
    };
    let predicted = argmax(&mean);
    let agreement = if n == 0 {
        0.0
    } else {
        votes[predicted] as f64 / n as f64
    };
    PhotoVerdict {
        n_tiles: n,
        mean,
        votes,
        predicted,
        agreement,
    }
}

/// The verdict over all tiles of `scores`.
pub fn verdict_all(scores: &TileScores) -> PhotoVerdict {
    let rows: Vec<usize> = (0..scores.len()).collect();
    verdict(scores, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(rows: &[[f32; 3]]) -> TileScores {
        TileScores {
            classes: 3,
            probs: rows.iter().flatten().copied().collect(),
            preds: rows.iter().map(|r| argmax(r) as u32).collect(),
            logits: rows.iter().flatten().map(|p| p.ln()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn mean_probabilities_decide_not_votes() {
        // Two tiles lean weakly to class 0, one is sure of class 2: votes say 0, the mean says 2.
        let s = scores(&[[0.40, 0.25, 0.35], [0.40, 0.25, 0.35], [0.02, 0.03, 0.95]]);
        let v = verdict_all(&s);
        assert_eq!(v.n_tiles, 3);
        assert_eq!(v.votes, vec![2, 0, 1]);
        let want = [0.82f64 / 3.0, 0.53 / 3.0, 1.65 / 3.0];
        for (m, w) in v.mean.iter().zip(want) {
            assert!((m - w).abs() < 1e-6, "{:?}", v.mean);
        }
        assert_eq!(v.predicted, 2);
        assert!((v.agreement - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn subsets_and_ties() {
        let s = scores(&[[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0.2, 0.2, 0.6]]);
        let v = verdict(&s, &[0]);
        assert_eq!(v.predicted, 0, "first class wins a tie");
        assert_eq!(v.agreement, 1.0);
        let v = verdict(&s, &[1, 2]);
        assert_eq!((v.predicted, v.votes.clone()), (2, vec![0, 0, 2]));
        assert_eq!(verdict(&s, &[]).n_tiles, 0);
    }

    #[test]
    fn loss_is_cross_entropy_of_the_logits() {
        let s = scores(&[[0.2, 0.3, 0.5]]);
        // logits = ln p, so softmax(logits) = p and the loss is -ln p[label].
        assert!((s.loss_of(0, 2) - (-(0.5f64).ln())).abs() < 1e-6);
        assert!((s.loss_of(0, 0) - (-(0.2f64).ln())).abs() < 1e-6);
    }
}
