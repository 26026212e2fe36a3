//! Stone surface texture: one fixed, tileable value-noise table with a mip chain.
//!
//! Grains sample it in their own rotated frame at a rate fixed in reference pixels, so the
//! speckle of the stone surface has the same physical size in every class (only the grain sizes
//! tell classes apart). A smaller render samples a coarser mip level, i.e. the area average a
//! real downscaled photo would show, instead of aliased full-strength speckle.

use std::sync::OnceLock;

use ballast_format::rng::SeededRng;

/// Side of the finest level (a power of two).
const BASE_LOG2: u32 = 9;
/// Coarsest level kept: 16 × 16.
const MIN_LOG2: u32 = 4;
/// Octaves as (lattice period in cells, weight): blotches down to crystal-size speckle.
const OCTAVES: [(usize, f32); 6] = [
    (64, 0.30),
    (32, 0.35),
    (16, 0.35),
    (8, 0.35),
    (4, 0.30),
    (2, 0.25),
];
/// i8 units per standard deviation of the finest level.
pub const UNITS_PER_SIGMA: f32 = 42.0;

/// One mip level: `side × side` i8 samples, row-major.
pub struct Level {
    pub log2: u32,
    pub data: Vec<i8>,
}

/// The texture table, finest level first.
pub struct Texture {
    pub levels: Vec<Level>,
}

/// The shared table (built once per process; a constant of the renderer, same for every seed).
pub fn texture() -> &'static Texture {
    static T: OnceLock<Texture> = OnceLock::new();
    T.get_or_init(build)
}

fn build() -> Texture {
    let side = 1usize << BASE_LOG2;
    let mut acc = vec![0f32; side * side];
    let mut rng = SeededRng::for_key("synth.texture", 0, &[]);
    for &(period, weight) in &OCTAVES {
        let cells = side / period;
        let lattice: Vec<f32> = (0..cells * cells)
            .map(|_| rng.next_f32() * 2.0 - 1.0)
            .collect();
        let inv = 1.0 / period as f32;
        for y in 0..side {
            let fy = y as f32 * inv;
            let (iy, ty) = (fy as usize, smooth(fy.fract()));
            let (r0, r1) = (iy % cells * cells, (iy + 1) % cells * cells);
            let row = &mut acc[y * side..(y + 1) * side];
            for (x, out) in row.iter_mut().enumerate() {
                let fx = x as f32 * inv;
                let (ix, tx) = (fx as usize, smooth(fx.fract()));
                let (c0, c1) = (ix % cells, (ix + 1) % cells);
                let top = lattice[r0 + c0] + (lattice[r0 + c1] - lattice[r0 + c0]) * tx;
                let bot = lattice[r1 + c0] + (lattice[r1 + c1] - lattice[r1 + c0]) * tx;
                *out += weight * (top + (bot - top) * ty);
            }
        }
    }
    let n = acc.len() as f64;
    let mean = acc.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = acc.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let k = UNITS_PER_SIGMA / var.sqrt().max(1e-9) as f32;
    let mut level: Vec<f32> = acc.iter().map(|&v| (v - mean as f32) * k).collect();
    let mut levels = Vec::new();
    let mut log2 = BASE_LOG2;
    loop {
        levels.push(Level {
            log2,
            data: level
                .iter()
                .map(|&v| v.round().clamp(-127.0, 127.0) as i8)
                .collect(),
        });
        if log2 == MIN_LOG2 {
            break;
        }
        // 2×2 box average of a tileable image stays tileable.
        let s = 1usize << log2;
        let h = s / 2;
        let mut next = vec![0f32; h * h];
        for y in 0..h {
            for x in 0..h {
                let i = 2 * y * s + 2 * x;
                next[y * h + x] =
                    0.25 * (level[i] + level[i + 1] + level[i + s] + level[i + s + 1]);
            }
        }
        level = next;
        log2 -= 1;
    }
    Texture { levels }
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// A grain's view of the texture: which level, at what rate, from which offset.
#[derive(Clone, Copy)]
pub struct TexSampler<'a> {
    data: &'a [i8],
    shift: u32,
    mask: i32,
    scale: f32,
    ox: f32,
    oy: f32,
    /// Relative brightness change per i8 unit.
    amp: f32,
}

