//! `tiles/manifest.jsonl`: one JSON object per tile, in a deterministic order (photos by
//! relative path, then each photo's windows in generation order).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic::{self, Durability};
use crate::error::{FormatError, Result};
use crate::split::Split;

pub const MANIFEST_FILE: &str = "manifest.jsonl";

/// One window cut from one photo: a PNG tile file (`tiler --tile-files png`, the default), or
/// a window reference only (`--tile-files none`: no `tile` and `tile_digest`; the packer cuts
/// the window from the photo itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TileRecord {
    /// Tile path relative to the tiles folder, `/`-separated, e.g.
    /// `train/coarse/IMG_0001-3fa2c1d9_x00000_y00500_s500-8b41e0c7.png`; absent for a window
    /// without a tile file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile: Option<String>,
    /// Photo path relative to the input folder, e.g. `coarse/IMG_0001.jpg`.
    pub photo: String,
    pub class: String,
    pub split: Split,
    /// Window's top-left corner in the photo after EXIF orientation, in pixels.
    pub x: u32,
    pub y: u32,
    /// Window side in photo pixels (tiles are square).
    pub size: u32,
    /// BLAKE3 of the photo file's bytes.
    pub photo_digest: String,
    /// BLAKE3 of the tile PNG's bytes, so later stages detect a changed tile without trusting
    /// timestamps; present exactly when `tile` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile_digest: Option<String>,
    /// Photo size after EXIF orientation.
    pub photo_width: u32,
    pub photo_height: u32,
}

/// Reads a manifest, naming the file and line of the first malformed row.
pub fn read(path: &Path) -> Result<Vec<TileRecord>> {
    let text = crate::regular::read_to_string(path).map_err(|e| FormatError::io(path, e))?;
    parse(path, &text)
}

/// Parses manifest text; `path` is used in error messages only.
pub fn parse(path: &Path, text: &str) -> Result<Vec<TileRecord>> {
    Ok(parse_numbered(path, text.as_bytes())?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

/// The one manifest parser: rows with their 1-based line numbers, each checked on its own
/// (digests, a non-empty class, a window inside its photo); a bad row is an error naming
/// `manifest.jsonl:LINE`. Checks across rows (duplicates, splits) belong to the reader.
pub fn parse_numbered(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, TileRecord)>> {
    let mut rows = Vec::with_capacity(bytes.len() / 300);
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let bad = |message: String| FormatError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let row: TileRecord = serde_json::from_slice(line)
            .map_err(|e| bad(format!("malformed manifest row: {e}")))?;
        row.problem().map_or(Ok(()), |m| Err(bad(m)))?;
        rows.push((i + 1, row));
    }
    Ok(rows)
}

impl TileRecord {
    /// What makes this row unusable on its own, if anything.
    pub fn problem(&self) -> Option<String> {
        let hex =
            |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex(&self.photo_digest) || !self.tile_digest.as_deref().is_none_or(hex) {
            return Some("digests must be 64 lowercase hex digits".into());
        }
        if self.tile.is_some() != self.tile_digest.is_some() {
            return Some("`tile` and `tile_digest` must come together (or both be absent)".into());
        }
        if self.class.is_empty() || self.class.chars().any(char::is_control) {
            return Some(format!(
                "class {:?} is empty or has control characters",
                self.class
            ));
        }
        let fits = |at: u32, len: u32| at.checked_add(self.size).is_some_and(|end| end <= len);
        if self.size == 0 || !fits(self.x, self.photo_width) || !fits(self.y, self.photo_height) {
            return Some(format!(
                "window {0}x{0} at ({1},{2}) is not inside the {3}x{4} photo",
                self.size, self.x, self.y, self.photo_width, self.photo_height
            ));
        }
        None
    }
}

impl TileRecord {
    /// The sample's identity: its window (photo path, x, y, size), whatever file (if any) holds
    /// its pixels. Jitter seeds derive from it, so PNG tiles and photos give the same samples.
    pub fn window_key(&self) -> WindowKey<'_> {
        WindowKey {
            photo: &self.photo,
            x: self.x,
            y: self.y,
            size: self.size,
        }
    }

    /// What names this sample in messages and provenance: the tile file when there is one,
    /// else the window reference (see [`WindowKey::reference`]).
    pub fn name(&self) -> String {
        match &self.tile {
            Some(t) => t.clone(),
            None => self.window_key().reference(),
        }
    }
}

/// A window of a photo: what identifies a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowKey<'a> {
    pub photo: &'a str,
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

impl WindowKey<'_> {
    /// `PHOTO#x00000_y00500_s2400`: the name of a window that has no tile file.
    pub fn reference(&self) -> String {
        format!(
            "{}#x{:05}_y{:05}_s{}",
            self.photo, self.x, self.y, self.size
        )
    }
}

/// Serialises rows as JSONL.
pub fn to_bytes(rows: &[TileRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 320);
    for r in rows {
        serde_json::to_writer(&mut out, r).expect("TileRecord always serialises");
        out.push(b'\n');
    }
    out
}

/// Writes rows atomically and durably.
pub fn write(path: &Path, rows: &[TileRecord]) -> Result<()> {
    let bytes = to_bytes(rows);
    atomic::write_with(path, Durability::Fsync, |w| w.write_all(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u32) -> TileRecord {
        TileRecord {
            tile: Some(format!("train/a/p-00000000_x{i:05}_y00000_s8.png")),
            photo: "a/p.jpg".into(),
            class: "a".into(),
            split: Split::Train,
            x: i,
            y: 0,
            size: 8,
            photo_digest: "0".repeat(64),
            tile_digest: Some("1".repeat(64)),
            photo_width: 100,
            photo_height: 50,
        }
    }

    #[test]
    fn round_trip_and_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(MANIFEST_FILE);
        let rows = vec![row(0), row(8)];
        write(&p, &rows).unwrap();
        assert_eq!(read(&p).unwrap(), rows);
        let mut text = String::from_utf8(to_bytes(&rows)).unwrap();
        text.push_str("{\"tile\": 3}\n");
        let err = parse(&p, &text).unwrap_err().to_string();
        assert!(err.contains(":3:"), "{err}");
    }

    #[test]
    fn window_rows_have_no_tile_fields_and_both_or_neither() {
        let mut r = row(16);
        r.tile = None;
        r.tile_digest = None;
        let text = String::from_utf8(to_bytes(std::slice::from_ref(&r))).unwrap();
        assert!(!text.contains("tile"), "{text}");
        let p = Path::new(MANIFEST_FILE);
        assert_eq!(parse(p, &text).unwrap(), vec![r.clone()]);
        assert_eq!(r.name(), "a/p.jpg#x00016_y00000_s8");
        let mut half = row(0);
        half.tile_digest = None;
        let text = String::from_utf8(to_bytes(&[half])).unwrap();
        let err = parse(p, &text).unwrap_err().to_string();
        assert!(err.contains("must come together"), "{err}");
    }
}
