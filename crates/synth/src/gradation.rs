//! Gradations (particle-size distributions): the classes synth renders.
//!
//! A gradation is a modified Fuller curve (Dinger–Funk / modified Andreasen): the mass fraction
//! passing a sieve of size `d` is `P(d) = (d^n - d_min^n) / (d_max^n - d_min^n)` for
//! `d_min <= d <= d_max`. Sizes are in pixels of a photo at the reference size
//! ([`REFERENCE_WIDTH`] × [`REFERENCE_HEIGHT`]); a smaller photo shows the same scene at lower
//! resolution, so every size is multiplied by [`scale_for`].
//!
//! A photo from above shows a section through the packing. By Delesse's principle the area share
//! of each size on a section equals its volume (mass) share, so grains are drawn with a number
//! density `∝ p(d) / d²`, where `p = dP/dd ∝ d^(n-1)`: counts `∝ d^(n-3)`.

use serde::Serialize;

use crate::error::SynthError;

/// The reference photo size that gradation sizes are given for.
pub const REFERENCE_WIDTH: u32 = 4896;
pub const REFERENCE_HEIGHT: u32 = 3264;

/// The stated ground scale of the synthetic scene: millimetres per pixel of a reference-size
/// photo (4 896 px across 2.45 m of ground), so class curves can be given in mm.
pub const MM_PER_REFERENCE_PX: f64 = 0.5;

/// The most classes `--classes` accepts (beyond 5 they are interpolated).
pub const MAX_CLASSES: usize = 64;

/// Pixel scale of a `width` × `height` photo relative to the reference size: the geometric mean
/// of the two axis ratios, so other aspect ratios keep the same grain size per pixel.
pub fn scale_for(width: u32, height: u32) -> f64 {
    ((width as f64 / REFERENCE_WIDTH as f64) * (height as f64 / REFERENCE_HEIGHT as f64)).sqrt()
}

/// One class: a gradation plus its synthetic compaction value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gradation {
    /// Folder and class name (filesystem-safe).
    pub name: String,
    /// Human-readable description.
    pub label: String,
    /// Smallest grain, pixels at the reference size.
    pub d_min: f64,
    /// Largest grain, pixels at the reference size.
    pub d_max: f64,
    /// Fuller exponent `n`.
    pub exponent: f64,
    /// Synthetic relative compaction, % of maximum dry density.
    pub compaction: f64,
}

/// (name, label, d_min, d_max, exponent, compaction). Ranges of neighbours overlap on purpose so
/// that adjacent classes are not trivially separable. The compaction values are invented: they
/// fall as the curve moves away from the densest Fuller exponent (~0.45) and loses fines.
const DEFAULTS: [(&str, &str, f64, f64, f64, f64); 5] = [
    (
        "g1-fine",
        "fine, well graded (Fuller n = 0.45)",
        6.0,
        60.0,
        0.45,
        97.5,
    ),
    (
        "g2-medium-fine",
        "medium-fine, well graded (n = 0.50)",
        8.0,
        100.0,
        0.50,
        96.0,
    ),
    (
        "g3-medium",
        "medium, well graded (n = 0.55)",
        11.0,
        160.0,
        0.55,
        94.5,
    ),
    (
        "g4-medium-coarse",
        "medium-coarse, few fines (n = 0.62)",
        15.0,
        250.0,
        0.62,
        92.5,
    ),
    (
        "g5-coarse",
        "coarse, poor in fines (n = 0.70)",
        20.0,
        380.0,
        0.70,
        90.0,
    ),
];

/// The five default gradations, finest first.
pub fn defaults() -> Vec<Gradation> {
    DEFAULTS
        .iter()
        .map(
            |&(name, label, d_min, d_max, exponent, compaction)| Gradation {
                name: name.to_string(),
                label: label.to_string(),
                d_min,
                d_max,
                exponent,
                compaction,
            },
        )
        .collect()
}

