//! Writing `index.json` and `packer.json` once every shard is there, and tidying the folder.
//!
//! The summary files are computed from the shard entries alone (counts, per-class numbers,
//! mean/std from integer pixel sums), so a single run and the last of N sharded jobs write the
//! same bytes. A file whose bytes would not change is not rewritten.

use std::collections::HashMap;
use std::path::Path;

use ballast_format::Split;
use ballast_format::atomic::{self, Durability};
use ballast_format::cache_files::{
    BadTile, CACHE_FORMAT, CacheIndex, INDEX_FILE, PACKER_SUMMARY_FILE, PACKER_SUMMARY_FORMAT,
    PackerClassCounts, PackerCounts, PackerSummary, ShardEntry, SplitStats, SplitsStats,
    bad_inputs,
};
use serde::{Deserialize, Serialize};

use crate::error::PackError;
use crate::plan::Plan;

/// What one job contributes to the index: its shards' entries and the tiles it skipped.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Part {
    pub entries: Vec<ShardEntry>,
    pub bad: Vec<BadTile>,
}

/// Builds the index and summary from entries covering every planned shard.
pub fn assemble(
    plan: &Plan,
    entries: &[ShardEntry],
    bad: &[BadTile],
    max_bad: u64,
) -> Result<(CacheIndex, PackerSummary), PackError> {
    let by_file: HashMap<&str, &ShardEntry> =
        entries.iter().map(|e| (e.file.as_str(), e)).collect();
    let mut shards = Vec::with_capacity(plan.shards.len());
    for s in &plan.shards {
        match by_file.get(s.file.as_str()) {
            Some(e) if e.inputs == s.inputs => shards.push((*e).clone()),
            _ => {
                return Err(PackError::Input(format!(
                    "no record of shard {} for this manifest and these parameters among the \
                     job parts: rerun the packer",
                    s.file
                )));
            }
        }
    }
    let mut bad = bad.to_vec();
    bad.sort_by(|a, b| a.tile.cmp(&b.tile));
    bad.dedup();
    let inputs = bad_inputs(&bad);
    if inputs > max_bad {
        let b = &bad[0];
        return Err(PackError::Input(format!(
            "{inputs} bad inputs, more than --max-bad {max_bad}; first: {}: {}",
            b.tile, b.reason
        )));
    }

    let nc = plan.classes.len();
    let split_stats = |split: Split| {
        let mut st = SplitStats {
            per_class: vec![0; nc],
            ..Default::default()
        };
        for e in shards.iter().filter(|e| e.split == split) {
            st.samples += e.samples;
            for (a, b) in st.per_class.iter_mut().zip(&e.per_class) {
                *a += b;
            }
        }
        let bad_here = bad
            .iter()
            .filter(|b| b.shard.starts_with(&format!("{}-", split.as_str())))
            .count() as u64;
        st.tiles = plan.counts(split).tiles - bad_here;
        st.photos = plan.counts(split).photos;
        st
    };
    let splits = SplitsStats {
        train: split_stats(Split::Train),
        val: split_stats(Split::Val),
    };
    if splits.train.samples == 0 {
        return Err(PackError::Input(
            "no train sample could be made: every train tile is bad".into(),
        ));
    }

    // Exact mean/std of train pixels, from integer sums (readers check them the same way).
    let (mean, std) = ballast_format::cache_files::train_moments(&shards, plan.params.size)
        .ok_or_else(|| PackError::Input("no train pixel could be counted".into()))?;

    let index = CacheIndex {
        format: CACHE_FORMAT.into(),
        classes: plan.classes.clone(),
        size: plan.params.size,
        channels: 1,
        jitter: plan.params.jitter,
        copies: plan.params.copies,
        seed: plan.params.seed,
        manifest_digest: plan.manifest_digest.clone(),
        tile_sizes: {
            let mut sizes: Vec<u32> = plan.rows.iter().map(|r| r.rec.size).collect();
            sizes.sort_unstable();
            sizes.dedup();
            sizes
        },
        params: plan.params.clone(),
        mean,
        std,
        splits: splits.clone(),
        shards,
    };

    let classes = plan
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| PackerClassCounts {
            class: c.clone(),
            label: i as u32,
            train_samples: splits.train.per_class[i],
            train_tiles: splits.train.per_class[i] / plan.params.copies as u64,
            val_samples: splits.val.per_class[i],
            val_tiles: splits.val.per_class[i],
        })
        .collect();
    let summary = PackerSummary {
        format: PACKER_SUMMARY_FORMAT.into(),
        params: plan.params.clone(),
        manifest_digest: plan.manifest_digest.clone(),
        counts: PackerCounts {
            manifest_tiles: plan.rows.len() as u64,
            tiles_packed: splits.train.tiles + splits.val.tiles,
            bad_tiles: bad.len() as u64,
            train_samples: splits.train.samples,
            val_samples: splits.val.samples,
            train_shards: plan.params.train_shards,
            val_shards: plan.params.val_shards,
        },
        classes,
        bad_tiles: bad,
        warnings: plan.warnings.clone(),
    };
    Ok((index, summary))
}

