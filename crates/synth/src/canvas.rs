//! The raster grains are painted into, front to back.
//!
//! Grains arrive roughly largest first (the big stones lie on top). Each pixel keeps how much of
//! it is already covered (`acc`), and a grain only adds to what is still visible, with the
//! "under" operator: colour += (1 − acc) · α · c. Fully covered pixels cost one byte compare, so
//! the many small grains hidden under big ones are nearly free. A grain also leaves a soft
//! contact shadow just outside its rim (`shadow`), which darkens whatever is painted there
//! later: the grains beneath it and the fines in the voids. That is what makes a heap of flat
//! shapes read as stones lying on each other.

use crate::shape::Outline;
use crate::texture::TexSampler;

/// An RGB raster with coverage and shadow planes.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    /// Interleaved RGB, premultiplied by coverage.
    pub rgb: Vec<u8>,
    /// Coverage, 255 = opaque.
    acc: Vec<u8>,
    /// Contact-shadow darkness cast by grains above, 255 = black.
    shadow: Vec<u8>,
    /// Opaque pixels per BLOCK × BLOCK block: lets hidden grains be skipped unpainted.
    opaque: Vec<u8>,
    blocks_x: usize,
}

/// Side of the blocks whose opaque pixels are counted.
const BLOCK_LOG2: u32 = 3;

/// Half-extents (x, y) of the ellipse `|M d| <= reach` of a grain with local frame `m`: its
/// bounding box around the centre. Zero for a degenerate frame.
pub fn extent(m: [f32; 4], reach: f32) -> (f32, f32) {
    let [m0, m1, m2, m3] = m;
    let a = m0 * m0 + m2 * m2;
    let c = m1 * m1 + m3 * m3;
    let det = (m0 * m3 - m1 * m2).powi(2);
    if det <= 0.0 {
        return (0.0, 0.0);
    }
    let r2 = reach * reach;
    ((c * r2 / det).sqrt(), (a * r2 / det).sqrt())
}

/// `x.ceil()` without a libm call (x86-64's baseline has no rounding instruction); saturates.
#[inline(always)]
fn ceil(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t < x { t + 1.0 } else { t }
}

/// `x.floor()` without a libm call; saturates.
#[inline(always)]
fn floor(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t > x { t - 1.0 } else { t }
}

// Plain comparisons: f32::min/max/clamp also order NaNs, which costs instructions per pixel;
// no NaN reaches these.
#[inline(always)]
fn fmin(a: f32, b: f32) -> f32 {
    if a < b { a } else { b }
}

