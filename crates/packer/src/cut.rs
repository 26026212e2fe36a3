//! Samples cut straight from the photos (`tiler --tile-files none`): each photo is read once,
//! its content checked against the manifest's digest, decoded with the tiler's decoder (EXIF
//! orientation, pixel limit, strict JPEG), and all its windows cut in memory, with the same
//! luma, resize and jitter code as tile files. A window's sample is therefore the very bytes
//! its PNG tile would give (the tile is a lossless crop of the same decoded pixels, and luma is
//! per pixel).
//!
//! Memory: photos are taken in rounds of one per worker thread, decoded in parallel, then all
//! their windows are cut in parallel; a round's photos are dropped before the next is decoded,
//! so at most `threads` decoded photos are held at once.

use ballast_tiler::photo::{self, PhotoError, Pixels as Decoded};
use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::build::{Worker, finish_sample};
use crate::plan::{Plan, ShardPlan};
use crate::preprocess::{Pixels, luma_row};

/// A photo ready to cut from: 8-bit pixels, tightly packed, one or three channels (three
/// converted to luma once when its windows cover more than the photo).
struct Ready {
    data: Vec<u8>,
    width: u32,
    height: u32,
    channels: u8,
}

/// Slots (shard position, the slot's bytes) of one photo.
type Group<'a> = Vec<(usize, &'a mut [u8])>;

/// Fills `slots` (window rows of `shard`, in shard order) from their photos; returns the slots
/// that could not be filled, with the reason (a photo that vanished, changed or fails to
/// decode spoils all its windows).
pub fn from_photos(
    plan: &Plan,
    shard: &ShardPlan,
    slots: Vec<(usize, &mut [u8])>,
    progress: &ProgressBar,
) -> Vec<(usize, String)> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (i, slot) in slots {
        let photo = &plan.rows[shard.tiles[i]].rec.photo;
        match groups.last_mut() {
            Some(g) if plan.rows[shard.tiles[g[0].0]].rec.photo == *photo => g.push((i, slot)),
            _ => groups.push(vec![(i, slot)]),
        }
    }
    let round = rayon::current_num_threads().max(1);
    let mut failed = Vec::new();
    for batch in groups.chunks_mut(round) {
        let loaded: Vec<Result<Ready, String>> = batch
            .par_iter()
            .map(|g| load(plan, shard.tiles[g[0].0], g.len()))
            .collect();
        for (g, l) in batch.iter().zip(&loaded) {
            if let Err(reason) = l {
                failed.extend(g.iter().map(|(i, _)| (*i, reason.clone())));
                progress.inc(g.len() as u64);
            }
        }
        batch
            .par_iter_mut()
            .zip(&loaded)
            .filter_map(|(g, l)| Some((g, l.as_ref().ok()?)))
            .flat_map(|(g, ready)| g.par_iter_mut().map(move |slot| (slot, ready)))
            .for_each(|((i, out), ready)| {
                cut_one(plan, shard.tiles[*i], shard.copies, ready, out);
                progress.inc(1);
            });
    }
    failed
}

/// One window's samples from its decoded photo.
fn cut_one(plan: &Plan, row: usize, copies: u32, ready: &Ready, out: &mut [u8]) {
    let r = &plan.rows[row].rec;
    let ss = (plan.params.size as usize).pow(2);
    let view = Pixels::new(&ready.data, ready.width, ready.height, ready.channels)
        .and_then(|p| p.window(r.x, r.y, r.size, r.size))
        .expect("the photo's size and the window were checked against the manifest");
    Worker::with(plan.params.size, |w| {
        w.pre.sample_into(&view, &mut out[..ss])
    });
    finish_sample(plan, row, copies, out);
}

/// Reads, checks and decodes the photo of `row`, with `windows` windows to cut from it.
fn load(plan: &Plan, row: usize, windows: usize) -> Result<Ready, String> {
    let r = &plan.rows[row];
    let bytes = photo::read(&r.path).map_err(|e| match e {
        PhotoError::Read(io) if io.kind() == std::io::ErrorKind::NotFound => {
            "missing: no such file (moved or deleted since tiling; rerun the tiler, or pass \
             --photos DIR if the folder moved)"
                .to_string()
        }
        other => other.to_string(),
    })?;
    if ballast_format::digest::of_bytes(&bytes) != r.rec.photo_digest {
        return Err(
            "changed since tiling (its BLAKE3 differs from the manifest's \
                    photo_digest): rerun the tiler"
                .into(),
        );
    }
    let decoded = photo::decode(&bytes, plan.photo_max_pixels).map_err(|e| e.to_string())?;
    drop(bytes);
    let (width, height) = (decoded.pixels.width(), decoded.pixels.height());
    if (width, height) != (r.rec.photo_width, r.rec.photo_height) {
        return Err(format!(
            "decodes to {width}×{height}, but the manifest says {}×{}: rerun the tiler",
            r.rec.photo_width, r.rec.photo_height
        ));
    }
    let window_area = windows as u64 * (r.rec.size as u64).pow(2);
    Ok(ready(decoded.pixels, window_area))
}

/// Luma of the whole photo at once when the windows cover more than its area (luma is per
/// pixel, so this changes no byte); else each window converts its own pixels.
fn ready(pixels: Decoded, window_area: u64) -> Ready {
    let (width, height) = (pixels.width(), pixels.height());
    match pixels {
        Decoded::Gray(g) => Ready {
            data: g.into_raw(),
            width,
            height,
            channels: 1,
        },
        Decoded::Rgb(rgb) if window_area > width as u64 * height as u64 => {
            let w = width as usize;
            let mut gray = vec![0u8; w * height as usize];
            for (src, dst) in rgb
                .as_raw()
                .chunks_exact(w * 3)
                .zip(gray.chunks_exact_mut(w))
            {
                luma_row(src, 3, dst);
            }
            Ready {
                data: gray,
                width,
                height,
                channels: 1,
            }
        }
        Decoded::Rgb(rgb) => Ready {
            data: rgb.into_raw(),
            width,
            height,
            channels: 3,
        },
    }
}
