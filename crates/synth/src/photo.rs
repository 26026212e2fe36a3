//! One photo: the per-photo look, the grain layer, the fines in the voids, and the camera.
//!
//! Every random choice comes from generators keyed by (seed, class name, photo index), split
//! into independent streams for the look, the grains, the fines and the sensor noise, so a photo
//! is the same whichever thread renders it and whatever else is rendered.

use ballast_format::rng::SeededRng;

use crate::canvas::{Canvas, Grain, extent};
use crate::gradation::{Gradation, SizeSampler, scale_for};
use crate::shape::{Outline, UNIT_STEPS, unit};
use crate::texture::{TexSampler, Texture, texture};

/// Total grain area drawn per unit of photo area. The uncovered rest (e^-COVERAGE, ~14 %) is
/// voids, filled with fines.
const COVERAGE: f32 = 2.0;
/// Grains smaller than this many output pixels are left to the fines texture.
const MIN_GRAIN_PX: f64 = 2.0;
/// Side of the tileable fines texture, pixels (a power of two).
const FINES_SIDE: usize = 128;
/// Fines lie deeper than the stones around them and get less light.
const VOID_GAIN: f32 = 0.72;

/// What the photo is of.
#[derive(Clone, Copy, Debug)]
pub struct PhotoSpec<'a> {
    pub gradation: &'a Gradation,
    pub index: u32,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
}

impl PhotoSpec<'_> {
    fn rng(&self, stream: &str) -> SeededRng {
        SeededRng::for_key(
            "synth.photo",
            self.seed,
            &[
                stream.as_bytes(),
                self.gradation.name.as_bytes(),
                &self.index.to_le_bytes(),
            ],
        )
    }
}

/// Per-photo camera and light. Drawn from the same distribution for every class, so exposure,
/// colour cast and light never tell the class.
#[derive(Clone, Debug)]
struct Look {
    /// Sun direction (x, y, z), z up.
    light: [f32; 3],
    /// Mean luma the finished photo is exposed to (0..255).
    target_luma: f32,
    /// Per-channel gains with unit luma.
    tint: [f32; 3],
    /// Linear brightness gradient across the photo: change from centre to corner, direction.
    gradient: [f32; 2],
    /// Vignetting: relative darkening at the corners.
    vignette: f32,
    /// Sensor noise standard deviation (0..255 units).
    noise: f32,
}

impl Look {
    fn draw(rng: &mut SeededRng) -> Self {
        let [ax, ay] = unit(rng.below(UNIT_STEPS as u64) as usize);
        let elevation = (30.0 + 35.0 * rng.next_f64()).to_radians();
        let (sz, cz) = elevation.sin_cos();
        let light = [(ax as f64 * cz) as f32, (ay as f64 * cz) as f32, sz as f32];
        let target_luma = (85.0 + 65.0 * rng.next_f64()) as f32;
        let tr = (0.045 * rng.normal()).exp();
        let tb = (0.045 * rng.normal()).exp();
        let norm = 0.299 * tr + 0.587 + 0.114 * tb;
        let tint = [(tr / norm) as f32, (1.0 / norm) as f32, (tb / norm) as f32];
        let strength = (0.3 * rng.next_f64()) as f32;
        let [gx, gy] = unit(rng.below(UNIT_STEPS as u64) as usize);
        let vignette = (0.05 + 0.25 * rng.next_f64()) as f32;
        let noise = (1.2 + 2.8 * rng.next_f64()) as f32;
        Look {
            light,
            target_luma,
            tint,
            gradient: [gx * strength, gy * strength],
            vignette,
            noise,
        }
    }
}

