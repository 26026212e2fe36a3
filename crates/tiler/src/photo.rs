//! Decoding one photo file: the single implementation the tiler and the scorer share, so that
//! scoring sees exactly the pixels training saw.
//!
//! A photo is read whole (its BLAKE3 digest comes from the same bytes), its format is sniffed
//! from the content (not the extension), its declared size is checked against a pixel limit
//! before anything large is allocated (decompression bombs), the decoder's allocations are
//! bounded with [`image::Limits`], a JPEG missing its end-of-image marker is refused as
//! truncated (the decoder would otherwise pad it with grey), and the EXIF orientation is applied.
//! The result is always 8-bit: grayscale photos stay L8, everything else becomes RGB8 (16-bit
//! samples are rounded, alpha is dropped).

use std::fmt;
use std::io::{Cursor, Read};
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageError, ImageFormat, RgbImage};

/// Default decompression-bomb limit: 250 megapixels (a 16 MP camera photo is 16).
pub const DEFAULT_MAX_PIXELS: u64 = 250_000_000;

/// File extensions (lowercase) taken as photos.
pub const PHOTO_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "tif", "tiff"];

/// True when `name` ends in a photo extension (case-insensitive).
pub fn has_photo_extension(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PHOTO_EXTENSIONS.iter().any(|p| e.eq_ignore_ascii_case(p)))
}

/// The container formats the tiler reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhotoFormat {
    Jpeg,
    Png,
    Tiff,
}

impl PhotoFormat {
    /// The format announced by the first bytes of a file, if it is one we read.
    pub fn sniff(bytes: &[u8]) -> Option<PhotoFormat> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(PhotoFormat::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(PhotoFormat::Png)
        } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
            Some(PhotoFormat::Tiff)
        } else {
            None
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "JPEG",
            PhotoFormat::Png => "PNG",
            PhotoFormat::Tiff => "TIFF",
        }
    }

    fn image_format(&self) -> ImageFormat {
        match self {
            PhotoFormat::Jpeg => ImageFormat::Jpeg,
            PhotoFormat::Png => ImageFormat::Png,
            PhotoFormat::Tiff => ImageFormat::Tiff,
        }
    }
}

impl fmt::Display for PhotoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a photo could not be used. `Display` is the reason users read after the file name.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error("empty file (0 bytes)")]
    Empty,
    #[error("not a JPEG, PNG or TIFF file")]
    NotAnImage,
    #[error("truncated {0} data")]
    Truncated(PhotoFormat),
    #[error(
        "declares {width}×{height} pixels ({}), over the {} limit",
        megapixels(*width as u64 * *height as u64),
        megapixels(*limit)
    )]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("{format} decoder would need more memory than allowed ({detail})")]
    OverMemoryLimit { format: PhotoFormat, detail: String },
    #[error("unsupported {format} variant: {detail}")]
    Unsupported { format: PhotoFormat, detail: String },
    #[error("corrupt {format} data: {detail}")]
    Corrupt { format: PhotoFormat, detail: String },
}

/// `250 MP`, `10000 MP`, `0.3 MP`, `4096 pixels`.
fn megapixels(pixels: u64) -> String {
    let mp = pixels as f64 / 1e6;
    if pixels < 100_000 {
        format!("{pixels} pixels")
    } else if mp >= 10.0 || mp.fract() == 0.0 {
        format!("{mp:.0} MP")
    } else {
        format!("{mp:.1} MP")
    }
}

/// Decoded, oriented 8-bit pixels.
#[derive(Clone, Debug, PartialEq)]
pub enum Pixels {
    Gray(GrayImage),
    Rgb(RgbImage),
}

impl Pixels {
    pub fn width(&self) -> u32 {
        match self {
            Pixels::Gray(i) => i.width(),
            Pixels::Rgb(i) => i.width(),
        }
    }

    pub fn height(&self) -> u32 {
        match self {
            Pixels::Gray(i) => i.height(),
            Pixels::Rgb(i) => i.height(),
        }
    }

