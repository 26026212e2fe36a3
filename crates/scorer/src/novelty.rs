//! How unlike the training data a window is, in the model's own feature space (after Lee et
//! al., 2018, "A simple unified framework for detecting out-of-distribution samples"). The
//! model gives several feature groups (per conv block the channels' mean and standard
//! deviation over the image, texture statistics; then the penultimate layer). For each group
//! the train split is summarised by one mean per class and one shared covariance, and a
//! window's distance is its smallest Mahalanobis distance to a class mean. Each group's
//! threshold is a high quantile of the val windows' distances, so it is chosen on data the
//! statistics were not fitted on.
//!
//! A window's score is its largest distance/threshold ratio over the groups: above 1 it is
//! farther from training, in at least one group, than all but 1 − [`QUANTILE`] of val windows.
//! The early groups catch textures the classifier's last layer maps onto a known class
//! (stripes, noise); the last catches what the classifier itself finds odd. A photo's score is
//! the median of its windows' scores, and it is flagged `unlike-training` above 1, i.e. when
//! most of it is unlike training; a few odd windows (a boot, a stone) do not flag a photo.
//!
//! Everything is sequential f64 arithmetic: equal features give equal scores.

use serde::{Deserialize, Serialize};

use crate::aggregate::FeatureGroup;

/// The val quantile each group's threshold sits at.
pub const QUANTILE: f64 = 0.99;
/// Feature groups wider than this are left out (a d×d covariance in a JSON file; the default
/// network's widest group has 64).
pub const MAX_DIM: usize = 256;
/// The method, as recorded.
pub const METHOD: &str = "largest over feature groups (conv channel mean/std per block, \
     penultimate layer) of the min-class Mahalanobis distance with a shared covariance, over \
     that group's val threshold";

/// The fitted statistics and thresholds, as stored in the run's calibration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Novelty {
    pub method: String,
    pub quantile: f64,
    pub train_samples: u64,
    pub val_samples: u64,
    pub groups: Vec<Group>,
}

/// One feature group's statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    /// Position among the model's feature groups.
    pub index: usize,
    pub dim: usize,
    /// Class means in label order; `None` for a class without train samples.
    pub means: Vec<Option<Vec<f64>>>,
    /// The inverse of the shared covariance (with a small ridge), row-major d×d.
    pub precision: Vec<f64>,
    pub ridge: f64,
    /// Distance at [`QUANTILE`] of the val windows.
    pub threshold: f64,
}

/// Why the statistics cannot be fitted (eval goes on without a novelty check, saying why).
#[derive(Debug, thiserror::Error)]
pub enum NoveltyError {
    #[error("no feature group has at most {MAX_DIM} features")]
    TooWide,
    #[error("{0} train samples are too few to fit feature statistics")]
    TooFew(usize),
    #[error("the val split is empty: no threshold can be chosen")]
    NoVal,
    #[error("the feature covariance is not positive definite (non-finite features?)")]
    Singular,
}

/// A photo's (or any group of windows') score and flag.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// Median of the windows' scores.
    pub score: f64,
    pub unlike_training: bool,
}

impl Verdict {
    pub fn flag(&self) -> &'static str {
        if self.unlike_training {
            "unlike-training"
        } else {
            "ok"
        }
    }
}

/// The name of feature group `i` of `n`.
fn group_name(i: usize, n: usize) -> String {
    if i + 1 == n {
        "penultimate".into()
    } else {
        format!("conv{} channel mean/std", i + 1)
    }
}

