//! Grain outlines: angular, star-shaped stones described by their radius as a function of
//! direction, stored as a small lookup table so the per-pixel inside test needs no trigonometry.
//!
//! Directions are indexed by the *diamond angle* `p ∈ [0, 4)`, a monotonic, continuous stand-in
//! for the polar angle that costs one division. A crushed stone is the intersection of a few
//! random half-planes (its fracture faces) with a disc that rounds off the sharpest corners.

use std::sync::OnceLock;

use ballast_format::rng::SeededRng;

/// Entries of the unit-circle table used for random directions.
pub const UNIT_STEPS: usize = 1024;

/// `(cos, sin)` of `2π k / UNIT_STEPS`.
pub fn unit(k: usize) -> [f32; 2] {
    static T: OnceLock<Vec<[f32; 2]>> = OnceLock::new();
    let t = T.get_or_init(|| {
        (0..UNIT_STEPS)
            .map(|k| {
                let (s, c) = (std::f64::consts::TAU * k as f64 / UNIT_STEPS as f64).sin_cos();
                [c as f32, s as f32]
            })
            .collect()
    });
    t[k % UNIT_STEPS]
}

/// Diamond angle of (`u`, `v`) in [0, 4]: 0 along +u, 1 along +v, 2 along −u, 3 along −v.
#[inline(always)]
pub fn diamond(u: f32, v: f32) -> f32 {
    // Branch-free: with f = |v| / (|u| + |v|), quadrant I is f, II 2 − f, III 2 + f, IV 4 − f.
    // Quadrants are told by sign bits, so −0.0 counts as negative (continuity makes that moot).
    let (au, av) = (u.abs(), v.abs());
    let f = av / (au + av + 1e-30);
    let su = u.to_bits() >> 31;
    let sv = v.to_bits() >> 31;
    let base = (2 * su + 4 * (1 - su) * sv) as f32;
    let sign = 1.0 - 2.0 * (su ^ sv) as f32;
    base + sign * f
}

/// Unit directions and polar-area weights for a table of `4 m` entries.
struct DirTable {
    dirs: Vec<[f32; 2]>,
    /// dθ per entry (sums to 2π).
    dtheta: Vec<f32>,
}

/// Fracture faces lie at distance FACE_MIN..FACE_MIN+FACE_SPAN from the centre (unscaled)...
const FACE_MIN: f32 = 0.78;
const FACE_SPAN: f32 = 0.22;
/// ...and corners beyond ROUND_MIN..ROUND_MIN+ROUND_SPAN are worn off.
const ROUND_MIN: f32 = 1.04;
const ROUND_SPAN: f32 = 0.2;

/// Largest rim length (pixels) one table entry spans.
const RIM_STEP_PX: f32 = 2.0;

const MIN_M_LOG2: u32 = 1;
const MAX_M_LOG2: u32 = 8;

fn dir_table(m_log2: u32) -> &'static DirTable {
    static T: OnceLock<Vec<DirTable>> = OnceLock::new();
    let all = T.get_or_init(|| {
        (MIN_M_LOG2..=MAX_M_LOG2)
            .map(|l| {
                let m = 1usize << l;
                let mut dirs = Vec::with_capacity(4 * m);
                let mut dtheta = Vec::with_capacity(4 * m);
                for j in 0..4 * m {
                    let f = (j % m) as f32 / m as f32;
                    let (u, v) = match j / m {
                        0 => (1.0 - f, f),
                        1 => (-f, 1.0 - f),
                        2 => (f - 1.0, -f),
                        _ => (f, f - 1.0),
                    };
                    let len2 = u * u + v * v;
                    let len = len2.sqrt();
                    dirs.push([u / len, v / len]);
                    // θ = atan(f / (1 - f)) within a quadrant: dθ/df = 1 / ((1-f)² + f²).
                    dtheta.push(1.0 / (m as f32 * len2));
                }
                DirTable { dirs, dtheta }
            })
            .collect()
    });
    &all[(m_log2 - MIN_M_LOG2) as usize]
}

/// A grain outline: `1 / radius` in pixels, by diamond angle, linearly interpolated.
pub struct Outline {
    /// Entries per unit of diamond angle (a quarter turn).
    quarter: f32,
    n: usize,
    /// `n + 1` entries; the last repeats the first.
    inv_r: Vec<f32>,
    /// Largest radius, pixels.
    pub max_r: f32,
}

impl Default for Outline {
    fn default() -> Self {
        Self::new()
    }
}

impl Outline {
    pub fn new() -> Self {
        Outline {
            quarter: 1.0,
            n: 0,
            inv_r: Vec::with_capacity(4 * (1 << MAX_M_LOG2) + 1),
            max_r: 0.0,
        }
    }

    /// An upper bound of `max_r` for any outline of diameter `d`: the outline contains the disc
    /// of radius FACE_MIN (unscaled), so its scale is at most r0 / FACE_MIN.
    pub fn max_radius_bound(d: f32) -> f32 {
        0.5 * d * (ROUND_MIN + ROUND_SPAN) / FACE_MIN
    }