impl<'a> TexSampler<'a> {
    /// `rate`: table cells per output pixel; `amp`: relative brightness change per standard
    /// deviation; `ox`, `oy` in [0, 1): where in the table this grain starts.
    pub fn new(tex: &'a Texture, rate: f32, amp: f32, ox: f32, oy: f32) -> Self {
        let max_level = tex.levels.len() - 1;
        let level = if rate > 1.0 {
            (rate.log2().floor() as usize).min(max_level)
        } else {
            0
        };
        let l = &tex.levels[level];
        let side = (1u32 << l.log2) as f32;
        TexSampler {
            data: &l.data,
            shift: l.log2,
            mask: (1i32 << l.log2) - 1,
            scale: rate / (1u32 << level) as f32,
            // Offsets well above any negative coordinate keep the float→int cast positive.
            ox: (ox + 8.0) * side,
            oy: (oy + 8.0) * side,
            amp: amp / UNITS_PER_SIGMA,
        }
    }

    /// 1 + relative brightness change at local coordinates (`u`, `v`) in pixels.
    #[inline(always)]
    pub fn factor(&self, u: f32, v: f32) -> f32 {
        let (tu, tv) = self.fixed(u, v);
        self.factor_fixed(tu, tv)
    }

    /// Table coordinates of local (`u`, `v`) in 16.16 fixed point: painting steps them with
    /// integer adds (see [`Self::fixed_step`]) instead of converting floats at every pixel.
    #[inline]
    pub fn fixed(&self, u: f32, v: f32) -> (i32, i32) {
        (
            ((u * self.scale + self.ox) * 65536.0) as i32,
            ((v * self.scale + self.oy) * 65536.0) as i32,
        )
    }

    /// Change of [`Self::fixed`] coordinates for a change (`du`, `dv`) of local coordinates.
    pub fn fixed_step(&self, du: f32, dv: f32) -> (i32, i32) {
        (
            (du * self.scale * 65536.0) as i32,
            (dv * self.scale * 65536.0) as i32,
        )
    }

    /// 1 + relative brightness change at fixed-point table coordinates (any value: the table
    /// wraps around).
    #[inline(always)]
    pub fn factor_fixed(&self, tu: i32, tv: i32) -> f32 {
        let tx = (tu >> 16) & self.mask;
        let ty = (tv >> 16) & self.mask;
        let i = ((ty << self.shift) | tx) as usize;
        1.0 + self.amp * self.data[i] as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_halve_and_keep_zero_mean_with_falling_contrast() {
        let t = texture();
        assert_eq!(t.levels.len() as u32, BASE_LOG2 - MIN_LOG2 + 1);
        let mut last_sd = f64::INFINITY;
        for (k, l) in t.levels.iter().enumerate() {
            assert_eq!(l.data.len(), 1 << (2 * (BASE_LOG2 as usize - k)));
            let n = l.data.len() as f64;
            let mean = l.data.iter().map(|&v| v as f64).sum::<f64>() / n;
            let sd = (l
                .data
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / n)
                .sqrt();
            assert!(mean.abs() < 2.0, "level {k} mean {mean}");
            assert!(sd < last_sd, "level {k}: averaging must lower contrast");
            last_sd = sd;
        }
        let sd0 = {
            let d = &t.levels[0].data;
            (d.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / d.len() as f64).sqrt()
        };
        assert!((sd0 - UNITS_PER_SIGMA as f64).abs() < 2.0, "{sd0}");
    }

    #[test]
    fn sampler_picks_a_level_by_rate_and_wraps() {
        let t = texture();
        let fine = TexSampler::new(t, 0.8, 0.2, 0.0, 0.0);
        assert_eq!(fine.shift, BASE_LOG2);
        let coarse = TexSampler::new(t, 9.0, 0.2, 0.5, 0.5);
        assert_eq!(coarse.shift, BASE_LOG2 - 3);
        // Far negative and positive coordinates still land inside the table.
        for &(u, v) in &[(-5000.0, 7.0), (1e5, -1e5), (0.0, 0.0)] {
            let f = coarse.factor(u, v);
            assert!((0.3..1.7).contains(&f), "{f}");
        }
    }
}
