//! One tiler job from start to finish: list the input, decide what is already done, tile the
//! rest of this job's photos, record the job's part, and commit the output if this job is the
//! last of its generation to finish.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ballast_format::digest::{self, KeyHasher};
use ballast_format::lock::{self, LockRequest};
use ballast_format::manifest::TileRecord;
use ballast_format::parts::{Collected, Parts};
use ballast_format::tiler_files::{SplitRule, TilerParams, TilerSummary, WindowMode};
use ballast_format::{JobShard, Split, atomic};

use crate::commit::{self, STAGE};
use crate::config::Config;
use crate::encode;
use crate::error::TilerError;
use crate::naming;
use crate::photo::{self, Pixels};
use crate::prepass::{self, Examined};
use crate::scan::{self, FileStat, Listing};
use crate::schedule::{self, Loaded, PhotoWork};
use crate::state::{self, Journal, PartBody, PhotoOutcome, PhotoState, SkipNote};
use crate::stratify::SplitPlan;
use crate::windows;

/// What this job did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStats {
    /// Photos this job owns.
    pub photos: usize,
    /// Of those, photos read and decoded (or found bad) this time.
    pub processed: usize,
    /// Of those, photos whose earlier result was reused without decoding.
    pub reused: usize,
    /// Tile files written.
    pub tiles_written: u64,
    /// Photos skipped (bad or too small), including reused skips.
    pub skipped: usize,
    /// Bad inputs seen by this job (its photos plus those found while listing).
    pub bad: u64,
}

