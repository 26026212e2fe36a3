//! Gradation (sieve) curves: a class's percent passing at sieve sizes, the probability-weighted
//! curve of a photo, its D-values, coefficients of uniformity and curvature, and a
//! specification envelope.
//!
//! Interpolation is log-linear, as on a semi-log sieve chart: passing is linear in log(size)
//! between two sieves. A curve is known only between its first and last sieve, and beyond them
//! only where it has already reached 0 % (below) or 100 % (above); anything else is unknown and
//! stays empty, never invented.

use serde::Serialize;

/// Percent passing at increasing sieve sizes (mm).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Curve {
    pub sieve_mm: Vec<f64>,
    pub passing: Vec<f64>,
}

impl Curve {
    /// Checks a curve: at least two sieves, sizes positive and strictly increasing, passing
    /// within 0–100 and never decreasing, lengths equal. The error says what is wrong.
    pub fn new(sieve_mm: Vec<f64>, passing: Vec<f64>) -> Result<Curve, String> {
        if sieve_mm.len() != passing.len() {
            return Err(format!(
                "sieve_mm has {} sizes but passing has {} values",
                sieve_mm.len(),
                passing.len()
            ));
        }
        if sieve_mm.len() < 2 {
            return Err("a curve needs at least two sieves".into());
        }
        if let Some(s) = sieve_mm.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(format!("sieve size {s} mm is not a positive number"));
        }
        if let Some(w) = sieve_mm.windows(2).find(|w| w[1] <= w[0]) {
            return Err(format!(
                "sieve sizes must increase: {} mm is followed by {} mm",
                w[0], w[1]
            ));
        }
        if let Some(p) = passing
            .iter()
            .find(|p| !(p.is_finite() && (0.0..=100.0).contains(*p)))
        {
            return Err(format!("passing {p} % is outside 0–100"));
        }
        if let Some((i, w)) = passing.windows(2).enumerate().find(|(_, w)| w[1] < w[0]) {
            return Err(format!(
                "passing must not decrease with size: {} % at {} mm, then {} % at {} mm",
                w[0],
                sieve_mm[i],
                w[1],
                sieve_mm[i + 1]
            ));
        }
        Ok(Curve { sieve_mm, passing })
    }

    /// Percent passing at `size` mm, where the curve says it (see the module docs).
    pub fn at(&self, size: f64) -> Option<f64> {
        let (s, p) = (&self.sieve_mm, &self.passing);
        let (first, last) = (s[0], s[s.len() - 1]);
        if size < first {
            return (p[0] == 0.0).then_some(0.0);
        }
        if size > last {
            return (p[p.len() - 1] == 100.0).then_some(100.0);
        }
        let i = s.partition_point(|&x| x < size);
        if s[i] == size {
            return Some(p[i]);
        }
        let t = (size.ln() - s[i - 1].ln()) / (s[i].ln() - s[i - 1].ln());
        Some(p[i - 1] + t * (p[i] - p[i - 1]))
    }
}

/// A photo's expected curve: the class curves weighted by its class probabilities, at the
/// union of their sieve sizes (`None` where a class curve is unknown).
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture {
    pub sieve_mm: Vec<f64>,
    pub passing: Vec<Option<f64>>,
}

/// The union of the curves' sieve sizes, sorted.
pub fn union_sizes<'a>(curves: impl IntoIterator<Item = &'a Curve>) -> Vec<f64> {
    let mut sizes: Vec<f64> = curves
        .into_iter()
        .flat_map(|c| c.sieve_mm.iter().copied())
        .collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    sizes
}

/// `Σ probs[c] · curves[c]` at `sizes`.
pub fn mixture(curves: &[Curve], probs: &[f64], sizes: &[f64]) -> Mixture {
    let passing = sizes
        .iter()
        .map(|&s| {
            curves
                .iter()
                .zip(probs)
                .map(|(c, &p)| Some(p * c.at(s)?))
                .sum::<Option<f64>>()
                .map(|v| v.clamp(0.0, 100.0))
        })
        .collect();
    Mixture {
        sieve_mm: sizes.to_vec(),
        passing,
    }
}

impl Mixture {
    /// The (size, passing) points where the curve is known.
    fn known(&self) -> Vec<(f64, f64)> {
        self.sieve_mm
            .iter()
            .zip(&self.passing)
            .filter_map(|(&s, p)| Some((s, (*p)?)))
            .collect()
    }

