//! Per-photo pictures for `scorer photos --maps`: a PNG map of where the model saw which class,
//! and an SVG of the photo's expected sieve curve among the class curves and the envelope.
//!
//! - [`thumbnail`]: an antialiased (area-averaged) colour copy of the photo, small enough to
//!   encode in milliseconds.
//! - [`render_map`]: the thumbnail tinted per window by its most likely class, the tint
//!   stronger the more confident the model, with a legend drawn with the embedded
//!   [`crate::font`] (no system fonts).
//! - [`curve_svg`]: a self-contained SVG sieve chart (log size axis), written by hand so the
//!   text is deterministic.
//! - [`class_colour`]: the palette both share (and the HTML report can use).

use std::fmt::Write as _;

use ballast_tiler::photo::Pixels;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};
use rayon::prelude::*;

use crate::font;
use crate::gradation::{Curve, Envelope};

/// Why a map could not be drawn or encoded.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error(
        "{probs} class probabilities for {windows} windows × {classes} classes \
         (expected {expected})"
    )]
    Shape {
        probs: usize,
        windows: usize,
        classes: usize,
        expected: usize,
    },
    #[error("thumbnail scale {0} is not a positive number")]
    Scale(f64),
}

/// The palette: Okabe–Ito without black (black is the expected curve), ordered so the first
/// few classes differ most.
const PALETTE: [[u8; 3]; 7] = [
    [0x00, 0x72, 0xB2], // blue
    [0xE6, 0x9F, 0x00], // orange
    [0x00, 0x9E, 0x73], // bluish green
    [0xD5, 0x5E, 0x00], // vermillion
    [0x56, 0xB4, 0xE9], // sky blue
    [0xCC, 0x79, 0xA7], // reddish purple
    [0xF0, 0xE4, 0x42], // yellow
];

/// Colour of class `i`: the colour-blind-friendly Okabe–Ito palette; beyond its 7 colours the
/// palette repeats darker, then lighter (21 distinct colours), then cycles.
pub fn class_colour(i: usize) -> [u8; 3] {
    let base = PALETTE[i % PALETTE.len()];
    match (i / PALETTE.len()) % 3 {
        0 => base,
        1 => base.map(|v| (u32::from(v) * 55 / 100) as u8),
        _ => base.map(|v| (u32::from(v) + (255 - u32::from(v)) * 45 / 100) as u8),
    }
}

// ---------------------------------------------------------------------------------------------
// Thumbnail

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

// ---------------------------------------------------------------------------------------------
// The map

/// What a map shows: one photo's scored windows over its thumbnail.
#[derive(Clone, Copy, Debug)]
pub struct MapInput<'a> {
    pub thumb: &'a Thumbnail,
    pub classes: &'a [String],
    /// Window side in photo px.
    pub tile: u32,
    /// Top-left corners in photo px, same order as the rows of `probs`.
    pub windows: &'a [(u32, u32)],
    /// Row-major `[windows, classes]`, each row summing to about 1.
    pub probs: &'a [f32],
    /// Drawn at the top of the legend, e.g. photo name and predicted class.
    pub title: &'a str,
}

const BACKGROUND: [u8; 3] = [248, 248, 248];
const INK: [u8; 3] = [20, 20, 20];
/// Tint opacity (of 256) at chance-level confidence and at certainty.
const ALPHA_MIN: u32 = 40;
const ALPHA_MAX: u32 = 170;
/// Brightness (of 256) left to pixels no window covers.
const DIM: u32 = 170;
/// Window edges: blended towards white with this opacity (of 256), neutral so the tint alone
/// carries the class.
const EDGE_ALPHA: u32 = 90;
/// Narrowest canvas, so a tiny photo still gets a readable legend.
const MIN_WIDTH: u32 = 360;
/// Most cells × classes the overlap bookkeeping may hold (32 MB of f64) before window edges
/// are snapped to a coarser lattice.
const CELL_BUDGET: usize = 1 << 22;

fn blend(px: [u8; 3], colour: [u8; 3], alpha: u32) -> [u8; 3] {
    let mut out = [0u8; 3];
    for c in 0..3 {
        out[c] =
            ((u32::from(px[c]) * (256 - alpha) + u32::from(colour[c]) * alpha + 128) >> 8) as u8;
    }
    out
}

/// Tint opacity for probability `p` of the shown class among `n` classes: linear from chance
/// (1/n) to certainty, so "faint" always means "barely better than guessing".
fn alpha_for(p: f64, n: usize) -> u32 {
    let chance = 1.0 / n.max(1) as f64;
    let t = if n > 1 {
        ((p - chance) / (1.0 - chance)).clamp(0.0, 1.0)
    } else {
        1.0
    };
    ALPHA_MIN + ((ALPHA_MAX - ALPHA_MIN) as f64 * t).round() as u32
}

/// A probability as used for drawing: non-finite or negative values count as 0.
fn clean(p: f32) -> f64 {
    if p.is_finite() {
        f64::from(p.max(0.0))
    } else {
        0.0
    }
}

/// Index and value of the largest entry (the first on ties).
fn argmax(v: impl IntoIterator<Item = f64>) -> Option<(usize, f64)> {
    v.into_iter()
        .enumerate()
        .fold(None, |best, (i, p)| match best {
            Some((_, b)) if b >= p => best,
            _ => Some((i, p)),
        })
}