/// How a run ended (every variant is success: exit status 0).
#[derive(Debug)]
pub enum RunOutcome {
    /// Nothing changed since the committed output: nothing was written.
    UpToDate {
        photos: u64,
        tiles: u64,
        skipped: u64,
    },
    /// This job committed the output (it was the only or the last job).
    Committed {
        summary: Box<TilerSummary>,
        job: JobStats,
    },
    /// This job's part is recorded; other jobs have not finished yet.
    Waiting { missing: Vec<usize>, job: JobStats },
    /// `--decode-only`: photos decoded, nothing written.
    Decoded(DecodeStats),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodeStats {
    pub photos: u64,
    pub failed: u64,
    pub megapixels: f64,
    pub file_bytes: u64,
    pub seconds: f64,
}

/// The tag in this job's temporary names, as `ballast_cli::resolve_shard` sets it.
fn temp_tag(shard: JobShard) -> String {
    format!("j{}", shard.tag())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Runs one tiler job.
pub fn run(cfg: &Config) -> Result<RunOutcome, TilerError> {
    cfg.validate().map_err(TilerError::Usage)?;
    let started = Instant::now();
    atomic::set_temp_tag(&format!("j{}", cfg.shard.tag()));
    let input_abs = check_input(cfg)?;
    if cfg.decode_only {
        let listing = scan::scan(&cfg.input, None)?;
        return Ok(RunOutcome::Decoded(decode_only(cfg, &listing)));
    }
    let listing = list_input(cfg, &input_abs)?;
    let params = cfg.params();
    let out = cfg.out.as_path();
    let generation = generation(&listing, &params);
    // One writer: nothing below writes or deletes in OUT without this lock.
    let lock = lock::acquire(
        out,
        &LockRequest {
            stage: STAGE,
            generation: &format!("{generation}/{}", cfg.shard.count),
            job: cfg.shard,
        },
    )?;
    atomic::remove_stale_temps(out, Some(&temp_tag(cfg.shard)))?;

    let prior = Prior::load(cfg, &params)?;
    let preset = listing_outcomes(&listing);
    let examined = examine_photos(cfg, &listing, &preset, &prior);
    let plan = plan_split(cfg, &listing, &examined, &prior);
    if let Some(c) = &prior.committed
        && let Some(n) = up_to_date(
            &listing,
            &input_abs,
            &params,
            c,
            &preset,
            &prior.existing,
            &plan,
        )
    {
        return report_up_to_date(cfg, &c.summary, n);
    }

    for s in &listing.skipped {
        tracing::warn!("skipped {}: {}", shown(&cfg.input, &s.path), s.reason);
    }
    let work = TileWork {
        cfg,
        listing: &listing,
        params: &params,
        preset: &preset,
        committed: prior.committed.as_ref().map(|c| &c.outcomes),
        journal: &prior.journal,
        existing: &prior.existing,
        examined: &examined,
        plan: &plan,
    };
    let done = tile_owned(&work, started)?;
    finish_job(cfg, &lock, &listing, &input_abs, &params, &generation, done)
}

/// The input folder, canonical, once it is known to be a readable folder.
fn check_input(cfg: &Config) -> Result<PathBuf, TilerError> {
    let input_abs = fs::canonicalize(&cfg.input).map_err(|e| TilerError::Input {
        path: cfg.input.clone(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".into()
        } else {
            format!("cannot read: {e}")
        },
    })?;
    if !input_abs.is_dir() {
        return Err(TilerError::Input {
            path: cfg.input.clone(),
            reason: "is not a folder".into(),
        });
    }
    fs::read_dir(&input_abs).map_err(|e| TilerError::Input {
        path: cfg.input.clone(),
        reason: format!("cannot read: {e}"),
    })?;
    Ok(input_abs)
}

/// Creates the output folder (refusing one that holds the input) and lists the input, leaving
/// the output out when it lies inside it.
fn list_input(cfg: &Config, input_abs: &Path) -> Result<Listing, TilerError> {
    let out_abs = absolute_out(&cfg.out)?;
    for inner in ["", "train", "val", ".parts"] {
        let guarded = if inner.is_empty() {
            out_abs.clone()
        } else {
            out_abs.join(inner)
        };
        if input_abs.starts_with(&guarded) {
            return Err(TilerError::Usage(format!(
                "the input folder {} lies inside the output folder's {}; choose another --out",
                cfg.input.display(),
                if inner.is_empty() { "root" } else { inner }
            )));
        }
    }
    fs::create_dir_all(&cfg.out).map_err(|e| TilerError::io(&cfg.out, e))?;
    let exclude = out_abs.starts_with(input_abs).then_some(cfg.out.as_path());
    let listing = scan::scan(&cfg.input, exclude)?;
    for class in &listing.classes {
        if let Some(c) = class.chars().find(|c| c.is_control()) {
            return Err(TilerError::Input {
                path: cfg.input.join(class),
                reason: format!(
                    "class folder name {class:?} holds a control character (U+{:04X}); class \
                     names become labels in every later file: rename the folder",
                    c as u32
                ),
            });
        }
    }
    Ok(listing)
}

/// What earlier runs left that this one may reuse (nothing with `--force`).
struct Prior {
    committed: Option<state::Committed>,
    journal: HashMap<String, PhotoOutcome>,
    existing: HashSet<String>,
}

impl Prior {
    fn load(cfg: &Config, params: &TilerParams) -> Result<Prior, TilerError> {
        let out = cfg.out.as_path();
        let (committed, journal) = if cfg.force {
            (None, HashMap::new())
        } else {
            (
                state::load_committed(out, params)?,
                state::load_journals(out, &state::params_digest(params)),
            )
        };
        Ok(Prior {
            committed,
            journal,
            existing: state::existing_tiles(out)?,
        })
    }

    /// The content digests earlier runs recorded, by photo (journals first: they are newer).
    fn known_digests(&self, cfg: &Config) -> prepass::Known {
        let mut known = prepass::Known::new();
        if cfg.force {
            return known;
        }
        prepass::remember(&mut known, self.journal.values());
        match self.committed.as_ref().map(|c| &c.outcomes) {
            Some(outcomes) if !outcomes.is_empty() => {
                prepass::remember(&mut known, outcomes.values())
            }
            // Other parameters (or none committed): the stat cache still knows the contents.
            _ => {
                let states = state::recorded_states(&cfg.out);
                let outcomes: Vec<PhotoOutcome> = states
                    .into_iter()
                    .map(|state| PhotoOutcome {
                        state,
                        tiles: Vec::new(),
                    })
                    .collect();
                prepass::remember(&mut known, &outcomes);
            }
        }
        known
    }
}

/// The digest pre-pass over every listed photo (see [`prepass`]); empty for the hash rule,
/// which decides each photo on its own when it is tiled.
fn examine_photos(
    cfg: &Config,
    listing: &Listing,
    preset: &HashMap<usize, PhotoOutcome>,
    prior: &Prior,
) -> Vec<Examined> {
    if cfg.split != SplitRule::Stratified {
        return Vec::new();
    }
    let started = Instant::now();
    let known = prior.known_digests(cfg);
    let examined = prepass::examine(listing, preset, &known, cfg.quiet);
    let hashed = listing
        .photos
        .iter()
        .zip(&examined)
        .filter(|(p, e)| {
            e.digest().is_some()
                && !known
                    .get(&p.rel)
                    .is_some_and(|(s, _)| p.stat.as_ref() == Ok(s))
        })
        .count();
    if hashed > 0 {
        tracing::info!(
            "stratified split: hashed {hashed} of {} photos in {:.1} s (every job hashes every \
             photo, so all jobs make the same split)",
            listing.photos.len(),
            started.elapsed().as_secs_f64()
        );
    }
    examined
}

/// The split of every photo content, and a note of photos the committed output has on the
/// other side (the stratified rule moves about one photo per class when a class grows).
fn plan_split(cfg: &Config, listing: &Listing, examined: &[Examined], prior: &Prior) -> SplitPlan {
    let members = listing
        .photos
        .iter()
        .zip(examined)
        .filter_map(|(p, e)| Some((p.class.as_str(), e.digest()?)));
    let plan = SplitPlan::new(cfg.split, members, cfg.val_fraction, cfg.split_seed);
    if let Some(c) = &prior.committed {
        let moved = c
            .outcomes
            .values()
            .filter_map(|o| o.tiles.first())
            .filter(|t| plan.split_of(&t.photo_digest).is_some_and(|s| s != t.split))
            .count();
        if moved > 0 {
            tracing::info!(
                "{moved} photos change side since the committed output (the stratified split \
                 keeps each class near --val-fraction as it grows)"
            );
        }
    }
    plan
}

/// The up-to-date verdict: the same as a fresh run's (over --max-bad fails).
fn report_up_to_date(
    cfg: &Config,
    summary: &TilerSummary,
    (photos, tiles, skipped, bad): (u64, u64, u64, u64),
) -> Result<RunOutcome, TilerError> {
    let out = cfg.out.as_path();
    if state::has_pending(out) {
        tracing::debug!("clearing leftover parts and journals of an earlier run");
        Parts::new(out, STAGE).clear()?;
        state::clear_journals(out)?;
    }
    if bad > cfg.max_bad {
        return Err(TilerError::TooManyBad {
            bad,
            limit: cfg.max_bad,
        });
    }
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "up to date: {photos} photos, {tiles} tiles, {skipped} skipped (see tiler.json); \
         nothing to do"
    );
    Ok(RunOutcome::UpToDate {
        photos,
        tiles,
        skipped,
    })
}

/// Tiles this job's photos (reusing what still holds) and returns their outcomes in order.
fn tile_owned(
    work: &TileWork<'_>,
    started: Instant,
) -> Result<(Vec<PhotoOutcome>, JobStats), TilerError> {
    let cfg = work.cfg;
    let owned = owned_photos(work.listing.photos.len(), cfg.shard);
    let journal = Journal::open(
        &cfg.out,
        &cfg.shard.tag(),
        &state::params_digest(work.params),
    )?;
    let bar = ballast_cli::progress(owned.len() as u64, "photos", cfg.quiet);
    let on_done = |k: usize, done: &Result<Done, TilerError>| {
        bar.inc(1);
        if let Ok(d) = done {
            if let Some(note) = &d.outcome.state.skipped {
                let path = shown(&cfg.input, &work.listing.photos[k].rel);
                bar.suspend(|| tracing::warn!("skipped {path}: {}", note.reason));
            }
            if d.fresh
                && let Err(e) = journal.record(&d.outcome)
            {
                bar.suspend(|| tracing::warn!("cannot record progress: {e}"));
            }
        }
    };
    let in_flight = rayon::current_num_threads() + 1;
    let results = schedule::run(work, &owned, in_flight, &on_done);
    bar.finish_and_clear();

    let mut stats = JobStats {
        photos: owned.len(),
        bad: work.listing.skipped.iter().filter(|s| s.bad).count() as u64,
        ..JobStats::default()
    };
    let mut outcomes = Vec::with_capacity(owned.len());
    for r in results {
        let d = r.ok_or_else(|| {
            TilerError::Inconsistent("the run stopped before every photo was done".into())
        })??;
        if d.reused {
            stats.reused += 1;
        } else {
            stats.processed += 1;
        }
        stats.tiles_written += d.tiles_written;
        if let Some(note) = &d.outcome.state.skipped {
            stats.skipped += 1;
            stats.bad += note.bad as u64;
        }
        outcomes.push(d.outcome);
    }
    log_job(cfg, &stats, started);
    if stats.bad > cfg.max_bad {
        return Err(TilerError::TooManyBad {
            bad: stats.bad,
            limit: cfg.max_bad,
        });
    }
    Ok((outcomes, stats))
}

fn log_job(cfg: &Config, stats: &JobStats, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        "job {}: {} photos ({} tiled or checked now, {} unchanged), {} tiles written, {} skipped, \
         in {:.1} s ({:.0} tiles/s)",
        cfg.shard,
        stats.photos,
        stats.processed,
        stats.reused,
        stats.tiles_written,
        stats.skipped,
        secs,
        stats.tiles_written as f64 / secs.max(1e-9)
    );
}