/// The gradations for `--classes count`: up to 5 the defaults in order; more are spread evenly
/// from the finest to the coarsest default, interpolating log d_min, log d_max, the exponent and
/// the compaction piecewise linearly, and named `gNN-dMIN-MAX`.
pub fn for_classes(count: usize) -> Result<Vec<Gradation>, SynthError> {
    if count == 0 || count > MAX_CLASSES {
        return Err(SynthError::Usage(format!(
            "--classes must be between 1 and {MAX_CLASSES}, got {count}"
        )));
    }
    let base = defaults();
    if count <= base.len() {
        return Ok(base[..count].to_vec());
    }
    let last = (base.len() - 1) as f64;
    let width = count.to_string().len().max(2);
    Ok((0..count)
        .map(|i| {
            let t = last * i as f64 / (count - 1) as f64;
            let j = (t.floor() as usize).min(base.len() - 2);
            let f = t - j as f64;
            let (a, b) = (&base[j], &base[j + 1]);
            let lerp = |x: f64, y: f64| x + (y - x) * f;
            let loglerp = |x: f64, y: f64| (x.ln() + (y.ln() - x.ln()) * f).exp();
            let d_min = round_to(loglerp(a.d_min, b.d_min), 10.0);
            let d_max = round_to(loglerp(a.d_max, b.d_max), 10.0);
            let exponent = round_to(lerp(a.exponent, b.exponent), 1000.0);
            let compaction = round_to(lerp(a.compaction, b.compaction), 100.0);
            Gradation {
                name: format!("g{:0width$}-d{}-{}", i + 1, d_min.round(), d_max.round()),
                label: if f == 0.0 || f == 1.0 {
                    let same = if f == 0.0 { a } else { b };
                    format!("as {}: {}", same.name, same.label)
                } else {
                    format!(
                        "interpolated: d {d_min}–{d_max} px, n = {exponent} (between {} and {})",
                        a.name, b.name
                    )
                },
                d_min,
                d_max,
                exponent,
                compaction,
            }
        })
        .collect())
}

fn round_to(x: f64, per_unit: f64) -> f64 {
    (x * per_unit).round() / per_unit
}

/// A point of the sieve curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SievePoint {
    /// Sieve size, pixels at the reference size.
    pub size: f64,
    /// Mass fraction passing, 0..1.
    pub passing: f64,
}

impl Gradation {
    /// Mass fraction passing a sieve of size `d` (reference pixels).
    pub fn passing(&self, d: f64) -> f64 {
        let n = self.exponent;
        if d <= self.d_min {
            return 0.0;
        }
        if d >= self.d_max {
            return 1.0;
        }
        (d.powf(n) - self.d_min.powf(n)) / (self.d_max.powf(n) - self.d_min.powf(n))
    }

    /// The curve at sieves halving from d_max down to d_min, smallest first.
    pub fn sieve_curve(&self) -> Vec<SievePoint> {
        let mut sizes = vec![self.d_max];
        let mut d = self.d_max / 2.0;
        while d > self.d_min * 1.05 {
            sizes.push(d);
            d /= 2.0;
        }
        sizes.push(self.d_min);
        sizes.reverse();
        sizes
            .into_iter()
            .map(|size| SievePoint {
                size: round_to(size, 1000.0),
                passing: round_to(self.passing(size), 10_000.0),
            })
            .collect()
    }

    /// Sampler of grain diameters in `[lo, hi]` (any unit) with counts `∝ d^(n-3)`.
    pub fn sampler(&self, lo: f64, hi: f64) -> SizeSampler {
        SizeSampler::new(lo, hi, self.exponent)
    }
}

/// Inverse-CDF sampler of a truncated power law `density ∝ d^(n-3)` on `[lo, hi]`.
#[derive(Clone, Copy, Debug)]
pub struct SizeSampler {
    lo: f64,
    hi: f64,
    n: f64,
    beta: f64,
    lo_b: f64,
    span_b: f64,
}

impl SizeSampler {
    pub fn new(lo: f64, hi: f64, n: f64) -> Self {
        let hi = hi.max(lo);
        let beta = n - 2.0;
        let lo_b = lo.powf(beta);
        SizeSampler {
            lo,
            hi,
            n,
            beta,
            lo_b,
            span_b: hi.powf(beta) - lo_b,
        }
    }