    /// Bytes per pixel: 1 (gray) or 3 (RGB).
    pub fn channels(&self) -> usize {
        match self {
            Pixels::Gray(_) => 1,
            Pixels::Rgb(_) => 3,
        }
    }

    /// Row-major interleaved samples.
    pub fn as_raw(&self) -> &[u8] {
        match self {
            Pixels::Gray(i) => i.as_raw(),
            Pixels::Rgb(i) => i.as_raw(),
        }
    }

    /// Copies the `w`×`h` window at (`x`, `y`) into `out` (row-major, same channels).
    /// The window must lie inside the image.
    pub fn crop_into(&self, x: u32, y: u32, w: u32, h: u32, out: &mut Vec<u8>) {
        let c = self.channels();
        let stride = self.width() as usize * c;
        let row = w as usize * c;
        let raw = self.as_raw();
        out.clear();
        out.reserve(row * h as usize);
        for r in y as usize..(y + h) as usize {
            let start = r * stride + x as usize * c;
            out.extend_from_slice(&raw[start..start + row]);
        }
    }

    pub fn into_dynamic(self) -> DynamicImage {
        match self {
            Pixels::Gray(i) => DynamicImage::ImageLuma8(i),
            Pixels::Rgb(i) => DynamicImage::ImageRgb8(i),
        }
    }

    fn from_dynamic(img: DynamicImage) -> Pixels {
        match img {
            DynamicImage::ImageLuma8(i) => Pixels::Gray(i),
            DynamicImage::ImageRgb8(i) => Pixels::Rgb(i),
            other @ (DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageLuma16(_)
            | DynamicImage::ImageLumaA16(_)) => Pixels::Gray(other.to_luma8()),
            other => Pixels::Rgb(other.to_rgb8()),
        }
    }
}

/// A decoded photo.
#[derive(Clone, Debug)]
pub struct Decoded {
    pub pixels: Pixels,
    pub format: PhotoFormat,
    /// The EXIF orientation that was applied.
    pub orientation: Orientation,
}

/// A photo file read, hashed and decoded.
#[derive(Clone, Debug)]
pub struct Photo {
    pub pixels: Pixels,
    pub format: PhotoFormat,
    /// BLAKE3 of the file's bytes (64 hex digits), as in the manifest's `photo_digest`.
    pub digest: String,
    pub file_bytes: u64,
}

/// Reads, hashes and decodes the photo at `path`, refusing more than `max_pixels` pixels.
pub fn open(path: &Path, max_pixels: u64) -> Result<Photo, PhotoError> {
    let bytes = read(path)?;
    let digest = ballast_format::digest::of_bytes(&bytes);
    let d = decode(&bytes, max_pixels)?;
    Ok(Photo {
        pixels: d.pixels,
        format: d.format,
        digest,
        file_bytes: bytes.len() as u64,
    })
}

/// Reads a photo file whole. Refuses anything that is not a regular file before opening it
/// (opening a FIFO named `x.jpg` would block forever), and opens without blocking in case the
/// file was swapped for one between the check and the open.
pub fn read(path: &Path) -> Result<Vec<u8>, PhotoError> {
    let meta = std::fs::metadata(path).map_err(PhotoError::Read)?;
    if !meta.is_file() {
        return Err(PhotoError::NotAFile);
    }
    let mut file = open_nonblocking(path).map_err(PhotoError::Read)?;
    let meta = file.metadata().map_err(PhotoError::Read)?;
    if !meta.is_file() {
        return Err(PhotoError::NotAFile);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(PhotoError::Read)?;
    Ok(bytes)
}

fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // No effect on reads of regular files; makes opening a FIFO return at once.
        o.custom_flags(libc::O_NONBLOCK);
    }
    o.open(path)
}

/// The decoder's allocation budget for a photo of at most `max_pixels` pixels: room for the
/// widest sample type the decoders produce (RGBA, 16 bits), plus working space.
fn limits_for(max_pixels: u64) -> image::Limits {
    let mut limits = image::Limits::no_limits();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    limits
}