    /// The size (mm) at which the curve first reaches `percent` passing, log-linear between
    /// the two known points around it; `None` when the known part never reaches it.
    pub fn d(&self, percent: f64) -> Option<f64> {
        let known = self.known();
        for w in known.windows(2) {
            let ((s0, p0), (s1, p1)) = (w[0], w[1]);
            if p0 == percent {
                return Some(s0);
            }
            if p0 < percent && percent <= p1 {
                let t = (percent - p0) / (p1 - p0);
                return Some((s0.ln() + t * (s1.ln() - s0.ln())).exp());
            }
        }
        known.last().filter(|(_, p)| *p == percent).map(|(s, _)| *s)
    }

    /// Percent passing at `size` mm between known points of the curve.
    pub fn at(&self, size: f64) -> Option<f64> {
        let (sizes, passing): (Vec<f64>, Vec<f64>) = self.known().into_iter().unzip();
        let c = Curve {
            sieve_mm: sizes,
            passing,
        };
        if c.sieve_mm.len() < 2 {
            return c
                .sieve_mm
                .first()
                .filter(|&&s| s == size)
                .map(|_| c.passing[0]);
        }
        c.at(size)
    }

    /// D10, D30, D50, D60, D90, Cu = D60/D10 and Cc = D30²/(D10·D60).
    pub fn summary(&self) -> Gradation {
        let [d10, d30, d50, d60, d90] = [10.0, 30.0, 50.0, 60.0, 90.0].map(|p| self.d(p));
        let cu = d60.zip(d10).map(|(d60, d10)| d60 / d10);
        let cc = d30
            .zip(d10.zip(d60))
            .map(|(d30, (d10, d60))| d30 * d30 / (d10 * d60));
        Gradation {
            d10,
            d30,
            d50,
            d60,
            d90,
            cu,
            cc,
        }
    }
}

/// The numbers an engineer reads off a sieve curve (`None`: the curve does not tell).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Gradation {
    pub d10: Option<f64>,
    pub d30: Option<f64>,
    pub d50: Option<f64>,
    pub d60: Option<f64>,
    pub d90: Option<f64>,
    pub cu: Option<f64>,
    pub cc: Option<f64>,
}

/// A specification band: at each sieve, passing must lie within [lower, upper].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Envelope {
    pub sieve_mm: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

impl Envelope {
    pub fn new(sieve_mm: Vec<f64>, lower: Vec<f64>, upper: Vec<f64>) -> Result<Envelope, String> {
        let lo = Curve::new(sieve_mm.clone(), lower.clone()).map_err(|e| format!("lower: {e}"))?;
        let hi = Curve::new(sieve_mm.clone(), upper.clone()).map_err(|e| format!("upper: {e}"))?;
        if let Some(i) = (0..sieve_mm.len()).find(|&i| lo.passing[i] > hi.passing[i]) {
            return Err(format!(
                "lower {} % is above upper {} % at {} mm",
                lower[i], upper[i], sieve_mm[i]
            ));
        }
        Ok(Envelope {
            sieve_mm,
            lower,
            upper,
        })
    }

