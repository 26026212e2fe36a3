//! im2col and its adjoint (col2im) for one image, through a zero-padded copy of the image.
//!
//! The patch matrix has Cin·K·K rows, r = (ci·K + kh)·K + kw (OIHW weight order), and one column
//! per computed output pixel ([`Geometry::hc`] × [`Geometry::wc`]). A block of several images
//! shares one matrix: image i of the block owns the columns [i·hw, (i+1)·hw) of a matrix with
//! `ld` columns in all. Padding the image once (Cin·Hp·Wp floats) makes every patch row segment
//! a plain copy of `wc` floats, with no bounds logic in the K²-times-larger loops.
//!
//! These are `#[inline(always)]` so that they compile with the SIMD features of the caller's
//! `pulp` dispatch (see `fused::simd`).

use crate::geometry::Geometry;

/// Calls `$f::<N>` with the row width as a constant for the widths the default networks use
/// (64/32/16/8 at 64×64 or 32×32 input), so each short row copy/add compiles to a few vector
/// moves instead of a `memcpy` call or a loop; other widths take the `$dynamic` path.
macro_rules! by_width {
    ($wc:expr, $f:ident, $dynamic:ident, ($($arg:expr),*)) => {
        match $wc {
            8 => $f::<8>($($arg),*),
            16 => $f::<16>($($arg),*),
            32 => $f::<32>($($arg),*),
            64 => $f::<64>($($arg),*),
            _ => $dynamic($wc, $($arg),*),
        }
    };
}

/// Checks that `rows` rows of `n` floats at `stride` fit in a slice of `len` (a bug otherwise:
/// the row helpers below would silently stop early).
#[inline(always)]
fn fits(rows: usize, n: usize, stride: usize, len: usize) {
    assert!(
        rows == 0 || (rows - 1) * stride + n <= len,
        "row view out of bounds"
    );
}

/// dst row i (N floats, packed) = src[i·stride ..][..N], for every row of `dst`.
#[inline(always)]
fn copy_rows<const N: usize>(dst: &mut [f32], src: &[f32], stride: usize) {
    fits(dst.len() / N, N, stride, src.len());
    for (d, s) in dst
        .as_chunks_mut::<N>()
        .0
        .iter_mut()
        .zip(src.chunks(stride))
    {
        if let Some(s) = s.first_chunk::<N>() {
            *d = *s;
        }
    }
}

#[inline(always)]
fn copy_rows_dyn(n: usize, dst: &mut [f32], src: &[f32], stride: usize) {
    fits(dst.len() / n, n, stride, src.len());
    for (d, s) in dst.chunks_exact_mut(n).zip(src.chunks(stride)) {
        d.copy_from_slice(&s[..n]);
    }
}

/// dst[i·stride ..][..N] += src row i (N floats, packed), for every row of `src`.
#[inline(always)]
fn add_rows<const N: usize>(src: &[f32], dst: &mut [f32], stride: usize) {
    fits(src.len() / N, N, stride, dst.len());
    for (s, d) in src.as_chunks::<N>().0.iter().zip(dst.chunks_mut(stride)) {
        if let Some(d) = d.first_chunk_mut::<N>() {
            // Whole-array load, add, store: vectorises (an in-place element loop did not).
            let mut t = *d;
            for (a, b) in t.iter_mut().zip(s) {
                *a += b;
            }
            *d = t;
        }
    }
}

#[inline(always)]
fn add_rows_dyn(n: usize, src: &[f32], dst: &mut [f32], stride: usize) {
    fits(src.len() / n, n, stride, dst.len());
    for (s, d) in src.chunks_exact(n).zip(dst.chunks_mut(stride)) {
        for (a, b) in d[..n].iter_mut().zip(s) {
            *a += b;
        }
    }
}

/// dst rows (N floats, at stride `stride`) = src rows (N floats, packed).
#[inline(always)]
fn scatter_rows<const N: usize>(src: &[f32], dst: &mut [f32], stride: usize) {
    fits(src.len() / N, N, stride, dst.len());
    for (s, d) in src.as_chunks::<N>().0.iter().zip(dst.chunks_mut(stride)) {
        if let Some(d) = d.first_chunk_mut::<N>() {
            *d = *s;
        }
    }
}

#[inline(always)]
fn scatter_rows_dyn(n: usize, src: &[f32], dst: &mut [f32], stride: usize) {
    fits(src.len() / n, n, stride, dst.len());
    for (s, d) in src.chunks_exact(n).zip(dst.chunks_mut(stride)) {
        d[..n].copy_from_slice(s);
    }
}

/// Copies image `x` ([Cin,H,W]) into `xpad` ([Cin,Hp,Wp]) with a zero border of `pad`.
#[inline(always)]
pub fn pad_image(g: &Geometry, x: &[f32], xpad: &mut [f32]) {
    let (p, wp) = (g.pad, g.wp());
    if p > 0 {
        xpad.fill(0.0);
    }
    for (xc, pc) in x
        .chunks_exact(g.h * g.w)
        .zip(xpad.chunks_exact_mut(g.hp() * wp))
    {
        let dst = &mut pc[p * wp + p..];
        by_width!(g.w, scatter_rows, scatter_rows_dyn, (xc, dst, wp));
    }
}

/// Writes padded image `xpad` as patch columns [off, off + hw) of `col` (Cin·K·K × ld).
#[inline(always)]
pub fn im2col(g: &Geometry, xpad: &[f32], col: &mut [f32], ld: usize, off: usize) {
    let (k, hw, wc, wp) = (g.k, g.hw(), g.wc(), g.wp());
    let plane = g.hp() * wp;
    for ci in 0..g.cin {
        for kh in 0..k {
            for kw in 0..k {
                let r = (ci * k + kh) * k + kw;
                let row = &mut col[r * ld + off..r * ld + off + hw];
                let src = &xpad[ci * plane + kh * wp + kw..];
                by_width!(wc, copy_rows, copy_rows_dyn, (row, src, wp));
            }
        }
    }
}