/// Renders the photo: interleaved RGB, `width × height × 3` bytes.
pub fn render(spec: &PhotoSpec) -> Vec<u8> {
    let (w, h) = (spec.width as usize, spec.height as usize);
    let scale = scale_for(spec.width, spec.height);
    let look = Look::draw(&mut spec.rng("look"));
    let g = spec.gradation;
    let d_min = g.d_min * scale;
    let d_max = g.d_max * scale;

    let mut canvas = Canvas::new(w, h);
    let lo = d_min.max(MIN_GRAIN_PX);
    if d_max > lo {
        let sampler = g.sampler(lo, d_max);
        let specs = grain_specs(
            &mut spec.rng("grains"),
            &sampler,
            w as f64,
            h as f64,
            scale as f32,
            0.5 * d_max,
        );
        paint_binned(&mut canvas, &specs, &look);
    }

    // The voids hold fines, finer than d_min: drawn the same way into a small tileable patch,
    // or, where they would be under MIN_GRAIN_PX, as plain speckle (the average they would show).
    let mut fines = Canvas::new(FINES_SIDE, FINES_SIDE);
    let mut rng = spec.rng("fines");
    let deep = TexSampler::new(texture(), 1.0, 0.35, rng.next_f32(), rng.next_f32());
    if d_min >= MIN_GRAIN_PX {
        let sampler = SizeSampler::new((0.4 * d_min).max(1.5), d_min, g.exponent);
        let side = FINES_SIDE as f64;
        let specs = grain_specs(&mut rng, &sampler, side, side, scale as f32, 0.0);
        paint_wrapped(&mut fines, &specs, &look);
        fines.fill_gaps(1.0, |x, y| {
            let v = 40.0 * deep.factor(x as f32, y as f32);
            [v, v, v]
        });
    } else {
        fines.fill_gaps(1.0, |x, y| {
            let v = 60.0 * deep.factor(x as f32, y as f32);
            [1.05 * v, v, 0.92 * v]
        });
    }
    // Each FINES_SIDE block of the photo reads the patch from its own offset, so the patch
    // does not repeat on a regular grid.
    let offsets: Vec<[usize; 2]> = (0..64)
        .map(|_| {
            [
                rng.below(FINES_SIDE as u64) as usize,
                rng.below(FINES_SIDE as u64) as usize,
            ]
        })
        .collect();
    canvas.fill_gaps(VOID_GAIN, |x, y| {
        let (bx, by) = (x / FINES_SIDE, y / FINES_SIDE);
        let [ox, oy] = offsets[(bx * 7 + by * 13) % offsets.len()];
        let p = fines.wrapped(x + ox, y + oy);
        [p[0] as f32, p[1] as f32, p[2] as f32]
    });

    let mut rgb = canvas.into_rgb();
    develop(&mut rgb, w, h, &look, &mut spec.rng("noise"));
    rgb
}

/// One grain's random choices, drawn in stacking order before any painting so the photo can
/// be painted bin by bin in any order of bins.
struct GrainSpec {
    cx: f32,
    cy: f32,
    d: f32,
    rot: [f32; 2],
    stretch: f32,
    /// Generator of the outline (rebuilt whenever the grain is painted into a bin).
    shape: SeededRng,
    relief: f32,
    color: [f32; 3],
    tex_rate: f32,
    tex_amp: f32,
    tex_at: [f32; 2],
    shadow_strength: f32,
    rim: f32,
}

impl GrainSpec {
    /// Pixel offset → local frame: rotate, then undo the stretch along u (area kept).
    fn frame(&self) -> [f32; 4] {
        let [c, s] = self.rot;
        let (sa, sb) = (self.stretch.sqrt(), 1.0 / self.stretch.sqrt());
        [c / sa, s / sa, -s / sb, c / sb]
    }

    /// How far the contact shadow reaches beyond the rim, relative to the radius.
    fn shadow_reach(&self) -> f32 {
        let r0 = 0.5 * self.d;
        (0.5 + 0.1 * r0) / r0
    }

    /// A box (x0, y0, x1, y1), pixels, holding every pixel the grain or its shadow touches.
    fn bounds(&self) -> (f32, f32, f32, f32) {
        let reach = Outline::max_radius_bound(self.d) * (1.0 + self.shadow_reach());
        let (ex, ey) = extent(self.frame(), reach);
        (
            self.cx - ex - 1.0,
            self.cy - ey - 1.0,
            self.cx + ex + 1.0,
            self.cy + ey + 1.0,
        )
    }