/// Decodes a photo held in memory, applying its EXIF orientation.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<Decoded, PhotoError> {
    let format = sniff(bytes)?;
    if format == PhotoFormat::Jpeg {
        return decode_jpeg(bytes, max_pixels);
    }
    let h = image_headers(bytes, format, max_pixels)?;
    let img = DynamicImage::from_decoder(h.decoder).map_err(|e| map_image_error(format, e))?;
    Ok(oriented(img, format, h.orientation))
}

/// The format of a non-empty photo file, from its content.
fn sniff(bytes: &[u8]) -> Result<PhotoFormat, PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    PhotoFormat::sniff(bytes).ok_or(PhotoError::NotAnImage)
}

/// A PNG or TIFF decoder past its headers, the pixel limit checked.
struct ImageHeaders<'a> {
    decoder: Box<dyn ImageDecoder + 'a>,
    width: u32,
    height: u32,
    orientation: Orientation,
}

fn image_headers(
    bytes: &[u8],
    format: PhotoFormat,
    max_pixels: u64,
) -> Result<ImageHeaders<'_>, PhotoError> {
    // PNG's size sits at a fixed place: check it before the decoder sizes any buffer.
    if format == PhotoFormat::Png
        && let Some((w, h)) = png_declared_size(bytes)
    {
        check_pixels(w, h, max_pixels)?;
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format.image_format());
    reader.limits(limits_for(max_pixels));
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(format, e))?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, max_pixels)?;
    // A malformed EXIF block must not cost the photo: it just has no orientation.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    Ok(ImageHeaders {
        decoder: Box::new(decoder),
        width,
        height,
        orientation,
    })
}

/// What a photo's headers say, without decoding its pixels: `tiler --tile-files none` plans
/// windows from this and leaves decoding to the packer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probed {
    /// Size after EXIF orientation (what [`decode`] would return).
    pub width: u32,
    pub height: u32,
    pub format: PhotoFormat,
}

/// Reads a photo's size and EXIF orientation from its headers, with the checks that need no
/// pixels: the format, the pixel limit, and (JPEG) the end-of-image marker. Damage inside the
/// compressed data is found when the packer decodes the photo (it then skips or refuses it,
/// naming it, as the tiler would have).
pub fn probe(bytes: &[u8], max_pixels: u64) -> Result<Probed, PhotoError> {
    let format = sniff(bytes)?;
    let (w, h, orientation) = if format == PhotoFormat::Jpeg {
        let j = jpeg_headers(bytes, max_pixels)?;
        (j.width, j.height, j.orientation)
    } else {
        let i = image_headers(bytes, format, max_pixels)?;
        (i.width, i.height, i.orientation)
    };
    let swaps = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (width, height) = if swaps { (h, w) } else { (w, h) };
    Ok(Probed {
        width,
        height,
        format,
    })
}

/// 8-bit pixels with the EXIF orientation applied.
fn oriented(img: DynamicImage, format: PhotoFormat, orientation: Orientation) -> Decoded {
    let mut img = match Pixels::from_dynamic(img) {
        Pixels::Gray(i) => DynamicImage::ImageLuma8(i),
        Pixels::Rgb(i) => DynamicImage::ImageRgb8(i),
    };
    img.apply_orientation(orientation);
    Decoded {
        pixels: Pixels::from_dynamic(img),
        format,
        orientation,
    }
}

fn zune_options(strict: bool) -> zune_core::options::DecoderOptions {
    zune_core::options::DecoderOptions::default()
        .set_strict_mode(strict)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX)
}

/// Header-level deviations that cameras and editors really produce and that say nothing about
/// the pixels: tolerated, as libjpeg does (with a warning). Everything else strict mode finds
/// (corrupt entropy data, premature end, stray markers inside a scan) refuses the photo.
fn benign_strict_error(e: &zune_jpeg::errors::DecodeErrors) -> bool {
    let text = e.to_string();
    text.contains("Extra bytes between headers")
}