/// Adds patch columns [off, off + hw) of `col` onto the padded image gradient `dxpad`
/// ([Cin,Hp,Wp], zeroed here first): the adjoint of [`im2col`]. Read the interior with [`unpad`].
#[inline(always)]
pub fn col2im(g: &Geometry, col: &[f32], ld: usize, off: usize, dxpad: &mut [f32]) {
    let (k, hw, wc, wp) = (g.k, g.hw(), g.wc(), g.wp());
    let plane = g.hp() * wp;
    dxpad.fill(0.0);
    // kw outermost: consecutive row adds then hit either other rows or the same columns of a
    // row; a one-float shift (kw+1) right after a store to the same row would defeat
    // store-to-load forwarding and stall every load.
    for ci in 0..g.cin {
        for kw in 0..k {
            for kh in 0..k {
                let r = (ci * k + kh) * k + kw;
                let row = &col[r * ld + off..r * ld + off + hw];
                let dst = &mut dxpad[ci * plane + kh * wp + kw..];
                by_width!(wc, add_rows, add_rows_dyn, (row, dst, wp));
            }
        }
    }
}

/// Copies the interior of a padded image gradient into `dx` ([Cin,H,W]).
#[inline(always)]
pub fn unpad(g: &Geometry, dxpad: &[f32], dx: &mut [f32]) {
    let (p, wp) = (g.pad, g.wp());
    for (dc, pc) in dx
        .chunks_exact_mut(g.h * g.w)
        .zip(dxpad.chunks_exact(g.hp() * wp))
    {
        let src = &pc[p * wp + p..];
        by_width!(g.w, copy_rows, copy_rows_dyn, (dc, src, wp));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(cin: usize, h: usize, w: usize, k: usize, pad: usize, pool: bool) -> Geometry {
        Geometry::new(&[1, cin, h, w], &[1, cin, k, k], &[1], pad, pool).unwrap()
    }

    /// Direct definition: col[r][oy·wc+ox] = x[ci][oy+kh-pad][ox+kw-pad], zero outside.
    fn naive(g: &Geometry, x: &[f32]) -> Vec<f32> {
        let mut col = vec![0.0; g.ckk() * g.hw()];
        for ci in 0..g.cin {
            for kh in 0..g.k {
                for kw in 0..g.k {
                    let r = (ci * g.k + kh) * g.k + kw;
                    for oy in 0..g.hc() {
                        for ox in 0..g.wc() {
                            let iy = oy as isize + kh as isize - g.pad as isize;
                            let ix = ox as isize + kw as isize - g.pad as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                col[r * g.hw() + oy * g.wc() + ox] =
                                    x[(ci * g.h + iy as usize) * g.w + ix as usize];
                            }
                        }
                    }
                }
            }
        }
        col
    }

    #[test]
    fn im2col_matches_definition_and_col2im_is_its_adjoint() {
        // Odd sizes, padding wider than the kernel needs, pooled shapes with a dropped edge.
        for &(cin, h, w, k, pad, pool) in &[
            (1, 5, 7, 3, 1, false),
            (2, 6, 5, 5, 2, false),
            (3, 4, 4, 5, 2, true),
            (1, 9, 3, 3, 0, false),
            (2, 2, 3, 5, 2, false),
            (2, 7, 9, 3, 0, true),
            (2, 8, 8, 5, 2, true),    // constant-width paths: 8 wide
            (1, 16, 17, 3, 1, false), // 16 wide input rows, 17 wide output rows
            (3, 18, 18, 3, 0, false), // 16 wide output rows from 18 wide input
            (1, 32, 32, 5, 2, true),
        ] {
            let g = geometry(cin, h, w, k, pad, pool);
            let x: Vec<f32> = (0..g.in_image()).map(|i| (i as f32) * 0.5 - 3.0).collect();
            let want = naive(&g, &x);
            // Stale contents in the padded buffer and around the matrix must not leak in.
            let mut xpad = vec![f32::NAN; g.padded_image()];
            pad_image(&g, &x, &mut xpad);
            let ld = 2 * g.hw();
            let mut col = vec![f32::NAN; g.ckk() * ld];
            im2col(&g, &xpad, &mut col, ld, g.hw());
            for r in 0..g.ckk() {
                assert_eq!(
                    &col[r * ld + g.hw()..(r + 1) * ld],
                    &want[r * g.hw()..(r + 1) * g.hw()]
                );
            }
            // <im2col(x), c> == <x, col2im(c)> for an arbitrary c.
            let c: Vec<f32> = (0..g.ckk() * ld)
                .map(|i| ((i * 37 % 17) as f32) - 8.0)
                .collect();
            let mut dxpad = vec![f32::NAN; g.padded_image()];
            col2im(&g, &c, ld, g.hw(), &mut dxpad);
            let mut dx = vec![f32::NAN; g.in_image()];
            unpad(&g, &dxpad, &mut dx);
            let lhs: f64 = (0..g.ckk())
                .flat_map(|r| (0..g.hw()).map(move |j| (r, j)))
                .map(|(r, j)| want[r * g.hw() + j] as f64 * c[r * ld + g.hw() + j] as f64)
                .sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(&a, &b)| a as f64 * b as f64).sum();
            assert!(
                (lhs - rhs).abs() < 1e-6 * lhs.abs().max(1.0),
                "{lhs} vs {rhs}"
            );
        }
    }
}
