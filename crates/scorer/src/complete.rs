//! Is a photo file complete, or is it still being written? Watch mode asks this of a file
//! whose size has settled, since a camera or copy tool may pause mid-file for longer than the
//! settle time, and a half-written file that decodes to an error (or, worse, to padded pixels)
//! would be reported once and never scored.
//!
//! Each format is judged by what only a complete file has:
//! - JPEG: an end-of-image marker after the first scan (the tiler's [`jpeg_is_complete`]);
//! - PNG: an `IEND` chunk, reached by walking the chunk lengths from the signature;
//! - TIFF: every IFD in the chain, every value it stores out of line, and every strip or tile
//!   it references (`StripOffsets`/`StripByteCounts`, `TileOffsets`/`TileByteCounts`) lying
//!   within the file.
//!
//! A file these checks cannot interpret is taken as complete: the decoder then says what is
//! wrong with it. Every offset and length from the file goes through checked arithmetic.

use ballast_tiler::photo::{PhotoFormat, jpeg_is_complete};

/// True unless the file is a JPEG, PNG or TIFF whose own structure says bytes are missing.
pub fn is_complete(bytes: &[u8]) -> bool {
    match PhotoFormat::sniff(bytes) {
        Some(PhotoFormat::Jpeg) => jpeg_is_complete(bytes),
        Some(PhotoFormat::Png) => png_is_complete(bytes),
        Some(PhotoFormat::Tiff) => tiff_is_complete(bytes),
        None => true,
    }
}

/// Walks the chunks after the 8-byte signature: complete when an `IEND` chunk (length, type,
/// data, CRC) lies wholly within the file. Bytes after it do not matter.
pub fn png_is_complete(bytes: &[u8]) -> bool {
    let mut at = 8usize;
    loop {
        let Some(head) = bytes.get(at..at.saturating_add(8)) else {
            return false;
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(end) = at.checked_add(12).and_then(|x| x.checked_add(len)) else {
            return false;
        };
        if end > bytes.len() {
            return false;
        }
        if &head[4..8] == b"IEND" {
            return true;
        }
        at = end;
    }
}

/// Classic TIFF (`II*\0`, `MM\0*`) read just far enough to find what it references.
struct Tiff<'a> {
    b: &'a [u8],
    le: bool,
}

/// Why a TIFF cannot be judged complete.
enum Short {
    /// A structure or referenced range reaches past the end of the file.
    Missing,
    /// The structure makes no sense; the decoder will say why.
    Unreadable,
}

const STRIP_OFFSETS: u16 = 273;
const STRIP_BYTE_COUNTS: u16 = 279;
const TILE_OFFSETS: u16 = 324;
const TILE_BYTE_COUNTS: u16 = 325;
/// A multi-page TIFF longer than this is not a field photo; stop walking (the decoder reads
/// the first page only).
const MAX_IFDS: usize = 64;

impl Tiff<'_> {
    fn u16_at(&self, at: u64) -> Result<u16, Short> {
        let s = self.slice(at, 2)?;
        let a = [s[0], s[1]];
        Ok(if self.le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        })
    }

    fn u32_at(&self, at: u64) -> Result<u32, Short> {
        let s = self.slice(at, 4)?;
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    fn slice(&self, at: u64, len: u64) -> Result<&[u8], Short> {
        let end = at.checked_add(len).ok_or(Short::Unreadable)?;
        if end > self.b.len() as u64 {
            return Err(Short::Missing);
        }
        // Both fit in the file's length, so in usize.
        Ok(&self.b[at as usize..end as usize])
    }

    fn within(&self, at: u64, len: u64) -> Result<(), Short> {
        self.slice(at, len).map(|_| ())
    }
}

fn type_size(t: u16) -> Option<u64> {
    match t {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 => Some(8),
        _ => None,
    }
}

pub fn tiff_is_complete(bytes: &[u8]) -> bool {
    match tiff_check(bytes) {
        Ok(()) | Err(Short::Unreadable) => true,
        Err(Short::Missing) => false,
    }
}