/// A JPEG decoder past its headers: the pixel limit checked, the data complete (an EOI after
/// the scan), the EXIF orientation read.
struct JpegHeaders<'a> {
    decoder: zune_jpeg::JpegDecoder<zune_core::bytestream::ZCursor<&'a [u8]>>,
    /// False when a benign header deviation needed the lenient decoder.
    strict: bool,
    width: u32,
    height: u32,
    orientation: Orientation,
}

fn jpeg_headers(bytes: &[u8], max_pixels: u64) -> Result<JpegHeaders<'_>, PhotoError> {
    use zune_core::bytestream::ZCursor;
    let mut strict = true;
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), zune_options(true));
    if let Err(e) = d.decode_headers() {
        if !benign_strict_error(&e) {
            return Err(map_zune_error(e));
        }
        strict = false;
        d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), zune_options(false));
        d.decode_headers().map_err(map_zune_error)?;
    }
    let (w, h) = d
        .dimensions()
        .ok_or_else(|| corrupt_text("no frame header"))?;
    check_pixels(w as u32, h as u32, max_pixels)?;
    if !jpeg_is_complete(bytes) {
        return Err(PhotoError::Truncated(PhotoFormat::Jpeg));
    }
    let orientation = d
        .exif()
        .and_then(|exif| Orientation::from_exif_chunk(exif))
        .unwrap_or(Orientation::NoTransforms);
    Ok(JpegHeaders {
        decoder: d,
        strict,
        width: w as u32,
        height: h as u32,
        orientation,
    })
}

/// JPEG through zune-jpeg in strict mode, with the colour rules of image's JPEG decoder (the
/// same library underneath), so valid photos decode to the very same pixels as before.
fn decode_jpeg(bytes: &[u8], max_pixels: u64) -> Result<Decoded, PhotoError> {
    use zune_core::colorspace::ColorSpace;
    let format = PhotoFormat::Jpeg;
    let corrupt = |e: zune_jpeg::errors::DecodeErrors| PhotoError::Corrupt {
        format,
        detail: e.to_string(),
    };
    let JpegHeaders {
        decoder: mut d,
        strict,
        width: w,
        height: h,
        orientation,
    } = jpeg_headers(bytes, max_pixels)?;
    crate::jpeg_check::check(bytes).map_err(|detail| PhotoError::Corrupt { format, detail })?;
    let input = d
        .input_colorspace()
        .ok_or_else(|| corrupt_text("no colour space"))?;
    let out = match input {
        ColorSpace::RGB | ColorSpace::RGBA | ColorSpace::Luma | ColorSpace::LumaA => input,
        _ => ColorSpace::RGB,
    };
    d.set_options(zune_options(strict).jpeg_set_out_colorspace(out));
    let raw = d.decode().map_err(|e| {
        if matches!(e, zune_jpeg::errors::DecodeErrors::LargeDimensions(_)) {
            map_zune_error(e)
        } else {
            corrupt(e)
        }
    })?;
    let img = match out {
        ColorSpace::Luma => image::GrayImage::from_raw(w, h, raw).map(DynamicImage::ImageLuma8),
        ColorSpace::LumaA => {
            image::GrayAlphaImage::from_raw(w, h, raw).map(DynamicImage::ImageLumaA8)
        }
        ColorSpace::RGBA => image::RgbaImage::from_raw(w, h, raw).map(DynamicImage::ImageRgba8),
        _ => RgbImage::from_raw(w, h, raw).map(DynamicImage::ImageRgb8),
    }
    .ok_or_else(|| corrupt_text("decoded data does not fill the frame"))?;
    Ok(oriented(img, format, orientation))
}

fn corrupt_text(detail: &str) -> PhotoError {
    PhotoError::Corrupt {
        format: PhotoFormat::Jpeg,
        detail: detail.into(),
    }
}

