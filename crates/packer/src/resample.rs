//! Pillow's antialiased bilinear resample of 8-bit single-channel images, reproduced exactly.
//!
//! Pillow (`Image.resize(size, Image.BILINEAR)`, which torchvision's `Resize(antialias=True)`
//! calls on PIL images) convolves with a triangle filter stretched by the downscale factor, in
//! two passes: horizontal first into an 8-bit intermediate, then vertical. Weights are computed
//! in double precision, normalised to sum 1, then turned into 22-bit fixed point; every output
//! is `clip8((0.5 + Σ w·p) >> 22)`. This module follows `libImaging/Resample.c` step for step,
//! in integer arithmetic after the weights, so its output is the same bytes on every machine.

/// Fixed-point weights of one pass: for each output pixel, the first input index and its
/// weights.
#[derive(Clone, Debug)]
pub(crate) struct Weights {
    /// Per output pixel: first input pixel used.
    starts: Vec<usize>,
    /// Per output pixel: number of input pixels used (≤ `ksize`).
    lens: Vec<usize>,
    /// `out_size × ksize` weights, row-major; unused tails are zero.
    values: Vec<i32>,
    ksize: usize,
}

/// Pillow's `PRECISION_BITS` for 8-bit images: 32 - 8 - 2.
const PRECISION_BITS: u32 = 22;

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

impl Weights {
    /// `precompute_coeffs` + `normalize_coeffs_8bpc` from Pillow, for the whole input range.
    pub(crate) fn new(in_size: usize, out_size: usize) -> Weights {
        let support_base = 1.0; // bilinear
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = support_base * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let ss = 1.0 / filterscale;
        let mut starts = Vec::with_capacity(out_size);
        let mut lens = Vec::with_capacity(out_size);
        let mut values = vec![0i32; out_size * ksize];
        let mut k = vec![0f64; ksize];
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            // Pillow: xmin = (int)(center - support + 0.5), clamped; C's cast truncates toward
            // zero, so the clamp to 0 handles the negative case exactly as Pillow does.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let n = xmax.saturating_sub(xmin);
            let mut ww = 0.0;
            for (x, slot) in k.iter_mut().enumerate().take(n) {
                let w = bilinear_filter((x as f64 + xmin as f64 - center + 0.5) * ss);
                *slot = w;
                ww += w;
            }
            for (x, &w) in k.iter().enumerate().take(n) {
                let w = if ww != 0.0 { w / ww } else { w };
                let fixed = w * (1u32 << PRECISION_BITS) as f64;
                values[xx * ksize + x] = if w < 0.0 {
                    (-0.5 + fixed) as i32
                } else {
                    (0.5 + fixed) as i32
                };
            }
            starts.push(xmin);
            lens.push(n);
        }
        Weights {
            starts,
            lens,
            values,
            ksize,
        }
    }

    #[inline]
    fn of(&self, out: usize) -> (usize, &[i32]) {
        let w = &self.values[out * self.ksize..out * self.ksize + self.lens[out]];
        (self.starts[out], w)
    }
}

#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const ROUND: i32 = 1 << (PRECISION_BITS - 1);

/// Reusable weights and intermediate buffer for resizing many images of one shape.
#[derive(Clone, Debug, Default)]
pub(crate) struct Resampler {
    key: Option<(usize, usize, usize, usize)>,
    horiz: Option<Weights>,
    vert: Option<Weights>,
    temp: Vec<u8>,
}

impl Resampler {
    /// Resizes the `w`×`h` gray image `src` (row-major, tightly packed) to `ow`×`oh` in `dst`.
    pub(crate) fn resize(
        &mut self,
        src: &[u8],
        w: usize,
        h: usize,
        dst: &mut [u8],
        ow: usize,
        oh: usize,
    ) {
        debug_assert_eq!(src.len(), w * h);
        debug_assert_eq!(dst.len(), ow * oh);
        if self.key != Some((w, h, ow, oh)) {
            // Pillow skips a pass whose size does not change.
            self.horiz = (w != ow).then(|| Weights::new(w, ow));
            self.vert = (h != oh).then(|| Weights::new(h, oh));
            self.key = Some((w, h, ow, oh));
        }
        match (&self.horiz, &self.vert) {
            (None, None) => dst.copy_from_slice(src),
            (Some(hz), None) => horizontal(src, w, 0..h, hz, dst, ow),
            (None, Some(vt)) => vertical(src, w, 0, vt, dst, oh),
            (Some(hz), Some(vt)) => {
                // Only the rows the vertical pass reads are computed, as Pillow does.
                let first = vt.starts[0];
                let last = (0..oh)
                    .map(|y| vt.starts[y] + vt.lens[y])
                    .max()
                    .unwrap_or(first);
                self.temp.resize((last - first) * ow, 0);
                horizontal(src, w, first..last, hz, &mut self.temp, ow);
                vertical(&self.temp, ow, first, vt, dst, oh);
            }
        }
    }
}

