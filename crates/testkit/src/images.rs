//! Photos made in the test: noisy colour textures (so tiles compress like real ones) in JPEG,
//! PNG and TIFF, and hand-made damaged files.

use std::fs;
use std::path::Path;

use image::{ImageEncoder, RgbImage};

/// A colour texture: smooth gradients plus per-pixel noise keyed by `seed`.
pub fn texture(w: u32, h: u32, seed: u32) -> RgbImage {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    RgbImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let n = s & 0x3f;
        image::Rgb([
            ((x * 3 + seed * 17) % 192 + n) as u8,
            ((y * 2 + x / 3) % 192 + n / 2) as u8,
            ((x + y + seed * 5) % 160 + n) as u8,
        ])
    })
}

pub fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode jpeg");
    out
}

pub fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode png");
    out
}

pub fn tiff_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut out, image::ImageFormat::Tiff)
        .expect("encode tiff");
    out.into_inner()
}

/// Writes `bytes` to `path`, creating its folder.
pub fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("create folder");
    fs::write(path, bytes).expect("write");
}

/// Writes a photo, its format chosen by the extension (JPEG unless png/tif/tiff).
pub fn photo(path: &Path, w: u32, h: u32, seed: u32) {
    let img = texture(w, h, seed);
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let bytes = match ext.as_str() {
        "png" => png_bytes(&img),
        "tif" | "tiff" => tiff_bytes(&img),
        _ => jpeg_bytes(&img),
    };
    write(path, &bytes);
}

/// A small ImageFolder tree: `classes` classes × `per_class` JPEG photos of `w`×`h`.
pub fn photo_tree(root: &Path, classes: usize, per_class: usize, w: u32, h: u32) {
    for c in 0..classes {
        for i in 0..per_class {
            let seed = (c * 1000 + i) as u32;
            photo(&root.join(format!("class{c}/IMG_{i:04}.jpg")), w, h, seed);
        }
    }
}

/// CRC-32 (PNG chunks).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A small, well-formed PNG that declares `w`×`h` pixels (a decompression bomb).
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit gray
    chunk(&mut out, b"IHDR", &ihdr);
    // A zlib stream of a few zero bytes: a real bomb compresses rows of zeros this well.
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The offset of the first byte after the JPEG start-of-scan header (the entropy-coded data).
pub fn jpeg_scan_start(jpeg: &[u8]) -> Option<usize> {
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        if jpeg[i] != 0xFF {
            return None;
        }
        let marker = jpeg[i + 1];
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        if marker == 0xDA {
            return Some(i + 2 + len);
        }
        i += 2 + len;
    }
    None
}

/// `jpeg` with `n` bytes of its entropy-coded data overwritten by a pattern that holds no
/// marker (no 0xFF), as a bad sector or a broken transfer leaves it: the markers are intact,
/// the data is not.
pub fn corrupt_jpeg_entropy(jpeg: &[u8], n: usize) -> Vec<u8> {
    let start = jpeg_scan_start(jpeg).expect("a baseline JPEG with a scan");
    let mut out = jpeg.to_vec();
    let from = start + (jpeg.len() - start) / 3;
    for (k, b) in out[from..from + n].iter_mut().enumerate() {
        *b = (k as u8).wrapping_mul(37) & 0x7F;
    }
    out
}

/// An APP1 Exif segment holding only an Orientation tag.
pub fn exif_app1(orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 offset
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // count
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(&payload);
    seg
}

/// `jpeg` with an Exif Orientation tag (1–8) inserted right after its SOI marker.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&exif_app1(orientation));
    out.extend_from_slice(&jpeg[2..]);
    out
}
