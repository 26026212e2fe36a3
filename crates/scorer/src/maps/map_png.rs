//! The map PNG: a photo's thumbnail tinted per scored window by its most likely class (the
//! tint stronger the more confident the model, overlapping windows combined), uncovered spots
//! dimmed, light window edges, and a legend strip drawn with the embedded [`crate::font`].

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};

use super::{MapError, Thumbnail, class_colour};
use crate::font;

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

/// A window in thumbnail px, half-open `[x0, y0, x1, y1]`, with its row in `probs`.
type Rect = (usize, [u32; 4]);

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

    let rects = if n == 0 {
        Vec::new()
    } else {
        window_rects(m, scale, tw, th)
    };
    let tints = Tints::new(&rects, m.probs, n, tw, th);

    let width = tw.max(MIN_WIDTH);
    let legend = Legend::layout(m, width);
    let height = th.saturating_add(legend.height);
    let mut out = RgbImage::from_pixel(width, height, Rgb(BACKGROUND));
    tints.paint(thumb, &mut out);
    draw_edges(&mut out, &rects);
    legend.draw(&mut out, th, m);
    Ok(out)
}

/// The windows in thumbnail px (a `tw`×`th` thumbnail at `scale` thumbnail px per photo px);
/// windows wholly outside it are left out.
fn window_rects(m: &MapInput, scale: f64, tw: u32, th: u32) -> Vec<Rect> {
    // Half-open; rounding both edges keeps abutting windows abutting.
    let to_thumb = |v: f64, limit: u32| (v * scale).round().clamp(0.0, f64::from(limit)) as u32;
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
}

/// Window edges, blended towards white, only where a window is large enough for its edges not
/// to hide it.
fn draw_edges(out: &mut RgbImage, rects: &[Rect]) {
    for &(_, [x0, y0, x1, y1]) in rects {
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
    fn new(rects: &[Rect], probs: &[f32], n: usize, tw: u32, th: u32) -> Tints {
        let (rects, xs, ys) = lattice(rects, n, tw, th);
        let (nx, ny) = (xs.len() - 1, ys.len() - 1);
        let (counts, sums) = coverage(&rects, probs, n, &xs, &ys);
        let stride = nx + 1;
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

    /// One pass over the thumbnail: each cell's tint (or dimming) applied as the pixel is
    /// copied into `out`.
    fn paint(&self, thumb: &RgbImage, out: &mut RgbImage) {
        for (b, ys) in self.ys.windows(2).enumerate() {
            for y in ys[0]..ys[1] {
                for (a, xs) in self.xs.windows(2).enumerate() {
                    let tint = self.cells[b * (self.xs.len() - 1) + a];
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
    }
}

/// The windows with their edges snapped to multiples of q, doubling q from 1 until the cells
/// × `n` classes fit [`CELL_BUDGET`] (q = 1 for any real grid), and the cuts along x and y
/// (every edge, 0 and the thumbnail's side included, sorted, once each).
fn lattice(rects: &[Rect], n: usize, tw: u32, th: u32) -> (Vec<Rect>, Vec<u32>, Vec<u32>) {
    let mut q = 1u32;
    loop {
        let rects: Vec<Rect> = rects
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
            return (rects, xs, ys);
        }
        q = q.saturating_mul(2);
    }
}

/// How many windows cover each cell of the lattice `xs`×`ys` and their summed (cleaned)
/// probabilities, `n` per cell: row-major with stride `xs.len()` (a spare last column and row).
fn coverage(
    rects: &[Rect],
    probs: &[f32],
    n: usize,
    xs: &[u32],
    ys: &[u32],
) -> (Vec<i64>, Vec<f64>) {
    let (nx, ny) = (xs.len() - 1, ys.len() - 1);
    // 2-D difference arrays of summed probabilities and window counts, (nx+1)·(ny+1).
    let stride = nx + 1;
    let mut sums = vec![0f64; stride * (ny + 1) * n];
    let mut counts = vec![0i64; stride * (ny + 1)];
    let index = |e: &[u32], v: u32| e.partition_point(|&x| x < v);
    for &(w, [x0, y0, x1, y1]) in rects {
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        let (a0, a1) = (index(xs, x0), index(xs, x1));
        let (b0, b1) = (index(ys, y0), index(ys, y1));
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
    prefix_sums(&mut counts, &mut sums, n, nx, ny);
    (counts, sums)
}

/// Prefix sums along x, then y, turn the difference arrays into per-cell totals.
fn prefix_sums(counts: &mut [i64], sums: &mut [f64], n: usize, nx: usize, ny: usize) {
    let stride = nx + 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::test_util::names;

    fn dist(a: [u8; 3], b: [u8; 3]) -> f64 {
        a.iter()
            .zip(&b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            .sqrt()
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
}