/// Horizontal pass over source rows `rows` into `dst` (`rows.len()` rows of `ow`).
fn horizontal(
    src: &[u8],
    w: usize,
    rows: std::ops::Range<usize>,
    wt: &Weights,
    dst: &mut [u8],
    ow: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { horizontal_avx2(src, w, rows, wt, dst, ow) };
    }
    horizontal_generic(src, w, rows, wt, dst, ow)
}

/// The same integer code compiled for AVX2: identical results, vectorised dot products.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn horizontal_avx2(
    src: &[u8],
    w: usize,
    rows: std::ops::Range<usize>,
    wt: &Weights,
    dst: &mut [u8],
    ow: usize,
) {
    horizontal_generic(src, w, rows, wt, dst, ow)
}

#[inline(always)]
fn horizontal_generic(
    src: &[u8],
    w: usize,
    rows: std::ops::Range<usize>,
    wt: &Weights,
    dst: &mut [u8],
    ow: usize,
) {
    for (src_row, dst_row) in src
        .chunks_exact(w)
        .skip(rows.start)
        .take(rows.len())
        .zip(dst.chunks_exact_mut(ow))
    {
        for (xx, out) in dst_row.iter_mut().enumerate() {
            let (start, k) = wt.of(xx);
            let px = &src_row[start..start + k.len()];
            let mut acc = ROUND;
            for (&p, &c) in px.iter().zip(k) {
                acc += p as i32 * c;
            }
            *out = clip8(acc);
        }
    }
}

/// Vertical pass: `src` holds rows `row0..` of width `w`; output is `oh` rows of `w`.
fn vertical(src: &[u8], w: usize, row0: usize, wt: &Weights, dst: &mut [u8], oh: usize) {
    let mut acc = vec![0i32; w];
    for (yy, dst_row) in dst.chunks_exact_mut(w).enumerate().take(oh) {
        let (start, k) = wt.of(yy);
        acc.fill(ROUND);
        // Row-at-a-time accumulation: same sums as Pillow's per-pixel loop (integer addition
        // is associative), but vectorisable.
        for (i, &c) in k.iter().enumerate() {
            let row = &src[(start - row0 + i) * w..(start - row0 + i + 1) * w];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += p as i32 * c;
            }
        }
        for (o, &a) in dst_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(500, 64), (257, 17), (128, 32), (8, 64), (77, 8)] {
            let wt = Weights::new(i, o);
            for x in 0..o {
                let (start, k) = wt.of(x);
                let s: i64 = k.iter().map(|&v| v as i64).sum();
                assert!(
                    (s - (1 << PRECISION_BITS)).abs() <= k.len() as i64,
                    "{i}->{o} {x}"
                );
                assert!(start + k.len() <= i);
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let mut r = Resampler::default();
        for v in [0u8, 1, 127, 254, 255] {
            let src = vec![v; 300 * 200];
            let mut dst = vec![0u8; 64 * 64];
            r.resize(&src, 300, 200, &mut dst, 64, 64);
            assert!(dst.iter().all(|&d| d == v), "{v}");
        }
    }

    #[test]
    fn dispatched_and_generic_passes_agree() {
        // `horizontal` may run the AVX2 build; it must give the generic code's bytes.
        for (w, ow) in [(500usize, 64usize), (257, 17), (33, 8), (7, 64)] {
            let h = 11;
            let src: Vec<u8> = (0..w * h).map(|i| (i * 7919 % 256) as u8).collect();
            let wt = Weights::new(w, ow);
            let mut a = vec![0u8; h * ow];
            let mut b = vec![0u8; h * ow];
            horizontal(&src, w, 0..h, &wt, &mut a, ow);
            horizontal_generic(&src, w, 0..h, &wt, &mut b, ow);
            assert_eq!(a, b, "{w}->{ow}");
        }
    }

    #[test]
    fn same_size_is_a_copy() {
        let src: Vec<u8> = (0..64 * 64).map(|i| (i * 31 % 251) as u8).collect();
        let mut dst = vec![0u8; 64 * 64];
        Resampler::default().resize(&src, 64, 64, &mut dst, 64, 64);
        assert_eq!(src, dst);
    }
}