impl Novelty {
    /// Fits every usable group on train features (with their labels), then the thresholds on
    /// val features. `train` and `val` hold the same groups.
    pub fn fit(
        classes: usize,
        train: &[FeatureGroup],
        labels: &[usize],
        val: &[FeatureGroup],
    ) -> Result<Novelty, NoveltyError> {
        let n = labels.len();
        if n < 2 {
            return Err(NoveltyError::TooFew(n));
        }
        let mut groups = Vec::new();
        for (i, (t, v)) in train.iter().zip(val).enumerate() {
            if t.dim == 0 || t.dim > MAX_DIM || t.values.len() != n * t.dim || v.dim != t.dim {
                continue;
            }
            let name = group_name(i, train.len());
            groups.push(Group::fit(
                name, i, t.dim, classes, &t.values, labels, &v.values,
            )?);
        }
        if groups.is_empty() {
            return Err(NoveltyError::TooWide);
        }
        Ok(Novelty {
            method: METHOD.into(),
            quantile: QUANTILE,
            train_samples: n as u64,
            val_samples: (val.first().map_or(0, |g| g.values.len() / g.dim.max(1))) as u64,
            groups,
        })
    }

    /// Each window's score: its largest distance/threshold over the groups.
    pub fn ratios(&self, features: &[FeatureGroup]) -> Vec<f64> {
        let windows = features
            .first()
            .map_or(0, |g| g.values.len() / g.dim.max(1));
        let mut out = vec![0f64; windows];
        for g in &self.groups {
            let Some(f) = features.get(g.index).filter(|f| f.dim == g.dim) else {
                continue;
            };
            for (o, row) in out.iter_mut().zip(f.values.chunks_exact(g.dim)) {
                *o = o.max(g.distance(row) / g.threshold);
            }
        }
        out
    }

    /// Checks a stored model's shapes, so a damaged file cannot index out of bounds.
    pub fn check(&self, classes: usize) -> Result<(), String> {
        if self.groups.is_empty() {
            return Err("novelty has no feature groups".into());
        }
        self.groups.iter().try_for_each(|g| g.check(classes))
    }
}

impl Group {
    fn fit(
        name: String,
        index: usize,
        dim: usize,
        classes: usize,
        train: &[f32],
        labels: &[usize],
        val: &[f32],
    ) -> Result<Group, NoveltyError> {
        let n = labels.len();
        let mut sums = vec![vec![0f64; dim]; classes];
        let mut counts = vec![0u64; classes];
        for (f, &y) in train.chunks_exact(dim).zip(labels) {
            counts[y] += 1;
            for (s, &v) in sums[y].iter_mut().zip(f) {
                *s += v as f64;
            }
        }
        let means: Vec<Option<Vec<f64>>> = sums
            .into_iter()
            .zip(&counts)
            .map(|(s, &c)| (c > 0).then(|| s.into_iter().map(|v| v / c as f64).collect()))
            .collect();
        let mut cov = vec![0f64; dim * dim];
        let mut d = vec![0f64; dim];
        for (f, &y) in train.chunks_exact(dim).zip(labels) {
            let Some(m) = &means[y] else { continue };
            for k in 0..dim {
                d[k] = f[k] as f64 - m[k];
            }
            for i in 0..dim {
                let di = d[i];
                for j in 0..=i {
                    cov[i * dim + j] += di * d[j];
                }
            }
        }
        for i in 0..dim {
            for j in 0..=i {
                let v = cov[i * dim + j] / n as f64;
                cov[i * dim + j] = v;
                cov[j * dim + i] = v;
            }
        }
        // Dead units (always 0 in training) make the covariance singular; a ridge of a
        // thousandth of the mean variance keeps it invertible and still treats activity in a
        // dead unit as far from training.
        let trace: f64 = (0..dim).map(|i| cov[i * dim + i]).sum();
        let ridge = 1e-3 * trace / dim as f64 + 1e-9;
        for i in 0..dim {
            cov[i * dim + i] += ridge;
        }
        let precision = invert_spd(&cov, dim).ok_or(NoveltyError::Singular)?;
        let mut g = Group {
            name,
            index,
            dim,
            means,
            precision,
            ridge,
            threshold: f64::NAN,
        };
        let mut dist: Vec<f64> = val.chunks_exact(dim).map(|f| g.distance(f)).collect();
        if dist.is_empty() {
            return Err(NoveltyError::NoVal);
        }
        dist.sort_by(f64::total_cmp);
        g.threshold = quantile(&dist, QUANTILE).max(f64::MIN_POSITIVE);
        if !g.threshold.is_finite() {
            return Err(NoveltyError::Singular);
        }
        Ok(g)
    }