/// Records this job's part and, if it is the last of its build, commits the output. The jobs
/// of a build take turns here (the lock's finishing section), so exactly one commits.
fn finish_job(
    cfg: &Config,
    lock: &lock::OutputLock,
    listing: &Listing,
    input: &Path,
    params: &TilerParams,
    generation: &str,
    (outcomes, stats): (Vec<PhotoOutcome>, JobStats),
) -> Result<RunOutcome, TilerError> {
    let out = cfg.out.as_path();
    atomic::sync_filesystem(out)?;
    let _turn = lock.finishing()?;
    let parts = Parts::new(out, STAGE);
    parts.write(cfg.shard, generation, &PartBody { outcomes })?;
    match parts.collect::<PartBody>(cfg.shard.count, generation)? {
        Collected::Complete(bodies) => {
            let all: Vec<PhotoOutcome> = bodies.into_iter().flat_map(|b| b.outcomes).collect();
            let summary = commit::commit(out, listing, input, params, all, cfg.max_bad)?;
            warn_duplicates(&summary);
            log_classes(&summary);
            tracing::info!(
                "wrote {}: {} photos, {} tiled, {} tiles, {} skipped ({} bad)",
                out.join("manifest.jsonl").display(),
                summary.counts.photos,
                summary.counts.photos_tiled,
                summary.counts.tiles,
                summary.counts.skipped,
                summary.counts.bad
            );
            Ok(RunOutcome::Committed {
                summary: Box::new(summary),
                job: stats,
            })
        }
        Collected::Waiting { missing } => {
            tracing::info!(
                "job {} done; waiting for job(s) {:?} of {}: the last job to finish writes \
                 manifest.jsonl and tiler.json",
                cfg.shard,
                missing,
                cfg.shard.count
            );
            Ok(RunOutcome::Waiting {
                missing,
                job: stats,
            })
        }
    }
}

