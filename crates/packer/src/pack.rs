//! One packer run (or one job of a sharded run), from manifest to finished cache.
//!
//! 1. Plan from the manifest (no tile opened).
//! 2. For each shard this job owns: keep it if the existing cache already holds it (see
//!    [`crate::reuse`]), else build and write it ([`crate::build`]), one shard at a time.
//! 3. Finish: a single run writes `index.json`/`packer.json` itself. A job of N records its
//!    shard entries as a part (`OUT/.parts/packer-I-of-N.json`); whichever job finds the parts
//!    of all N jobs for the same manifest and parameters writes the index and clears the parts.
//!    Until then later stages refuse the cache and name the pending jobs. No merge command.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ballast_format::JobShard;
use ballast_format::atomic;
use ballast_format::cache_files::{BadTile, INDEX_FILE, ShardEntry, bad_inputs};
use ballast_format::lock::{self, LockRequest};
use ballast_format::parts::{Collected, Parts};

use crate::build::build_shard;
use crate::error::PackError;
use crate::finish::{self, Part};
use crate::plan::{Plan, Settings};
use crate::preprocess::MIN_SIZE;
use crate::reuse::{OldCache, retired_index_path};

pub const STAGE: &str = "packer";
/// Most shards per split: far beyond any useful count, small enough to plan in memory.
pub const MAX_SHARDS: u32 = 100_000;

/// Everything a packer run needs.
#[derive(Clone, Debug)]
pub struct PackOptions {
    pub tiles: PathBuf,
    pub out: PathBuf,
    pub settings: Settings,
    /// The photo folder of window references (`--photos`), instead of the one tiler.json
    /// records (for photos moved since tiling).
    pub photos: Option<PathBuf>,
    pub job: JobShard,
    /// Rebuild every owned shard even if up to date.
    pub force: bool,
    /// Bad inputs (tiles, or photos of window references: missing, unreadable, corrupt,
    /// changed) that may be skipped and reported.
    pub max_bad: u64,
    /// Hide the progress bar.
    pub quiet: bool,
}

/// How the run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    /// index.json and packer.json were written (or rewritten).
    Written,
    /// Nothing changed: the existing cache already was this result.
    Unchanged,
    /// A sharded job whose part is recorded; these jobs have not reported yet.
    Waiting(Vec<usize>),
}

/// What a run did (for logs; nothing of this goes into the cache's files).
#[derive(Clone, Debug)]
pub struct PackReport {
    pub shards_written: usize,
    pub shards_unchanged: usize,
    pub tiles_decoded: u64,
    pub bad_tiles: usize,
    pub stale_removed: Vec<String>,
    pub finish: Finish,
    pub seconds: f64,
}

fn check_options(o: &PackOptions) -> Result<(), PackError> {
    let s = &o.settings;
    if s.size < MIN_SIZE {
        return Err(PackError::Usage(format!(
            "--size {}: must be at least {MIN_SIZE}",
            s.size
        )));
    }
    if !(0.0..=1.0).contains(&s.jitter) {
        return Err(PackError::Usage(format!(
            "--jitter {}: must be in [0, 1]",
            s.jitter
        )));
    }
    if s.copies == 0 {
        return Err(PackError::Usage("--copies must be at least 1".into()));
    }
    if s.shards.is_some_and(|n| !(1..=MAX_SHARDS).contains(&n)) {
        return Err(PackError::Usage(format!(
            "--shards must be in 1..={MAX_SHARDS}"
        )));
    }
    Ok(())
}

