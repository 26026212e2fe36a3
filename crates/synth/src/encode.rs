//! Photo file formats. Every encoder here is deterministic: same pixels, same bytes.

use std::io::Cursor;

use image::ImageEncoder;
use serde::{Deserialize, Serialize};

/// Output file format (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PhotoFormat {
    /// JPEG, 4:2:0 chroma like a camera (`--quality`).
    #[value(alias = "jpeg")]
    Jpg,
    /// Lossless PNG (fast compression).
    Png,
    /// Uncompressed TIFF.
    #[value(alias = "tiff")]
    Tif,
}

impl PhotoFormat {
    pub fn extension(self) -> &'static str {
        match self {
            PhotoFormat::Jpg => "jpg",
            PhotoFormat::Png => "png",
            PhotoFormat::Tif => "tif",
        }
    }
}

/// Encodes interleaved RGB `width × height` pixels. `quality` (1..=100) applies to JPEG only.
pub fn encode(
    rgb: &[u8],
    width: u32,
    height: u32,
    format: PhotoFormat,
    quality: u8,
) -> Result<Vec<u8>, String> {
    if rgb.len() != width as usize * height as usize * 3 {
        return Err(format!(
            "{} bytes do not make a {width}×{height} RGB image",
            rgb.len()
        ));
    }
    let mut out = Vec::with_capacity(rgb.len() / 4 + 4096);
    match format {
        PhotoFormat::Jpg => {
            let (w, h) = match (u16::try_from(width), u16::try_from(height)) {
                (Ok(w), Ok(h)) => (w, h),
                _ => return Err(format!("JPEG cannot hold {width}×{height} pixels")),
            };
            let mut enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
            enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
            enc.encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| e.to_string())?;
        }
        PhotoFormat::Png => {
            image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            )
            .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
            .map_err(|e| e.to_string())?;
        }
        PhotoFormat::Tif => {
            image::codecs::tiff::TiffEncoder::new(Cursor::new(&mut out))
                .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_round_trips_at_size_and_is_deterministic() {
        let (w, h) = (37u32, 21u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        for format in [PhotoFormat::Jpg, PhotoFormat::Png, PhotoFormat::Tif] {
            let a = encode(&rgb, w, h, format, 90).unwrap();
            assert_eq!(a, encode(&rgb, w, h, format, 90).unwrap());
            let img = image::load_from_memory(&a).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (w, h), "{format:?}");
            if format != PhotoFormat::Jpg {
                assert_eq!(img.into_raw(), rgb, "{format:?} must be lossless");
            }
        }
        assert!(encode(&rgb[1..], w, h, PhotoFormat::Png, 90).is_err());
    }
}