/// The photos (indexes into the sorted listing) that job `shard` tiles: `k % N == I`.
pub fn owned_photos(count: usize, shard: JobShard) -> Vec<usize> {
    (0..count).filter(|&k| shard.owns(k)).collect()
}

/// `INPUT/rel` for messages.
fn shown(input: &Path, rel: &str) -> String {
    input.join(rel).display().to_string()
}

/// The output folder as an absolute, symlink-resolved path, whether or not it exists yet.
fn absolute_out(out: &Path) -> Result<PathBuf, TilerError> {
    let abs = std::path::absolute(out).map_err(|e| TilerError::io(out, e))?;
    let mut existing = abs.as_path();
    let mut tail = Vec::new();
    loop {
        if let Ok(c) = fs::canonicalize(existing) {
            let mut p = c;
            for t in tail.iter().rev() {
                p.push(t);
            }
            return Ok(p);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                existing = parent;
            }
            _ => return Ok(abs),
        }
    }
}

/// Identifies a run's inputs and parameters: jobs of one generation combine their parts.
fn generation(listing: &Listing, params: &TilerParams) -> String {
    let mut h = KeyHasher::new("ballast.tiler.generation.v1");
    h.str(&serde_json::to_string(params).unwrap_or_default());
    h.u64(listing.classes.len() as u64);
    for c in &listing.classes {
        h.str(c);
    }
    h.u64(listing.photos.len() as u64);
    for p in &listing.photos {
        h.str(&p.rel);
        match &p.stat {
            Ok(s) => h.u64(s.bytes).u64(s.mtime_ns as u64),
            Err(e) => h.str(e),
        };
    }
    h.u64(listing.skipped.len() as u64);
    for s in &listing.skipped {
        h.str(&s.path).str(&s.reason);
    }
    h.finish_hex()
}

/// Outcomes decided by the listing alone: photos that could not be examined, and photos whose
/// tile names would collide with an earlier photo's (a 1 in 4 billion event per pair that
/// shares a class and a stem; the first in path order keeps its name).
fn listing_outcomes(listing: &Listing) -> HashMap<usize, PhotoOutcome> {
    let mut out = HashMap::new();
    let mut first: HashMap<(String, String), &str> = HashMap::new();
    for (k, p) in listing.photos.iter().enumerate() {
        let skip = |stat: FileStat, reason: String, bad: bool| PhotoOutcome {
            state: PhotoState {
                photo: p.rel.clone(),
                bytes: stat.bytes,
                mtime_ns: stat.mtime_ns,
                digest: None,
                skipped: Some(SkipNote { reason, bad }),
            },
            tiles: Vec::new(),
        };
        match &p.stat {
            Err(reason) => {
                let none = FileStat {
                    bytes: 0,
                    mtime_ns: 0,
                };
                out.insert(k, skip(none, reason.clone(), true));
            }
            Ok(stat) => {
                let key = (p.class.clone(), naming::tile_prefix(&p.rel));
                if let Some(other) = first.get(&key) {
                    let reason = format!(
                        "its tile names would collide with those of {other}; rename one of them"
                    );
                    out.insert(k, skip(*stat, reason, false));
                } else {
                    first.insert(key, &p.rel);
                }
            }
        }
    }
    out
}

