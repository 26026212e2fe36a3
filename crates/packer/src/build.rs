//! Making one shard: prepare its samples in parallel (from tile files, or cut from the photos
//! for window references: see [`crate::cut`]), jitter, and write the file.
//!
//! Memory is one shard's image buffer plus each worker's decode buffers (and, for photos, at
//! most one decoded photo per thread): shards are built one after another and dropped once
//! written.

use std::cell::RefCell;
use std::io::Read;
use std::path::Path;

use ballast_format::Split;
use ballast_format::cache_files::{BadTile, ShardEntry};
use ballast_format::digest;
use ballast_format::shard_file::{self, SHARD_FORMAT, ShardMeta};
use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::cut;
use crate::error::PackError;
use crate::plan::{Plan, ShardPlan};
use crate::preprocess::{Jitter, Preprocessor};
use crate::tile_png::TileDecoder;

/// A shard written under a staging name, and the tiles it had to leave out.
#[derive(Debug)]
pub struct Built {
    pub entry: ShardEntry,
    pub bad: Vec<BadTile>,
    /// Where the shard was written; the caller renames it to `entry.file` once every shard of
    /// the run is built, so an error part-way leaves the old cache intact.
    pub staged: std::path::PathBuf,
}

/// Per-thread state: buffers reused from tile to tile (and shard to shard).
pub(crate) struct Worker {
    bytes: Vec<u8>,
    gray: Vec<u8>,
    decoder: TileDecoder,
    pub(crate) pre: Preprocessor,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

impl Worker {
    fn new(size: u32) -> Worker {
        Worker {
            bytes: Vec::new(),
            gray: Vec::new(),
            // Every tile's BLAKE3 is checked against the manifest before it is decoded.
            decoder: TileDecoder::for_verified_bytes(),
            pre: Preprocessor::new(size).expect("size >= 8 was checked"),
        }
    }

    /// Runs `f` with this thread's worker for `size`.
    pub(crate) fn with<R>(size: u32, f: impl FnOnce(&mut Worker) -> R) -> R {
        WORKER.with_borrow_mut(|slot| {
            let w = match slot {
                Some(w) if w.pre.size() == size => w,
                _ => slot.insert(Worker::new(size)),
            };
            f(w)
        })
    }

