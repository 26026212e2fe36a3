//! The packer's per-sample preprocessing, public so that the scorer prepares windows cut from
//! field photos exactly as training saw them: one implementation, no train/serve skew.
//!
//! A sample is made in three steps:
//! 1. **Luma**: ITU-R BT.601 as Pillow's `Image.convert("L")`, in Pillow's integer form
//!    `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16`. Gray input is taken as is; alpha is
//!    ignored (as Pillow does).
//! 2. **Downsample** to `size`×`size` with Pillow's antialiased bilinear convolution,
//!    `Image.resize((S, S), Image.BILINEAR)`, which is what torchvision's
//!    `Resize(S, antialias=True)` does to a PIL image. Integer arithmetic after the weights:
//!    the same bytes on every machine.
//! 3. **Jitter** (train samples only): torchvision `ColorJitter(brightness=j, contrast=j)`
//!    semantics: brightness multiplies by `b` (a blend with black), contrast blends toward the
//!    sample's mean gray with factor `c`, each clamped to [0, 255], applied in a random order.
//!    Computed in `f32` on the 0–255 scale and rounded once to the nearest integer at the end.
//!    Factors are drawn by [`Jitter::draw`] from (seed, window, copy index): the window (photo,
//!    x, y, size) is the sample's identity, whether its pixels come from a tile or the photo.
//!
//! ```
//! use ballast_format::manifest::WindowKey;
//! use ballast_packer::preprocess::{sample_from_pixels, Jitter};
//! // A 3×2 RGB image, downsampled to 8×8 (sizes below 8 are refused by the packer, not here).
//! let rgb = [255u8, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90];
//! let mut sample = sample_from_pixels(3, 2, 3, &rgb, 8).unwrap();
//! let window = WindowKey { photo: "a/p.jpg", x: 0, y: 0, size: 500 };
//! Jitter::draw(0.25, 0, window, 0).apply(&mut sample);
//! assert_eq!(sample.len(), 64);
//! ```

use ballast_format::manifest::WindowKey;
use ballast_format::rng::SeededRng;

use crate::resample::Resampler;

/// Name of the luma step recorded in `index.json` (`params.luma`).
pub const LUMA: &str = "bt601-pil";
/// Name of the downsample step recorded in `index.json` (`params.resize`).
pub const RESIZE: &str = "pil-bilinear-antialias";
/// RNG domain of the jitter draws.
pub const JITTER_DOMAIN: &str = "packer.jitter.window";
/// Smallest sample side the packer accepts.
pub const MIN_SIZE: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreprocessError {
    #[error("{channels} channels: expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)")]
    Channels { channels: u8 },
    #[error("{len} bytes do not hold a {width}x{height} image of {channels} channels")]
    BufferSize {
        len: usize,
        width: u32,
        height: u32,
        channels: u8,
    },
    #[error("empty image ({width}x{height})")]
    Empty { width: u32, height: u32 },
    #[error("window {w}x{h} at ({x},{y}) is not inside the {width}x{height} image")]
    Window {
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        width: u32,
        height: u32,
    },
    #[error("sample size must be at least 1")]
    ZeroSize,
}

impl ballast_format::Classify for PreprocessError {
    /// A window or buffer that does not fit is a caller's mistake; an image whose channels or
    /// size cannot be used is bad data.
    fn kind(&self) -> ballast_format::ErrorKind {
        use ballast_format::ErrorKind;
        match self {
            PreprocessError::Channels { .. } | PreprocessError::Empty { .. } => ErrorKind::Data,
            PreprocessError::BufferSize { .. }
            | PreprocessError::Window { .. }
            | PreprocessError::ZeroSize => ErrorKind::Usage,
        }
    }
}

/// A borrowed 8-bit image, interleaved channels, rows possibly part of a larger image (a window
/// of a decoded photo).
#[derive(Clone, Copy, Debug)]
pub struct Pixels<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    channels: u8,
    /// Bytes from one row's start to the next's.
    row_stride: usize,
}

impl<'a> Pixels<'a> {
    /// A tightly packed `width`×`height` image of `channels` (1 gray, 2 gray+alpha, 3 RGB,
    /// 4 RGBA) bytes per pixel.
    pub fn new(
        data: &'a [u8],
        width: u32,
        height: u32,
        channels: u8,
    ) -> Result<Self, PreprocessError> {
        if !(1..=4).contains(&channels) {
            return Err(PreprocessError::Channels { channels });
        }
        if width == 0 || height == 0 {
            return Err(PreprocessError::Empty { width, height });
        }
        let row_stride = width as usize * channels as usize;
        if data.len() != row_stride * height as usize {
            return Err(PreprocessError::BufferSize {
                len: data.len(),
                width,
                height,
                channels,
            });
        }
        Ok(Pixels {
            data,
            width,
            height,
            channels,
            row_stride,
        })
    }