    /// Smallest Mahalanobis distance of one feature vector to a class mean.
    pub fn distance(&self, f: &[f32]) -> f64 {
        let dim = self.dim;
        let mut d = vec![0f64; dim];
        let mut best = f64::INFINITY;
        for m in self.means.iter().flatten() {
            for k in 0..dim {
                d[k] = f.get(k).copied().unwrap_or(0.0) as f64 - m[k];
            }
            let mut q = 0.0;
            for i in 0..dim {
                let row = &self.precision[i * dim..(i + 1) * dim];
                let pi: f64 = row.iter().zip(&d).map(|(p, v)| p * v).sum();
                q += d[i] * pi;
            }
            best = best.min(q.max(0.0));
        }
        best.sqrt()
    }

    fn check(&self, classes: usize) -> Result<(), String> {
        let (dim, name) = (self.dim, &self.name);
        if dim == 0 || dim > MAX_DIM {
            return Err(format!(
                "novelty group {name}: dim {dim} is not in 1..={MAX_DIM}"
            ));
        }
        if self.means.len() != classes {
            return Err(format!(
                "novelty group {name} has {} class means for {classes} classes",
                self.means.len()
            ));
        }
        if self.means.iter().flatten().any(|m| m.len() != dim)
            || self.means.iter().all(Option::is_none)
        {
            return Err(format!(
                "novelty group {name}: class means are not {dim} wide"
            ));
        }
        if self.precision.len() != dim * dim {
            return Err(format!(
                "novelty group {name}: precision is not {dim}×{dim}"
            ));
        }
        let mut values = self
            .precision
            .iter()
            .chain(self.means.iter().flatten().flatten());
        if !(self.threshold.is_finite() && self.threshold > 0.0) || values.any(|v| !v.is_finite()) {
            return Err(format!("novelty group {name}: statistics are not finite"));
        }
        Ok(())
    }
}

/// A group of windows' verdict from their ratios: the median, flagged above 1.
pub fn verdict(ratios: &[f64]) -> Option<Verdict> {
    if ratios.is_empty() {
        return None;
    }
    let mut r = ratios.to_vec();
    r.sort_by(f64::total_cmp);
    let score = quantile(&r, 0.5);
    Some(Verdict {
        score,
        unlike_training: score > 1.0,
    })
}