/// The map: the thumbnail with every spot that windows cover tinted by the most likely class
/// of those windows (their mean probabilities, so overlapping windows are combined, not drawn
/// over each other), the tint's opacity growing from chance to certainty; uncovered spots
/// dimmed; light window edges; and a legend strip below with the title, one swatch and name
/// per class, and a line on the shading. Fails only when `probs` does not match
/// `windows × classes` or the scale is not a positive number.
pub fn render_map(m: &MapInput) -> Result<RgbImage, MapError> {
    let n = m.classes.len();
    let expected = m.windows.len().saturating_mul(n);
    if m.probs.len() != expected {
        return Err(MapError::Shape {
            probs: m.probs.len(),
            windows: m.windows.len(),
            classes: n,
            expected,
        });
    }
    let scale = m.thumb.scale;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(MapError::Scale(scale));
    }
    let thumb = &m.thumb.image;
    let (tw, th) = thumb.dimensions();

    // Windows in thumbnail px, half-open; rounding both edges keeps abutting windows abutting.
    let to_thumb = |v: f64, limit: u32| (v * scale).round().clamp(0.0, f64::from(limit)) as u32;
    let rects: Vec<(usize, [u32; 4])> = if n == 0 {
        Vec::new()
    } else {
        m.windows
            .iter()
            .enumerate()
            .filter_map(|(i, &(x, y))| {
                let t = f64::from(m.tile);
                let (x0, y0) = (to_thumb(f64::from(x), tw), to_thumb(f64::from(y), th));
                let mut x1 = to_thumb(f64::from(x) + t, tw);
                let mut y1 = to_thumb(f64::from(y) + t, th);
                // A window smaller than a thumbnail pixel still shows as one pixel.
                if m.tile > 0 && x1 == x0 && x0 < tw {
                    x1 = x0 + 1;
                }
                if m.tile > 0 && y1 == y0 && y0 < th {
                    y1 = y0 + 1;
                }
                (x1 > x0 && y1 > y0).then_some((i, [x0, y0, x1, y1]))
            })
            .collect()
    };

    let tints = Tints::new(&rects, m.probs, n, tw, th);

    let width = tw.max(MIN_WIDTH);
    let legend = Legend::layout(m, width);
    let height = th.saturating_add(legend.height);
    let mut out = RgbImage::from_pixel(width, height, Rgb(BACKGROUND));

    // One pass over the thumbnail: each cell's tint (or dimming) applied as the pixel is copied.
    for (b, ys) in tints.ys.windows(2).enumerate() {
        for y in ys[0]..ys[1] {
            for (a, xs) in tints.xs.windows(2).enumerate() {
                let tint = tints.cells[b * (tints.xs.len() - 1) + a];
                for x in xs[0]..xs[1] {
                    let px = thumb.get_pixel(x, y).0;
                    let v = match tint {
                        Some((colour, alpha)) => blend(px, colour, alpha),
                        None => px.map(|v| ((u32::from(v) * DIM) >> 8) as u8),
                    };
                    out.put_pixel(x, y, Rgb(v));
                }
            }
        }
    }

    // Window edges, only where a window is large enough for its edges not to hide it.
    for &(_, [x0, y0, x1, y1]) in &rects {
        if x1 - x0 < 4 || y1 - y0 < 4 {
            continue;
        }
        let mut edge = |x: u32, y: u32| {
            let p = out.get_pixel(x, y).0;
            out.put_pixel(x, y, Rgb(blend(p, [255, 255, 255], EDGE_ALPHA)));
        };
        for x in x0..x1 {
            edge(x, y0);
            edge(x, y1 - 1);
        }
        for y in y0 + 1..y1 - 1 {
            edge(x0, y);
            edge(x1 - 1, y);
        }
    }

    legend.draw(&mut out, th, m);
    Ok(out)
}

/// Per-cell tints: the thumbnail cut at every (possibly snapped) window edge into cells that
/// each lie inside the same set of windows.
struct Tints {
    xs: Vec<u32>,
    ys: Vec<u32>,
    /// Row-major over cells: `None` where no window covers the cell.
    cells: Vec<Option<([u8; 3], u32)>>,
}

