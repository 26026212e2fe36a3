//! The thumbnail a map is drawn on: the photo downscaled by exact area averaging (no
//! aliasing), in integers so it is deterministic, bands of rows in parallel.

use ballast_tiler::photo::Pixels;
use image::RgbImage;
use rayon::prelude::*;

/// A downscaled colour copy of a photo and its scale (thumbnail px per photo px).
#[derive(Clone, Debug, PartialEq)]
pub struct Thumbnail {
    pub image: RgbImage,
    pub scale: f64,
}

/// Downscales so the longer side is at most `max_side` (never upscales), averaging the photo
/// pixels each thumbnail pixel covers (exact area weights, so no aliasing); gray photos become
/// RGB. Never 0 px: an empty photo gives a 1×1 black thumbnail, `max_side` 0 counts as 1.
pub fn thumbnail(pixels: &Pixels, max_side: u32) -> Thumbnail {
    let (w, h) = (pixels.width(), pixels.height());
    let c = pixels.channels();
    let n = w as usize * h as usize * c;
    let Some(raw) = pixels.as_raw().get(..n).filter(|_| w > 0 && h > 0) else {
        return Thumbnail {
            image: RgbImage::new(1, 1),
            scale: 1.0,
        };
    };
    let long = w.max(h);
    let max_side = max_side.max(1);
    let (tw, th) = if long <= max_side {
        (w, h)
    } else {
        let s = f64::from(max_side) / f64::from(long);
        let fit = |v: u32| ((f64::from(v) * s).round() as u32).clamp(1, v);
        (fit(w), fit(h))
    };
    let scale = f64::from(tw.max(th)) / f64::from(long);
    let small = if (tw, th) == (w, h) {
        raw.to_vec()
    } else if c == 1 {
        area_resize::<1>(raw, w, h, tw, th)
    } else {
        area_resize::<3>(raw, w, h, tw, th)
    };
    let rgb = if c == 1 {
        small.iter().flat_map(|&v| [v, v, v]).collect()
    } else {
        small
    };
    // The buffer has exactly tw·th·3 bytes by construction.
    let image = RgbImage::from_raw(tw, th, rgb).unwrap_or_else(|| RgbImage::new(tw, th));
    Thumbnail { image, scale }
}

/// The source pixels one output pixel covers along an axis of `n` source pixels resampled to
/// `t`. In units where a source pixel is `t` wide and an output pixel `n` wide, the first
/// (`lo`) and last (`hi - 1`) pixels may be partly inside (weights `w_lo`, `w_hi`), the ones
/// between weigh `t`; the weights sum to `n`.
#[derive(Clone, Copy, Debug)]
struct Span {
    lo: usize,
    hi: usize,
    w_lo: u64,
    w_hi: u64,
}

fn spans(n: u32, t: u32) -> Vec<Span> {
    let (n, t) = (u64::from(n), u64::from(t));
    (0..t)
        .map(|j| {
            let (a, b) = (j * n, (j + 1) * n);
            let lo = a / t;
            let hi = b.div_ceil(t);
            let w_lo = ((lo + 1) * t).min(b) - a;
            let w_hi = if hi - 1 > lo { b - (hi - 1) * t } else { 0 };
            Span {
                lo: lo as usize,
                hi: hi as usize,
                w_lo,
                w_hi,
            }
        })
        .collect()
}

/// Area-averaging downscale of `C`-channel interleaved `src` (`w`×`h`) to `tw`×`th`, in
/// integers so it is exact and deterministic. Horizontal sums are formed per source row and
/// spread over the (at most two) output rows each source row touches; bands of output rows run
/// in parallel.
fn area_resize<const C: usize>(src: &[u8], w: u32, h: u32, tw: u32, th: u32) -> Vec<u8> {
    let hs = spans(w, tw);
    let vs = spans(h, th);
    let row_len = w as usize * C;
    let out_row = tw as usize * C;
    let mut out = vec![0u8; out_row * th as usize];
    // Total weight per output sample: w horizontally times h vertically.
    let inv = 1.0 / (f64::from(w) * f64::from(h));
    let band_rows = 16usize;
    out.par_chunks_mut(out_row * band_rows)
        .enumerate()
        .for_each(|(band, chunk)| {
            let k0 = band * band_rows;
            let rows = chunk.len() / out_row;
            let mut acc = vec![0u64; out_row * rows];
            let mut hrow = vec![0u64; out_row];
            let (y_lo, y_hi) = (vs[k0].lo, vs[k0 + rows - 1].hi);
            for y in y_lo..y_hi {
                let row = &src[y * row_len..(y + 1) * row_len];
                horizontal::<C>(row, &hs, u64::from(tw), &mut hrow);
                // Output rows of this band that source row y overlaps, with the overlap.
                let (ya, yb) = (y as u64 * u64::from(th), (y as u64 + 1) * u64::from(th));
                let first = (ya / u64::from(h)) as usize;
                let last = ((yb - 1) / u64::from(h)) as usize;
                for k in first.max(k0)..=last.min(k0 + rows - 1) {
                    let (ka, kb) = (k as u64 * u64::from(h), (k as u64 + 1) * u64::from(h));
                    let wy = yb.min(kb) - ya.max(ka);
                    let a = &mut acc[(k - k0) * out_row..(k - k0 + 1) * out_row];
                    for (a, &v) in a.iter_mut().zip(&hrow) {
                        *a += v * wy;
                    }
                }
            }
            for (o, &a) in chunk.iter_mut().zip(&acc) {
                *o = (a as f64 * inv + 0.5).min(255.0) as u8;
            }
        });
    out
}