/// Linear-interpolated quantile of sorted values (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The inverse of a symmetric positive definite matrix through its Cholesky factor; `None`
/// when it is not positive definite.
fn invert_spd(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let v = a[i * n + i] - s;
                if !(v > 0.0 && v.is_finite()) {
                    return None;
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    // Columns of L⁻¹ by forward substitution, then A⁻¹ = L⁻ᵀ L⁻¹.
    let mut linv = vec![0f64; n * n];
    for c in 0..n {
        for i in c..n {
            let s: f64 = (c..i).map(|k| l[i * n + k] * linv[k * n + c]).sum();
            let rhs = if i == c { 1.0 } else { 0.0 };
            linv[i * n + c] = (rhs - s) / l[i * n + i];
        }
    }
    let mut inv = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let v: f64 = (i..n).map(|k| linv[k * n + i] * linv[k * n + j]).sum();
            inv[i * n + j] = v;
            inv[j * n + i] = v;
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverts_by_hand() {
        // [[4, 2], [2, 3]]⁻¹ = [[3, −2], [−2, 4]] / 8.
        let inv = invert_spd(&[4.0, 2.0, 2.0, 3.0], 2).unwrap();
        for (g, w) in inv.iter().zip([0.375, -0.25, -0.25, 0.5]) {
            assert!((g - w).abs() < 1e-12, "{inv:?}");
        }
        assert!(invert_spd(&[1.0, 2.0, 2.0, 1.0], 2).is_none(), "indefinite");
    }

    fn group(dim: usize, values: Vec<f32>) -> FeatureGroup {
        FeatureGroup { dim, values }
    }

    /// Two classes at (±3, 0) with unit spread on a grid: distances are measured in that
    /// spread, to the nearer mean.
    fn two_blobs() -> (FeatureGroup, Vec<usize>) {
        let mut f = Vec::new();
        let mut y = Vec::new();
        for (c, cx) in [(0usize, -3.0f32), (1, 3.0)] {
            for dx in [-1.0f32, 1.0] {
                for dy in [-1.0f32, 1.0] {
                    f.extend([cx + dx, dy]);
                    y.push(c);
                }
            }
        }
        (group(2, f), y)
    }

    #[test]
    fn distances_and_threshold() {
        let (train, labels) = two_blobs();
        // Val: the two means and one point at distance ~2 from class 1.
        let val = group(2, vec![-3.0, 0.0, 3.0, 0.0, 5.0, 0.0]);
        let m = Novelty::fit(2, &[train], &labels, &[val]).unwrap();
        let g = &m.groups[0];
        assert_eq!((g.name.as_str(), m.val_samples), ("penultimate", 3));
        // Covariance within class is the identity (±1 each axis), plus the ridge.
        let s = (1.0 + g.ridge).sqrt();
        assert!((g.distance(&[3.0, 0.0])).abs() < 1e-12);
        assert!((g.distance(&[5.0, 0.0]) - 2.0 / s).abs() < 1e-9);
        assert!(
            (g.distance(&[0.0, 0.0]) - 3.0 / s).abs() < 1e-9,
            "the nearer mean"
        );
        // The 0.99 quantile of [0, 0, 2/s] interpolates 98% of the way from 0 to 2/s.
        assert!((g.threshold - 0.98 * 2.0 / s).abs() < 1e-9);
        let r = m.ratios(&[group(2, vec![3.0, 0.0, 13.0, 0.0])]);
        assert!(r[0] < 1e-9 && r[1] > 5.0, "{r:?}");
        m.check(2).unwrap();
        assert!(m.check(3).is_err());
    }

    /// A window's score is its worst group: far in one group is far.
    #[test]
    fn the_worst_group_decides() {
        let (a, labels) = two_blobs();
        let b = a.clone();
        let val = group(2, vec![-3.0, 0.0, 3.0, 0.0, 5.0, 0.0]);
        let m = Novelty::fit(2, &[a, b], &labels, &[val.clone(), val]).unwrap();
        assert_eq!(m.groups[0].name, "conv1 channel mean/std");
        let near = group(2, vec![3.0, 0.0]);
        let far = group(2, vec![13.0, 0.0]);
        let one = m.ratios(&[near.clone(), near.clone()])[0];
        let mixed = m.ratios(&[near.clone(), far.clone()])[0];
        let other = m.ratios(&[far, near])[0];
        assert!(one < 1e-9 && mixed > 5.0 && (mixed - other).abs() < 1e-12);
    }

    #[test]
    fn a_photo_is_flagged_when_most_windows_are_far() {
        assert!(
            !verdict(&[0.2, 0.5, 7.0]).unwrap().unlike_training,
            "one odd window"
        );
        let v = verdict(&[0.2, 3.0, 7.0, 9.0]).unwrap();
        assert!(v.unlike_training && (v.score - 5.0).abs() < 1e-12);
        assert_eq!(v.flag(), "unlike-training");
        assert!(verdict(&[]).is_none());
    }

    #[test]
    fn refuses_what_cannot_be_fitted() {
        let (train, labels) = two_blobs();
        assert!(matches!(
            Novelty::fit(
                2,
                std::slice::from_ref(&train),
                &labels,
                &[group(2, vec![])]
            ),
            Err(NoveltyError::NoVal)
        ));
        let wide = group(MAX_DIM + 1, vec![0.0; 8 * (MAX_DIM + 1)]);
        assert!(matches!(
            Novelty::fit(
                2,
                std::slice::from_ref(&wide),
                &labels,
                std::slice::from_ref(&wide)
            ),
            Err(NoveltyError::TooWide)
        ));
    }
}
