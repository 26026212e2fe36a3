//! Decoding tile PNGs into 8-bit pixels with reusable buffers.

use std::io::Cursor;

use png::{ColorType, Transformations};

use crate::preprocess::{Pixels, PreprocessError, luma_into, luma_row};

/// A PNG decoder that keeps its output buffer between tiles (one per worker thread).
#[derive(Debug, Default)]
pub struct TileDecoder {
    raw: Vec<u8>,
    /// Skip the chunk CRCs and the zlib Adler-32: set where the caller has already checked the
    /// whole file against a stronger digest (the packer's BLAKE3 of every tile against the
    /// manifest), so the CRC pass would only re-prove the same bytes.
    verified_bytes: bool,
}

fn channels_of(color: ColorType) -> Result<u8, String> {
    match color {
        ColorType::Grayscale => Ok(1),
        ColorType::GrayscaleAlpha => Ok(2),
        ColorType::Rgb => Ok(3),
        ColorType::Rgba => Ok(4),
        ColorType::Indexed => Err("not a valid PNG: palette was not expanded".into()),
    }
}

impl TileDecoder {
    /// A decoder for files whose bytes the caller has verified (see `verified_bytes`): it does
    /// not re-check the PNG's CRCs. Structural errors (bad chunk, short data) are still errors.
    pub fn for_verified_bytes() -> TileDecoder {
        TileDecoder {
            raw: Vec::new(),
            verified_bytes: true,
        }
    }

