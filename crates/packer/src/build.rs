//! Making one shard: decode its tiles in parallel, preprocess and jitter, write the file.
//!
//! Memory is one shard's image buffer plus each worker's decode buffers: shards are built one
//! after another and dropped once written.

use std::cell::RefCell;
use std::io::Read;
use std::path::Path;

use ballast_format::Split;
use ballast_format::cache_files::{BadTile, ShardEntry};
use ballast_format::digest;
use ballast_format::shard_file::{self, SHARD_FORMAT, ShardMeta};
use indicatif::ProgressBar;
use rayon::prelude::*;

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
struct Worker {
    bytes: Vec<u8>,
    gray: Vec<u8>,
    decoder: TileDecoder,
    pre: Preprocessor,
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
    fn with<R>(size: u32, f: impl FnOnce(&mut Worker) -> R) -> R {
        WORKER.with_borrow_mut(|slot| {
            let w = match slot {
                Some(w) if w.pre.size() == size => w,
                _ => slot.insert(Worker::new(size)),
            };
            f(w)
        })
    }

    /// Fills `out` (copies × size² bytes) with the samples of one tile, or says why the tile
    /// cannot be used (a reason without paths: it goes into packer.json).
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
        if digest::of_bytes(&self.bytes) != r.rec.tile_digest {
            return Err(
                "changed since the tiler wrote it (its BLAKE3 differs from the \
                        manifest's tile_digest): rerun the tiler"
                    .into(),
            );
        }
        let ss = (plan.params.size as usize).pow(2);
        let (w, h) = self.decoder.decode_luma(&self.bytes, &mut self.gray)?;
        self.pre.gray_sample_into(&self.gray, w, h, &mut out[..ss]);
        for c in 1..copies as usize {
            out.copy_within(0..ss, c * ss);
        }
        if r.rec.split == Split::Train && plan.params.jitter > 0.0 {
            for (c, sample) in out.chunks_exact_mut(ss).enumerate() {
                Jitter::draw(plan.params.jitter, plan.params.seed, &r.rec.tile, c as u32)
                    .apply(sample);
            }
        }
        Ok(())
    }
}

/// Builds `shard` and writes it to `staged`. `bad_allowed` is how many more bad tiles this job
/// may skip; beyond that the first bad tile (in shard order) is an error naming it and its line.
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
    let failures: Vec<Option<String>> = images
        .par_chunks_mut(per_tile)
        .zip(shard.tiles.par_iter())
        .map(|(chunk, &row)| {
            let r = Worker::with(size, |w| w.tile(plan, row, shard.copies, chunk));
            progress.inc(1);
            r.err()
        })
        .collect();

    let bad: Vec<(usize, String)> = failures
        .into_iter()
        .enumerate()
        .filter_map(|(i, f)| f.map(|m| (i, m)))
        .collect();
    if bad.len() as u64 > bad_allowed {
        let (i, reason) = &bad[0];
        let row = shard.tiles[*i];
        let more = match bad.len() {
            1 => String::new(),
            n => format!(" (and {} more bad tiles in this shard)", n - 1),
        };
        return Err(PackError::Input(format!(
            "{}: tile {}: {reason}{more}; pass --max-bad N to skip up to N bad tiles",
            plan.at(row),
            plan.rows[row].path.display(),
        )));
    }

    // Drop bad tiles' slots, keeping order.
    let mut keep = vec![true; shard.tiles.len()];
    for (i, _) in &bad {
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

    let n = images.len() / ss;
    let mut labels = Vec::with_capacity(n);
    let mut tiles = Vec::with_capacity(n);
    let mut photos = Vec::with_capacity(n);
    let mut copies = Vec::with_capacity(n);
    let mut per_class = vec![0u64; plan.classes.len()];
    for (&row, _) in shard.tiles.iter().zip(&keep).filter(|(_, k)| **k) {
        let r = &plan.rows[row];
        for c in 0..shard.copies {
            labels.push(r.label as i64);
            tiles.push(r.rec.tile.clone());
            photos.push(r.rec.photo.clone());
            copies.push(c);
        }
        per_class[r.label as usize] += shard.copies as u64;
    }
    let (pixel_sum, pixel_sq_sum) = images
        .par_chunks(1 << 16)
        .map(|c| {
            c.iter().fold((0u64, 0u64), |(s, q), &p| {
                (s + p as u64, q + (p as u64) * (p as u64))
            })
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));

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
                tile: r.tile.clone(),
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