fn json_bytes<T: Serialize>(path: &Path, v: &T) -> Result<Vec<u8>, PackError> {
    let mut b = serde_json::to_vec_pretty(v)
        .map_err(|e| PackError::Input(format!("{}: cannot serialise: {e}", path.display())))?;
    b.push(b'\n');
    Ok(b)
}

/// Writes `path` atomically unless it already holds `bytes`. Returns whether it wrote.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, PackError> {
    if ballast_format::regular::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    atomic::write_bytes(path, bytes, Durability::Fsync)?;
    Ok(true)
}

/// Writes the summary then the index (the file later stages trust, last). Returns whether
/// anything changed.
pub fn commit(out: &Path, index: &CacheIndex, summary: &PackerSummary) -> Result<bool, PackError> {
    let sp = out.join(PACKER_SUMMARY_FILE);
    let ip = out.join(INDEX_FILE);
    let a = write_if_changed(&sp, &json_bytes(&sp, summary)?)?;
    let b = write_if_changed(&ip, &json_bytes(&ip, index)?)?;
    Ok(a || b)
}

/// True for names the packer gives shard files: `{train,val}-NNNNN-of-NNNNN.safetensors`.
pub fn is_shard_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".safetensors") else {
        return false;
    };
    let rest = match stem.split_once('-') {
        Some(("train" | "val", rest)) => rest,
        _ => return false,
    };
    let b = rest.as_bytes();
    b.len() == 5 + 4 + 5
        && b[..5].iter().all(u8::is_ascii_digit)
        && &rest[5..9] == "-of-"
        && b[9..].iter().all(u8::is_ascii_digit)
}

/// Removes shard files the index no longer lists (e.g. after the shard count changed) and, when
/// every job has finished (`temps`), leftover temporary shard files. Returns the names removed.
pub fn remove_stale(out: &Path, index: &CacheIndex, temps: bool) -> Result<Vec<String>, PackError> {
    let listed: std::collections::HashSet<&str> =
        index.shards.iter().map(|e| e.file.as_str()).collect();
    let mut removed = Vec::new();
    let entries = std::fs::read_dir(out).map_err(|e| PackError::io(out, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PackError::io(out, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale_shard = is_shard_name(&name) && !listed.contains(name.as_str());
        // Temps of shard files: every job has finished writing its shards by now.
        let stale_temp = temps
            && atomic::is_temp_name(&name)
            && (name.starts_with(".train-") || name.starts_with(".val-"));
        if stale_shard || stale_temp {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed.push(name),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(PackError::io(entry.path(), e)),
            }
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names() {
        assert!(is_shard_name("train-00000-of-00004.safetensors"));
        assert!(is_shard_name("val-00012-of-00100.safetensors"));
        assert!(!is_shard_name("train-0000-of-00004.safetensors"));
        assert!(!is_shard_name("test-00000-of-00004.safetensors"));
        assert!(!is_shard_name("train-00000-of-00004.safetensors.bak"));
        assert!(!is_shard_name("model.safetensors"));
    }
}