impl Tints {
    fn new(rects: &[(usize, [u32; 4])], probs: &[f32], n: usize, tw: u32, th: u32) -> Tints {
        // Snap edges to multiples of q until the bookkeeping fits (q = 1 for any real grid).
        let mut q = 1u32;
        let (rects, xs, ys) = loop {
            let rects: Vec<(usize, [u32; 4])> = rects
                .iter()
                .map(|&(i, [x0, y0, x1, y1])| {
                    let [x0, x1] = [x0, x1].map(|v| snap(v, q, tw));
                    let [y0, y1] = [y0, y1].map(|v| snap(v, q, th));
                    (i, [x0, y0, x1, y1])
                })
                .collect();
            let edges = |lo: usize, hi: usize, limit: u32| {
                let mut e: Vec<u32> = rects
                    .iter()
                    .flat_map(|(_, r)| [r[lo], r[hi]])
                    .chain([0, limit])
                    .collect();
                e.sort_unstable();
                e.dedup();
                e
            };
            let (xs, ys) = (edges(0, 2, tw), edges(1, 3, th));
            let cells = (xs.len() - 1) * (ys.len() - 1);
            if cells.saturating_mul(n.max(1)) <= CELL_BUDGET || q >= tw.max(th) {
                break (rects, xs, ys);
            }
            q = q.saturating_mul(2);
        };
        let (nx, ny) = (xs.len() - 1, ys.len() - 1);
        // 2-D difference arrays of summed probabilities and window counts, (nx+1)·(ny+1).
        let stride = nx + 1;
        let mut sums = vec![0f64; stride * (ny + 1) * n];
        let mut counts = vec![0i64; stride * (ny + 1)];
        let index = |e: &[u32], v: u32| e.partition_point(|&x| x < v);
        for &(w, [x0, y0, x1, y1]) in &rects {
            if x1 <= x0 || y1 <= y0 {
                continue;
            }
            let (a0, a1) = (index(&xs, x0), index(&xs, x1));
            let (b0, b1) = (index(&ys, y0), index(&ys, y1));
            let row = &probs[w * n..(w + 1) * n];
            for (cell, sign) in [
                (b0 * stride + a0, 1.0),
                (b0 * stride + a1, -1.0),
                (b1 * stride + a0, -1.0),
                (b1 * stride + a1, 1.0),
            ] {
                counts[cell] += sign as i64;
                for (s, &p) in sums[cell * n..(cell + 1) * n].iter_mut().zip(row) {
                    *s += sign * clean(p);
                }
            }
        }
        // Prefix sums along x, then y, turn differences into per-cell totals.
        for b in 0..=ny {
            for a in 1..=nx {
                let (prev, cur) = (b * stride + a - 1, b * stride + a);
                counts[cur] += counts[prev];
                for c in 0..n {
                    sums[cur * n + c] += sums[prev * n + c];
                }
            }
        }
        for b in 1..=ny {
            for a in 0..=nx {
                let (prev, cur) = ((b - 1) * stride + a, b * stride + a);
                counts[cur] += counts[prev];
                for c in 0..n {
                    sums[cur * n + c] += sums[prev * n + c];
                }
            }
        }
        let mut cells = Vec::with_capacity(nx * ny);
        for b in 0..ny {
            for a in 0..nx {
                let cell = b * stride + a;
                let count = counts[cell];
                let tint = (count > 0)
                    .then(|| argmax(sums[cell * n..(cell + 1) * n].iter().copied()))
                    .flatten()
                    .map(|(c, s)| (class_colour(c), alpha_for(s / count as f64, n)));
                cells.push(tint);
            }
        }
        Tints { xs, ys, cells }
    }
}

/// `v` rounded to a multiple of `q` (1: unchanged), at most `limit`.
fn snap(v: u32, q: u32, limit: u32) -> u32 {
    let q = u64::from(q.max(1));
    ((u64::from(v) + q / 2) / q * q).min(u64::from(limit)) as u32
}

/// The legend strip's geometry, computed before the canvas so its height is known.
struct Legend {
    scale: u32,
    pad: u32,
    pitch: u32,
    title: String,
    names: Vec<String>,
    col_w: u32,
    cols: u32,
    note: Vec<String>,
    height: u32,
}

impl Legend {
    fn layout(m: &MapInput, width: u32) -> Legend {
        // Double-size text once there is room: 5×7 dots are hard to read on a 1000 px image.
        let scale = if width >= 720 { 2 } else { 1 };
        let pad = 6 * scale;
        let pitch = (font::LINE_HEIGHT + 3) * scale;
        let avail = width.saturating_sub(2 * pad);
        let title = font::truncate(m.title, font::chars_fitting(avail, scale));
        let swatch = font::GLYPH_H * scale;
        let gap = font::ADVANCE * scale;
        let col_gap = 3 * font::ADVANCE * scale;
        let longest = m
            .classes
            .iter()
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0);
        let name_chars = longest
            .min(32)
            .min(font::chars_fitting(
                avail.saturating_sub(swatch + gap),
                scale,
            ))
            .max(1);
        let names: Vec<String> = m
            .classes
            .iter()
            .map(|c| font::truncate(c, name_chars))
            .collect();
        let col_w = swatch + gap + font::text_width(&"M".repeat(name_chars), scale) + col_gap;
        let cols = ((avail + col_gap) / col_w.max(1)).max(1);
        let n = m.classes.len() as u32;
        let chance = if n > 0 {
            format!("{:.0}%", 100.0 / f64::from(n))
        } else {
            "-".into()
        };
        let note = font::wrap(
            &format!(
                "Tint: most likely class where windows overlap (mean probability). Stronger \
                 tint = more confident, faint at chance ({chance}) to solid at 100%. Dimmed: \
                 not scored. Light lines: window edges."
            ),
            font::chars_fitting(avail, scale),
        );
        let class_rows = n.div_ceil(cols).max(1);
        // Title, class rows, note lines, the confidence ramp.
        let lines = 1 + class_rows + note.len() as u32 + 1;
        let height = 2 * pad + lines * pitch;
        Legend {
            scale,
            pad,
            pitch,
            title,
            names,
            col_w,
            cols,
            note,
            height,
        }
    }

    fn draw(&self, img: &mut RgbImage, top: u32, m: &MapInput) {
        let s = self.scale;
        let width = img.width();
        // A rule between the photo and the legend.
        if top < img.height() {
            for x in 0..width {
                img.put_pixel(x, top, Rgb([180, 180, 180]));
            }
        }
        let x0 = i64::from(self.pad);
        let mut y = i64::from(top) + i64::from(self.pad) + 1;
        font::draw_text(img, x0, y, &self.title, s, INK);
        y += i64::from(self.pitch);
        if self.names.is_empty() {
            font::draw_text(img, x0, y, "(no classes)", s, INK);
        }
        let swatch = font::GLYPH_H * s;
        for (i, name) in self.names.iter().enumerate() {
            let (col, row) = (i as u32 % self.cols, i as u32 / self.cols);
            let sx = x0 + i64::from(col * self.col_w);
            let sy = y + i64::from(row * self.pitch);
            fill(img, sx, sy, swatch, swatch, class_colour(i));
            let tx = sx + i64::from(swatch + font::ADVANCE * s);
            font::draw_text(img, tx, sy, name, s, INK);
        }
        y += i64::from(self.names.len().div_ceil(self.cols as usize).max(1) as u32 * self.pitch);
        for line in &self.note {
            font::draw_text(img, x0, y, line, s, INK);
            y += i64::from(self.pitch);
        }
        // The confidence ramp: class 0's tint over mid gray, from chance to certainty.
        let n = m.classes.len().max(1);
        let label = "confidence: chance";
        let w = font::draw_text(img, x0, y, label, s, INK);
        let bx = x0 + i64::from(w + font::ADVANCE * s);
        let bar_w = 20 * font::ADVANCE * s;
        for i in 0..bar_w {
            let chance = 1.0 / n as f64;
            let p = chance + (1.0 - chance) * f64::from(i) / f64::from(bar_w.max(2) - 1);
            let colour = blend([128, 128, 128], class_colour(0), alpha_for(p, n));
            fill(img, bx + i64::from(i), y, 1, swatch, colour);
        }
        let after = bx + i64::from(bar_w + font::ADVANCE * s);
        font::draw_text(img, after, y, "100%", s, INK);
    }
}