    /// The diameter at cumulative count fraction `u` in [0, 1).
    pub fn at(&self, u: f64) -> f64 {
        if self.hi <= self.lo {
            return self.lo;
        }
        (self.lo_b + u * self.span_b)
            .powf(1.0 / self.beta)
            .clamp(self.lo, self.hi)
    }

    /// E[d²] of the distribution (for turning an area to cover into a grain count).
    pub fn mean_d2(&self) -> f64 {
        if self.hi <= self.lo {
            return self.lo * self.lo;
        }
        let num = (self.hi.powf(self.n) - self.lo.powf(self.n)) / self.n;
        let den = self.span_b / self.beta;
        num / den
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_format::rng::SeededRng;

    #[test]
    fn curve_runs_from_zero_to_one_and_rises() {
        for g in defaults() {
            assert_eq!(g.passing(g.d_min), 0.0);
            assert_eq!(g.passing(g.d_max), 1.0);
            let c = g.sieve_curve();
            assert_eq!(c.first().map(|p| p.size), Some(g.d_min));
            assert_eq!(c.last().map(|p| p.passing), Some(1.0));
            assert!(c.windows(2).all(|w| w[0].size < w[1].size));
            assert!(c.windows(2).all(|w| w[0].passing < w[1].passing), "{c:?}");
        }
    }

    /// Area-weighted (d²) share of sampled grains below each sieve matches the mass curve:
    /// what a photo from above shows, by Delesse's principle.
    #[test]
    fn sampling_follows_the_curve() {
        for g in defaults() {
            let s = g.sampler(g.d_min, g.d_max);
            let mut rng = SeededRng::for_key("test.sizes", 1, &[g.name.as_bytes()]);
            let sizes: Vec<f64> = (0..200_000).map(|_| s.at(rng.next_f64())).collect();
            assert!(sizes.iter().all(|&d| (g.d_min..=g.d_max).contains(&d)));
            let total: f64 = sizes.iter().map(|d| d * d).sum();
            for p in g.sieve_curve() {
                let below: f64 = sizes.iter().filter(|&&d| d <= p.size).map(|d| d * d).sum();
                let share = below / total;
                assert!(
                    (share - p.passing).abs() < 0.02,
                    "{}: at {} share {share} vs curve {}",
                    g.name,
                    p.size,
                    p.passing
                );
            }
            let m2 = sizes.iter().map(|d| d * d).sum::<f64>() / sizes.len() as f64;
            let rel = (m2 / s.mean_d2() - 1.0).abs();
            assert!(rel < 0.03, "{}: E[d²] {m2} vs {}", g.name, s.mean_d2());
        }
    }

    #[test]
    fn classes_count_and_interpolation() {
        assert!(for_classes(0).is_err());
        assert!(for_classes(MAX_CLASSES + 1).is_err());
        let three = for_classes(3).unwrap();
        assert_eq!(three, defaults()[..3].to_vec());
        let nine = for_classes(9).unwrap();
        assert_eq!(nine.len(), 9);
        let d = defaults();
        assert_eq!(nine[0].d_max, d[0].d_max);
        assert_eq!(nine[8].d_max, d[4].d_max);
        assert_eq!(nine[2].d_min, d[1].d_min);
        assert!(nine.windows(2).all(|w| w[0].d_max < w[1].d_max));
        assert!(nine.windows(2).all(|w| w[0].compaction > w[1].compaction));
        assert!(nine.windows(2).all(|w| w[0].name < w[1].name));
        let names: std::collections::BTreeSet<_> = nine.iter().map(|g| &g.name).collect();
        assert_eq!(names.len(), 9);
        assert!(nine.iter().all(|g| {
            g.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        }));
    }

    #[test]
    fn scale_is_one_at_reference_and_quarter_at_quarter() {
        assert_eq!(scale_for(REFERENCE_WIDTH, REFERENCE_HEIGHT), 1.0);
        assert!((scale_for(1224, 816) - 0.25).abs() < 1e-12);
    }
}
