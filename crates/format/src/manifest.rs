//! `tiles/manifest.jsonl`: one JSON object per tile, in a deterministic order (photos by
//! relative path, then each photo's windows in generation order).

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic::{self, Durability};
use crate::error::{FormatError, Result};
use crate::split::Split;

pub const MANIFEST_FILE: &str = "manifest.jsonl";

/// One tile cut from one photo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TileRecord {
    /// Tile path relative to the tiles folder, `/`-separated, e.g.
    /// `train/coarse/IMG_0001-3fa2c1d9_x00000_y00500_s500-8b41e0c7.png`.
    pub tile: String,
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
    /// timestamps.
    pub tile_digest: String,
    /// Photo size after EXIF orientation.
    pub photo_width: u32,
    pub photo_height: u32,
}

/// Reads a manifest, naming the file and line of the first malformed row.
pub fn read(path: &Path) -> Result<Vec<TileRecord>> {
    let text = fs::read_to_string(path).map_err(|e| FormatError::io(path, e))?;
    parse(path, &text)
}

/// Parses manifest text; `path` is used in error messages only.
pub fn parse(path: &Path, text: &str) -> Result<Vec<TileRecord>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: TileRecord = serde_json::from_str(line).map_err(|e| FormatError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            message: format!("malformed manifest row: {e}"),
        })?;
        rows.push(row);
    }
    Ok(rows)
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
            tile: format!("train/a/p-00000000_x{i:05}_y00000_s8.png"),
            photo: "a/p.jpg".into(),
            class: "a".into(),
            split: Split::Train,
            x: i,
            y: 0,
            size: 8,
            photo_digest: "0".repeat(64),
            tile_digest: "1".repeat(64),
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
}