/// Runs the packer.
pub fn pack(o: &PackOptions) -> Result<PackReport, PackError> {
    let t0 = Instant::now();
    check_options(o)?;
    if o.settings.jitter == 0.0 && o.settings.copies > 1 {
        tracing::warn!(
            "--copies {} with --jitter 0 stores identical copies of every train tile",
            o.settings.copies
        );
    }
    let plan = Plan::from_tiles_with(&o.tiles, &o.settings, o.photos.as_deref())?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "manifest: {} tiles ({} train, {} val) from {} photos, {} classes; {} train + {} val shards",
        plan.rows.len(),
        plan.train.tiles,
        plan.val.tiles,
        plan.train.photos + plan.val.photos,
        plan.classes.len(),
        plan.params.train_shards,
        plan.params.val_shards,
    );

    // One writer: nothing below writes or deletes in OUT without this lock. Jobs of one
    // sharded build (same manifest, parameters and job count) share it.
    let lock = lock::acquire(
        &o.out,
        &LockRequest {
            stage: STAGE,
            generation: &format!("{}/{}", plan.generation(), o.job.count),
            job: o.job,
        },
    )?;
    // Leftover temporaries of this job (a killed earlier run); a single run owns them all.
    let own_tag = (!o.job.is_whole()).then(|| temp_tag(o.job));
    atomic::remove_stale_temps(&o.out, own_tag.as_deref())?;

    let old = if o.force {
        None
    } else {
        OldCache::load(&o.out)
    };
    let owned: Vec<usize> = (0..plan.shards.len()).filter(|&k| o.job.owns(k)).collect();

    let mut mine: Vec<ShardEntry> = Vec::with_capacity(owned.len());
    let mut bad: Vec<BadTile> = Vec::new();
    let mut to_build = Vec::new();
    for &k in &owned {
        let shard = &plan.shards[k];
        match old.as_ref().and_then(|c| c.reusable(&plan, shard, &o.out)) {
            Some(r) => {
                mine.push(r.entry);
                bad.extend(r.bad);
            }
            None => to_build.push(k),
        }
    }
    let shards_unchanged = mine.len();
    let tiles_to_decode: u64 = to_build
        .iter()
        .map(|&k| plan.shards[k].tiles.len() as u64)
        .sum();
    let bar = ballast_cli::progress(tiles_to_decode, "packer", o.quiet);
    let tag = temp_tag(o.job);
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(to_build.len());
    let result = (|| -> Result<(), PackError> {
        for &k in &to_build {
            let shard = &plan.shards[k];
            let allowed = o.max_bad.saturating_sub(bad_inputs(&bad));
            let tmp = o.out.join(format!(".{}.tmp-{tag}-staged", shard.file));
            let built = build_shard(&plan, shard, &tmp, allowed, &bar)?;
            staged.push((built.staged, o.out.join(&shard.file)));
            tracing::debug!(
                "built {} ({} samples, {} bad tiles)",
                shard.file,
                built.entry.samples,
                built.bad.len()
            );
            for b in &built.bad {
                tracing::warn!("skipped bad tile {}: {}", b.tile, b.reason);
            }
            mine.push(built.entry);
            bad.extend(built.bad);
        }
        Ok(())
    })();
    bar.finish_and_clear();
    if let Err(e) = result {
        for (tmp, _) in &staged {
            let _ = std::fs::remove_file(tmp);
        }
        return Err(e);
    }
    install(&o.out, &staged)?;

    let mut report = PackReport {
        shards_written: to_build.len(),
        shards_unchanged,
        tiles_decoded: tiles_to_decode,
        bad_tiles: bad.len(),
        stale_removed: Vec::new(),
        finish: Finish::Unchanged,
        seconds: 0.0,
    };

    // The jobs of a build take turns from recording their part to committing the index, so
    // exactly one (the last) commits.
    let _turn = lock.finishing()?;
    let gathered = gather(o, &plan, old.as_ref(), mine, bad, &owned)?;
    let complete = gathered.complete;
    if let Some(missing) = gathered.waiting {
        report.finish = Finish::Waiting(missing);
    }
    let all = gathered.all;

    if let Some((entries, bad_all)) = all {
        let (index, summary) = finish::assemble(&plan, &entries, &bad_all, o.max_bad)?;
        let wrote = finish::commit(&o.out, &index, &summary)?;
        report.stale_removed = finish::remove_stale(&o.out, &index, complete)?;
        Parts::new(&o.out, STAGE).clear()?;
        report.finish = if wrote {
            Finish::Written
        } else {
            Finish::Unchanged
        };
        report.bad_tiles = summary.bad_tiles.len();
    }
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