    fn grain<'a>(&self, outline: &'a Outline, look: &Look, tex: &'a Texture) -> Grain<'a> {
        let [c, s] = self.rot;
        let [lx, ly, lz] = look.light;
        Grain {
            cx: self.cx,
            cy: self.cy,
            m: self.frame(),
            outline,
            r0: 0.5 * self.d,
            shadow_reach: self.shadow_reach(),
            shadow_strength: self.shadow_strength,
            color: self.color,
            light: [
                self.relief * (c * lx + s * ly),
                self.relief * (-s * lx + c * ly),
                lz,
            ],
            ambient: 0.38,
            diffuse: 0.72,
            rim: self.rim,
            texture: TexSampler::new(
                tex,
                self.tex_rate,
                self.tex_amp,
                self.tex_at[0],
                self.tex_at[1],
            ),
        }
    }
}

/// Draws the random choices of a layer of grains with diameters from `sampler` (output pixels)
/// whose total area is COVERAGE × the canvas area (plus a margin, so the edges are as dense as
/// the middle), in stacking order: largest roughly first.
fn grain_specs(
    rng: &mut SeededRng,
    sampler: &SizeSampler,
    width: f64,
    height: f64,
    scale: f32,
    margin: f64,
) -> Vec<GrainSpec> {
    let (aw, ah) = (width + 2.0 * margin, height + 2.0 * margin);
    let grain_area = std::f64::consts::FRAC_PI_4 * sampler.mean_d2();
    let count = (COVERAGE as f64 * aw * ah / grain_area).round() as usize;

    // Stacking order: by size with a random ±20 % nudge, so similar sizes interleave.
    let mut order: Vec<(f32, f32)> = (0..count)
        .map(|_| {
            let d = sampler.at(rng.next_f64()) as f32;
            (d * (0.8 + 0.4 * rng.next_f32()), d)
        })
        .collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0));

    order
        .into_iter()
        .map(|(_, d)| {
            let cx = (rng.next_f64() * aw - margin) as f32;
            let cy = (rng.next_f64() * ah - margin) as f32;
            let rot = unit(rng.below(UNIT_STEPS as u64) as usize);
            let mut seed = [0u8; 32];
            for chunk in seed.chunks_exact_mut(8) {
                chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
            }
            GrainSpec {
                cx,
                cy,
                d,
                rot,
                // Flakiness: up to 1.6 : 1.
                stretch: 1.0 + 0.6 * rng.next_f32(),
                shape: SeededRng::from_seed_bytes(seed),
                relief: 0.45 + 0.5 * rng.next_f32(),
                color: stone_color(rng),
                // Speckle rate fixed in reference pixels: 0.6..1.6 cells per reference pixel.
                tex_rate: (0.6 + rng.next_f32()) / scale,
                tex_amp: 0.06 + 0.16 * rng.next_f32(),
                tex_at: [rng.next_f32(), rng.next_f32()],
                shadow_strength: 0.45 + 0.25 * rng.next_f32(),
                rim: 0.25 + 0.3 * rng.next_f32(),
            }
        })
        .collect()
}