/// One warning per group of byte-identical photos.
fn warn_duplicates(summary: &TilerSummary) {
    for g in &summary.duplicates {
        if g.classes.len() > 1 {
            tracing::warn!(
                "byte-identical photos in different classes ({}): {}; they share one split, but \
                 their labels conflict",
                g.classes.join(", "),
                g.photos.join(", ")
            );
        } else {
            tracing::warn!(
                "byte-identical photos (kept together in one split): {}",
                g.photos.join(", ")
            );
        }
    }
}

/// Photos and tiles per class and side, then the split's warnings.
fn log_classes(summary: &TilerSummary) {
    for c in &summary.classes {
        let photos = |n: u64| if n == 1 { "photo" } else { "photos" };
        tracing::info!(
            "class {}: {} train {} ({} tiles), {} val {} ({} tiles)",
            c.class,
            c.train_photos,
            photos(c.train_photos),
            c.train_tiles,
            c.val_photos,
            photos(c.val_photos),
            c.val_tiles
        );
    }
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
}

/// `Some((photos, tiles, skipped, bad))` when every photo's committed result still holds (same stat, tiles
/// present), nothing was added or removed, and the tile folders hold exactly the listed tiles.
fn up_to_date(
    listing: &Listing,
    input: &Path,
    params: &TilerParams,
    committed: &state::Committed,
    preset: &HashMap<usize, PhotoOutcome>,
    existing: &HashSet<String>,
    plan: &SplitPlan,
) -> Option<(u64, u64, u64, u64)> {
    if committed.summary.params != *params {
        return None;
    }
    let mut outcomes = Vec::with_capacity(listing.photos.len());
    for (k, p) in listing.photos.iter().enumerate() {
        if let Some(o) = preset.get(&k) {
            outcomes.push(o.clone());
            continue;
        }
        let stat = p.stat.as_ref().ok()?;
        let c = committed.outcomes.get(&p.rel)?;
        if c.state.stat() != *stat
            || c.state.digest.is_none()
            || !c.tiles.iter().all(|t| tile_present(existing, t))
            || !c
                .tiles
                .iter()
                .all(|t| plan.split_of(&t.photo_digest) == Some(t.split))
        {
            return None;
        }
        outcomes.push(c.clone());
    }
    let a = commit::assemble(listing, input, params, &outcomes);
    if a.summary != committed.summary || a.manifest_bytes != committed.manifest_bytes {
        return None;
    }
    let files = a.rows.iter().filter(|r| r.tile.is_some()).count();
    if existing.len() != files || !a.rows.iter().all(|r| tile_present(existing, r)) {
        return None;
    }
    let c = &a.summary.counts;
    Some((c.photos, c.tiles, c.skipped, c.bad))
}

/// A row's tile file is among the existing ones (window references have none to look for).
fn tile_present(existing: &HashSet<String>, t: &TileRecord) -> bool {
    t.tile.as_ref().is_none_or(|f| existing.contains(f))
}

/// A photo's finished result inside a job.
pub struct Done {
    pub outcome: PhotoOutcome,
    /// Taken from an earlier run without decoding.
    pub reused: bool,
    /// Worth recording in the journal (new information).
    pub fresh: bool,
    pub tiles_written: u64,
}

/// A photo and the windows to cut from it: decoded for PNG tiles, only probed for window
/// references.
pub struct Cut {
    pixels: Option<Pixels>,
    width: u32,
    height: u32,
    windows: Vec<(u32, u32)>,
    split: Split,
    state: PhotoState,
}

struct TileWork<'a> {
    cfg: &'a Config,
    listing: &'a Listing,
    params: &'a TilerParams,
    preset: &'a HashMap<usize, PhotoOutcome>,
    committed: Option<&'a HashMap<String, PhotoOutcome>>,
    journal: &'a HashMap<String, PhotoOutcome>,
    existing: &'a HashSet<String>,
    /// The digest pre-pass, by listing index (empty for the hash rule).
    examined: &'a [Examined],
    plan: &'a SplitPlan,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Journal,
    Committed,
}