fn tiff_check(bytes: &[u8]) -> Result<(), Short> {
    let le = match bytes.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return Err(Short::Unreadable),
    };
    let t = Tiff { b: bytes, le };
    let mut ifd = u64::from(t.u32_at(4)?);
    let mut seen = Vec::new();
    while ifd != 0 && seen.len() < MAX_IFDS {
        if seen.contains(&ifd) {
            return Err(Short::Unreadable);
        }
        seen.push(ifd);
        let n = u64::from(t.u16_at(ifd)?);
        let entries = ifd + 2;
        // The entries and the next-IFD offset.
        t.within(entries, n * 12 + 4)?;
        let mut ranges: [Vec<u64>; 4] = Default::default();
        for k in 0..n {
            let e = entries + 12 * k;
            let tag = t.u16_at(e)?;
            let ty = t.u16_at(e + 2)?;
            let count = u64::from(t.u32_at(e + 4)?);
            let Some(size) = type_size(ty) else {
                continue;
            };
            let total = count.checked_mul(size).ok_or(Short::Unreadable)?;
            let at = if total <= 4 {
                e + 8
            } else {
                let off = u64::from(t.u32_at(e + 8)?);
                t.within(off, total)?;
                off
            };
            let slot = match tag {
                STRIP_OFFSETS => 0,
                STRIP_BYTE_COUNTS => 1,
                TILE_OFFSETS => 2,
                TILE_BYTE_COUNTS => 3,
                _ => continue,
            };
            let mut values = Vec::new();
            for j in 0..count {
                values.push(match ty {
                    3 => u64::from(t.u16_at(at + 2 * j)?),
                    4 => u64::from(t.u32_at(at + 4 * j)?),
                    _ => return Err(Short::Unreadable),
                });
            }
            ranges[slot] = values;
        }
        let [strip_off, strip_len, tile_off, tile_len] = &ranges;
        for (offs, lens) in [(strip_off, strip_len), (tile_off, tile_len)] {
            for (&o, &l) in offs.iter().zip(lens) {
                t.within(o, l)?;
            }
        }
        ifd = u64::from(t.u32_at(entries + n * 12)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_testkit::images::{jpeg_bytes, png_bytes, texture, tiff_bytes};

    /// Every proper prefix is incomplete, the whole file complete.
    fn check_prefixes(whole: &[u8], step: usize) {
        assert!(is_complete(whole));
        for cut in (16..whole.len()).step_by(step) {
            assert!(
                !is_complete(&whole[..cut]),
                "complete at {cut} of {}",
                whole.len()
            );
        }
    }

    #[test]
    fn prefixes_of_png_tiff_and_jpeg_are_incomplete() {
        let img = texture(120, 90, 3);
        check_prefixes(&png_bytes(&img), 7);
        check_prefixes(&tiff_bytes(&img), 7);
        check_prefixes(&jpeg_bytes(&img), 7);
        // The gray variants, and a big-endian TIFF.
        let gray = image::DynamicImage::ImageRgb8(img.clone()).to_luma8();
        let mut out = std::io::Cursor::new(Vec::new());
        gray.write_to(&mut out, image::ImageFormat::Tiff).unwrap();
        check_prefixes(out.get_ref(), 5);
    }

    #[test]
    fn trailing_bytes_and_unknown_files_are_complete() {
        let img = texture(64, 64, 1);
        let mut png = png_bytes(&img);
        png.extend_from_slice(b"trailing");
        assert!(is_complete(&png));
        assert!(is_complete(b"not an image"));
        // A TIFF whose IFD chain loops: not judged here, the decoder refuses it.
        let mut t = b"II*\0".to_vec();
        t.extend_from_slice(&8u32.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&8u32.to_le_bytes());
        assert!(is_complete(&t));
        // A strip beyond the end of the file.
        let mut t = b"MM\0*".to_vec();
        t.extend_from_slice(&8u32.to_be_bytes());
        t.extend_from_slice(&2u16.to_be_bytes());
        for (tag, value) in [(STRIP_OFFSETS, 1000u32), (STRIP_BYTE_COUNTS, 10)] {
            t.extend_from_slice(&tag.to_be_bytes());
            t.extend_from_slice(&4u16.to_be_bytes());
            t.extend_from_slice(&1u32.to_be_bytes());
            t.extend_from_slice(&value.to_be_bytes());
        }
        t.extend_from_slice(&0u32.to_be_bytes());
        assert!(!is_complete(&t));
        t.resize(1010, 0);
        assert!(is_complete(&t));
    }
}