fn map_zune_error(e: zune_jpeg::errors::DecodeErrors) -> PhotoError {
    use zune_jpeg::errors::DecodeErrors;
    let format = PhotoFormat::Jpeg;
    match e {
        DecodeErrors::Unsupported(u) => PhotoError::Unsupported {
            format,
            detail: format!("{u:?}"),
        },
        DecodeErrors::LargeDimensions(_) => PhotoError::OverMemoryLimit {
            format,
            detail: "image dimensions over the limit".into(),
        },
        DecodeErrors::ExhaustedData => PhotoError::Truncated(format),
        other => PhotoError::Corrupt {
            format,
            detail: other.to_string(),
        },
    }
}

fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<(), PhotoError> {
    if width as u64 * height as u64 > max_pixels {
        return Err(PhotoError::TooManyPixels {
            width,
            height,
            limit: max_pixels,
        });
    }
    Ok(())
}

/// Width and height from a PNG's IHDR chunk (always the first chunk).
fn png_declared_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

/// Offset just past the first start-of-scan marker of a JPEG, walking the marker segments.
fn jpeg_scan_start(bytes: &[u8]) -> Option<usize> {
    let mut i = 2; // past SOI
    loop {
        // Tolerate stray bytes between segments, as lenient decoders do.
        while i < bytes.len() && bytes[i] != 0xFF {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let marker = *bytes.get(i)?;
        i += 1;
        match marker {
            0xDA => return Some(i),
            0xD9 => return None,
            0x01 | 0xD0..=0xD8 => {}
            _ => {
                let len = u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]) as usize;
                if len < 2 {
                    return None;
                }
                i += len;
            }
        }
    }
}

/// True when the JPEG's image data ends with an end-of-image marker. Entropy-coded data never
/// contains FF D9 (0xFF is stuffed as FF 00), so an EOI after the first scan is the real end;
/// an EOI inside an EXIF thumbnail (before the scan) does not count. Trailing bytes after the
/// EOI (some cameras append data) are fine.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    match jpeg_scan_start(bytes) {
        Some(s) => bytes[s..].windows(2).rev().any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