impl TileWork<'_> {
    /// Can the earlier outcome `o` of photo `item` stand? Its content must be the one the
    /// split was planned with, and its tiles must lie on the side the plan gives it now.
    fn agrees(&self, item: usize, o: &PhotoOutcome) -> bool {
        let Some(digest) = o.state.digest.as_deref() else {
            return false;
        };
        if let Some(Examined::Digest(d)) = self.examined.get(item)
            && d != digest
        {
            return false;
        }
        let side = self.plan.split_of(digest);
        o.tiles.iter().all(|t| Some(t.split) == side)
    }

    /// A photo whose content is not the one the split was planned with.
    fn changed(&self, rel: &str) -> TilerError {
        TilerError::Inconsistent(format!(
            "{}: its content is not the one the split was planned with (rewritten during the \
             run, or rewritten earlier keeping its size and mtime); rerun, with --force if this \
             repeats",
            shown(&self.cfg.input, rel)
        ))
    }

    fn candidates(&self, rel: &str) -> Vec<(Source, &PhotoOutcome)> {
        let mut c = Vec::new();
        if let Some(o) = self.journal.get(rel) {
            c.push((Source::Journal, o));
        }
        if let Some(o) = self.committed.and_then(|m| m.get(rel)) {
            c.push((Source::Committed, o));
        }
        c
    }

    /// Are the candidate's tiles on disk as recorded? Committed tiles were made durable before
    /// their manifest, so presence suffices; journal tiles are re-hashed.
    fn tiles_hold(&self, source: Source, o: &PhotoOutcome) -> bool {
        o.tiles.iter().all(|t| {
            let (Some(file), Some(want)) = (&t.tile, &t.tile_digest) else {
                return t.tile.is_none();
            };
            self.existing.contains(file)
                && (source == Source::Committed
                    || ballast_format::regular::read(&self.cfg.out.join(file))
                        .is_ok_and(|b| digest::of_bytes(&b) == *want))
        })
    }

    fn reuse(o: &PhotoOutcome, stat: FileStat, fresh: bool) -> Done {
        let mut outcome = o.clone();
        outcome.state.bytes = stat.bytes;
        outcome.state.mtime_ns = stat.mtime_ns;
        Done {
            outcome,
            reused: true,
            fresh,
            tiles_written: 0,
        }
    }

    fn skipped(
        rel: &str,
        stat: FileStat,
        digest: Option<String>,
        reason: String,
        bad: bool,
    ) -> Done {
        Done {
            outcome: PhotoOutcome {
                state: PhotoState {
                    photo: rel.to_string(),
                    bytes: stat.bytes,
                    mtime_ns: stat.mtime_ns,
                    digest,
                    skipped: Some(SkipNote { reason, bad }),
                },
                tiles: Vec::new(),
            },
            reused: false,
            fresh: true,
            tiles_written: 0,
        }
    }

    fn tile(&self, item: usize, cut: &Cut, w: usize) -> Result<TileRecord, TilerError> {
        let p = &self.listing.photos[item];
        let (x, y) = cut.windows[w];
        let size = self.cfg.size;
        let file = match &cut.pixels {
            Some(pixels) => Some(self.write_png(item, cut.split, pixels, x, y)?),
            None => None,
        };
        let (tile, tile_digest) = file.unzip();
        Ok(TileRecord {
            tile_digest,
            tile,
            photo: p.rel.clone(),
            class: p.class.clone(),
            split: cut.split,
            x,
            y,
            size,
            photo_digest: cut.state.digest.clone().unwrap_or_default(),
            photo_width: cut.width,
            photo_height: cut.height,
        })
    }

    /// Encodes and writes one tile; returns its relative path and digest.
    fn write_png(
        &self,
        item: usize,
        split: Split,
        pixels: &Pixels,
        x: u32,
        y: u32,
    ) -> Result<(String, String), TilerError> {
        let p = &self.listing.photos[item];
        let size = self.cfg.size;
        let place = naming::TilePlace {
            split,
            class: &p.class,
            photo_rel: &p.rel,
        };
        let mut raw = Vec::new();
        pixels.crop_into(x, y, size, size, &mut raw);
        let png = encode::encode_png(
            &raw,
            size,
            size,
            pixels.channels(),
            self.cfg.png_compression,
        )
        .map_err(|e| TilerError::Encode {
            photo: p.rel.clone(),
            x,
            y,
            detail: e.to_string(),
        })?;
        // The name carries the digest's first digits (see `naming`): never a rewrite in place.
        let tile_digest = digest::of_bytes(&png);
        let tile = naming::tile_rel_path(&place, x, y, size, &tile_digest);
        // Straight to the file: the PNG is already one buffer, so skip the writer's copy.
        atomic::write_with(
            &self.cfg.out.join(&tile),
            atomic::Durability::WriteBack,
            |w| w.get_mut().write_all(&png),
        )?;
        Ok((tile, tile_digest))
    }

    /// The photo's pixels (PNG tiles) or only its oriented size (window references).
    fn read_pixels(&self, bytes: &[u8]) -> Result<(Option<Pixels>, u32, u32), photo::PhotoError> {
        if self.params.tile_files.is_png() {
            let d = photo::decode(bytes, self.cfg.max_pixels)?;
            let (w, h) = (d.pixels.width(), d.pixels.height());
            Ok((Some(d.pixels), w, h))
        } else {
            let p = photo::probe(bytes, self.cfg.max_pixels)?;
            Ok((None, p.width, p.height))
        }
    }
}

