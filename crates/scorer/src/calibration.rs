//! Temperature scaling (Guo et al., 2017): one scalar T fitted on the val split so that
//! softmax(logits / T) says how often the model is right. It divides every logit by the same
//! positive number, so no prediction changes; only the confidence does.
//!
//! The fit minimises the mean negative log-likelihood over β = 1/T in [1/20, 20]. That NLL is
//! convex in β (log-sum-exp of a linear function minus a linear function), so a golden-section
//! search finds its minimum; it is sequential f64 arithmetic, hence deterministic.
//!
//! The expected calibration error (ECE) is the usual 15 equal-width confidence bins:
//! Σ_b |b|/n · |accuracy(b) − mean confidence(b)|, the confidence being the top probability.

use serde::{Deserialize, Serialize};

/// Confidence bins of the ECE (the common choice in the calibration literature).
pub const ECE_BINS: usize = 15;
/// The temperature is searched in [1/BETA_MAX, BETA_MAX].
const BETA_MAX: f64 = 20.0;

/// The fitted temperature with the before/after figures `report.json` shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Temperature {
    pub temperature: f64,
    pub samples: u64,
    pub ece_bins: usize,
    pub ece_before: f64,
    pub ece_after: f64,
    pub nll_before: f64,
    pub nll_after: f64,
}

/// Mean NLL of logits (row-major [n, classes]) against `labels` at inverse temperature `beta`.
pub fn nll(logits: &[f32], classes: usize, labels: &[usize], beta: f64) -> f64 {
    if labels.is_empty() || classes == 0 {
        return 0.0;
    }
    let mut sum = 0.0;
    for (row, &y) in logits.chunks_exact(classes).zip(labels) {
        let max = row
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(beta * v as f64));
        let lse = max
            + row
                .iter()
                .map(|&v| (beta * v as f64 - max).exp())
                .sum::<f64>()
                .ln();
        sum += lse - beta * row[y] as f64;
    }
    sum / labels.len() as f64
}

/// Softmax of one row of logits at inverse temperature `beta`, in f64.
pub fn softmax(row: &[f32], beta: f64) -> Vec<f64> {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(beta * v as f64));
    let e: Vec<f64> = row.iter().map(|&v| (beta * v as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Expected calibration error at inverse temperature `beta`, [`ECE_BINS`] bins.
pub fn ece(logits: &[f32], classes: usize, labels: &[usize], beta: f64) -> f64 {
    if labels.is_empty() || classes == 0 {
        return 0.0;
    }
    let mut count = [0u64; ECE_BINS];
    let mut conf = [0f64; ECE_BINS];
    let mut right = [0u64; ECE_BINS];
    for (row, &y) in logits.chunks_exact(classes).zip(labels) {
        let p = softmax(row, beta);
        // The first maximum, as argmax everywhere else in ballast.
        let (k, top) = p
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |(bk, bv), (i, &v)| {
                if v > bv { (i, v) } else { (bk, bv) }
            });
        let b = ((top * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        count[b] += 1;
        conf[b] += top;
        right[b] += u64::from(k == y);
    }
    let n = labels.len() as f64;
    (0..ECE_BINS)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let c = count[b] as f64;
            c / n * (right[b] as f64 / c - conf[b] / c).abs()
        })
        .sum()
}

/// Fits the temperature on val logits and labels.
pub fn fit(logits: &[f32], classes: usize, labels: &[usize]) -> Temperature {
    let f = |beta: f64| nll(logits, classes, labels, beta);
    let beta = golden_min(f, 1.0 / BETA_MAX, BETA_MAX);
    // Keep T = 1 exactly when fitting cannot improve on it (no data, or already optimal).
    let beta = if f(beta) < f(1.0) { beta } else { 1.0 };
    Temperature {
        temperature: 1.0 / beta,
        samples: labels.len() as u64,
        ece_bins: ECE_BINS,
        ece_before: ece(logits, classes, labels, 1.0),
        ece_after: ece(logits, classes, labels, beta),
        nll_before: f(1.0),
        nll_after: f(beta),
    }
}

/// The minimum of a convex function on [lo, hi] by golden-section search.
fn golden_min(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut a = hi - g * (hi - lo);
    let mut b = lo + g * (hi - lo);
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..100 {
        if fa <= fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - g * (hi - lo);
            fa = f(a);
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + g * (hi - lo);
            fb = f(b);
        }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_by_hand() {
        // Two samples, both with top probability 0.8 (logits ln 4 vs 0): one right, one wrong.
        let l = [4f32.ln(), 0.0, 4f32.ln(), 0.0];
        let e = ece(&l, 2, &[0, 1], 1.0);
        // One bin: accuracy 0.5, confidence 0.8.
        assert!((e - 0.3).abs() < 1e-6, "{e}");
        // All right at 0.8 confidence: |1 − 0.8|.
        assert!((ece(&l, 2, &[0, 0], 1.0) - 0.2).abs() < 1e-6);
    }

    #[test]
    fn nll_by_hand() {
        let l = [0.0f32, 0.0];
        assert!((nll(&l, 2, &[1], 1.0) - 2f64.ln()).abs() < 1e-12);
        // β scales the logits: ln(1 + e^-2) for logits (2, 0) at β = 1 against class 0.
        let l = [1.0f32, 0.0];
        let want = (1.0 + (-2f64).exp()).ln();
        assert!((nll(&l, 2, &[0], 2.0) - want).abs() < 1e-12);
    }

    /// An overconfident model (logits 3× what its accuracy supports) is cooled to T ≈ 3, and
    /// its ECE falls.
    #[test]
    fn fits_the_temperature_of_overconfident_logits() {
        // Samples whose true class probability under logits/3 is p = softmax(1.5, 0) ≈ 0.818:
        // draw labels with exactly that frequency (9 of 11 right).
        let mut logits = Vec::new();
        let mut labels = Vec::new();
        for i in 0..1100 {
            logits.extend([4.5f32, 0.0]);
            labels.push(if i % 11 < 9 { 0 } else { 1 });
        }
        let t = fit(&logits, 2, &labels);
        // The NLL is minimal where softmax(4.5/T) = 9/11, i.e. 4.5/T = ln(9/2).
        let want = 4.5 / (9.0f64 / 2.0).ln();
        assert!((t.temperature - want).abs() < 1e-6, "{t:?} vs {want}");
        assert!(t.ece_after < 1e-6 && t.ece_before > 0.15, "{t:?}");
        assert!(t.nll_after < t.nll_before);
        // Predictions are unchanged: argmax of softmax at any β is argmax of the logits.
        let p = softmax(&logits[..2], 1.0 / t.temperature);
        assert!(p[0] > p[1]);
    }

    #[test]
    fn keeps_one_when_nothing_to_fit() {
        assert_eq!(fit(&[], 3, &[]).temperature, 1.0);
    }
}