    fn decoder<'a>(&self, bytes: &'a [u8]) -> png::Decoder<Cursor<&'a [u8]>> {
        let mut decoder = png::Decoder::new(Cursor::new(bytes));
        decoder.set_transformations(Transformations::normalize_to_color8());
        if self.verified_bytes {
            decoder.ignore_checksums(true);
        }
        decoder
    }

    /// Decodes `bytes` (a whole PNG file) straight to BT.601 luma in `gray` (one byte per
    /// pixel, row-major), converting row by row as rows are unfiltered: the same bytes as
    /// [`TileDecoder::decode`] followed by [`luma_into`], without the full-colour buffer.
    /// Returns (width, height).
    pub fn decode_luma(&mut self, bytes: &[u8], gray: &mut Vec<u8>) -> Result<(u32, u32), String> {
        let mut reader = self
            .decoder(bytes)
            .read_info()
            .map_err(|e| format!("not a valid PNG: {e}"))?;
        let (width, height, interlaced) = {
            let info = reader.info();
            (info.width, info.height, info.interlaced)
        };
        if interlaced {
            // Adam7 rows arrive pass by pass: decode whole, then convert.
            drop(reader);
            let pixels = self.decode(bytes)?;
            luma_into(&pixels, gray);
            return Ok((width, height));
        }
        let channels = channels_of(reader.output_color_type().0)?;
        let w = width as usize;
        gray.resize(w * height as usize, 0);
        let mut rows = gray.chunks_exact_mut(w);
        while let Some(row) = reader
            .next_row()
            .map_err(|e| format!("not a valid PNG: {e}"))?
        {
            let data = row.data();
            let dst = rows
                .next()
                .ok_or_else(|| "not a valid PNG: more rows than its height".to_string())?;
            if data.len() < w * channels as usize {
                return Err("not a valid PNG: short row".into());
            }
            luma_row(data, channels, dst);
        }
        if rows.next().is_some() {
            return Err("not a valid PNG: fewer rows than its height".into());
        }
        Ok((width, height))
    }

    /// Decodes `bytes` (a whole PNG file) to 8-bit gray, gray+alpha, RGB or RGBA pixels.
    /// Palettes and low bit depths are expanded, 16-bit samples reduced to their high byte.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Pixels<'_>, String> {
        let mut reader = self
            .decoder(bytes)
            .read_info()
            .map_err(|e| format!("not a valid PNG: {e}"))?;
        let len = reader
            .output_buffer_size()
            .ok_or_else(|| "not a valid PNG: image too large".to_string())?;
        self.raw.resize(len, 0);
        let info = reader
            .next_frame(&mut self.raw)
            .map_err(|e| format!("not a valid PNG: {e}"))?;
        let channels = channels_of(info.color_type)?;
        let used = info.buffer_size();
        if info.line_size != info.width as usize * channels as usize {
            return Err(format!(
                "not a valid PNG: unexpected row layout ({} bytes per row)",
                info.line_size
            ));
        }
        Pixels::new(&self.raw[..used], info.width, info.height, channels)
            .map_err(|e: PreprocessError| format!("not a valid PNG: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(w: u32, h: u32, color: ColorType, depth: png::BitDepth, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(data).unwrap();
        wr.finish().unwrap();
        out
    }

    #[test]
    fn decodes_common_layouts() {
        let mut d = TileDecoder::default();
        let rgb: Vec<u8> = (0..5 * 3 * 3).map(|i| i as u8).collect();
        let p = d
            .decode(&encode(5, 3, ColorType::Rgb, png::BitDepth::Eight, &rgb))
            .unwrap();
        assert_eq!((p.width(), p.height(), p.channels()), (5, 3, 3));
        let g16: Vec<u8> = vec![0x12, 0x34, 0xff, 0x00, 0x80, 0x01, 0x00, 0x00];
        let p = d
            .decode(&encode(
                2,
                2,
                ColorType::Grayscale,
                png::BitDepth::Sixteen,
                &g16,
            ))
            .unwrap();
        assert_eq!((p.width(), p.height(), p.channels()), (2, 2, 1));
    }

    #[test]
    fn row_luma_equals_frame_then_luma() {
        let mut d = TileDecoder::default();
        let (w, h) = (37u32, 29u32);
        for (color, c) in [
            (ColorType::Rgb, 3),
            (ColorType::Grayscale, 1),
            (ColorType::Rgba, 4),
        ] {
            let data: Vec<u8> = (0..w * h * c).map(|i| (i * 97 % 251) as u8).collect();
            let png = encode(w, h, color, png::BitDepth::Eight, &data);
            let mut want = Vec::new();
            luma_into(&d.decode(&png).unwrap(), &mut want);
            let mut got = Vec::new();
            assert_eq!(d.decode_luma(&png, &mut got).unwrap(), (w, h));
            assert_eq!(got, want);
        }
        let png = encode(
            w,
            h,
            ColorType::Rgb,
            png::BitDepth::Eight,
            &vec![9; (w * h * 3) as usize],
        );
        let mut g = Vec::new();
        assert!(d.decode_luma(&png[..png.len() / 2], &mut g).is_err());
        assert!(d.decode_luma(b"nope", &mut g).is_err());
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let mut d = TileDecoder::default();
        assert!(d.decode(b"definitely not a png").is_err());
        let rgb = vec![7u8; 64 * 64 * 3];
        let full = encode(64, 64, ColorType::Rgb, png::BitDepth::Eight, &rgb);
        let e = d.decode(&full[..full.len() / 2]).unwrap_err();
        assert!(e.starts_with("not a valid PNG"), "{e}");
    }

    #[test]
    fn crc_is_checked_unless_the_bytes_were_verified() {
        let (w, h) = (23u32, 17u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 31 % 253) as u8).collect();
        let good = encode(w, h, ColorType::Rgb, png::BitDepth::Eight, &rgb);
        let mut want = Vec::new();
        TileDecoder::default()
            .decode_luma(&good, &mut want)
            .unwrap();
        // The IHDR chunk's CRC sits at bytes 29..33 (signature 8 + length 4 + type 4 + data 13).
        let mut bad_crc = good.clone();
        bad_crc[30] ^= 0x55;
        let mut got = Vec::new();
        let e = TileDecoder::default()
            .decode_luma(&bad_crc, &mut got)
            .unwrap_err();
        assert!(e.starts_with("not a valid PNG"), "{e}");
        let mut verified = TileDecoder::for_verified_bytes();
        assert_eq!(verified.decode_luma(&bad_crc, &mut got).unwrap(), (w, h));
        assert_eq!(got, want);
        // Skipping CRCs does not make broken data decodable.
        assert!(
            verified
                .decode_luma(&good[..good.len() / 2], &mut got)
                .is_err()
        );
    }
}