/// Paints `specs` front to back. The canvas is cut into BIN × BIN bins, each painted with the
/// grains that reach into it, in stacking order: a pixel's result depends only on the grains
/// over it and their order, so this equals painting grain after grain over the whole canvas,
/// while each bin's planes stay in cache.
fn paint_binned(canvas: &mut Canvas, specs: &[GrainSpec], look: &Look) {
    const BIN_LOG2: u32 = 8;
    let (w, h) = (canvas.width, canvas.height);
    let bins_x = w.div_ceil(1 << BIN_LOG2);
    let bins_y = h.div_ceil(1 << BIN_LOG2);
    let mut bins: Vec<Vec<u32>> = vec![Vec::new(); bins_x * bins_y];
    for (i, g) in specs.iter().enumerate() {
        let (x0, y0, x1, y1) = g.bounds();
        if !(x1 >= 0.0 && y1 >= 0.0 && x0 < w as f32 && y0 < h as f32) {
            continue;
        }
        let bin = |v: f32, n: usize| ((v.max(0.0) as usize) >> BIN_LOG2).min(n - 1);
        for by in bin(y0, bins_y)..=bin(y1, bins_y) {
            for bx in bin(x0, bins_x)..=bin(x1, bins_x) {
                bins[by * bins_x + bx].push(i as u32);
            }
        }
    }
    let tex = texture();
    let mut outline = Outline::new();
    for (b, list) in bins.iter().enumerate() {
        let (bx, by) = (b % bins_x, b / bins_x);
        let clip = [
            bx << BIN_LOG2,
            by << BIN_LOG2,
            (bx + 1) << BIN_LOG2,
            (by + 1) << BIN_LOG2,
        ];
        for &i in list {
            let g = &specs[i as usize];
            let (x0, y0, x1, y1) = g.bounds();
            if canvas.is_hidden(
                x0.max(clip[0] as f32),
                y0.max(clip[1] as f32),
                x1.min(clip[2] as f32 - 1.0),
                y1.min(clip[3] as f32 - 1.0),
            ) {
                continue;
            }
            outline.rebuild(&mut g.shape.clone(), g.d);
            canvas.draw_clipped(&g.grain(&outline, look, tex), clip);
        }
    }
}

/// Paints `specs` on a canvas that wraps around (the fines patch).
fn paint_wrapped(canvas: &mut Canvas, specs: &[GrainSpec], look: &Look) {
    let tex = texture();
    let mut outline = Outline::new();
    for g in specs {
        outline.rebuild(&mut g.shape.clone(), g.d);
        canvas.draw_wrapped(&g.grain(&outline, look, tex));
    }
}

/// A stone's albedo × 255: mostly grey granite, some dark basalt, some reddish-brown.
fn stone_color(rng: &mut SeededRng) -> [f32; 3] {
    let kind = rng.next_f32();
    let (l, tint) = if kind < 0.55 {
        (0.52 + 0.07 * rng.normal(), [1.0, 0.99, 0.96])
    } else if kind < 0.78 {
        (0.32 + 0.05 * rng.normal(), [0.97, 1.0, 1.03])
    } else {
        (0.47 + 0.07 * rng.normal(), [1.13, 0.97, 0.84])
    };
    let l = l.clamp(0.12, 0.85) as f32 * 160.0;
    let j = [
        1.0 + 0.03 * rng.normal() as f32,
        1.0,
        1.0 + 0.03 * rng.normal() as f32,
    ];
    [l * tint[0] * j[0], l * tint[1], l * tint[2] * j[2]]
}