impl PhotoWork for TileWork<'_> {
    type Photo = Cut;
    type Window = Result<TileRecord, TilerError>;
    type Done = Result<Done, TilerError>;

    fn load(&self, item: usize) -> Loaded<Cut, Self::Done> {
        if let Some(o) = self.preset.get(&item) {
            return Loaded::Done(Ok(Done {
                outcome: o.clone(),
                reused: false,
                fresh: false,
                tiles_written: 0,
            }));
        }
        let p = &self.listing.photos[item];
        let Ok(stat) = p.stat.clone() else {
            // Unreachable: listing errors are preset.
            return Loaded::Done(Ok(Self::skipped(
                &p.rel,
                FileStat {
                    bytes: 0,
                    mtime_ns: 0,
                },
                None,
                "cannot read".into(),
                true,
            )));
        };
        if let Some(Examined::Unreadable(reason)) = self.examined.get(item) {
            // Unreadable when the split was planned: it stays out of the split, and out here.
            return Loaded::Done(Ok(Self::skipped(&p.rel, stat, None, reason.clone(), true)));
        }
        let candidates = self.candidates(&p.rel);
        for (source, c) in &candidates {
            if c.state.stat() == stat && self.agrees(item, c) && self.tiles_hold(*source, c) {
                return Loaded::Done(Ok(Self::reuse(c, stat, false)));
            }
        }
        let bytes = match photo::read(&p.path) {
            Ok(b) => b,
            Err(e) => {
                return Loaded::Done(Ok(Self::skipped(&p.rel, stat, None, e.to_string(), true)));
            }
        };
        let digest = digest::of_bytes(&bytes);
        if let Some(Examined::Digest(d)) = self.examined.get(item)
            && *d != digest
        {
            return Loaded::Done(Err(self.changed(&p.rel)));
        }
        for (source, c) in &candidates {
            if c.state.digest.as_deref() == Some(digest.as_str())
                && self.agrees(item, c)
                && self.tiles_hold(*source, c)
            {
                return Loaded::Done(Ok(Self::reuse(c, stat, true)));
            }
        }
        let (pixels, w, h) = match self.read_pixels(&bytes) {
            Ok(d) => d,
            Err(e) => {
                return Loaded::Done(Ok(Self::skipped(
                    &p.rel,
                    stat,
                    Some(digest),
                    e.to_string(),
                    true,
                )));
            }
        };
        drop(bytes);
        let size = self.cfg.size;
        if w < size || h < size {
            return Loaded::Done(Ok(Self::skipped(
                &p.rel,
                stat,
                Some(digest),
                format!("photo is {w}×{h}, smaller than the {size}×{size} tile"),
                false,
            )));
        }
        let wins = match self.params.windows {
            WindowMode::Grid { stride } => windows::grid(w, h, size, stride),
            WindowMode::Random { per_photo } => {
                windows::random(w, h, size, per_photo, self.cfg.seed, &p.rel)
            }
        };
        // By content, so byte-identical copies of a photo can never sit on both sides.
        let Some(split) = self.plan.split_of(&digest) else {
            return Loaded::Done(Err(self.changed(&p.rel)));
        };
        let dir = self.cfg.out.join(split.as_str()).join(&p.class);
        if pixels.is_some()
            && let Err(e) = fs::create_dir_all(&dir)
        {
            return Loaded::Done(Err(TilerError::io(dir, e)));
        }
        let n = wins.len();
        Loaded::Windows {
            photo: Cut {
                pixels,
                width: w,
                height: h,
                windows: wins,
                split,
                state: PhotoState {
                    photo: p.rel.clone(),
                    bytes: stat.bytes,
                    mtime_ns: stat.mtime_ns,
                    digest: Some(digest),
                    skipped: None,
                },
            },
            windows: n,
        }
    }

    fn window(&self, item: usize, cut: &Cut, w: usize) -> Self::Window {
        self.tile(item, cut, w)
    }

    fn finish(&self, _item: usize, cut: &Cut, windows: Vec<Self::Window>) -> Self::Done {
        let tiles = windows.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Done {
            tiles_written: tiles.len() as u64,
            outcome: PhotoOutcome {
                state: cut.state.clone(),
                tiles,
            },
            reused: false,
            fresh: true,
        })
    }

    fn is_fatal(&self, done: &Self::Done) -> bool {
        done.is_err()
    }
}