    /// Makes a new random stone whose outline encloses the area of a disc of diameter `d` px.
    /// The table is sized so each entry spans at most RIM_STEP_PX of the rim.
    pub fn rebuild(&mut self, rng: &mut SeededRng, d: f32) {
        let r0 = 0.5 * d;
        let want = (std::f32::consts::FRAC_PI_2 * r0 / RIM_STEP_PX)
            .ceil()
            .max(1.0) as u32;
        let m_log2 = (32 - want.saturating_sub(1).leading_zeros()).clamp(MIN_M_LOG2, MAX_M_LOG2);
        let table = dir_table(m_log2);
        let n = table.dirs.len();

        // Fracture faces: k half-planes {x·n_i <= h_i}, normals spread around the circle so the
        // intersection is bounded, each jittered by up to ±30 % of the spacing.
        let k = 5 + rng.below(5) as usize;
        let start = rng.below(UNIT_STEPS as u64) as usize;
        let spacing = UNIT_STEPS as f32 / k as f32;
        let mut faces = [[0f32; 2]; 9];
        for (i, face) in faces.iter_mut().enumerate().take(k) {
            let jitter = (rng.next_f32() - 0.5) * 0.6 * spacing;
            let at = start as f32 + i as f32 * spacing + jitter + UNIT_STEPS as f32;
            let [c, s] = unit(at as usize);
            let inv_h = 1.0 / (FACE_MIN + FACE_SPAN * rng.next_f32());
            *face = [c * inv_h, s * inv_h];
        }
        // Rounding disc: clips corners that stick out beyond it.
        let inv_round = 1.0 / (ROUND_MIN + ROUND_SPAN * rng.next_f32());

        self.inv_r.clear();
        let mut area2 = 0f32; // Σ R² dθ = 2 × area
        for (dir, dth) in table.dirs.iter().zip(&table.dtheta) {
            let mut inv = inv_round;
            for f in &faces[..k] {
                let x = dir[0] * f[0] + dir[1] * f[1];
                inv = if x > inv { x } else { inv };
            }
            self.inv_r.push(inv);
            area2 += dth / (inv * inv);
        }
        // Scale so the area equals that of a disc of radius r0: π r0² = area2 / 2 × s².
        let scale = r0 * (2.0 * std::f32::consts::PI / area2).sqrt();
        let inv_scale = 1.0 / scale;
        let mut min_inv = f32::INFINITY;
        for v in &mut self.inv_r {
            *v *= inv_scale;
            min_inv = min_inv.min(*v);
        }
        let first = self.inv_r[0];
        self.inv_r.push(first);
        self.n = n;
        self.quarter = (n / 4) as f32;
        self.max_r = 1.0 / min_inv;
    }

    /// 1 / radius (pixels) of the outline in the direction of (`u`, `v`).
    #[inline(always)]
    pub fn inv_radius(&self, u: f32, v: f32) -> f32 {
        let fi = diamond(u, v) * self.quarter;
        let j = (fi as usize).min(self.n - 1);
        let f = fi - j as f32;
        let a = self.inv_r[j];
        let b = self.inv_r[j + 1];
        a + (b - a) * f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamond_angle_is_monotonic_and_continuous() {
        let mut last = -1.0;
        for k in 0..UNIT_STEPS {
            let [c, s] = unit(k);
            let p = diamond(c, s);
            assert!((0.0..4.0).contains(&p), "{k}: {p}");
            assert!(p > last, "not monotonic at {k}: {p} <= {last}");
            last = p;
        }
        assert_eq!(diamond(0.0, 0.0), 0.0);
        assert!((diamond(0.0, 1.0) - 1.0).abs() < 1e-6);
        assert!((diamond(-1.0, 0.0) - 2.0).abs() < 1e-6);
        assert!((diamond(0.0, -1.0) - 3.0).abs() < 1e-6);
    }

    /// Counting lattice points inside the outline gives the requested disc area, the outline
    /// is angular (not a circle) and the table interpolates the same radius on both sides of
    /// the seam at angle 0.
    #[test]
    fn outline_area_and_shape() {
        let mut rng = SeededRng::for_key("test.shape", 0, &[]);
        let mut o = Outline::new();
        for &d in &[3.0f32, 10.0, 40.0, 200.0] {
            for _ in 0..20 {
                o.rebuild(&mut rng, d);
                let r = o.max_r.ceil() as i32 + 1;
                let step = (d / 100.0).max(0.05);
                let mut inside = 0u64;
                let steps = (r as f32 / step) as i32;
                for iy in -steps..=steps {
                    for ix in -steps..=steps {
                        let (u, v) = (ix as f32 * step, iy as f32 * step);
                        let ir = o.inv_radius(u, v);
                        if (u * u + v * v) * ir * ir <= 1.0 {
                            inside += 1;
                        }
                    }
                }
                let area = inside as f32 * step * step;
                let want = std::f32::consts::PI * d * d / 4.0;
                // Few table entries on the smallest grains: their area is rougher.
                let tolerance = if d < 5.0 { 0.08 } else { 0.04 };
                assert!(
                    (area / want - 1.0).abs() < tolerance,
                    "d {d}: area {area} want {want}"
                );
                assert!(
                    o.max_r > 0.5 * d && o.max_r <= Outline::max_radius_bound(d),
                    "{}",
                    o.max_r
                );
                let rmin = 1.0 / o.inv_r.iter().cloned().fold(0.0, f32::max);
                assert!(rmin < 0.97 * o.max_r, "outline is a circle");
                let below = o.inv_radius(1.0, -1e-6);
                let above = o.inv_radius(1.0, 1e-6);
                assert!((below - above).abs() < 1e-3 * above.abs());
            }
        }
    }
}