/// Fills a rectangle, clipped to the image.
fn fill(img: &mut RgbImage, x: i64, y: i64, w: u32, h: u32, colour: [u8; 3]) {
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    for yy in y.max(0)..(y + i64::from(h)).min(ih) {
        for xx in x.max(0)..(x + i64::from(w)).min(iw) {
            img.put_pixel(xx as u32, yy as u32, Rgb(colour));
        }
    }
}

/// PNG bytes of an image: fast compression (a map is looked at, not archived) and no
/// timestamps, so the same image always gives the same bytes. PNG cannot hold 0 px, so an
/// empty image is written as one background pixel.
pub fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let one;
    let img = if img.width() == 0 || img.height() == 0 {
        one = RgbImage::from_pixel(1, 1, Rgb(BACKGROUND));
        &one
    } else {
        img
    };
    let mut out = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
    let n = img.width() as usize * img.height() as usize * 3;
    // Encoding a whole, non-empty RGB buffer into memory has no failure left to report.
    match encoder.write_image(
        &img.as_raw()[..n],
        img.width(),
        img.height(),
        ExtendedColorType::Rgb8,
    ) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// The sieve chart

/// What the sieve chart shows.
#[derive(Clone, Copy, Debug)]
pub struct CurveChart<'a> {
    pub title: &'a str,
    pub classes: &'a [String],
    /// Per class, in class order (`None`: that class has no curve).
    pub class_curves: &'a [Option<Curve>],
    /// The photo's expected curve: sieve sizes (mm) and the passing % at each
    /// (`ClassMap::gradation(..).curve`'s fields); `None` values are gaps in the line.
    pub expected: Option<(&'a [f64], &'a [Option<f64>])>,
    pub envelope: Option<&'a Envelope>,
}

// Plot geometry (SVG user units): round numbers so coordinates can be checked by hand.
const PLOT_L: f64 = 64.0;
const PLOT_T: f64 = 48.0;
const PLOT_W: f64 = 450.0;
const PLOT_H: f64 = 320.0;
const LEGEND_X: f64 = PLOT_L + PLOT_W + 28.0;
const SVG_W: f64 = 780.0;
const LEGEND_PITCH: f64 = 18.0;
const SVG_NAME_CHARS: usize = 28;

/// XML-escapes text; control characters XML 1.0 cannot carry become `?`.
fn xml(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => s.push('?'),
            c => s.push(c),
        }
    }
    s
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Label of the decade 10^k: "0.01", "1", "1000".
fn decade_label(k: i32) -> String {
    if k >= 0 {
        format!("{}", 10u64.pow(k.unsigned_abs()))
    } else {
        format!("{:.*}", k.unsigned_abs() as usize, 10f64.powi(k))
    }
}

/// The chart's x axis: whole decades around every size drawn.
struct XAxis {
    lo: i32,
    hi: i32,
}

impl XAxis {
    fn around(sizes: impl Iterator<Item = f64>) -> XAxis {
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in sizes.filter(|s| s.is_finite() && *s > 0.0) {
            min = min.min(s);
            max = max.max(s);
        }
        if !min.is_finite() {
            // Nothing to draw: a typical aggregate range, 0.1–100 mm.
            return XAxis { lo: -1, hi: 2 };
        }
        // Capped at 1 µm – 1 km so a stray value cannot squash the chart into a line.
        let lo = (min.log10().floor() as i32).clamp(-6, 5);
        let hi = (max.log10().ceil() as i32).clamp(lo + 1, 6);
        XAxis { lo, hi }
    }

    fn x(&self, size: f64) -> f64 {
        let t = (size.log10() - f64::from(self.lo)) / f64::from(self.hi - self.lo);
        PLOT_L + t.clamp(0.0, 1.0) * PLOT_W
    }
}

