//! `packer verify DIR`: re-hash every shard the index lists and name any that is missing,
//! truncated or altered.

use std::path::Path;

use ballast_format::cache_files::CacheIndex;
use ballast_format::digest;
use rayon::prelude::*;

use crate::error::PackError;

/// The outcome of a verification.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerifyReport {
    /// One line per bad shard, e.g. `train-00001-of-00004.safetensors: missing`.
    pub problems: Vec<String>,
    pub shards: usize,
    pub samples: u64,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every shard of the cache in `dir` against `index.json`. Fails only when the index
/// itself cannot be read; shard problems are reported.
pub fn verify(dir: &Path) -> Result<VerifyReport, PackError> {
    let index = CacheIndex::read(dir)?;
    let problems: Vec<Option<String>> = index
        .shards
        .par_iter()
        .map(|e| {
            let path = CacheIndex::shard_path(dir, e);
            let problem = match std::fs::metadata(&path) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Some("missing".into()),
                Err(err) => Some(format!("unreadable: {err}")),
                Ok(m) if m.len() < e.bytes => Some(format!(
                    "truncated: {} bytes, expected {}",
                    m.len(),
                    e.bytes
                )),
                Ok(m) if m.len() > e.bytes => {
                    Some(format!("altered: {} bytes, expected {}", m.len(), e.bytes))
                }
                Ok(_) => match digest::of_file(&path) {
                    Ok(d) if d == e.digest => None,
                    Ok(_) => Some("altered: digest differs from index.json".into()),
                    Err(err) => Some(format!("unreadable: {err}")),
                },
            };
            problem.map(|p| format!("{}: {p}", e.file))
        })
        .collect();
    Ok(VerifyReport {
        problems: problems.into_iter().flatten().collect(),
        shards: index.shards.len(),
        samples: index.shards.iter().map(|e| e.samples).sum(),
    })
}