fn map_image_error(format: PhotoFormat, e: ImageError) -> PhotoError {
    match e {
        ImageError::Limits(l) => match l.kind() {
            image::error::LimitErrorKind::DimensionError => PhotoError::OverMemoryLimit {
                format,
                detail: "image dimensions over the limit".into(),
            },
            _ => PhotoError::OverMemoryLimit {
                format,
                detail: l.to_string(),
            },
        },
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            PhotoError::Truncated(format)
        }
        ImageError::Unsupported(u) => PhotoError::Unsupported {
            format,
            detail: u.to_string(),
        },
        other => {
            let detail = other.to_string();
            let lower = detail.to_ascii_lowercase();
            if lower.contains("eof") || lower.contains("end of") || lower.contains("truncat") {
                PhotoError::Truncated(format)
            } else {
                PhotoError::Corrupt { format, detail }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder;

    fn noisy_rgb(w: u32, h: u32) -> RgbImage {
        let mut s = 12345u32;
        RgbImage::from_fn(w, h, |x, y| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = (s >> 24) as u8;
            image::Rgb([(x * 7) as u8 ^ n, (y * 5) as u8, n])
        })
    }

    fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        ballast_testkit::images::with_exif_orientation(jpeg, orientation)
    }

    #[test]
    fn exif_orientation_6_rotates_clockwise() {
        // A tall bright bar on the left edge of the stored image ends on the top edge after a
        // 90° clockwise turn.
        let (w, h) = (64u32, 32u32);
        let img = RgbImage::from_fn(w, h, |x, _| {
            if x < 8 {
                image::Rgb([250, 250, 250])
            } else {
                image::Rgb([10, 10, 10])
            }
        });
        let plain = jpeg_bytes(&img);
        let rotated = with_exif(&plain, 6);
        let d0 = decode(&plain, DEFAULT_MAX_PIXELS).unwrap();
        let d6 = decode(&rotated, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((d0.pixels.width(), d0.pixels.height()), (w, h));
        assert_eq!((d6.pixels.width(), d6.pixels.height()), (h, w));
        assert_eq!(d6.orientation, Orientation::Rotate90);
        let Pixels::Rgb(r) = &d6.pixels else {
            panic!("colour photo decoded as gray")
        };
        assert!(r.get_pixel(16, 2)[0] > 200, "top edge should be bright");
        assert!(r.get_pixel(16, 60)[0] < 60, "bottom edge should be dark");
    }

    #[test]
    fn probe_reads_the_decoded_size_without_decoding() {
        let img = noisy_rgb(40, 30);
        let jpeg = jpeg_bytes(&img);
        for o in 1..=8u16 {
            let bytes = with_exif(&jpeg, o);
            let d = decode(&bytes, DEFAULT_MAX_PIXELS).unwrap();
            let p = probe(&bytes, DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!(
                (p.width, p.height),
                (d.pixels.width(), d.pixels.height()),
                "orientation {o}"
            );
        }
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(img.as_raw(), 40, 30, image::ExtendedColorType::Rgb8)
            .unwrap();
        let p = probe(&png, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((p.width, p.height, p.format), (40, 30, PhotoFormat::Png));
        assert!(matches!(
            probe(&jpeg, 100),
            Err(PhotoError::TooManyPixels { .. })
        ));
        assert!(matches!(
            probe(&jpeg[..jpeg.len() - 10], DEFAULT_MAX_PIXELS),
            Err(PhotoError::Truncated(_))
        ));
        assert!(matches!(
            probe(b"not a photo", DEFAULT_MAX_PIXELS),
            Err(PhotoError::NotAnImage)
        ));
    }

    #[test]
    fn formats_decode_to_eight_bit() {
        let img = noisy_rgb(40, 30);
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(img.as_raw(), 40, 30, image::ExtendedColorType::Rgb8)
            .unwrap();
        let d = decode(&png, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(d.format, PhotoFormat::Png);
        assert_eq!(d.pixels, Pixels::Rgb(img.clone()));

        // 16-bit gray TIFF becomes L8.
        let g16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(20, 10, |x, y| {
            image::Luma([(x * 3000 + y * 10) as u16])
        });
        let mut tiff = Cursor::new(Vec::new());
        DynamicImage::ImageLuma16(g16.clone())
            .write_to(&mut tiff, ImageFormat::Tiff)
            .unwrap();
        let d = decode(tiff.get_ref(), DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(d.format, PhotoFormat::Tiff);
        let Pixels::Gray(g) = d.pixels else {
            panic!("gray TIFF decoded as colour")
        };
        assert_eq!(g.dimensions(), (20, 10));
        assert_eq!(g.get_pixel(5, 0)[0], (15000.0f64 / 257.0).round() as u8);

        // RGBA PNG drops alpha.
        let rgba = image::RgbaImage::from_pixel(8, 8, image::Rgba([1, 2, 3, 4]));
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(rgba.as_raw(), 8, 8, image::ExtendedColorType::Rgba8)
            .unwrap();
        let d = decode(&png, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(
            d.pixels,
            Pixels::Rgb(RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])))
        );
    }

    #[test]
    fn bad_inputs_have_clear_reasons() {
        assert_eq!(
            decode(&[], DEFAULT_MAX_PIXELS).unwrap_err().to_string(),
            "empty file (0 bytes)"
        );
        assert_eq!(
            decode(b"hello, I am text", DEFAULT_MAX_PIXELS)
                .unwrap_err()
                .to_string(),
            "not a JPEG, PNG or TIFF file"
        );
        let jpeg = jpeg_bytes(&noisy_rgb(64, 64));
        assert!(jpeg_is_complete(&jpeg));
        let cut = &jpeg[..jpeg.len() * 2 / 3];
        assert!(!jpeg_is_complete(cut));
        assert_eq!(
            decode(cut, DEFAULT_MAX_PIXELS).unwrap_err().to_string(),
            "truncated JPEG data"
        );
        // Over the pixel limit: refused from the header alone.
        let err = decode(&jpeg, 1000).unwrap_err().to_string();
        assert_eq!(
            err, "declares 64×64 pixels (4096 pixels), over the 1000 pixels limit",
            "{err}"
        );
    }

    #[test]
    fn png_bomb_is_refused_before_allocating() {
        // A valid signature and IHDR declaring 100000×100000, then nothing.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&[0, 0, 0, 0]); // CRC (not checked before the size)
        let err = decode(&png, DEFAULT_MAX_PIXELS).unwrap_err().to_string();
        assert_eq!(
            err,
            "declares 100000×100000 pixels (10000 MP), over the 250 MP limit"
        );
    }

    #[test]
    fn crop_copies_the_window() {
        let img = noisy_rgb(10, 6);
        let px = Pixels::Rgb(img.clone());
        let mut out = Vec::new();
        px.crop_into(3, 2, 4, 3, &mut out);
        let want = image::imageops::crop_imm(&img, 3, 2, 4, 3).to_image();
        assert_eq!(out, want.into_raw());
    }

    #[test]
    fn strict_jpeg_equals_the_lenient_decoder_on_valid_files() {
        for (w, h) in [(64u32, 48u32), (33, 17), (1, 1)] {
            let jpeg = jpeg_bytes(&noisy_rgb(w, h));
            let ours = decode(&jpeg, DEFAULT_MAX_PIXELS).unwrap().pixels;
            let theirs = image::load_from_memory_with_format(&jpeg, ImageFormat::Jpeg)
                .unwrap()
                .to_rgb8();
            assert_eq!(ours, Pixels::Rgb(theirs), "{w}x{h}");
        }
        // Gray JPEGs stay gray.
        let g = GrayImage::from_fn(20, 12, |x, y| image::Luma([(x * 9 + y * 3) as u8]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .write_image(g.as_raw(), 20, 12, image::ExtendedColorType::L8)
            .unwrap();
        let d = decode(&jpeg, DEFAULT_MAX_PIXELS).unwrap();
        let want = image::load_from_memory(&jpeg).unwrap().to_luma8();
        assert_eq!(d.pixels, Pixels::Gray(want));
    }

    #[test]
    fn corrupt_entropy_data_is_refused() {
        // 200 bytes of the scan overwritten with marker-free noise (markers stay intact), at
        // several places of several photos: the lenient decoder accepts most of these.
        let mut lenient_ok = 0;
        let mut cases = 0;
        for seed in 0..4u32 {
            let jpeg = jpeg_bytes(&noisy_rgb(256 + seed * 8, 192));
            let start = jpeg_scan_start(&jpeg).unwrap();
            for part in 1..5 {
                let mut bad = jpeg.clone();
                let from = start + (jpeg.len() - start) * part / 6;
                let mut x = 0x9E37_79B9u32 ^ (seed * 977 + part as u32);
                for b in &mut bad[from..from + 200] {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    *b = (x % 255) as u8; // never 0xFF: no marker appears
                }
                assert!(jpeg_is_complete(&bad));
                cases += 1;
                if image::load_from_memory_with_format(&bad, ImageFormat::Jpeg).is_ok() {
                    lenient_ok += 1;
                }
                let err = decode(&bad, DEFAULT_MAX_PIXELS)
                    .map(|_| ())
                    .expect_err(&format!("seed {seed} part {part}: corrupt JPEG accepted"));
                assert!(err.to_string().starts_with("corrupt JPEG data"), "{err}");
            }
        }
        // The bug this guards against: the lenient decoder fills corrupt data with gray.
        assert!(lenient_ok > cases / 2, "{lenient_ok} of {cases}");
    }

    #[test]
    fn a_fifo_is_refused_without_opening_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.jpg");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let t = std::time::Instant::now();
        assert!(matches!(read(&fifo), Err(PhotoError::NotAFile)));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        assert!(matches!(read(dir.path()), Err(PhotoError::NotAFile)));
    }

    #[test]
    fn extensions() {
        assert!(has_photo_extension("a/B.JPG"));
        assert!(has_photo_extension("x.tiff"));
        assert!(has_photo_extension("x.Png"));
        assert!(!has_photo_extension("x.gif"));
        assert!(!has_photo_extension("jpg"));
    }
}