/// The entries (and bad tiles) of every shard of the build, once they are all known.
struct Gathered {
    all: Option<(Vec<ShardEntry>, Vec<BadTile>)>,
    /// Every job of the build has finished writing (so stray temporaries are dead).
    complete: bool,
    /// Jobs not reported yet, when this job cannot finish the build.
    waiting: Option<Vec<usize>>,
}

/// Gathers the entries of every shard: from this job, from the other jobs' parts, or (when it
/// was built from this very manifest and these parameters) from the existing index.
fn gather(
    o: &PackOptions,
    plan: &Plan,
    old: Option<&OldCache>,
    mine: Vec<ShardEntry>,
    bad: Vec<BadTile>,
    owned: &[usize],
) -> Result<Gathered, PackError> {
    let same_gen_old = old.filter(|c| c.same_generation(plan));
    // Whether every job of this build has finished writing (so stray temps are dead).
    let mut complete = o.job.is_whole();
    let mut waiting = None;
    let all: Option<(Vec<ShardEntry>, Vec<BadTile>)> = if o.job.is_whole() {
        Some((mine, bad))
    } else {
        // The existing index already records this job's shards exactly: nothing to report.
        let already_indexed = same_gen_old.filter(|c| {
            mine.iter().all(|e| c.entry(&e.file) == Some(e))
                && owned.iter().all(|&k| {
                    let f = &plan.shards[k].file;
                    bad.iter().filter(|b| &b.shard == f).count() == c.bad_of(f).len()
                })
        });
        if let Some(c) = already_indexed {
            let bad_all = plan
                .shards
                .iter()
                .flat_map(|s| c.bad_of(&s.file).iter().cloned())
                .collect();
            Some((c.index.shards.clone(), bad_all))
        } else {
            let parts = Parts::new(&o.out, STAGE);
            let generation = plan.generation();
            parts.write(
                o.job,
                &generation,
                &Part {
                    entries: mine.clone(),
                    bad: bad.clone(),
                },
            )?;
            match parts.collect::<Part>(o.job.count, &generation)? {
                Collected::Complete(ps) => {
                    complete = true;
                    let mut e = Vec::new();
                    let mut b = Vec::new();
                    for p in ps {
                        e.extend(p.entries);
                        b.extend(p.bad);
                    }
                    Some((e, b))
                }
                Collected::Waiting { missing } => match same_gen_old {
                    // Other jobs' shards are unchanged from the existing index.
                    Some(c) => {
                        let mut e = mine.clone();
                        let mut b = bad.clone();
                        for (k, s) in plan.shards.iter().enumerate() {
                            if !o.job.owns(k) {
                                if let Some(x) = c.entry(&s.file) {
                                    e.push(x.clone());
                                }
                                b.extend(c.bad_of(&s.file).iter().cloned());
                            }
                        }
                        Some((e, b))
                    }
                    None => {
                        waiting = Some(missing);
                        None
                    }
                },
            }
        }
    };

    Ok(Gathered {
        all,
        complete,
        waiting,
    })
}

/// The temp-name tag `ballast_cli::resolve_shard` gives this job's files.
fn temp_tag(job: JobShard) -> String {
    format!("j{}", job.tag())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Moves every built shard from its staging name to its real name. If one replaces a file the
/// live index lists, the index is retired first, so that no later stage reads an index whose
/// digests no longer match; the finishing job writes the new one.
fn install(out: &Path, staged: &[(PathBuf, PathBuf)]) -> Result<(), PackError> {
    if staged.is_empty() {
        return Ok(());
    }
    let live = out.join(INDEX_FILE);
    if live.exists() && staged.iter().any(|(_, dest)| dest.exists()) {
        let retired = retired_index_path(out);
        if let Some(dir) = retired.parent() {
            std::fs::create_dir_all(dir).map_err(|e| PackError::io(dir, e))?;
        }
        std::fs::rename(&live, &retired).map_err(|e| PackError::io(&live, e))?;
        atomic::sync_parent(&live)?;
    }
    for (tmp, dest) in staged {
        std::fs::rename(tmp, dest).map_err(|e| PackError::io(dest, e))?;
    }
    atomic::sync_parent(&staged[0].1)?;
    Ok(())
}
