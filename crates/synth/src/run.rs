//! A synth run: decide which photos need rendering, render them in parallel, write the summary.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ballast_format::atomic::{self, Durability};
use ballast_format::digest::{self, KeyHasher};
use rayon::prelude::*;
use tracing::{debug, info, warn};

use crate::encode::{PhotoFormat, encode};
use crate::error::{Result, SynthError};
use crate::gradation::{
    Gradation, MAX_CLASSES, REFERENCE_HEIGHT, REFERENCE_WIDTH, for_classes, scale_for,
};
use crate::photo::{PhotoSpec, render};
use crate::summary::{
    CLASS_MAP_FILE, ClassInfo, FORMAT_TAG, Params, PhotoRecord, Previous, RENDERER_VERSION,
    SUMMARY_FILE, Summary, class_map_toml,
};

/// Smallest photo side accepted.
pub const MIN_SIDE: u32 = 16;
/// Largest photo side (JPEG's limit).
pub const MAX_SIDE: u32 = 65_535;
/// Largest photo accepted, pixels: the renderer holds ~5 bytes per pixel per photo in flight.
pub const MAX_PIXELS: u64 = 100_000_000;
/// Tag of synth's temporary file names (see ballast_format::atomic).
const TEMP_TAG: &str = "synth";

/// What to render.
#[derive(Clone, Debug)]
pub struct Options {
    pub out: PathBuf,
    pub classes: usize,
    pub per_class: u32,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
    pub format: PhotoFormat,
    pub quality: u8,
    /// Re-render photos that are up to date.
    pub force: bool,
    /// No progress bar.
    pub quiet: bool,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub written: usize,
    pub up_to_date: usize,
    /// Photos of an earlier run that are not part of this one, deleted.
    pub removed: usize,
    /// synth.json or class-map.toml changed.
    pub summary_changed: bool,
}

struct Job<'a> {
    gradation: &'a Gradation,
    index: u32,
    file: String,
    key: String,
}

/// Checks the options and resolves the gradations.
pub fn validate(opts: &Options) -> Result<Vec<Gradation>> {
    let usage = |m: String| Err(SynthError::Usage(m));
    for (name, v) in [("--width", opts.width), ("--height", opts.height)] {
        if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
            return usage(format!(
                "{name} must be between {MIN_SIDE} and {MAX_SIDE}, got {v}"
            ));
        }
    }
    let pixels = opts.width as u64 * opts.height as u64;
    if pixels > MAX_PIXELS {
        return usage(format!(
            "{}×{} is {pixels} pixels; at most {MAX_PIXELS} per photo",
            opts.width, opts.height
        ));
    }
    if opts.per_class == 0 {
        return usage("--per-class must be at least 1".into());
    }
    if !(1..=100).contains(&opts.quality) {
        return usage(format!(
            "--quality must be between 1 and 100, got {}",
            opts.quality
        ));
    }
    if opts.classes == 0 || opts.classes > MAX_CLASSES {
        return usage(format!(
            "--classes must be between 1 and {MAX_CLASSES}, got {}",
            opts.classes
        ));
    }
    for_classes(opts.classes)
}

/// Everything that determines a photo's bytes.
fn photo_key(opts: &Options, g: &Gradation, index: u32) -> String {
    let mut h = KeyHasher::new("ballast.synth.photo");
    h.u64(RENDERER_VERSION)
        .str(&g.name)
        .f64(g.d_min)
        .f64(g.d_max)
        .f64(g.exponent)
        .u64(opts.width as u64)
        .u64(opts.height as u64)
        .u64(opts.seed)
        .str(opts.format.extension())
        .u64(match opts.format {
            PhotoFormat::Jpg => opts.quality as u64,
            _ => 0,
        })
        .u64(index as u64);
    h.finish_hex()
}

fn read_previous(path: &Path) -> Option<Previous> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(
                "{}: cannot read ({e}); rendering every photo",
                path.display()
            );
            return None;
        }
    };
    match serde_json::from_slice::<Previous>(&bytes) {
        Ok(p) if p.format == FORMAT_TAG => Some(p),
        Ok(p) => {
            warn!(
                "{}: format {:?} is not {FORMAT_TAG:?}; rendering every photo",
                path.display(),
                p.format
            );
            None
        }
        Err(e) => {
            warn!(
                "{}: unreadable ({e}); rendering every photo",
                path.display()
            );
            None
        }
    }
}

/// Writes `bytes` to `path` atomically unless it already holds exactly them. True if written.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    atomic::write_bytes(path, bytes, Durability::Fsync)?;
    Ok(true)
}