fn y_of(passing: f64) -> f64 {
    PLOT_T + (1.0 - passing.clamp(0.0, 100.0) / 100.0) * PLOT_H
}

fn valid(s: f64, p: f64) -> bool {
    s.is_finite() && s > 0.0 && p.is_finite()
}

/// The sieve chart as a self-contained SVG: log-scale size axis in mm with decade gridlines and
/// labels, passing 0–100 %, the envelope as a shaded band between dashed lower and upper lines,
/// each class curve thin in its class colour, the expected curve thick black with its points
/// marked (broken where undefined), and a legend on the right. Same input, same text.
pub fn curve_svg(c: &CurveChart) -> String {
    let env_points: Vec<(f64, f64, f64)> = c
        .envelope
        .map(|e| {
            e.sieve_mm
                .iter()
                .zip(&e.lower)
                .zip(&e.upper)
                .filter(|((s, lo), hi)| valid(**s, **lo) && hi.is_finite())
                .map(|((&s, &lo), &hi)| (s, lo, hi))
                .collect()
        })
        .unwrap_or_default();
    let curves: Vec<Vec<(f64, f64)>> = c
        .class_curves
        .iter()
        .map(|curve| {
            curve
                .as_ref()
                .map(|k| {
                    k.sieve_mm
                        .iter()
                        .zip(&k.passing)
                        .filter(|(s, p)| valid(**s, **p))
                        .map(|(&s, &p)| (s, p))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    // Expected points, `None` where undefined (a gap in the line).
    let expected: Vec<Option<(f64, f64)>> = c
        .expected
        .map(|(sizes, passing)| {
            sizes
                .iter()
                .zip(passing)
                .map(|(&s, p)| p.filter(|&p| valid(s, p)).map(|p| (s, p)))
                .collect()
        })
        .unwrap_or_default();

    let axis = XAxis::around(
        curves
            .iter()
            .flatten()
            .map(|p| p.0)
            .chain(expected.iter().flatten().map(|p| p.0))
            .chain(env_points.iter().map(|p| p.0)),
    );

    let n_entries = 1 + usize::from(!env_points.is_empty()) + c.classes.len().max(curves.len());
    let height = (PLOT_T + PLOT_H + 56.0).max(PLOT_T + 20.0 + n_entries as f64 * LEGEND_PITCH);

    let mut s = String::with_capacity(16 * 1024);
    let title = xml(&font::truncate(c.title, 90));
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_W}" height="{height}" viewBox="0 0 {SVG_W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, "<title>{title}</title>");
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{SVG_W}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{PLOT_L}" y="26" font-size="15" font-weight="bold">{title}</text>"#
    );

    // Grid: decades strong, 2–9 × decade faint; passing every 10 %.
    let (bottom, right) = (PLOT_T + PLOT_H, PLOT_L + PLOT_W);
    s.push_str(r##"<g stroke="#e4e4e4" stroke-width="1">"##);
    s.push('\n');
    for k in axis.lo..axis.hi {
        for m in 2..10 {
            let x = axis.x(f64::from(m) * 10f64.powi(k));
            let _ = writeln!(
                s,
                r#"<line x1="{x:.2}" y1="{PLOT_T}" x2="{x:.2}" y2="{bottom}"/>"#
            );
        }
    }
    s.push_str("</g>\n");
    s.push_str(r##"<g stroke="#bdbdbd" stroke-width="1">"##);
    s.push('\n');
    for k in axis.lo..=axis.hi {
        let x = axis.x(10f64.powi(k));
        let _ = writeln!(
            s,
            r#"<line x1="{x:.2}" y1="{PLOT_T}" x2="{x:.2}" y2="{bottom}"/>"#
        );
    }
    for p in (0..=100).step_by(10) {
        let y = y_of(f64::from(p));
        let _ = writeln!(
            s,
            r#"<line x1="{PLOT_L}" y1="{y:.2}" x2="{right}" y2="{y:.2}"/>"#
        );
    }
    s.push_str("</g>\n");
    // Axis labels.
    s.push_str(r#"<g text-anchor="middle">"#);
    s.push('\n');
    for k in axis.lo..=axis.hi {
        let x = axis.x(10f64.powi(k));
        let _ = writeln!(
            s,
            r#"<text x="{x:.2}" y="{:.2}">{}</text>"#,
            bottom + 16.0,
            decade_label(k)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.2}" y="{:.2}">Sieve size (mm, log scale)</text>"#,
        PLOT_L + PLOT_W / 2.0,
        bottom + 36.0
    );
    let (ly, lx) = (PLOT_T + PLOT_H / 2.0, 18.0);
    let _ = writeln!(
        s,
        r#"<text x="{lx}" y="{ly}" transform="rotate(-90 {lx} {ly})">Passing (%)</text>"#
    );
    s.push_str("</g>\n");
    s.push_str(r#"<g text-anchor="end">"#);
    s.push('\n');
    for p in (0..=100).step_by(20) {
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}">{p}</text>"#,
            PLOT_L - 6.0,
            y_of(f64::from(p)) + 4.0
        );
    }
    s.push_str("</g>\n");

    let pts = |v: &mut dyn Iterator<Item = (f64, f64)>| {
        v.map(|(sz, p)| format!("{:.2},{:.2}", axis.x(sz), y_of(p)))
            .collect::<Vec<_>>()
            .join(" ")
    };

    // Envelope band under the curves, its edges dashed above them.
    if !env_points.is_empty() {
        let band = pts(&mut env_points
            .iter()
            .map(|&(sz, lo, _)| (sz, lo))
            .chain(env_points.iter().rev().map(|&(sz, _, hi)| (sz, hi))));
        let _ = writeln!(
            s,
            r##"<polygon class="envelope-band" points="{band}" fill="#7f7f7f" fill-opacity="0.18" stroke="none"/>"##
        );
    }
    for (i, curve) in curves.iter().enumerate() {
        if curve.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            r#"<polyline class="class-curve" points="{}" fill="none" stroke="{}" stroke-width="1.5" stroke-opacity="0.9"/>"#,
            pts(&mut curve.iter().copied()),
            hex(class_colour(i))
        );
    }
    if !env_points.is_empty() {
        for (name, pick) in [("lower", 1usize), ("upper", 2)] {
            let line = pts(&mut env_points
                .iter()
                .map(|&(sz, lo, hi)| (sz, if pick == 1 { lo } else { hi })));
            let _ = writeln!(
                s,
                r##"<polyline class="envelope-{name}" points="{line}" fill="none" stroke="#555555" stroke-width="1.2" stroke-dasharray="6 4"/>"##
            );
        }
    }
    // The expected curve: a new subpath after every undefined point.
    if expected.iter().any(Option::is_some) {
        let mut d = String::new();
        let mut pen_down = false;
        for p in &expected {
            match p {
                Some((sz, v)) => {
                    let cmd = if pen_down { 'L' } else { 'M' };
                    if !d.is_empty() {
                        d.push(' ');
                    }
                    let _ = write!(d, "{cmd} {:.2} {:.2}", axis.x(*sz), y_of(*v));
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = writeln!(
            s,
            r##"<path class="expected" d="{d}" fill="none" stroke="#000000" stroke-width="3" stroke-linejoin="round"/>"##
        );
        s.push_str(r##"<g fill="#000000">"##);
        s.push('\n');
        for (sz, v) in expected.iter().flatten() {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.2}" cy="{:.2}" r="3"/>"#,
                axis.x(*sz),
                y_of(*v)
            );
        }
        s.push_str("</g>\n");
    }
    let _ = writeln!(
        s,
        r##"<rect x="{PLOT_L}" y="{PLOT_T}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="#333333"/>"##
    );

    // Legend.
    let mut y = PLOT_T + 6.0;
    let sample = |s: &mut String, y: f64, style: &str, label: &str| {
        let _ = writeln!(
            s,
            r#"<line x1="{LEGEND_X}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" {style}/>"#,
            LEGEND_X + 24.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}">{label}</text>"#,
            LEGEND_X + 30.0,
            y + 4.0
        );
    };
    let expected_label = if expected.iter().any(Option::is_some) {
        "expected (this photo)"
    } else {
        "expected: undefined"
    };
    sample(
        &mut s,
        y,
        r##"stroke="#000000" stroke-width="3""##,
        expected_label,
    );
    y += LEGEND_PITCH;
    if !env_points.is_empty() {
        let _ = writeln!(
            s,
            r##"<rect x="{LEGEND_X}" y="{:.2}" width="24" height="10" fill="#7f7f7f" fill-opacity="0.18" stroke="#555555" stroke-dasharray="6 4"/>"##,
            y - 5.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}">specification envelope</text>"#,
            LEGEND_X + 30.0,
            y + 4.0
        );
        y += LEGEND_PITCH;
    }
    for (i, name) in c.classes.iter().enumerate() {
        let has_curve = curves.get(i).is_some_and(|k| !k.is_empty());
        let mut label = xml(&font::truncate(name, SVG_NAME_CHARS));
        if !has_curve {
            label.push_str(" (no curve)");
        }
        let style = format!(r#"stroke="{}" stroke-width="1.5""#, hex(class_colour(i)));
        sample(&mut s, y, &style, &label);
        y += LEGEND_PITCH;
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradation::Mixture;
    use image::GrayImage;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

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

    fn dist(a: [u8; 3], b: [u8; 3]) -> f64 {
        a.iter()
            .zip(&b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            .sqrt()
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

    fn gray_thumb(w: u32, h: u32) -> Thumbnail {
        Thumbnail {
            image: RgbImage::from_pixel(w, h, Rgb([128, 128, 128])),
            scale: 1.0,
        }
    }

    #[test]
    fn windows_are_tinted_by_their_class_and_confidence() {
        let thumb = gray_thumb(300, 100);
        let classes = names(&["fine", "coarse"]);
        let windows = [(0, 0), (100, 0), (200, 0)];
        let probs = [0.9, 0.1, 0.2, 0.8, 0.6, 0.4];
        let img = render_map(&MapInput {
            thumb: &thumb,
            classes: &classes,
            tile: 100,
            windows: &windows,
            probs: &probs,
            title: "photo.jpg: fine",
        })
        .unwrap();
        assert_eq!(img.width(), MIN_WIDTH);
        assert!(img.height() > 100, "a legend strip below the photo");
        let (c0, c1) = (class_colour(0), class_colour(1));
        let at = |x, y| img.get_pixel(x, y).0;
        for (x, own, other) in [(50, c0, c1), (150, c1, c0), (250, c0, c1)] {
            let p = at(x, 50);
            assert!(dist(p, own) < dist(p, other), "window at {x}: {p:?}");
        }
        // 0.9 for class 0 is tinted more strongly than 0.6.
        let grey = [128, 128, 128];
        assert!(dist(at(50, 50), grey) > dist(at(250, 50), grey) + 10.0);
        // Edges are drawn (lighter than the interior), beyond the last window nothing is tinted.
        assert!(at(0, 50)[1] > at(50, 50)[1]);
        let beyond = at(320, 50);
        assert_eq!(beyond, BACKGROUND);
    }

    #[test]
    fn overlapping_windows_average_and_uncovered_is_dimmed() {
        let thumb = Thumbnail {
            image: RgbImage::from_pixel(100, 50, Rgb([200, 200, 200])),
            scale: 0.5,
        };
        let classes = names(&["a", "b"]);
        // Photo px: windows 0–80 and 40–120 (thumb 0–40, 20–60), stride < tile.
        let windows = [(0, 0), (40, 0)];
        let probs = [1.0, 0.0, 0.3, 0.7];
        let img = render_map(&MapInput {
            thumb: &thumb,
            classes: &classes,
            tile: 80,
            windows: &windows,
            probs: &probs,
            title: "t",
        })
        .unwrap();
        let at = |x, y| img.get_pixel(x, y).0;
        // Overlap 20–40: mean (0.65, 0.35) → class a; only window 2 (40–60): class b.
        assert!(dist(at(30, 20), class_colour(0)) < dist(at(30, 20), class_colour(1)));
        assert!(dist(at(50, 20), class_colour(1)) < dist(at(50, 20), class_colour(0)));
        // The overlap is less sure than window 1 alone.
        let base = [200, 200, 200];
        assert!(dist(at(10, 20), base) > dist(at(30, 20), base));
        // Below the windows (thumb y ≥ 40) and right of them: dimmed, not tinted.
        let d = ((200 * DIM) >> 8) as u8;
        assert_eq!(at(80, 45), [d, d, d]);
    }

    #[test]
    fn the_legend_has_text_and_swatches() {
        let thumb = gray_thumb(800, 400);
        let classes = names(&[
            "g1-fine",
            "a class name far too long to show in any legend at all",
        ]);
        let img = render_map(&MapInput {
            thumb: &thumb,
            classes: &classes,
            tile: 100,
            windows: &[],
            probs: &[],
            title: "IMG_0001.jpg: g1-fine",
        })
        .unwrap();
        assert_eq!(img.width(), 800);
        let legend = (0..img.width()).flat_map(|x| (400..img.height()).map(move |y| (x, y)));
        let mut ink = 0;
        let mut swatch = [0, 0];
        for (x, y) in legend {
            let p = img.get_pixel(x, y).0;
            ink += usize::from(p == INK);
            for (c, count) in swatch.iter_mut().enumerate() {
                *count += usize::from(p == class_colour(c));
            }
        }
        assert!(ink > 500, "legend text drawn: {ink} ink pixels");
        // Class 1's swatch is a glyph-high square (text at double size on an 800 px map);
        // class 0's colour is also the confidence ramp's.
        let side = 2 * font::GLYPH_H as usize;
        assert_eq!(swatch[1], side * side);
        assert!(swatch[0] >= side * side);
        // No windows: the whole photo is dimmed.
        let d = ((128 * DIM) >> 8) as u8;
        assert_eq!(img.get_pixel(400, 200).0, [d, d, d]);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let thumb = gray_thumb(1, 1);
        let many: Vec<String> = (0..25).map(|i| format!("class-{i}")).collect();
        let windows = [(0, 0), (5000, 5000), (u32::MAX, u32::MAX)];
        let mut probs = vec![0.04f32; 3 * 25];
        probs[3] = f32::NAN;
        probs[30] = -1.0;
        let img = render_map(&MapInput {
            thumb: &thumb,
            classes: &many,
            tile: u32::MAX,
            windows: &windows,
            probs: &probs,
            title: "",
        })
        .unwrap();
        assert!(img.width() >= MIN_WIDTH);
        // One class, zero tile, no title.
        let one = names(&["only"]);
        render_map(&MapInput {
            thumb: &gray_thumb(50, 50),
            classes: &one,
            tile: 0,
            windows: &[(0, 0)],
            probs: &[1.0],
            title: "",
        })
        .unwrap();
        // No classes at all.
        render_map(&MapInput {
            thumb: &gray_thumb(50, 50),
            classes: &[],
            tile: 10,
            windows: &[(0, 0)],
            probs: &[],
            title: "x",
        })
        .unwrap();
        let e = render_map(&MapInput {
            thumb: &gray_thumb(50, 50),
            classes: &one,
            tile: 10,
            windows: &[(0, 0), (10, 0)],
            probs: &[1.0],
            title: "x",
        })
        .unwrap_err();
        assert!(matches!(e, MapError::Shape { expected: 2, .. }), "{e}");
        let bad = Thumbnail {
            image: RgbImage::new(5, 5),
            scale: f64::NAN,
        };
        let e = render_map(&MapInput {
            thumb: &bad,
            classes: &one,
            tile: 10,
            windows: &[],
            probs: &[],
            title: "x",
        })
        .unwrap_err();
        assert!(matches!(e, MapError::Scale(_)), "{e}");
    }

    #[test]
    fn many_scattered_windows_stay_within_budget() {
        // Windows at every pixel offset: edges are snapped, the map is still drawn.
        let thumb = gray_thumb(1024, 683);
        let classes: Vec<String> = (0..64).map(|i| i.to_string()).collect();
        let windows: Vec<(u32, u32)> = (0..3000u32).map(|i| (i % 1000, (i * 7) % 680)).collect();
        let probs = vec![1.0 / 64.0; windows.len() * 64];
        let img = render_map(&MapInput {
            thumb: &thumb,
            classes: &classes,
            tile: 3,
            windows: &windows,
            probs: &probs,
            title: "scatter",
        })
        .unwrap();
        assert_eq!(img.width(), 1024);
    }

    #[test]
    fn png_bytes_round_trip_and_repeat() {
        let img = RgbImage::from_fn(37, 11, |x, y| Rgb([x as u8 * 7, y as u8 * 20, 99]));
        let bytes = png_bytes(&img);
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(back, img);
        assert_eq!(png_bytes(&img), bytes);
        let empty = image::load_from_memory(&png_bytes(&RgbImage::new(0, 3))).unwrap();
        assert_eq!((empty.width(), empty.height()), (1, 1));
    }

    #[test]
    fn palette_is_fixed_and_distinct_for_21_classes() {
        assert_eq!(class_colour(0), [0x00, 0x72, 0xB2]);
        let all: Vec<[u8; 3]> = (0..21).map(class_colour).collect();
        for i in 0..21 {
            for j in 0..i {
                assert_ne!(all[i], all[j], "{i} vs {j}");
            }
        }
        assert_eq!(class_colour(21), class_colour(0));
    }

    /// Checks that tags nest and every `&` starts an entity: enough to catch what hand-written
    /// XML gets wrong.
    fn well_formed(svg: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let text = &rest[..i];
            check_amps(text);
            let end = rest[i..].find('>').expect("unclosed tag") + i;
            let tag = &rest[i + 1..end];
            assert!(!tag.contains('<'), "{tag}");
            check_amps(tag);
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.trim()), "closing {name}");
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap());
            }
            // Attribute quotes balance.
            assert_eq!(tag.matches('"').count() % 2, 0, "{tag}");
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    fn check_amps(s: &str) {
        for (i, _) in s.match_indices('&') {
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| s[i..].starts_with(e));
            assert!(ok, "bare & in {s}");
        }
    }

    #[test]
    fn svg_is_well_formed_escaped_and_on_a_log_axis() {
        let classes = names(&["a<b&\"c\"", "coarse", "none"]);
        let curves = vec![
            Some(Curve::new(vec![0.1, 1.0, 10.0], vec![5.0, 40.0, 100.0]).unwrap()),
            Some(Curve::new(vec![1.0, 100.0], vec![10.0, 90.0]).unwrap()),
            None,
        ];
        let expected = Mixture {
            sieve_mm: vec![0.1, 1.0, 10.0, 100.0],
            passing: vec![None, Some(50.0), Some(80.0), None],
        };
        let env = Envelope::new(vec![1.0, 10.0], vec![30.0, 70.0], vec![60.0, 100.0]).unwrap();
        let svg = curve_svg(&CurveChart {
            title: "IMG & <1>",
            classes: &classes,
            class_curves: &curves,
            expected: Some((&expected.sieve_mm, &expected.passing)),
            envelope: Some(&env),
        });
        well_formed(&svg);
        assert!(svg.contains("a&lt;b&amp;&quot;c&quot;"), "{svg}");
        assert!(svg.contains("IMG &amp; &lt;1&gt;"));
        assert!(!svg.contains("href"), "self-contained");
        assert_eq!(svg.matches(r#"<polyline class="class-curve""#).count(), 2);
        assert_eq!(svg.matches(r#"<path class="expected""#).count(), 1);
        assert_eq!(svg.matches("<polyline class=\"envelope-").count(), 2);
        assert!(svg.contains("none (no curve)"));
        // Axis 0.1–100 mm: 3 decades over 450 units, so 1 mm at 64 + 150, 10 mm at 64 + 300;
        // 50 % at 48 + 160, 80 % at 48 + 64.
        assert!(
            svg.contains(r#"d="M 214.00 208.00 L 364.00 112.00""#),
            "{svg}"
        );
        for label in [">0.1<", ">1<", ">10<", ">100<"] {
            assert!(svg.contains(label), "decade label {label}");
        }
        assert!(!svg.contains(">1000<"));
        // Same input, same text.
        let again = curve_svg(&CurveChart {
            title: "IMG & <1>",
            classes: &classes,
            class_curves: &curves,
            expected: Some((&expected.sieve_mm, &expected.passing)),
            envelope: Some(&env),
        });
        assert_eq!(svg, again);
    }

    #[test]
    fn svg_without_data_still_draws_axes() {
        let svg = curve_svg(&CurveChart {
            title: "",
            classes: &[],
            class_curves: &[],
            expected: None,
            envelope: None,
        });
        well_formed(&svg);
        assert!(svg.contains("expected: undefined"));
        assert!(svg.contains(">0.1<") && svg.contains(">100<"));
        // A gap splits the expected curve into subpaths.
        let m = Mixture {
            sieve_mm: vec![0.01, 0.1, 1.0, 10.0],
            passing: vec![Some(1.0), None, Some(40.0), Some(90.0)],
        };
        let svg = curve_svg(&CurveChart {
            title: "t",
            classes: &[],
            class_curves: &[],
            expected: Some((&m.sieve_mm, &m.passing)),
            envelope: None,
        });
        let d = svg.split(r#"class="expected" d=""#).nth(1).unwrap();
        let d = &d[..d.find('"').unwrap()];
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert!(svg.contains(">0.01<") && svg.contains(">10<"));
    }
}