#[inline(always)]
fn fmax(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

#[inline(always)]
fn fclamp01(x: f32) -> f32 {
    fmin(fmax(x, 0.0), 1.0)
}

/// Everything needed to paint one grain.
pub struct Grain<'a> {
    /// Centre, pixels.
    pub cx: f32,
    pub cy: f32,
    /// Pixel offset → local outline frame: `u = m[0] dx + m[1] dy`, `v = m[2] dx + m[3] dy`
    /// (rotation and stretch).
    pub m: [f32; 4],
    pub outline: &'a Outline,
    /// Equivalent radius, pixels (sets the anti-aliasing ramp).
    pub r0: f32,
    /// Contact shadow reach beyond the rim, as a fraction of the radius.
    pub shadow_reach: f32,
    /// Contact shadow darkness at the rim, 0..1.
    pub shadow_strength: f32,
    /// Albedo × 255 per channel.
    pub color: [f32; 3],
    /// Light direction in the local frame: (x, y) scaled by the grain's relief, and z.
    pub light: [f32; 3],
    pub ambient: f32,
    pub diffuse: f32,
    /// Darkening towards the rim (0 none, 1 black at the rim).
    pub rim: f32,
    pub texture: TexSampler<'a>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        let n = width * height;
        let blocks_x = width.div_ceil(1 << BLOCK_LOG2);
        let blocks_y = height.div_ceil(1 << BLOCK_LOG2);
        Canvas {
            width,
            height,
            rgb: vec![0; n * 3],
            acc: vec![0; n],
            shadow: vec![0; n],
            opaque: vec![0; blocks_x * blocks_y],
            blocks_x,
        }
    }

    /// True when every pixel of [x0, x1] × [y0, y1] (inclusive, clipped to the canvas) is
    /// already opaque, so nothing painted there could show. Checks whole blocks, so it may say
    /// false for a covered rectangle, never true for an uncovered one.
    pub fn is_hidden(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> bool {
        let (w, h) = (self.width as f32, self.height as f32);
        if !(x1 >= 0.0 && y1 >= 0.0 && x0 < w && y0 < h) {
            return true;
        }
        let bx0 = (x0.max(0.0) as usize) >> BLOCK_LOG2;
        let by0 = (y0.max(0.0) as usize) >> BLOCK_LOG2;
        let bx1 = (x1.min(w - 1.0) as usize) >> BLOCK_LOG2;
        let by1 = (y1.min(h - 1.0) as usize) >> BLOCK_LOG2;
        let side = 1usize << BLOCK_LOG2;
        (by0..=by1).all(|by| {
            let rows = side.min(self.height - by * side);
            (bx0..=bx1).all(|bx| {
                let cols = side.min(self.width - bx * side);
                self.opaque[by * self.blocks_x + bx] as usize == rows * cols
            })
        })
    }

    /// Paints `g` under everything painted so far.
    pub fn draw(&mut self, g: &Grain) {
        self.draw_clipped(g, [0, 0, self.width, self.height]);
    }

    /// Paints the part of `g` inside `clip` = [x0, y0, x1, y1) (pixels).
    pub fn draw_clipped(&mut self, g: &Grain, clip: [usize; 4]) {
        let [cx0, cy0, cx1, cy1] = [
            clip[0],
            clip[1],
            clip[2].min(self.width),
            clip[3].min(self.height),
        ];
        if cx0 >= cx1 || cy0 >= cy1 || !(g.cx.is_finite() && g.cy.is_finite()) {
            return;
        }
        let o = g.outline;
        let lim = 1.0 + g.shadow_reach;
        let shadow_lim2 = lim * lim;
        let reach = o.max_r * lim;
        let reach2 = reach * reach;
        let [m0, m1, m2, m3] = g.m;
        // |M d|² = a dx² + 2 b dx dy + c dy²: the ellipse that bounds the grain and its shadow.
        let a = m0 * m0 + m2 * m2;
        let b = m0 * m1 + m2 * m3;
        let c = m1 * m1 + m3 * m3;
        let det = a * c - b * b;
        if det <= 0.0 || a <= 0.0 {
            return;
        }
        let ext_y = (a * reach2 / det).sqrt();
        let y_lo = ceil(g.cy - ext_y - 0.5).max(cy0 as f32);
        let y_hi = floor(g.cy + ext_y - 0.5).min(cy1 as f32 - 1.0);
        if y_lo > y_hi {
            return;
        }
        let (y0, y1) = (y_lo as usize, y_hi as usize);

        let alpha_gain = 0.5 * g.r0;
        let shadow_from = (1.0 - 1.0 / g.r0).max(0.0); // partly covered pixels get shadow too
        let shadow_scale = 1.0 / (shadow_lim2 - shadow_from);
        let shadow_k = g.shadow_strength * 255.0;
        let [lx, ly, lz] = g.light;
        // Colour in 12.4 fixed point; the per-pixel weight in 4.12: one float→int conversion
        // per pixel instead of one per channel.
        let [cr, cg, cb] = g.color.map(|c| (c.max(0.0) * 16.0) as u32);
        let (dtu, dtv) = g.texture.fixed_step(m0, m2);
        let xc = g.cx as i32;
        let x_first = cx0 as f32;
        let x_last = cx1 as f32 - 1.0;

        for y in y0..=y1 {
            let dy = y as f32 + 0.5 - g.cy;
            let disc = b * b * dy * dy - a * (c * dy * dy - reach2);
            if disc <= 0.0 {
                continue;
            }
            let sq = disc.sqrt();
            let xa = (-b * dy - sq) / a + g.cx;
            let xb = (-b * dy + sq) / a + g.cx;
            let x_lo = ceil(xa - 0.5).max(x_first);
            let x_hi = floor(xb - 0.5).min(x_last);
            if x_lo > x_hi {
                continue;
            }
            let (x0, x1) = (x_lo as usize, x_hi as usize);
            // Local and texture coordinates are computed from x, not stepped from the span's
            // start, so a pixel's value does not depend on where a clip or bin cut the span.
            let (u_y, v_y) = (m1 * dy - m0 * (g.cx - 0.5), m3 * dy - m2 * (g.cx - 0.5));
            // Texture coordinates relative to the centre column keep the fixed-point values
            // small on photos of any width.
            let (tu_y, tv_y) = g.texture.fixed(m0 * xc as f32 + u_y, m2 * xc as f32 + v_y);
            let row = y * self.width;
            let opaque = &mut self.opaque[(y >> BLOCK_LOG2) * self.blocks_x..];
            let acc = &mut self.acc[row + x0..=row + x1];
            let shadow = &mut self.shadow[row + x0..=row + x1];
            let rgb = &mut self.rgb[3 * (row + x0)..3 * (row + x1 + 1)];
            for (x, ((cov, sh), px)) in (x0..).zip(
                acc.iter_mut()
                    .zip(shadow.iter_mut())
                    .zip(rgb.chunks_exact_mut(3)),
            ) {
                if *cov == 255 {
                    continue;
                }
                let xf = x as f32;
                let u = m0 * xf + u_y;
                let v = m2 * xf + v_y;
                let r2 = u * u + v * v;
                if r2 >= reach2 {
                    continue;
                }
                let ir = o.inv_radius(u, v);
                let rho2 = r2 * ir * ir;
                if rho2 >= shadow_lim2 {
                    continue;
                }
                // Small grains are mostly edge: rather than branch on inside / rim at nearly
                // every pixel (mispredicted), paint with alpha 0 outside, which adds nothing.
                let alpha = fclamp01((1.0 - rho2) * alpha_gain + 0.5);
                let h = fmax(1.0 - rho2, 0.0).sqrt();
                let lambert = fmax((lx * u + ly * v) * ir + lz * h, 0.0);
                let r4 = rho2 * rho2;
                let shade = (g.ambient + g.diffuse * lambert)
                    * (1.0 - g.rim * fmin(r4 * r4, 1.0))
                    * g.texture.factor_fixed(
                        tu_y.wrapping_add((x as i32 - xc).wrapping_mul(dtu)),
                        tv_y.wrapping_add((x as i32 - xc).wrapping_mul(dtv)),
                    )
                    * (1.0 - *sh as f32 * (1.0 / 255.0));
                let free = (255 - *cov) as f32;
                let k = (shade * alpha * free * (4096.0 / 255.0)) as u32;
                px[0] = (px[0] as u32 + ((cr * k + 32768) >> 16)).min(255) as u8;
                px[1] = (px[1] as u32 + ((cg * k + 32768) >> 16)).min(255) as u8;
                px[2] = (px[2] as u32 + ((cb * k + 32768) >> 16)).min(255) as u8;
                let new_cov = *cov as f32 + alpha * free + 0.5;
                // Snap nearly opaque pixels shut so later grains skip them.
                if new_cov > 252.0 {
                    *cov = 255;
                    opaque[x >> BLOCK_LOG2] += 1;
                } else {
                    *cov = new_cov as u8;
                }
                let t = fclamp01((shadow_lim2 - rho2) * shadow_scale);
                let s = if rho2 > shadow_from {
                    t * t * shadow_k
                } else {
                    0.0
                };
                *sh = (*sh).max(s as u8);
            }
        }
    }

    /// Paints `g` on a canvas that wraps around (a tileable texture): also at the copies of
    /// its centre one width/height away.
    pub fn draw_wrapped(&mut self, g: &Grain) {
        let (w, h) = (self.width as f32, self.height as f32);
        let reach = g.outline.max_r * (1.0 + g.shadow_reach) * 2.0;
        for oy in [-h, 0.0, h] {
            for ox in [-w, 0.0, w] {
                let (cx, cy) = (g.cx + ox, g.cy + oy);
                if cx + reach < 0.0 || cx - reach > w || cy + reach < 0.0 || cy - reach > h {
                    continue;
                }
                self.draw(&Grain { cx, cy, ..*g });
            }
        }
    }

    /// Fills what is still uncovered with `fill(x, y)` (RGB, 0..255), darkened by the contact
    /// shadows and by `gain`. Afterwards every pixel is opaque.
    pub fn fill_gaps(&mut self, gain: f32, mut fill: impl FnMut(usize, usize) -> [f32; 3]) {
        for y in 0..self.height {
            let row = y * self.width;
            for x in 0..self.width {
                let i = row + x;
                let cov = self.acc[i];
                if cov == 255 {
                    continue;
                }
                let k = gain
                    * (255 - cov) as f32
                    * (1.0 / 255.0)
                    * (1.0 - self.shadow[i] as f32 * (1.0 / 255.0));
                let c = fill(x, y);
                for (p, col) in self.rgb[3 * i..3 * i + 3].iter_mut().zip(c) {
                    *p = (*p as f32 + col * k + 0.5).min(255.0) as u8;
                }
                self.acc[i] = 255;
            }
        }
        let side = 1usize << BLOCK_LOG2;
        for (b, count) in self.opaque.iter_mut().enumerate() {
            let (bx, by) = (b % self.blocks_x, b / self.blocks_x);
            *count = (side.min(self.width - bx * side) * side.min(self.height - by * side)) as u8;
        }
    }

    /// Pixel (`x`, `y`) of an opaque canvas, wrapping around.
    #[inline]
    pub fn wrapped(&self, x: usize, y: usize) -> [u8; 3] {
        let i = 3 * ((y % self.height) * self.width + x % self.width);
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Coverage of pixel (`x`, `y`), 0..255 (for tests).
    pub fn coverage(&self, x: usize, y: usize) -> u8 {
        self.acc[y * self.width + x]
    }

    /// Takes the RGB plane (the planes used only while painting are dropped).
    pub fn into_rgb(self) -> Vec<u8> {
        self.rgb
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::texture::texture;
    use ballast_format::rng::SeededRng;

    fn grain<'a>(o: &'a Outline, cx: f32, cy: f32, d: f32, color: [f32; 3]) -> Grain<'a> {
        Grain {
            cx,
            cy,
            m: [1.0, 0.0, 0.0, 1.0],
            outline: o,
            r0: d / 2.0,
            shadow_reach: 0.3,
            shadow_strength: 0.6,
            color,
            light: [0.0, 0.0, 1.0],
            ambient: 0.5,
            diffuse: 0.5,
            rim: 0.0,
            texture: TexSampler::new(texture(), 1.0, 0.0, 0.0, 0.0),
        }
    }

    #[test]
    fn front_grain_hides_back_grain_and_shadows_it() {
        let mut rng = SeededRng::for_key("test.canvas", 0, &[]);
        let mut o = Outline::new();
        o.rebuild(&mut rng, 20.0);
        let mut c = Canvas::new(64, 40);
        c.draw(&grain(&o, 20.0, 20.0, 20.0, [200.0, 0.0, 0.0]));
        let mut o2 = Outline::new();
        o2.rebuild(&mut rng, 40.0);
        c.draw(&grain(&o2, 36.0, 20.0, 40.0, [0.0, 200.0, 0.0]));
        let px = |c: &Canvas, x: usize, y: usize| {
            let i = 3 * (y * c.width + x);
            [c.rgb[i], c.rgb[i + 1], c.rgb[i + 2]]
        };
        // The front (red) grain's centre is untouched by the later green one.
        assert_eq!(c.coverage(20, 20), 255);
        let p = px(&c, 20, 20);
        assert!(p[0] > 150 && p[1] == 0, "{p:?}");
        // The back grain is visible beyond the front one, darker near the front one's rim.
        let far = px(&c, 50, 20);
        assert!(far[1] > 150 && far[0] == 0, "{far:?}");
        let near = (31..40).map(|x| px(&c, x, 20)[1]).filter(|&g| g > 0).min();
        assert!(near.is_some_and(|g| g < far[1]), "{near:?} vs {far:?}");
        // Far corner untouched, then gap filling makes everything opaque.
        assert_eq!(c.coverage(0, 0), 0);
        c.fill_gaps(1.0, |_, _| [10.0, 20.0, 30.0]);
        assert!((0..40).all(|y| (0..64).all(|x| c.coverage(x, y) == 255)));
        assert_eq!(px(&c, 0, 0), [10, 20, 30]);
    }

    #[test]
    fn grains_off_canvas_or_degenerate_are_skipped_without_panic() {
        let mut rng = SeededRng::for_key("test.canvas", 1, &[]);
        let mut o = Outline::new();
        o.rebuild(&mut rng, 10.0);
        let mut c = Canvas::new(16, 16);
        for &(x, y) in &[
            (-100.0, 5.0),
            (5.0, -100.0),
            (500.0, 5.0),
            (5.0, 1e9),
            (f32::NAN, 3.0),
        ] {
            c.draw(&grain(&o, x, y, 10.0, [255.0; 3]));
        }
        assert!(c.rgb.iter().all(|&v| v == 0));
        let mut flat = grain(&o, 8.0, 8.0, 10.0, [255.0; 3]);
        flat.m = [0.0; 4];
        c.draw(&flat);
        assert!(c.rgb.iter().all(|&v| v == 0));
        // Partly outside: clipped, no panic, some pixels painted.
        c.draw(&grain(&o, 15.5, 0.2, 10.0, [255.0; 3]));
        assert!(c.rgb.iter().any(|&v| v > 0));
    }

    #[test]
    fn wrapped_drawing_is_tileable() {
        let mut rng = SeededRng::for_key("test.canvas", 2, &[]);
        let mut o = Outline::new();
        o.rebuild(&mut rng, 12.0);
        let mut c = Canvas::new(32, 32);
        c.draw_wrapped(&grain(&o, 1.0, 1.0, 12.0, [255.0; 3]));
        // The grain centred at a corner shows up in all four corners.
        for &(x, y) in &[(0, 0), (31, 0), (0, 31), (31, 31)] {
            assert_eq!(c.coverage(x, y), 255, "({x},{y})");
        }
        assert_eq!(c.coverage(16, 16), 0);
    }
}