    /// Fills `out` (copies × size² bytes) with the samples of one tile file, or says why the
    /// tile cannot be used (a reason without paths: it goes into packer.json).
    fn tile(&mut self, plan: &Plan, row: usize, copies: u32, out: &mut [u8]) -> Result<(), String> {
        let r = &plan.rows[row];
        self.bytes.clear();
        match ballast_format::regular::open(&r.path) {
            Ok(mut f) => f
                .read_to_end(&mut self.bytes)
                .map(|_| ())
                .map_err(|e| format!("unreadable: {e}"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("missing: no such file".into());
            }
            Err(e) => return Err(format!("unreadable: {e}")),
        }
        if digest::of_bytes(&self.bytes) != r.expected_digest() {
            return Err(
                "changed since the tiler wrote it (its BLAKE3 differs from the \
                        manifest's tile_digest): rerun the tiler"
                    .into(),
            );
        }
        let ss = (plan.params.size as usize).pow(2);
        let (w, h) = self.decoder.decode_luma(&self.bytes, &mut self.gray)?;
        self.pre.gray_sample_into(&self.gray, w, h, &mut out[..ss]);
        finish_sample(plan, row, copies, out);
        Ok(())
    }
}

/// Copies the unjittered sample in `out[..size²]` to the other copies' slots and jitters the
/// train split's, each by its window and copy index.
pub(crate) fn finish_sample(plan: &Plan, row: usize, copies: u32, out: &mut [u8]) {
    let r = &plan.rows[row];
    let ss = (plan.params.size as usize).pow(2);
    for c in 1..copies as usize {
        out.copy_within(0..ss, c * ss);
    }
    if r.rec.split == Split::Train && plan.params.jitter > 0.0 {
        for (c, sample) in out.chunks_exact_mut(ss).enumerate() {
            Jitter::draw(
                plan.params.jitter,
                plan.params.seed,
                r.rec.window_key(),
                c as u32,
            )
            .apply(sample);
        }
    }
}

/// Builds `shard` and writes it to `staged`. `bad_allowed` is how many more bad inputs (tile
/// files, or photos for window references) this job may skip; beyond that the first bad one
/// (in shard order) is an error naming it and its line.
pub fn build_shard(
    plan: &Plan,
    shard: &ShardPlan,
    staged: &Path,
    bad_allowed: u64,
    progress: &ProgressBar,
) -> Result<Built, PackError> {
    let size = plan.params.size;
    let ss = (size as usize).pow(2);
    let per_tile = shard.copies as usize * ss;
    let mut images = vec![0u8; shard.tiles.len() * per_tile];
    let failures = fill(plan, shard, &mut images, progress);
    let bad = check_bad(plan, shard, failures, bad_allowed)?;
    let keep = drop_slots(&mut images, per_tile, shard.tiles.len(), &bad);

    let n = images.len() / ss;
    let mut labels = Vec::with_capacity(n);
    let mut tiles = Vec::with_capacity(n);
    let mut photos = Vec::with_capacity(n);
    let mut copies = Vec::with_capacity(n);
    let mut per_class = vec![0u64; plan.classes.len()];
    for (&row, _) in shard.tiles.iter().zip(&keep).filter(|(_, k)| **k) {
        let r = &plan.rows[row];
        let name = r.rec.name();
        for c in 0..shard.copies {
            labels.push(r.label as i64);
            tiles.push(name.clone());
            photos.push(r.rec.photo.clone());
            copies.push(c);
        }
        per_class[r.label as usize] += shard.copies as u64;
    }
    let (pixel_sum, pixel_sq_sum) = pixel_sums(&images);
    let meta = ShardMeta {
        format: SHARD_FORMAT.into(),
        split: shard.split,
        index: shard.index,
        count: shard.count,
        size,
        classes: plan.classes.clone(),
        tiles,
        photos,
        copies,
    };
    let (digest, bytes) = shard_file::write(staged, &images, &labels, size, &meta)?;
    let bad = bad
        .into_iter()
        .map(|(i, reason)| {
            let r = &plan.rows[shard.tiles[i]].rec;
            BadTile {
                tile: r.name(),
                photo: r.photo.clone(),
                shard: shard.file.clone(),
                reason,
            }
        })
        .collect();
    Ok(Built {
        entry: ShardEntry {
            file: shard.file.clone(),
            split: shard.split,
            index: shard.index,
            count: shard.count,
            samples: n as u64,
            bytes,
            digest,
            inputs: shard.inputs.clone(),
            per_class,
            pixel_sum,
            pixel_sq_sum,
        },
        bad,
        staged: staged.to_path_buf(),
    })
}

/// Prepares every slot of the shard (a slot per row: `copies` samples); returns, per slot,
/// why it could not be filled.
fn fill(
    plan: &Plan,
    shard: &ShardPlan,
    images: &mut [u8],
    progress: &ProgressBar,
) -> Vec<Option<String>> {
    let size = plan.params.size;
    let per_tile = shard.copies as usize * (size as usize).pow(2);
    let mut failures = vec![None; shard.tiles.len()];
    let (mut from_tiles, mut from_photos) = (Vec::new(), Vec::new());
    for (i, slot) in images.chunks_exact_mut(per_tile).enumerate() {
        if plan.rows[shard.tiles[i]].from_photo() {
            from_photos.push((i, slot));
        } else {
            from_tiles.push((i, slot));
        }
    }
    let tile_failures: Vec<(usize, Option<String>)> = from_tiles
        .into_par_iter()
        .map(|(i, chunk)| {
            let row = shard.tiles[i];
            let r = Worker::with(size, |w| w.tile(plan, row, shard.copies, chunk));
            progress.inc(1);
            (i, r.err())
        })
        .collect();
    for (i, f) in tile_failures {
        failures[i] = f;
    }
    for (i, f) in cut::from_photos(plan, shard, from_photos, progress) {
        failures[i] = Some(f);
    }
    failures
}

/// The failed slots, or an error when they are more bad inputs than allowed.
fn check_bad(
    plan: &Plan,
    shard: &ShardPlan,
    failures: Vec<Option<String>>,
    bad_allowed: u64,
) -> Result<Vec<(usize, String)>, PackError> {
    let bad: Vec<(usize, String)> = failures
        .into_iter()
        .enumerate()
        .filter_map(|(i, f)| f.map(|m| (i, m)))
        .collect();
    // A bad photo spoils all its windows but counts once.
    let mut inputs: Vec<&Path> = bad
        .iter()
        .map(|(i, _)| plan.rows[shard.tiles[*i]].path.as_path())
        .collect();
    inputs.dedup();
    if inputs.len() as u64 > bad_allowed {
        let (i, reason) = &bad[0];
        let row = shard.tiles[*i];
        let r = &plan.rows[row];
        let what = if r.from_photo() { "photo" } else { "tile" };
        let more = match inputs.len() {
            1 => String::new(),
            n => format!(" (and {} more bad inputs in this shard)", n - 1),
        };
        return Err(PackError::Input(format!(
            "{}: {what} {}: {reason}{more}; pass --max-bad N to skip up to N bad inputs",
            plan.at(row),
            r.path.display(),
        )));
    }
    Ok(bad)
}

/// Removes the slots of bad rows from `images`, keeping order; returns which slots stay.
fn drop_slots(
    images: &mut Vec<u8>,
    per_tile: usize,
    slots: usize,
    bad: &[(usize, String)],
) -> Vec<bool> {
    let mut keep = vec![true; slots];
    for (i, _) in bad {
        keep[*i] = false;
    }
    if !bad.is_empty() {
        let mut w = 0;
        for (i, k) in keep.iter().enumerate() {
            if *k {
                images.copy_within(i * per_tile..(i + 1) * per_tile, w * per_tile);
                w += 1;
            }
        }
        images.truncate(w * per_tile);
    }
    keep
}

/// Sum and sum of squares of every pixel (the trainer's normaliser, exact).
fn pixel_sums(images: &[u8]) -> (u64, u64) {
    images
        .par_chunks(1 << 16)
        .map(|c| {
            c.iter().fold((0u64, 0u64), |(s, q), &p| {
                (s + p as u64, q + (p as u64) * (p as u64))
            })
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}