/// The camera: lighting gradient and vignetting, exposure to the photo's target mean luma,
/// colour tint, sensor noise. In place on interleaved RGB.
fn develop(rgb: &mut [u8], w: usize, h: usize, look: &Look, rng: &mut SeededRng) {
    if w == 0 || h == 0 {
        return;
    }
    let (cx, cy) = (0.5 * w as f32, 0.5 * h as f32);
    let half_diag = (cx * cx + cy * cy).sqrt();
    let inv = 1.0 / half_diag;
    // gain(x, y) = 1 + gradient·(p − c)/r − vignette·|p − c|²/r²: separable into two sums.
    let col: Vec<f32> = (0..w)
        .map(|x| {
            let dx = (x as f32 + 0.5 - cx) * inv;
            look.gradient[0] * dx - look.vignette * dx * dx
        })
        .collect();
    let row_term = |y: usize| {
        let dy = (y as f32 + 0.5 - cy) * inv;
        1.0 + look.gradient[1] * dy - look.vignette * dy * dy
    };

    let mut sum = 0f64;
    for y in 0..h {
        let r = row_term(y);
        let line = &rgb[3 * y * w..3 * (y + 1) * w];
        let mut s = 0f32;
        for (p, c) in line.chunks_exact(3).zip(&col) {
            s += (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) * (r + c);
        }
        sum += s as f64;
    }
    let mean = (sum / (w * h) as f64).max(1.0) as f32;
    let exposure = look.target_luma / mean;
    let gains = look.tint.map(|t| t * exposure);

    // Triangular noise (sum of two uniforms) has variance 1/6 per unit half-width.
    let luma_k = look.noise * 6f32.sqrt() / 65536.0;
    let chroma_k = 0.35 * look.noise * 3f32.sqrt() * 2.0 / 65536.0;
    for y in 0..h {
        let r = row_term(y);
        let line = &mut rgb[3 * y * w..3 * (y + 1) * w];
        for (p, c) in line.chunks_exact_mut(3).zip(&col) {
            let g = r + c;
            let bits = rng.next_u64();
            let n1 = (bits & 0xffff) as f32;
            let n2 = ((bits >> 16) & 0xffff) as f32;
            let n3 = ((bits >> 32) & 0xffff) as f32 - 32768.0;
            let n4 = (bits >> 48) as f32 - 32768.0;
            let luma = (n1 + n2 - 65536.0) * luma_k;
            let noise = [luma + n3 * chroma_k, luma, luma + n4 * chroma_k];
            for ((v, gain), n) in p.iter_mut().zip(gains).zip(noise) {
                // `as u8` saturates at 0 and 255 (and maps NaN, which cannot occur, to 0).
                *v = (*v as f32 * g * gain + n + 0.5) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradation::defaults;

    fn spec(g: &Gradation, index: u32, seed: u64) -> PhotoSpec<'_> {
        PhotoSpec {
            gradation: g,
            index,
            width: 96,
            height: 64,
            seed,
        }
    }

    #[test]
    fn render_is_deterministic_and_keyed() {
        let g = defaults();
        let a = render(&spec(&g[2], 0, 7));
        assert_eq!(a.len(), 96 * 64 * 3);
        assert_eq!(a, render(&spec(&g[2], 0, 7)));
        assert_ne!(a, render(&spec(&g[2], 1, 7)));
        assert_ne!(a, render(&spec(&g[2], 0, 8)));
        assert_ne!(a, render(&spec(&g[3], 0, 7)));
    }

    #[test]
    fn exposure_hits_the_target_whatever_the_class() {
        let g = defaults();
        for grad in [&g[0], &g[4]] {
            for i in 0..3 {
                let s = PhotoSpec {
                    width: 240,
                    height: 160,
                    ..spec(grad, i, 0)
                };
                let look = Look::draw(&mut s.rng("look"));
                let rgb = render(&s);
                let mean = rgb
                    .chunks_exact(3)
                    .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
                    .sum::<f64>()
                    / (240.0 * 160.0);
                // Highlights clipped at 255 pull bright photos a little under their target.
                assert!(
                    (mean / look.target_luma as f64 - 1.0).abs() < 0.04,
                    "{}: mean {mean} target {}",
                    grad.name,
                    look.target_luma
                );
            }
        }
    }

    /// Bin by bin (with hidden grains skipped) paints exactly what grain after grain over the
    /// whole canvas paints.
    #[test]
    fn binned_painting_equals_sequential_painting() {
        let g = defaults();
        let s = spec(&g[3], 0, 0);
        let look = Look::draw(&mut s.rng("look"));
        let sampler = g[3].sampler(3.0, 90.0);
        let (w, h) = (600, 300);
        let specs = grain_specs(
            &mut s.rng("grains"),
            &sampler,
            w as f64,
            h as f64,
            0.25,
            45.0,
        );
        let mut binned = Canvas::new(w, h);
        paint_binned(&mut binned, &specs, &look);
        let mut plain = Canvas::new(w, h);
        let mut outline = Outline::new();
        for gs in &specs {
            outline.rebuild(&mut gs.shape.clone(), gs.d);
            plain.draw(&gs.grain(&outline, &look, texture()));
        }
        assert!(binned.rgb.iter().filter(|&&v| v > 0).count() > w * h);
        assert!(binned.rgb == plain.rgb, "binned and plain painting differ");
    }

    #[test]
    fn tiny_and_odd_sizes_render() {
        let g = defaults();
        for &(w, h) in &[(1, 1), (3, 17), (16, 16), (333, 7)] {
            let s = PhotoSpec {
                width: w,
                height: h,
                ..spec(&g[4], 0, 0)
            };
            assert_eq!(render(&s).len(), (w * h * 3) as usize);
        }
    }
}