    /// `Some(failing sieves)` (empty: within the envelope), or `None` when the curve is unknown
    /// at some sieve of the envelope.
    pub fn check(&self, curve: &Mixture) -> Option<Vec<f64>> {
        let mut failing = Vec::new();
        for ((&s, &lo), &hi) in self.sieve_mm.iter().zip(&self.lower).zip(&self.upper) {
            let p = curve.at(s)?;
            // Within a rounding of the printed 6 decimals counts as on the line.
            if p < lo - 1e-9 || p > hi + 1e-9 {
                failing.push(s);
            }
        }
        Some(failing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a value");
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }

    #[test]
    fn bad_curves_say_why() {
        let e = |s: Vec<f64>, p: Vec<f64>| Curve::new(s, p).unwrap_err();
        assert!(e(vec![1.0, 2.0], vec![10.0]).contains("2 sizes but passing has 1"));
        assert!(e(vec![2.0, 1.0], vec![10.0, 20.0]).contains("must increase"));
        assert!(e(vec![0.0, 1.0], vec![10.0, 20.0]).contains("positive"));
        assert!(e(vec![1.0, 2.0], vec![30.0, 20.0]).contains("must not decrease"));
        assert!(e(vec![1.0, 2.0], vec![30.0, 120.0]).contains("outside 0–100"));
        assert!(e(vec![1.0], vec![30.0]).contains("at least two"));
    }

    #[test]
    fn log_linear_interpolation_by_hand() {
        // 1 mm: 20 %, 4 mm: 80 %. At 2 mm (half-way in log): 50 %.
        let c = Curve::new(vec![1.0, 4.0], vec![20.0, 80.0]).unwrap();
        close(c.at(2.0), 50.0);
        close(c.at(1.0), 20.0);
        assert_eq!(c.at(0.5), None, "below the first sieve, not yet at 0 %");
        assert_eq!(c.at(8.0), None, "above the last sieve, not yet at 100 %");
        let full = Curve::new(vec![1.0, 4.0], vec![0.0, 100.0]).unwrap();
        assert_eq!((full.at(0.1), full.at(10.0)), (Some(0.0), Some(100.0)));
    }

    #[test]
    fn d_values_cu_cc_by_hand() {
        // 0.1 mm: 0 %, 1 mm: 50 %, 10 mm: 100 %. D10 = 10^(-1 + 0.2) = 10^-0.8;
        // D30 = 10^-0.4; D50 = 1; D60 = 10^0.2; D90 = 10^0.8.
        let c = Curve::new(vec![0.1, 1.0, 10.0], vec![0.0, 50.0, 100.0]).unwrap();
        let m = mixture(&[c], &[1.0], &[0.1, 1.0, 10.0]);
        let g = m.summary();
        close(g.d10, 10f64.powf(-0.8));
        close(g.d30, 10f64.powf(-0.4));
        close(g.d50, 1.0);
        close(g.d60, 10f64.powf(0.2));
        close(g.d90, 10f64.powf(0.8));
        close(g.cu, 10f64.powf(1.0));
        // Cc = D30² / (D10·D60) = 10^(-0.8) / (10^(-0.8)·10^(0.2)) = 10^-0.2.
        close(g.cc, 10f64.powf(-0.2));
    }

    #[test]
    fn mixture_weights_class_curves_at_the_union_of_sizes() {
        let fine = Curve::new(vec![0.5, 2.0], vec![10.0, 100.0]).unwrap();
        let coarse = Curve::new(vec![1.0, 8.0], vec![0.0, 60.0]).unwrap();
        let sizes = union_sizes([&fine, &coarse]);
        assert_eq!(sizes, vec![0.5, 1.0, 2.0, 8.0]);
        let m = mixture(&[fine.clone(), coarse.clone()], &[0.25, 0.75], &sizes);
        // 0.5 mm: coarse is below its first sieve at 0 % → 0; fine 10 → 2.5.
        close(m.passing[0], 2.5);
        // 1 mm: fine half-way 0.5→2 in log = 55 %; coarse 0 → 13.75.
        close(m.passing[1], 0.25 * 55.0);
        // 2 mm: fine 100; coarse at 2 mm = 60·log(2)/log(8) = 20 → 25 + 15.
        close(m.passing[2], 25.0 + 0.75 * 20.0);
        // 8 mm: fine above its last sieve at 100 → 100; coarse 60 → 25 + 45.
        close(m.passing[3], 70.0);
        // Never reaches 90 % within the known curve: empty, not invented.
        let g = m.summary();
        assert_eq!(g.d90, None);
        assert!(g.d50.is_some());
        // A class whose curve is unknown at a size makes the mixture unknown there.
        let open = Curve::new(vec![1.0, 2.0], vec![5.0, 50.0]).unwrap();
        let m = mixture(&[open], &[1.0], &[0.5, 1.0, 2.0]);
        assert_eq!(m.passing[0], None);
        assert_eq!(
            m.summary().d10,
            Some((1f64.ln() + (5.0 / 45.0) * 2f64.ln()).exp())
        );
    }

    #[test]
    fn envelope_names_the_failing_sieves() {
        let env = Envelope::new(
            vec![1.0, 2.0, 4.0],
            vec![10.0, 30.0, 70.0],
            vec![40.0, 60.0, 100.0],
        )
        .unwrap();
        let c = Curve::new(vec![1.0, 2.0, 4.0], vec![20.0, 65.0, 90.0]).unwrap();
        let m = mixture(&[c], &[1.0], &[1.0, 2.0, 4.0]);
        assert_eq!(env.check(&m), Some(vec![2.0]));
        let c = Curve::new(vec![1.0, 4.0], vec![20.0, 90.0]).unwrap();
        let m = mixture(&[c], &[1.0], &[1.0, 4.0]);
        // At 2 mm: 20 + 70·0.5 = 55 %, inside.
        assert_eq!(env.check(&m), Some(vec![]));
        let bad = Envelope::new(vec![1.0, 2.0], vec![50.0, 60.0], vec![40.0, 70.0]);
        assert!(bad.unwrap_err().contains("above upper"));
        // Unknown at an envelope sieve: no verdict.
        let c = Curve::new(vec![2.0, 4.0], vec![20.0, 90.0]).unwrap();
        let m = mixture(&[c], &[1.0], &[2.0, 4.0]);
        assert_eq!(env.check(&m), None);
    }
}
