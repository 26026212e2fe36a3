//! `tiles/tiler.json`: what the tiler did, with which parameters, and what it skipped and why.
//!
//! It describes the result, not the run that produced it: no timings, thread counts or "reused"
//! counts, so a fresh run, a rerun and a sharded run write the same bytes.

use serde::{Deserialize, Serialize};

pub const TILER_SUMMARY_FILE: &str = "tiler.json";
pub const TILER_FORMAT: &str = "ballast-tiler/1";

/// How windows are placed in a photo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum WindowMode {
    /// A regular grid of fully-inside windows, `stride` pixels apart.
    Grid { stride: u32 },
    /// `per_photo` windows with uniformly random fully-inside positions, seeded by
    /// (seed, photo path).
    Random { per_photo: u32 },
}

/// How photos are assigned to train and val.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitRule {
    /// Earlier versions: a hash of the photo's relative path (read from old summaries only, so
    /// that their output is redone; never written).
    #[default]
    PathHash,
    /// A hash of the photo's content digest: byte-identical photos share a split, and adding
    /// photos never moves old ones, but a small class can end up with no val (or train) photo.
    ContentHash,
    /// Per class, the photos ranked by the same content hash and the first
    /// round(n · val_fraction) of them (at least one, at most n − 1) sent to val: every class
    /// stays near the fraction; adding a photo moves at most about one old photo per class.
    Stratified,
}

/// Whether the tiler writes each window as a PNG tile file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TileFiles {
    /// Lossless PNG tiles under `train/` and `val/` (inspectable; what ImageFolder tools read).
    #[default]
    Png,
    /// No tile files: the manifest's rows are window references and the packer cuts the
    /// windows from the photos (no intermediate copy of the pixels on disk).
    None,
}

impl TileFiles {
    pub fn is_png(&self) -> bool {
        *self == TileFiles::Png
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            TileFiles::Png => "png",
            TileFiles::None => "none",
        }
    }
}

/// Every parameter that changes the tiler's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TilerParams {
    pub size: u32,
    pub windows: WindowMode,
    pub val_fraction: f64,
    pub seed: u64,
    pub split_seed: u64,
    #[serde(default)]
    pub split: SplitRule,
    /// PNG compression preset of the tiles (`fast`, `default`, `best`).
    pub png_compression: String,
    /// Photos with more pixels than this are refused as decompression bombs.
    pub max_pixels: u64,
    /// Absent (PNG) in summaries of PNG runs, so their bytes are those of earlier versions.
    #[serde(default, skip_serializing_if = "TileFiles::is_png")]
    pub tile_files: TileFiles,
}

/// An input that was not tiled, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Path relative to the input folder (a photo, or a class folder).
    pub path: String,
    pub reason: String,
}

/// Per-class counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassCounts {
    pub class: String,
    pub train_photos: u64,
    pub val_photos: u64,
    pub train_tiles: u64,
    pub val_tiles: u64,
}

/// Byte-identical photos (one group per content digest with more than one path).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DuplicateGroup {
    pub digest: String,
    /// Relative paths, sorted.
    pub photos: Vec<String>,
    /// The distinct classes of those photos: more than one means conflicting labels.
    pub classes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TilerCounts {
    /// Photo files found (tiled or skipped).
    pub photos: u64,
    pub photos_tiled: u64,
    pub tiles: u64,
    /// Inputs skipped (bad photos and warnings such as empty class folders).
    pub skipped: u64,
    /// Of those, photos that could not be used (what `--max-bad` limits).
    pub bad: u64,
    /// Photos that are byte-identical copies of another listed photo (all but one per group).
    #[serde(default)]
    pub duplicates: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TilerSummary {
    pub format: String,
    pub params: TilerParams,
    pub counts: TilerCounts,
    pub classes: Vec<ClassCounts>,
    pub skipped: Vec<Skipped>,
    /// Groups of byte-identical photos; each group lies wholly in one split.
    #[serde(default)]
    pub duplicates: Vec<DuplicateGroup>,
    /// BLAKE3 of `manifest.jsonl` as written alongside this summary.
    pub manifest_digest: String,
    /// The input folder (absolute) when the rows are window references (`--tile-files none`):
    /// where the packer finds the photos. Absent for PNG tiles, which need no photos later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Classes the split leaves thin: no photo, or a single photo, on a side (one sentence
    /// each, as printed on stderr). Absent from summaries written before it existed.
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rules_are_kebab_case_and_old_summaries_read() {
        let names: Vec<String> = [
            SplitRule::PathHash,
            SplitRule::ContentHash,
            SplitRule::Stratified,
        ]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
        assert_eq!(
            names,
            ["\"path-hash\"", "\"content-hash\"", "\"stratified\""]
        );
        // A summary written before `warnings` existed (and one before `split` existed).
        let old = r#"{"format":"ballast-tiler/1","params":{"size":64,
            "windows":{"kind":"grid","stride":64},"val_fraction":0.2,"seed":0,"split_seed":0,
            "split":"content-hash","png_compression":"fast","max_pixels":250000000},
            "counts":{"photos":1,"photos_tiled":1,"tiles":1,"skipped":0,"bad":0},
            "classes":[],"skipped":[],"manifest_digest":"d"}"#;
        let s: TilerSummary = serde_json::from_str(old).unwrap();
        assert_eq!(s.params.split, SplitRule::ContentHash);
        assert!(s.warnings.is_empty());
        let older = old.replace(r#""split":"content-hash","#, "");
        let s: TilerSummary = serde_json::from_str(&older).unwrap();
        assert_eq!(s.params.split, SplitRule::PathHash);
    }
}