/// Renders the data set described by `opts` into `opts.out`.
pub fn run(opts: &Options) -> Result<Outcome> {
    let started = Instant::now();
    let gradations = validate(opts)?;
    let out = &opts.out;
    if out.exists() && !out.is_dir() {
        return Err(SynthError::Usage(format!(
            "--out {}: exists and is not a folder",
            out.display()
        )));
    }
    fs::create_dir_all(out).map_err(|e| SynthError::io(out, e))?;
    atomic::set_temp_tag(TEMP_TAG);
    let stale_temps = atomic::remove_stale_temps(out, Some(TEMP_TAG))?;
    if stale_temps > 0 {
        debug!("removed {stale_temps} temporary files of an interrupted run");
    }

    let summary_path = out.join(SUMMARY_FILE);
    let previous = read_previous(&summary_path);
    // --force trusts nothing on disk; the previous list still names stale photos to remove.
    let known: BTreeMap<&str, &PhotoRecord> = match &previous {
        Some(p) if !opts.force => p.photos.iter().map(|r| (r.file.as_str(), r)).collect(),
        _ => BTreeMap::new(),
    };

    let ext = opts.format.extension();
    let jobs: Vec<Job> = gradations
        .iter()
        .flat_map(|g| {
            (0..opts.per_class).map(move |index| Job {
                gradation: g,
                index,
                file: format!("{0}/{0}-{index:04}.{ext}", g.name),
                key: photo_key(opts, g, index),
            })
        })
        .collect();

    // Up to date: listed by the last run with the same key, and still there at that size.
    let mut records: Vec<Option<PhotoRecord>> = jobs
        .iter()
        .map(|job| {
            let old = known.get(job.file.as_str())?;
            let on_disk = fs::metadata(out.join(&job.file)).ok()?;
            (old.key == job.key && on_disk.is_file() && on_disk.len() == old.bytes)
                .then(|| (*old).clone())
        })
        .collect();
    let todo: Vec<usize> = (0..jobs.len()).filter(|&i| records[i].is_none()).collect();

    for g in &gradations {
        let dir = out.join(&g.name);
        fs::create_dir_all(&dir).map_err(|e| SynthError::io(&dir, e))?;
    }

    let bar = ballast_cli::progress(todo.len() as u64, "synth", opts.quiet);
    let rendered: Vec<(usize, PhotoRecord)> = todo
        .par_iter()
        .map(|&i| {
            let record = render_one(opts, &jobs[i], out)?;
            bar.inc(1);
            Ok((i, record))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let written = rendered.len();
    for (i, r) in rendered {
        records[i] = Some(r);
    }
    let photos: Vec<PhotoRecord> = records.into_iter().flatten().collect();
    if photos.len() != jobs.len() {
        // Unreachable unless a worker was lost; never write a summary that lies.
        return Err(SynthError::Internal("a photo was not rendered".into()));
    }

    // Photos the last run listed that this run does not make would pollute the ImageFolder.
    let wanted: BTreeSet<&str> = jobs.iter().map(|j| j.file.as_str()).collect();
    let mut removed = 0;
    let mut emptied = BTreeSet::new();
    if let Some(prev) = &previous {
        for r in prev
            .photos
            .iter()
            .filter(|r| !wanted.contains(r.file.as_str()))
        {
            let Ok(path) = ballast_format::relpath::resolve_inside(out, &r.file) else {
                continue;
            };
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SynthError::io(&path, e)),
            }
            if let Some(dir) = path.parent() {
                emptied.insert(dir.to_path_buf());
            }
        }
    }
    for dir in emptied {
        // Only succeeds for folders now empty; anything else the user put there stays.
        let _ = fs::remove_dir(dir);
    }

    if written > 0 {
        atomic::sync_filesystem(out)?;
    }
    let scale = scale_for(opts.width, opts.height);
    let summary = Summary {
        format: FORMAT_TAG.into(),
        renderer: RENDERER_VERSION,
        params: Params {
            width: opts.width,
            height: opts.height,
            seed: opts.seed,
            classes: opts.classes,
            per_class: opts.per_class,
            format: opts.format,
            quality: (opts.format == PhotoFormat::Jpg).then_some(opts.quality),
            reference_width: REFERENCE_WIDTH,
            reference_height: REFERENCE_HEIGHT,
            scale,
        },
        classes: gradations
            .iter()
            .map(|g| ClassInfo::new(g, scale))
            .collect(),
        photos,
    };
    let mut json = serde_json::to_vec_pretty(&summary).map_err(|e| SynthError::Encode {
        path: summary_path.clone(),
        message: e.to_string(),
    })?;
    json.push(b'\n');
    let map_changed = write_if_changed(
        &out.join(CLASS_MAP_FILE),
        class_map_toml(&gradations).as_bytes(),
    )?;
    let summary_changed = write_if_changed(&summary_path, &json)? || map_changed;

    let outcome = Outcome {
        written,
        up_to_date: jobs.len() - written,
        removed,
        summary_changed,
    };
    let secs = started.elapsed().as_secs_f64();
    if written == 0 && removed == 0 && !summary_changed {
        info!(
            "nothing to do: all {} photos in {} are up to date ({secs:.2} s)",
            jobs.len(),
            out.display()
        );
    } else {
        info!(
            "{written} photos written, {} up to date, {removed} stale removed, into {} in \
             {secs:.2} s ({} threads)",
            outcome.up_to_date,
            out.display(),
            rayon::current_num_threads()
        );
    }
    Ok(outcome)
}

fn render_one(opts: &Options, job: &Job, out: &Path) -> Result<PhotoRecord> {
    let path = out.join(&job.file);
    let t0 = Instant::now();
    let rgb = render(&PhotoSpec {
        gradation: job.gradation,
        index: job.index,
        width: opts.width,
        height: opts.height,
        seed: opts.seed,
    });
    let bytes =
        encode(&rgb, opts.width, opts.height, opts.format, opts.quality).map_err(|message| {
            SynthError::Encode {
                path: path.clone(),
                message,
            }
        })?;
    drop(rgb);
    let t1 = Instant::now();
    atomic::write_bytes(&path, &bytes, Durability::RenameOnly)?;
    debug!(
        "{}: rendered + encoded in {:.0} ms, written in {:.0} ms",
        job.file,
        (t1 - t0).as_secs_f64() * 1e3,
        t1.elapsed().as_secs_f64() * 1e3
    );
    Ok(PhotoRecord {
        file: job.file.clone(),
        class: job.gradation.name.clone(),
        index: job.index,
        key: job.key.clone(),
        bytes: bytes.len() as u64,
        digest: digest::of_bytes(&bytes),
    })
}
