//! `cache/index.json` and `cache/packer.json`: the packer's description of the tensor cache.
//!
//! `index.json` is what later stages trust: class names in label order, the preprocessing
//! parameters, the manifest it was built from, the train set's mean/std, and every shard with
//! its content digest. Like every summary, it describes the result, never the run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};
use crate::split::Split;

pub const INDEX_FILE: &str = "index.json";
pub const PACKER_SUMMARY_FILE: &str = "packer.json";
pub const CACHE_FORMAT: &str = "ballast-cache/1";
pub const PACKER_SUMMARY_FORMAT: &str = "ballast-packer/1";

/// Every parameter that changes the packer's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackerParams {
    /// Output side in pixels (samples are `size`×`size`, one channel).
    pub size: u32,
    /// Brightness/contrast jitter strength j: factors uniform in [1-j, 1+j]. 0 disables.
    pub jitter: f64,
    /// Jittered copies stored per train tile.
    pub copies: u32,
    pub seed: u64,
    /// Shard counts per split, as resolved (explicit `--shards` or the size-based default).
    pub train_shards: u32,
    pub val_shards: u32,
    /// Names of the preprocessing steps, so a consumer can refuse a cache made differently.
    pub luma: String,
    pub resize: String,
}

/// One tensor shard file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name inside the cache folder, e.g. `train-00000-of-00004.safetensors`.
    pub file: String,
    pub split: Split,
    pub index: u32,
    pub count: u32,
    pub samples: u64,
    pub bytes: u64,
    /// BLAKE3 of the file's bytes.
    pub digest: String,
    /// Digest of everything the shard was built from (its tiles' digests, labels, parameters):
    /// equal inputs mean the shard need not be rebuilt.
    pub inputs: String,
    /// Samples per class, in label order.
    pub per_class: Vec<u64>,
    /// Sum of all pixel values and of their squares (u8 scale), for the exact mean/std.
    pub pixel_sum: u64,
    pub pixel_sq_sum: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitStats {
    pub samples: u64,
    pub tiles: u64,
    pub photos: u64,
    /// Samples per class, in label order.
    pub per_class: Vec<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitsStats {
    pub train: SplitStats,
    pub val: SplitStats,
}

impl SplitsStats {
    pub fn get(&self, split: Split) -> &SplitStats {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheIndex {
    pub format: String,
    /// Class names; a sample's label is its class's position here.
    pub classes: Vec<String>,
    pub size: u32,
    pub channels: u32,
    pub jitter: f64,
    pub copies: u32,
    pub seed: u64,
    /// BLAKE3 of the tiler manifest the cache was built from.
    pub manifest_digest: String,
    /// Distinct tile sizes (photo pixels) of the manifest's tiles, ascending: the window size a
    /// scorer must cut from field photos to see what training saw.
    #[serde(default)]
    pub tile_sizes: Vec<u32>,
    pub params: PackerParams,
    /// Mean and standard deviation of the train samples' pixels, on a 0–1 scale.
    pub mean: f64,
    pub std: f64,
    pub splits: SplitsStats,
    /// Train shards first, then val, each in index order.
    pub shards: Vec<ShardEntry>,
}

impl CacheIndex {
    /// Reads `DIR/index.json`. A missing index with packer job parts present is reported as an
    /// unfinished sharded build.
    pub fn read(cache_dir: &Path) -> Result<CacheIndex> {
        let path = cache_dir.join(INDEX_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parts = cache_dir.join(crate::parts::PARTS_DIR);
                let msg = if parts.is_dir() {
                    format!(
                        "no {INDEX_FILE}: a sharded packer build has not finished (parts are in {}); \
                         run the missing `packer --shard I/N` jobs",
                        parts.display()
                    )
                } else {
                    format!("no {INDEX_FILE}: not a ballast cache (run packer first)")
                };
                return Err(FormatError::invalid(cache_dir, msg));
            }
            Err(e) => return Err(FormatError::io(&path, e)),
        };
        let index: CacheIndex = serde_json::from_slice(&bytes)
            .map_err(|e| FormatError::invalid(&path, format!("malformed index: {e}")))?;
        if index.format != CACHE_FORMAT {
            return Err(FormatError::invalid(
                &path,
                format!("format {:?}, expected {CACHE_FORMAT:?}", index.format),
            ));
        }
        Ok(index)
    }

    pub fn shards_of(&self, split: Split) -> impl Iterator<Item = &ShardEntry> {
        self.shards.iter().filter(move |s| s.split == split)
    }

    pub fn shard_path(cache_dir: &Path, entry: &ShardEntry) -> PathBuf {
        cache_dir.join(&entry.file)
    }

    /// Digest of the index file's bytes (what a run records to name its data).
    pub fn file_digest(cache_dir: &Path) -> Result<String> {
        crate::digest::of_file(&cache_dir.join(INDEX_FILE))
    }
}

/// A tile the packer could not use (within `--max-bad`), and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadTile {
    /// Tile path relative to the tiles folder, as in the manifest.
    pub tile: String,
    pub photo: String,
    /// The shard file the tile's samples would have gone to.
    pub shard: String,
    pub reason: String,
}

/// Tile and sample counts of one class, by split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PackerClassCounts {
    pub class: String,
    pub label: u32,
    pub train_tiles: u64,
    pub train_samples: u64,
    pub val_tiles: u64,
    pub val_samples: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PackerCounts {
    /// Rows in the manifest.
    pub manifest_tiles: u64,
    /// Tiles whose samples are in the cache.
    pub tiles_packed: u64,
    /// Tiles skipped as bad (within `--max-bad`).
    pub bad_tiles: u64,
    pub train_samples: u64,
    pub val_samples: u64,
    pub train_shards: u32,
    pub val_shards: u32,
}

/// `cache/packer.json`: what the packer made, from what, and what it could not use. Like every
/// summary it describes the result, never the run (no timings, reuse counts or paths).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackerSummary {
    pub format: String,
    pub params: PackerParams,
    /// BLAKE3 of the tiler manifest the cache was built from.
    pub manifest_digest: String,
    pub counts: PackerCounts,
    /// In label order.
    pub classes: Vec<PackerClassCounts>,
    pub bad_tiles: Vec<BadTile>,
    /// Conditions worth knowing that did not stop the build (a class with no val tiles, ...).
    pub warnings: Vec<String>,
}

impl PackerSummary {
    /// Reads `DIR/packer.json`.
    pub fn read(cache_dir: &Path) -> Result<PackerSummary> {
        let path = cache_dir.join(PACKER_SUMMARY_FILE);
        let bytes = std::fs::read(&path).map_err(|e| FormatError::io(&path, e))?;
        let summary: PackerSummary = serde_json::from_slice(&bytes)
            .map_err(|e| FormatError::invalid(&path, format!("malformed packer summary: {e}")))?;
        if summary.format != PACKER_SUMMARY_FORMAT {
            return Err(FormatError::invalid(
                &path,
                format!(
                    "format {:?}, expected {PACKER_SUMMARY_FORMAT:?}",
                    summary.format
                ),
            ));
        }
        Ok(summary)
    }
}
