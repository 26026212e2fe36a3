//! `packer verify DIR`: re-derive `index.json` from the shards and name every disagreement:
//! a shard missing, truncated or altered; an index that lists a file twice or outside the
//! cache; counts per split and class, classes, sizes or the mean/std that the shards do not
//! bear out.

use std::path::Path;

use ballast_format::cache_files::{self, CacheIndex, ShardEntry};
use ballast_format::{digest, shard_file};
use rayon::prelude::*;

use crate::error::PackError;

/// The outcome of a verification.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerifyReport {
    /// One line per problem, e.g. `train-00001-of-00004.safetensors: missing`, or
    /// `index.json: ...` for the index itself.
    pub problems: Vec<String>,
    /// Shards with a problem of their own.
    pub bad_shards: usize,
    pub shards: usize,
    pub samples: u64,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What one shard file really holds, re-derived from its bytes.
struct Derived {
    samples: u64,
    per_class: Vec<u64>,
    pixel_sum: u64,
    pixel_sq_sum: u64,
}

/// Checks the cache in `dir`: the index against itself, then every shard against its entry.
/// Fails only when the index cannot be parsed at all; every other problem is reported.
pub fn verify(dir: &Path) -> Result<VerifyReport, PackError> {
    let index = CacheIndex::read_unchecked(dir)?;
    let mut problems: Vec<String> = index
        .problems()
        .into_iter()
        .map(|p| format!("{}: {p}", cache_files::INDEX_FILE))
        .collect();
    let shard_problems: Vec<Option<String>> = index
        .shards
        .par_iter()
        .map(|e| check_shard(dir, &index, e).map(|p| format!("{}: {p}", e.file)))
        .collect();
    let bad_shards = shard_problems.iter().flatten().count();
    problems.extend(shard_problems.into_iter().flatten());
    Ok(VerifyReport {
        problems,
        bad_shards,
        shards: index.shards.len(),
        samples: index
            .shards
            .iter()
            .fold(0u64, |a, e| a.saturating_add(e.samples)),
    })
}

fn check_shard(dir: &Path, index: &CacheIndex, e: &ShardEntry) -> Option<String> {
    // Names are checked by `problems()`; never open a path that leaves the cache folder.
    if e.file.contains(['/', '\\']) || e.file.starts_with('.') || Path::new(&e.file).is_absolute() {
        return Some("not a file name inside the cache folder".into());
    }
    let path = CacheIndex::shard_path(dir, e);
    match std::fs::symlink_metadata(&path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Some("missing".into()),
        Err(err) => return Some(format!("unreadable: {err}")),
        Ok(m) if !m.is_file() => return Some("not a regular file".into()),
        Ok(m) if m.len() < e.bytes => {
            return Some(format!(
                "truncated: {} bytes, expected {}",
                m.len(),
                e.bytes
            ));
        }
        Ok(m) if m.len() > e.bytes => {
            return Some(format!("altered: {} bytes, expected {}", m.len(), e.bytes));
        }
        Ok(_) => {}
    }
    match digest::of_file(&path) {
        Ok(d) if d == e.digest => {}
        Ok(_) => return Some("altered: digest differs from index.json".into()),
        Err(err) => return Some(format!("unreadable: {err}")),
    }
    // The bytes are the ones the index names: now check that they say what the index says.
    let shard = match shard_file::read(&path, index.classes.len()) {
        Ok(s) => s,
        Err(err) => return Some(format!("unreadable as a shard: {err}")),
    };
    let m = &shard.meta;
    let mut wrong = Vec::new();
    if m.split != e.split || m.index != e.index || m.count != e.count {
        wrong.push(format!(
            "holds {} shard {} of {}, index.json says {} {} of {}",
            m.split.as_str(),
            m.index,
            m.count,
            e.split.as_str(),
            e.index,
            e.count
        ));
    }
    if m.classes != index.classes {
        wrong.push(format!(
            "classes {:?}, index.json says {:?}",
            m.classes, index.classes
        ));
    }
    if shard.size != index.size {
        wrong.push(format!(
            "samples of {0}x{0}, index.json says {1}x{1}",
            shard.size, index.size
        ));
    }
    let d = derive(&shard, index.classes.len());
    if d.samples != e.samples || d.per_class != e.per_class {
        wrong.push(format!(
            "holds {} samples {:?} per class, index.json says {} {:?}",
            d.samples, d.per_class, e.samples, e.per_class
        ));
    }
    if d.pixel_sum != e.pixel_sum || d.pixel_sq_sum != e.pixel_sq_sum {
        wrong.push("pixel sums differ from index.json (its mean/std cannot be trusted)".into());
    }
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

fn derive(shard: &shard_file::ShardData, classes: usize) -> Derived {
    let mut per_class = vec![0u64; classes];
    for &l in &shard.labels {
        // Labels are range-checked by `shard_file::read`.
        per_class[l as usize] += 1;
    }
    let (pixel_sum, pixel_sq_sum) = shard.images.iter().fold((0u64, 0u64), |(s, q), &v| {
        (s + u64::from(v), q + u64::from(v) * u64::from(v))
    });
    Derived {
        samples: shard.labels.len() as u64,
        per_class,
        pixel_sum,
        pixel_sq_sum,
    }
}
