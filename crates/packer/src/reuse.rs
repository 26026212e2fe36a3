//! The up-to-date check: which planned shards the existing cache already holds.
//!
//! A shard is kept (bytes and mtime untouched) when the existing `index.json` lists it with the
//! same input key, its file is there with the recorded size, and none of its tiles changed on
//! disk. Tiles are not decoded or re-hashed wholesale: the manifest's `tile_digest` is trusted,
//! each tile is stat'ed, and only tiles modified at or after the index was written are hashed
//! again. Shard files are not re-hashed either (that is `packer verify`): a shard is trusted
//! when it has the recorded size and was not modified after the index was written.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::SystemTime;

use ballast_format::cache_files::{
    BadTile, CACHE_FORMAT, CacheIndex, INDEX_FILE, PackerSummary, ShardEntry,
};

use ballast_format::digest;
use ballast_format::parts::PARTS_DIR;
use rayon::prelude::*;

use crate::plan::{Plan, ShardPlan};

/// Where a run that is about to replace shards the live index lists moves that index: later
/// stages then refuse the cache until the new index is written (no index.json, parts pending),
/// while packer runs still use it to decide what is up to date. Cleared with the parts.
pub fn retired_index_path(out: &Path) -> std::path::PathBuf {
    out.join(PARTS_DIR).join("packer-retired-index.json")
}

/// The cache as a previous run left it.
pub struct OldCache {
    pub index: CacheIndex,
    index_mtime: SystemTime,
    /// Bad tiles recorded in the old packer.json, by shard file.
    bad: HashMap<String, Vec<BadTile>>,
}

impl OldCache {
    /// Reads the existing index (or the one a run in progress retired, see
    /// [`retired_index_path`]) and summary, if any. An unreadable index is ignored with a
    /// warning: everything is then rebuilt.
    pub fn load(out: &Path) -> Option<OldCache> {
        let live = out.join(INDEX_FILE);
        let retired = retired_index_path(out);
        let path = if live.exists() { live } else { retired };
        let index_mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        let parsed = ballast_format::regular::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<CacheIndex>(&b).map_err(|e| e.to_string()));
        let index = match parsed {
            Ok(i) if i.format == CACHE_FORMAT => i,
            Ok(i) => {
                tracing::warn!(
                    "ignoring {}: format {:?}; every shard will be rebuilt",
                    path.display(),
                    i.format
                );
                return None;
            }
            Err(e) => {
                tracing::warn!(
                    "ignoring {} ({e}): every shard will be rebuilt",
                    path.display()
                );
                return None;
            }
        };
        let mut bad: HashMap<String, Vec<BadTile>> = HashMap::new();
        if let Ok(summary) = PackerSummary::read(out) {
            for b in summary.bad_tiles {
                bad.entry(b.shard.clone()).or_default().push(b);
            }
        }
        Some(OldCache {
            index,
            index_mtime,
            bad,
        })
    }

    /// Was the old index built from exactly this manifest and these parameters?
    pub fn same_generation(&self, plan: &Plan) -> bool {
        self.index.manifest_digest == plan.manifest_digest
            && self.index.params == plan.params
            && self.index.classes == plan.classes
    }

    pub fn entry(&self, file: &str) -> Option<&ShardEntry> {
        self.index.shards.iter().find(|e| e.file == file)
    }

    pub fn bad_of(&self, file: &str) -> &[BadTile] {
        self.bad.get(file).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The old entry and bad tiles of `shard` if they still describe it.
    pub fn reusable(&self, plan: &Plan, shard: &ShardPlan, out: &Path) -> Option<Reused> {
        let entry = self.entry(&shard.file)?;
        if entry.inputs != shard.inputs
            || entry.split != shard.split
            || entry.index != shard.index
            || entry.count != shard.count
        {
            return None;
        }
        let bad = self.bad_of(&shard.file);
        if entry.samples + bad.len() as u64 * shard.copies as u64 != shard.samples() {
            return None;
        }
        // The recorded size, and not written since the index was (an edited or half-copied
        // shard is rebuilt; silent corruption is what `packer verify` is for).
        let meta = std::fs::metadata(out.join(&shard.file)).ok()?;
        let modified = meta.modified().ok()?;
        if meta.len() != entry.bytes || modified > self.index_mtime {
            return None;
        }
        let bad_tiles: HashMap<&str, &BadTile> = bad.iter().map(|b| (b.tile.as_str(), b)).collect();
        // Each input file once (a photo holds many windows): its expected digest, and whether
        // it was already skipped as bad.
        let mut files: BTreeMap<&Path, (&str, bool)> = BTreeMap::new();
        for &row in &shard.tiles {
            let r = &plan.rows[row];
            let known_bad = bad_tiles.contains_key(r.rec.name().as_str());
            let e = files
                .entry(r.path.as_path())
                .or_insert((r.expected_digest(), false));
            e.1 |= known_bad;
        }
        let tiles_ok =
            files
                .into_par_iter()
                .all(|(path, (want, known_bad))| match std::fs::metadata(path) {
                    // A missing input is fine only if it was already skipped as bad.
                    Err(_) => known_bad,
                    Ok(m) => {
                        let fresh = m.modified().map_or(true, |t| t >= self.index_mtime);
                        if !fresh {
                            return true;
                        }
                        // Touched since the index was written: a bad input may have been repaired,
                        // a good one altered.
                        !known_bad && digest::of_file(path).is_ok_and(|d| d == want)
                    }
                });
        tiles_ok.then(|| Reused {
            entry: entry.clone(),
            bad: bad.to_vec(),
        })
    }
}

/// A shard kept as it was.
pub struct Reused {
    pub entry: ShardEntry,
    pub bad: Vec<BadTile>,
}