/// Benchmark aid: the same read + hash + decode path and scheduling as tiling, no output.
fn decode_only(cfg: &Config, listing: &Listing) -> DecodeStats {
    struct DecodeWork<'a> {
        cfg: &'a Config,
        listing: &'a Listing,
    }
    impl PhotoWork for DecodeWork<'_> {
        type Photo = ();
        type Window = ();
        type Done = Result<(u64, u64), String>;
        fn load(&self, item: usize) -> Loaded<(), Self::Done> {
            let p = &self.listing.photos[item];
            Loaded::Done(
                photo::open(&p.path, self.cfg.max_pixels)
                    .map(|ph| {
                        (
                            ph.pixels.width() as u64 * ph.pixels.height() as u64,
                            ph.file_bytes,
                        )
                    })
                    .map_err(|e| format!("{}: {e}", p.rel)),
            )
        }
        fn window(&self, _: usize, _: &(), _: usize) {}
        fn finish(&self, _: usize, _: &(), _: Vec<()>) -> Self::Done {
            Ok((0, 0))
        }
    }
    let started = Instant::now();
    let owned = owned_photos(listing.photos.len(), cfg.shard);
    let work = DecodeWork { cfg, listing };
    let bar = ballast_cli::progress(owned.len() as u64, "decode", cfg.quiet);
    let on_done = |_: usize, _: &Result<(u64, u64), String>| bar.inc(1);
    let results = schedule::run(&work, &owned, rayon::current_num_threads() + 1, &on_done);
    bar.finish_and_clear();
    let mut s = DecodeStats::default();
    for r in results.into_iter().flatten() {
        match r {
            Ok((px, bytes)) => {
                s.photos += 1;
                s.megapixels += px as f64 / 1e6;
                s.file_bytes += bytes;
            }
            Err(e) => {
                s.failed += 1;
                tracing::warn!("skipped {e}");
            }
        }
    }
    s.seconds = started.elapsed().as_secs_f64();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_photos() {
        for count in [0usize, 1, 7, 100] {
            for n in 1..6 {
                let mut all: Vec<usize> = Vec::new();
                for i in 0..n {
                    let own = owned_photos(count, JobShard::new(i, n).unwrap());
                    assert!(own.iter().all(|&k| k % n == i));
                    all.extend(own);
                }
                all.sort();
                // Disjoint (no repeats) and complete.
                assert_eq!(
                    all,
                    (0..count).collect::<Vec<_>>(),
                    "{count} photos, {n} jobs"
                );
            }
        }
    }

    #[test]
    fn temp_tag_matches_the_cli() {
        // ballast_cli::resolve_shard tags temporary names with "j" + shard tag, sanitised by
        // ballast_format::atomic::set_temp_tag; stale-temp cleanup must use the same tag.
        assert_eq!(temp_tag(JobShard::new(1, 4).unwrap()), "j00001_of_00004");
        assert!(atomic::is_temp_name_with_tag(
            ".x.png.tmp-j00001_of_00004-77-0",
            &temp_tag(JobShard::new(1, 4).unwrap())
        ));
    }

    #[test]
    fn split_depends_only_on_the_photo() {
        // The split of a photo is a function of its content digest and the split seed, so a
        // growing tree keeps it and copies of a photo share it.
        let digests: Vec<String> = (0..300)
            .map(|i| digest::of_bytes(format!("photo {i}").as_bytes()))
            .collect();
        let before: Vec<Split> = digests
            .iter()
            .map(|d| Split::of_content(d, 0.2, 0))
            .collect();
        for (d, s) in digests.iter().zip(&before) {
            assert_eq!(Split::of_content(&d.clone(), 0.2, 0), *s);
        }
        let val = before.iter().filter(|s| **s == Split::Val).count();
        assert!(
            (30..=90).contains(&val),
            "{val} of 300 in val at fraction 0.2"
        );
        // Another split seed reshuffles; another window seed cannot (it is not an input).
        let moved = digests
            .iter()
            .filter(|d| Split::of_content(d, 0.2, 0) != Split::of_content(d, 0.2, 1))
            .count();
        assert!(moved > 30);
    }
}