    /// The `w`×`h` window whose top-left corner is (`x`, `y`), without copying.
    pub fn window(&self, x: u32, y: u32, w: u32, h: u32) -> Result<Pixels<'a>, PreprocessError> {
        let fits = w > 0
            && h > 0
            && x.checked_add(w).is_some_and(|r| r <= self.width)
            && y.checked_add(h).is_some_and(|b| b <= self.height);
        if !fits {
            return Err(PreprocessError::Window {
                x,
                y,
                w,
                h,
                width: self.width,
                height: self.height,
            });
        }
        let c = self.channels as usize;
        let start = y as usize * self.row_stride + x as usize * c;
        let end = start + (h as usize - 1) * self.row_stride + w as usize * c;
        Ok(Pixels {
            data: &self.data[start..end],
            width: w,
            height: h,
            channels: self.channels,
            row_stride: self.row_stride,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn channels(&self) -> u8 {
        self.channels
    }

    fn rows(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let len = self.width as usize * self.channels as usize;
        (0..self.height as usize).map(move |r| {
            let s = r * self.row_stride;
            &self.data[s..s + len]
        })
    }
}

/// Borrows a picture decoded by the `image` crate (e.g. a field photo) as [`Pixels`]: 8-bit
/// gray, gray+alpha, RGB and RGBA without copying; other layouts (16-bit, float) are first
/// converted to 8-bit RGB in `scratch`. Cut windows from the result with [`Pixels::window`].
pub fn pixels_of_image<'a>(
    img: &'a image::DynamicImage,
    scratch: &'a mut Vec<u8>,
) -> Result<Pixels<'a>, PreprocessError> {
    use image::DynamicImage as D;
    let (w, h) = (img.width(), img.height());
    match img {
        D::ImageLuma8(b) => Pixels::new(b.as_raw(), w, h, 1),
        D::ImageLumaA8(b) => Pixels::new(b.as_raw(), w, h, 2),
        D::ImageRgb8(b) => Pixels::new(b.as_raw(), w, h, 3),
        D::ImageRgba8(b) => Pixels::new(b.as_raw(), w, h, 4),
        other => {
            *scratch = other.to_rgb8().into_raw();
            Pixels::new(scratch, w, h, 3)
        }
    }
}

/// BT.601 luma of one RGB pixel, exactly as Pillow's `convert("L")`.
#[inline]
pub fn luma_of(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Writes the luma of `pixels` into `out` (resized to width × height).
pub fn luma_into(pixels: &Pixels<'_>, out: &mut Vec<u8>) {
    let w = pixels.width as usize;
    out.resize(w * pixels.height as usize, 0);
    for (row, dst) in pixels.rows().zip(out.chunks_exact_mut(w)) {
        luma_row(row, pixels.channels, dst);
    }
}

/// Luma of one row of `channels`-byte pixels into `dst` (one byte per pixel).
pub fn luma_row(src: &[u8], channels: u8, dst: &mut [u8]) {
    match channels {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        2 => {
            for (d, p) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = p[0];
            }
        }
        3 => luma_rgb(src, dst),
        _ => {
            for (d, p) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = luma_of(p[0], p[1], p[2]);
            }
        }
    }
}