/// One source row resampled horizontally: `out[j·C + c]` = Σ weight · sample (not yet divided).
fn horizontal<const C: usize>(row: &[u8], hs: &[Span], t: u64, out: &mut [u64]) {
    for (s, o) in hs.iter().zip(out.chunks_exact_mut(C)) {
        let mut inner = [0u64; C];
        // Pixels strictly between the partial ends weigh `t` each: sum them first.
        let end = (s.hi - 1).max(s.lo + 1);
        for px in row[(s.lo + 1) * C..end * C].chunks_exact(C) {
            for c in 0..C {
                inner[c] += u64::from(px[c]);
            }
        }
        for c in 0..C {
            o[c] = inner[c] * t
                + u64::from(row[s.lo * C + c]) * s.w_lo
                + u64::from(row[(s.hi - 1) * C + c]) * s.w_hi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Rgb};

    fn mean(img: &RgbImage) -> [f64; 3] {
        let n = f64::from(img.width() * img.height());
        let mut m = [0.0; 3];
        for p in img.pixels() {
            for (m, &v) in m.iter_mut().zip(&p.0) {
                *m += f64::from(v) / n;
            }
        }
        m
    }

    #[test]
    fn thumbnail_size_and_mean_colour() {
        // Left half red, right half blue: the mean is half of each, whatever the filter.
        let photo = RgbImage::from_fn(4896, 3264, |x, _| {
            if x < 2450 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let t = thumbnail(&Pixels::Rgb(photo), 1024);
        assert_eq!(t.image.dimensions(), (1024, 683));
        assert!((t.scale - 1024.0 / 4896.0).abs() < 1e-12);
        let m = mean(&t.image);
        assert!(
            (m[0] - 127.5).abs() < 0.6 && m[1] == 0.0 && (m[2] - 127.5).abs() < 0.6,
            "{m:?}"
        );
        // Area averaging: pure colour away from the edge, a mix only on the column across it.
        assert_eq!(t.image.get_pixel(10, 10).0, [255, 0, 0]);
        assert_eq!(t.image.get_pixel(1000, 600).0, [0, 0, 255]);
        // The split at photo x = 2450 falls inside thumbnail column 512 (photo 2448–2452.8).
        let edge = t.image.get_pixel(512, 0).0;
        assert!(edge[0] > 0 && edge[2] > 0, "{edge:?}");
    }

    #[test]
    fn thumbnail_block_means_exactly() {
        // 4×2 → 2×1: each output pixel is the mean of a 2×2 block.
        let g = GrayImage::from_raw(4, 2, vec![0, 10, 100, 200, 20, 30, 50, 250]).unwrap();
        let t = thumbnail(&Pixels::Gray(g), 2);
        assert_eq!(t.image.dimensions(), (2, 1));
        assert_eq!(t.image.get_pixel(0, 0).0, [15, 15, 15]);
        assert_eq!(t.image.get_pixel(1, 0).0, [150, 150, 150]);
        // 3 → 2 columns: output 0 covers pixel 0 and half of pixel 1.
        let g = GrayImage::from_raw(3, 1, vec![0, 90, 180]).unwrap();
        let t = thumbnail(&Pixels::Gray(g), 2);
        assert_eq!(t.image.get_pixel(0, 0).0[0], 30);
        assert_eq!(t.image.get_pixel(1, 0).0[0], 150);
    }

    #[test]
    fn thumbnails_never_upscale_and_are_never_empty() {
        let small = RgbImage::from_pixel(30, 20, Rgb([1, 2, 3]));
        let t = thumbnail(&Pixels::Rgb(small.clone()), 1024);
        assert_eq!((t.image.clone(), t.scale), (small, 1.0));
        let strip = GrayImage::from_pixel(5000, 1, image::Luma([77]));
        let t = thumbnail(&Pixels::Gray(strip), 1024);
        assert_eq!(t.image.dimensions(), (1024, 1));
        assert_eq!(t.image.get_pixel(3, 0).0, [77, 77, 77]);
        let t = thumbnail(&Pixels::Gray(GrayImage::new(0, 0)), 1024);
        assert_eq!(t.image.dimensions(), (1, 1));
        let t = thumbnail(&Pixels::Rgb(RgbImage::new(40, 10)), 0);
        assert_eq!(t.image.dimensions(), (1, 1));
    }
}
