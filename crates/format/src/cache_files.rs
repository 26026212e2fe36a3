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
        let index = Self::read_unchecked(cache_dir)?;
        index.problems().first().map_or(Ok(()), |p| {
            Err(FormatError::invalid(cache_dir.join(INDEX_FILE), p.clone()))
        })?;
        Ok(index)
    }

    /// Reads `DIR/index.json` checking only its syntax and format tag, for `packer verify`,
    /// which names every [`CacheIndex::problems`] instead of stopping at the first.
    pub fn read_unchecked(cache_dir: &Path) -> Result<CacheIndex> {
        let path = cache_dir.join(INDEX_FILE);
        let bytes = match crate::regular::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FormatError::invalid(
                    cache_dir,
                    missing_index_reason(cache_dir),
                ));
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

    /// Everything internally inconsistent in the index, one line each: what a reader must not
    /// trust before it allocates or normalises anything (sizes, counts, names, digests, the
    /// mean/std against the shards' pixel sums). Empty for an index the packer wrote.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen_class = std::collections::HashSet::new();
        if self.classes.is_empty() {
            out.push("no classes".to_string());
        }
        for c in &self.classes {
            if c.is_empty() || c.chars().any(char::is_control) || !seen_class.insert(c) {
                out.push(format!(
                    "class name {c:?} is empty, repeated or has control characters"
                ));
            }
        }
        if !(1..=MAX_SIZE).contains(&self.size) || self.channels != 1 {
            out.push(format!(
                "samples of {0}x{0}, {1} channel(s): expected 1 channel, size 1..={MAX_SIZE}",
                self.size, self.channels
            ));
            return out; // everything below depends on the size
        }
        let sample_bytes = 8 + u64::from(self.size) * u64::from(self.size);
        let mut names = std::collections::HashSet::new();
        let mut totals = [
            (0u64, vec![0u64; self.classes.len()]),
            (0, vec![0; self.classes.len()]),
        ];
        for e in &self.shards {
            let shards_of_split = match e.split {
                Split::Train => self.params.train_shards,
                Split::Val => self.params.val_shards,
            };
            let expected = crate::shard_file::file_name(e.split, e.index, e.count);
            if e.file != expected || e.count != shards_of_split || e.index >= e.count {
                out.push(format!(
                    "shard entry {:?}: expected a file named {expected:?}, index below {shards_of_split}",
                    e.file
                ));
            }
            if !names.insert(&e.file) {
                out.push(format!("shard {:?} is listed twice", e.file));
            }
            if !is_digest(&e.digest) || !is_digest(&e.inputs) {
                out.push(format!(
                    "shard {:?}: digests must be 64 lowercase hex digits",
                    e.file
                ));
            }
            let class_sum = e.per_class.iter().try_fold(0u64, |a, &b| a.checked_add(b));
            if e.per_class.len() != self.classes.len() || class_sum != Some(e.samples) {
                out.push(format!(
                    "shard {:?}: per-class counts do not add up to its {} samples",
                    e.file, e.samples
                ));
            }
            // The file must be able to hold its samples: this bounds every count a reader
            // allocates from.
            let needed = e.samples.checked_mul(sample_bytes);
            if needed.is_none_or(|n| n > e.bytes) {
                out.push(format!(
                    "shard {:?}: {} samples of {size}x{size} cannot fit in {} bytes",
                    e.file,
                    e.samples,
                    e.bytes,
                    size = self.size
                ));
                continue;
            }
            let t = &mut totals[e.split as usize];
            t.0 = t.0.saturating_add(e.samples);
            if e.per_class.len() == t.1.len() {
                for (a, b) in t.1.iter_mut().zip(&e.per_class) {
                    *a = a.saturating_add(*b);
                }
            }
        }
        for split in [Split::Train, Split::Val] {
            let st = self.splits.get(split);
            let (samples, per_class) = &totals[split as usize];
            if st.samples != *samples || st.per_class != *per_class {
                out.push(format!(
                    "{} split: {} samples {:?} per class, but its shards hold {samples} {per_class:?}",
                    split.as_str(),
                    st.samples,
                    st.per_class
                ));
            }
        }
        if out.is_empty() {
            match train_moments(&self.shards, self.size) {
                Some((mean, std)) if mean == self.mean && std == self.std => {}
                Some((mean, std)) => out.push(format!(
                    "mean {} and std {} differ from the train shards' pixel sums ({mean}, {std})",
                    self.mean, self.std
                )),
                None => out.push("no train samples, or pixel sums out of range".into()),
            }
        }
        out
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

/// Why a folder has no index: an unfinished sharded build (naming its pending jobs), a whole
/// run that was stopped before it finished, or no cache at all.
fn missing_index_reason(cache_dir: &Path) -> String {
    if let Some(pending) = crate::parts::Parts::pending_summary(cache_dir) {
        return format!("no {INDEX_FILE}: a sharded build has not finished: {pending}");
    }
    let started = std::fs::read_dir(cache_dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(".safetensors") || name.contains(".tmp-") || name == ".retired"
        })
    });
    if started {
        format!(
            "no {INDEX_FILE}: the packer run that wrote this folder did not finish (stopped or \
             failed); rerun the same packer command"
        )
    } else {
        format!("no {INDEX_FILE}: not a ballast cache (run packer first)")
    }
}

/// Largest sample side a cache may declare (the packer's `--size` bound).
pub const MAX_SIZE: u32 = 4096;

fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Exact mean and standard deviation (0–1 scale) of the train pixels, from the shards' integer
/// sums: what the packer writes and what readers check. None without train samples or when the
/// sums cannot come from u8 pixels.
pub fn train_moments(shards: &[ShardEntry], size: u32) -> Option<(f64, f64)> {
    let (mut n, mut sum, mut sq) = (0u128, 0u128, 0u128);
    for e in shards.iter().filter(|e| e.split == Split::Train) {
        n += e.samples as u128 * (size as u128).pow(2);
        sum += e.pixel_sum as u128;
        sq += e.pixel_sq_sum as u128;
    }
    if n == 0 || sum > n * 255 || sq > n * 255 * 255 {
        return None;
    }
    let mean = sum as f64 / n as f64 / 255.0;
    let var_num = (n * sq).checked_sub(sum * sum)?; // n²·variance, exact
    let std = (var_num as f64).sqrt() / n as f64 / 255.0;
    Some((mean, std))
}

/// A tile the packer could not use (within `--max-bad`), and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadTile {
    /// Tile path relative to the tiles folder, as in the manifest, or for a window without a
    /// tile file its reference `PHOTO#xX_yY_sS` (then the bad input is the photo).
    pub tile: String,
    pub photo: String,
    /// The shard file the tile's samples would have gone to.
    pub shard: String,
    pub reason: String,
}

impl BadTile {
    /// The file that was bad: the tile, or the photo of a window reference.
    pub fn input(&self) -> &str {
        match self.tile.strip_prefix(self.photo.as_str()) {
            Some(rest) if rest.starts_with('#') => &self.photo,
            _ => &self.tile,
        }
    }
}

/// How many bad inputs (what `--max-bad` limits) a list of bad samples comes from: a photo
/// that spoils all its windows counts once.
pub fn bad_inputs(bad: &[BadTile]) -> u64 {
    let files: std::collections::BTreeSet<&str> = bad.iter().map(BadTile::input).collect();
    files.len() as u64
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
        let bytes = crate::regular::read(&path).map_err(|e| FormatError::io(&path, e))?;
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