/// RGB rows are the common case: 16 pixels per step so the compiler can vectorise the
/// de-interleave, with an AVX2 build of the same integer code where the CPU has it (integer
/// arithmetic: identical bytes either way).
fn luma_rgb(src: &[u8], dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { luma_rgb_avx2(src, dst) };
    }
    luma_rgb_generic(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn luma_rgb_avx2(src: &[u8], dst: &mut [u8]) {
    luma_rgb_generic(src, dst)
}

#[inline(always)]
fn luma_rgb_generic(src: &[u8], dst: &mut [u8]) {
    const N: usize = 16;
    let n = dst.len().min(src.len() / 3);
    let (dst, _) = dst.split_at_mut(n);
    let mut d = dst.chunks_exact_mut(N);
    let mut s = src[..3 * n].chunks_exact(3 * N);
    for (d, s) in (&mut d).zip(&mut s) {
        for i in 0..N {
            d[i] = luma_of(s[3 * i], s[3 * i + 1], s[3 * i + 2]);
        }
    }
    for (d, p) in d
        .into_remainder()
        .iter_mut()
        .zip(s.remainder().chunks_exact(3))
    {
        *d = luma_of(p[0], p[1], p[2]);
    }
}

/// Luma + antialiased downsample with reusable buffers: keep one per thread when preparing
/// many samples.
#[derive(Clone, Debug)]
pub struct Preprocessor {
    size: u32,
    gray: Vec<u8>,
    resampler: Resampler,
}

impl Preprocessor {
    /// A preprocessor making `size`×`size` samples.
    pub fn new(size: u32) -> Result<Self, PreprocessError> {
        if size == 0 {
            return Err(PreprocessError::ZeroSize);
        }
        Ok(Preprocessor {
            size,
            gray: Vec::new(),
            resampler: Resampler::default(),
        })
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// Writes the unjittered sample of `pixels` into `out` (`size`² bytes, row-major).
    pub fn sample_into(&mut self, pixels: &Pixels<'_>, out: &mut [u8]) {
        let mut gray = std::mem::take(&mut self.gray);
        luma_into(pixels, &mut gray);
        self.gray_sample_into(&gray, pixels.width, pixels.height, out);
        self.gray = gray;
    }

    /// As [`Preprocessor::sample_into`] for an image that is already luma (one byte per
    /// pixel, tightly packed).
    pub fn gray_sample_into(&mut self, gray: &[u8], width: u32, height: u32, out: &mut [u8]) {
        let s = self.size as usize;
        assert_eq!(out.len(), s * s, "output buffer must hold size² bytes");
        assert_eq!(
            gray.len(),
            width as usize * height as usize,
            "gray buffer size"
        );
        self.resampler
            .resize(gray, width as usize, height as usize, out, s, s);
    }

    /// The unjittered sample of `pixels` as a new `size`² vector.
    pub fn sample(&mut self, pixels: &Pixels<'_>) -> Vec<u8> {
        let s = self.size as usize;
        let mut out = vec![0u8; s * s];
        self.sample_into(pixels, &mut out);
        out
    }
}

/// Luma + downsample of a tightly packed image (no jitter): what the packer stores for a val
/// tile, and what the scorer feeds the model for a window of a field photo.
pub fn sample_from_pixels(
    width: u32,
    height: u32,
    channels: u8,
    data: &[u8],
    size: u32,
) -> Result<Vec<u8>, PreprocessError> {
    let pixels = Pixels::new(data, width, height, channels)?;
    Ok(Preprocessor::new(size)?.sample(&pixels))
}

/// Which jitter step runs first (torchvision draws a random order of its enabled transforms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitterOrder {
    BrightnessFirst,
    ContrastFirst,
}

/// One sample's jitter factors and order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Jitter {
    pub brightness: f32,
    pub contrast: f32,
    pub order: JitterOrder,
}

impl Jitter {
    /// No change.
    pub const IDENTITY: Jitter = Jitter {
        brightness: 1.0,
        contrast: 1.0,
        order: JitterOrder::BrightnessFirst,
    };

    /// The jitter of copy `copy` of the sample cut at `window` for strength `strength` = j and
    /// the user's `seed`: from `SeededRng::for_key("packer.jitter.window", seed, [photo path,
    /// x, y, size, copy as u32 LE])`, draw the order
    /// (`below(2)`: 0 = brightness first), then the brightness factor, then the contrast factor,
    /// each `uniform(max(0, 1-j), 1+j)` in f64, rounded to f32. Strength 0 gives the identity.
    pub fn draw(strength: f64, seed: u64, window: WindowKey<'_>, copy: u32) -> Jitter {
        if strength <= 0.0 {
            return Jitter::IDENTITY;
        }
        let mut rng = SeededRng::for_key(
            JITTER_DOMAIN,
            seed,
            &[
                window.photo.as_bytes(),
                &window.x.to_le_bytes(),
                &window.y.to_le_bytes(),
                &window.size.to_le_bytes(),
                &copy.to_le_bytes(),
            ],
        );
        let order = if rng.below(2) == 0 {
            JitterOrder::BrightnessFirst
        } else {
            JitterOrder::ContrastFirst
        };
        let (lo, hi) = ((1.0 - strength).max(0.0), 1.0 + strength);
        let brightness = rng.uniform(lo, hi) as f32;
        let contrast = rng.uniform(lo, hi) as f32;
        Jitter {
            brightness,
            contrast,
            order,
        }
    }

    /// Applies this jitter to a sample in place.
    pub fn apply(&self, sample: &mut [u8]) {
        jitter(sample, self.brightness, self.contrast, self.order);
    }
}

/// Brightness and contrast jitter with torchvision `ColorJitter` semantics (see the module
/// docs), in place.
pub fn jitter(sample: &mut [u8], brightness: f32, contrast: f32, order: JitterOrder) {
    if sample.is_empty() || (brightness == 1.0 && contrast == 1.0) {
        return;
    }
    let mut v: Vec<f32> = sample.iter().map(|&p| p as f32).collect();
    let steps = match order {
        JitterOrder::BrightnessFirst => [true, false],
        JitterOrder::ContrastFirst => [false, true],
    };
    for is_brightness in steps {
        if is_brightness {
            for x in v.iter_mut() {
                *x = (*x * brightness).clamp(0.0, 255.0);
            }
        } else {
            // Sequential f64 sum: deterministic, and exact for these magnitudes.
            let mean = (v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64) as f32;
            let offset = (1.0 - contrast) * mean;
            for x in v.iter_mut() {
                *x = (contrast * *x + offset).clamp(0.0, 255.0);
            }
        }
    }
    for (o, x) in sample.iter_mut().zip(v) {
        *o = x.round() as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_matches_pillow_formula_corners() {
        assert_eq!(luma_of(0, 0, 0), 0);
        assert_eq!(luma_of(255, 255, 255), 255);
        assert_eq!(luma_of(255, 0, 0), 76);
        assert_eq!(luma_of(0, 255, 0), 150);
        assert_eq!(luma_of(0, 0, 255), 29);
    }

    #[test]
    fn window_equals_copied_crop() {
        let (w, h) = (37u32, 23u32);
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 253) as u8).collect();
        let full = Pixels::new(&data, w, h, 3).unwrap();
        let win = full.window(5, 3, 20, 17).unwrap();
        let mut copy = Vec::new();
        for y in 3..20 {
            let s = (y * w as usize + 5) * 3;
            copy.extend_from_slice(&data[s..s + 60]);
        }
        let a = Preprocessor::new(8).unwrap().sample(&win);
        let b = sample_from_pixels(20, 17, 3, &copy, 8).unwrap();
        assert_eq!(a, b);
        assert!(full.window(30, 0, 8, 1).is_err());
        assert!(full.window(0, 0, 0, 1).is_err());
    }

    #[test]
    fn bad_buffers_are_errors() {
        assert!(matches!(
            sample_from_pixels(4, 4, 3, &[0; 47], 8),
            Err(PreprocessError::BufferSize { .. })
        ));
        assert!(matches!(
            sample_from_pixels(4, 4, 5, &[0; 80], 8),
            Err(PreprocessError::Channels { .. })
        ));
        assert!(sample_from_pixels(0, 4, 1, &[], 8).is_err());
        assert!(sample_from_pixels(4, 4, 1, &[0; 16], 0).is_err());
    }

    #[test]
    fn alpha_is_ignored_and_gray_passes_through() {
        let rgb: Vec<u8> = (0..16 * 16 * 3).map(|i| (i * 13 % 256) as u8).collect();
        let rgba: Vec<u8> = rgb
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], (p[0] ^ 0x5a)])
            .collect();
        assert_eq!(
            sample_from_pixels(16, 16, 3, &rgb, 8).unwrap(),
            sample_from_pixels(16, 16, 4, &rgba, 8).unwrap()
        );
        let gray: Vec<u8> = (0..64).map(|i| i as u8 * 3).collect();
        assert_eq!(sample_from_pixels(8, 8, 1, &gray, 8).unwrap(), gray);
    }

    #[test]
    fn image_crate_pictures_borrow_or_convert() {
        let rgb =
            image::RgbImage::from_fn(20, 10, |x, y| image::Rgb([x as u8 * 9, y as u8 * 20, 77]));
        let raw = rgb.as_raw().clone();
        let dynamic = image::DynamicImage::ImageRgb8(rgb);
        let mut scratch = Vec::new();
        let want = sample_from_pixels(20, 10, 3, &raw, 8).unwrap();
        let p = pixels_of_image(&dynamic, &mut scratch).unwrap();
        assert_eq!(Preprocessor::new(8).unwrap().sample(&p), want);
        assert!(scratch.is_empty(), "8-bit RGB is borrowed, not copied");
        // 16-bit input goes through 8-bit RGB.
        let wide = image::DynamicImage::ImageRgb16(dynamic.to_rgb16());
        let p = pixels_of_image(&wide, &mut scratch).unwrap();
        assert_eq!(Preprocessor::new(8).unwrap().sample(&p), want);
    }

    #[test]
    fn vectorised_rgb_luma_equals_the_formula() {
        for w in [1usize, 15, 16, 17, 33, 500] {
            let src: Vec<u8> = (0..w * 3).map(|i| (i * 131 % 256) as u8).collect();
            let mut a = vec![0u8; w];
            luma_row(&src, 3, &mut a);
            let mut b = vec![0u8; w];
            luma_rgb_generic(&src, &mut b);
            let want: Vec<u8> = src
                .chunks_exact(3)
                .map(|p| luma_of(p[0], p[1], p[2]))
                .collect();
            assert_eq!(a, want, "{w}");
            assert_eq!(b, want, "{w}");
        }
    }

    #[test]
    fn jitter_math() {
        let mut s = vec![100u8, 200, 0, 50];
        jitter(&mut s, 1.5, 1.0, JitterOrder::BrightnessFirst);
        assert_eq!(s, vec![150, 255, 0, 75]);
        // Contrast 0 collapses to the mean (87.5 → 88).
        let mut s = vec![100u8, 200, 0, 50];
        jitter(&mut s, 1.0, 0.0, JitterOrder::ContrastFirst);
        assert_eq!(s, vec![88; 4]);
        // Order matters when clamping happens: brighten first saturates 200.
        let (mut a, mut b) = (vec![100u8, 200, 0, 50], vec![100u8, 200, 0, 50]);
        jitter(&mut a, 1.5, 2.0, JitterOrder::BrightnessFirst);
        jitter(&mut b, 1.5, 2.0, JitterOrder::ContrastFirst);
        assert_ne!(a, b);
    }

    fn w(photo: &str, x: u32, y: u32, size: u32) -> WindowKey<'_> {
        WindowKey { photo, x, y, size }
    }

    #[test]
    fn draws_are_keyed_by_the_window() {
        let a = Jitter::draw(0.25, 7, w("a/x.jpg", 0, 0, 8), 0);
        assert_eq!(a, Jitter::draw(0.25, 7, w("a/x.jpg", 0, 0, 8), 0));
        assert_ne!(a, Jitter::draw(0.25, 7, w("a/x.jpg", 0, 0, 8), 1));
        assert_ne!(a, Jitter::draw(0.25, 8, w("a/x.jpg", 0, 0, 8), 0));
        assert_ne!(a, Jitter::draw(0.25, 7, w("a/y.jpg", 0, 0, 8), 0));
        for other in [
            w("a/x.jpg", 1, 0, 8),
            w("a/x.jpg", 0, 1, 8),
            w("a/x.jpg", 0, 0, 9),
        ] {
            assert_ne!(a, Jitter::draw(0.25, 7, other, 0));
        }
        assert_eq!(
            Jitter::draw(0.0, 7, w("a/x.jpg", 0, 0, 8), 3),
            Jitter::IDENTITY
        );
    }

    #[test]
    fn factors_are_in_range_with_mean_one_and_both_orders() {
        let j = 0.25;
        let n = 4000;
        let (mut sb, mut sc, mut first_b) = (0.0f64, 0.0f64, 0);
        for i in 0..n {
            let d = Jitter::draw(j, 0, w("c/t.jpg", i, 0, 8), i % 3);
            for f in [d.brightness, d.contrast] {
                assert!((0.75..=1.25).contains(&f), "{f}");
            }
            sb += d.brightness as f64;
            sc += d.contrast as f64;
            first_b += (d.order == JitterOrder::BrightnessFirst) as u32;
        }
        // Uniform on [0.75, 1.25]: sd 0.144, so the mean of 4000 is within ±0.01 of 1 at 4.4σ.
        assert!((sb / n as f64 - 1.0).abs() < 0.01, "{}", sb / n as f64);
        assert!((sc / n as f64 - 1.0).abs() < 0.01, "{}", sc / n as f64);
        assert!((1800..2200).contains(&first_b), "{first_b}");
        // j = 1 keeps factors non-negative (torchvision clamps the low end at 0).
        let d = Jitter::draw(1.0, 0, w("t", 0, 0, 1), 0);
        assert!(d.brightness >= 0.0 && d.contrast >= 0.0);
    }
}
