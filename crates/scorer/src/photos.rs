//! `scorer photos`: field photos in, one verdict per photo out (CSV, JSON or JSON Lines), in
//! batch mode over files and folders or, with `--watch`, as photos appear in a folder.

use std::path::{Path, PathBuf};

use ballast_format::JobShard;
use ballast_format::atomic::{self, Durability};
use ballast_format::digest::KeyHasher;
use ballast_format::lock::{self, LockRequest, OutputLock};
use ballast_model::classifier::TrainedRun;
use candle_core::Device;
use rayon::prelude::*;
use serde::Serialize;
use tracing::{info, warn};

use crate::class_map::ClassMap;
use crate::compat;
use crate::error::{Result, ScoreError};
use crate::inputs;
use crate::output::{Bad, ClassValues, Format, JsonRow, Layout, PhotoRow};
use crate::photo_scorer::{Geometry, PhotoScorer, PhotoScores};
use crate::run_model::{self, LoadedRun};
use crate::watch::{self, WatchOptions};

/// Format tag of the JSON document.
pub const SCORES_FORMAT: &str = "ballast-scores/1";
/// The lock holder's stage name for `--out` and `--per-tile` files.
pub const LOCK_STAGE: &str = "scorer-photos";

/// Everything `scorer photos` needs.
#[derive(Clone, Debug)]
pub struct PhotosOptions {
    pub run: PathBuf,
    /// Photo files and folders (batch mode).
    pub inputs: Vec<PathBuf>,
    pub class_map: Option<PathBuf>,
    /// Output file (format from its extension); stdout when absent.
    pub out: Option<PathBuf>,
    /// Overrides the format the extension implies.
    pub format: Option<Format>,
    /// Per-window results (`.csv` or `.jsonl`), batch mode only.
    pub per_tile: Option<PathBuf>,
    pub tile_size: Option<u32>,
    pub stride: Option<u32>,
    pub max_pixels: u64,
    /// Batch mode: more bad photos than this fail the command (nothing is written).
    pub max_bad: u64,
    /// Samples per model call.
    pub batch: usize,
    pub device: Device,
    pub quiet: bool,
    pub watch: Option<WatchOptions>,
}

/// How a batch or watch run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotosReport {
    pub scored: usize,
    pub bad: usize,
}

/// The run, how photos are cut, and how rows are written: shared by batch and watch mode.
pub struct Session {
    pub run: TrainedRun,
    pub layout: Layout,
    pub geometry: Geometry,
    pub format: Format,
    pub model_digest: String,
}

/// Which run produced a JSON document.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    /// The run folder as given on the command line.
    pub dir: String,
    pub identity: String,
    /// BLAKE3 of model.safetensors.
    pub model_digest: String,
    /// The epoch the weights come from.
    pub epoch: usize,
}

#[derive(Serialize)]
struct ScoresDocument<'a> {
    format: &'static str,
    run: RunInfo,
    classes: &'a [String],
    tile_size: u32,
    stride: u32,
    sample_size: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    class_map: Option<&'a ClassMap>,
    photos: Vec<JsonRow<'a>>,
    errors: Vec<JsonRow<'a>>,
}

/// The output format: `--format`, else the extension of `--out`, else CSV.
pub fn resolve_format(out: Option<&Path>, flag: Option<Format>) -> Result<Format> {
    if let Some(f) = flag {
        return Ok(f);
    }
    match out {
        None => Ok(Format::Csv),
        Some(p) => Format::from_path(p).ok_or_else(|| {
            ScoreError::usage(format!(
                "--out {}: cannot tell the format from the extension; use .csv, .json or \
                 .jsonl, or give --format",
                p.display()
            ))
        }),
    }
}

impl Session {
    /// Loads the run, checks it can score photos, resolves the geometry, the class map and the
    /// output format.
    pub fn open(o: &PhotosOptions) -> Result<Session> {
        let format = resolve_format(o.out.as_deref(), o.format)?;
        let LoadedRun { run, model_digest } = run_model::load(&o.run, &o.device)?;
        compat::check_run(&run)?;
        compat::check_photo_preprocessing(&run.config)?;
        let tile = compat::tile_size(&run.config, o.tile_size)?;
        let stride = o.stride.unwrap_or(tile);
        if stride == 0 {
            return Err(ScoreError::usage("--stride must be at least 1"));
        }
        let map = match &o.class_map {
            Some(p) => Some(ClassMap::load(p, run.classes())?),
            None => None,
        };
        let geometry = Geometry {
            tile,
            stride,
            sample: run.config.data.size as u32,
        };
        info!(
            "run {} (epoch {}, classes {}): {tile} px windows every {stride} px → {s}x{s} samples",
            o.run.display(),
            run.meta.epoch,
            run.classes().join(", "),
            s = geometry.sample
        );
        Ok(Session {
            layout: Layout {
                classes: run.classes().to_vec(),
                map,
            },
            run,
            geometry,
            format,
            model_digest,
        })
    }

    pub fn scorer(&self, o: &PhotosOptions) -> Result<PhotoScorer<'_>> {
        PhotoScorer::new(&self.run, self.geometry, o.max_pixels, o.batch)
    }

    /// What this command writes: the model, geometry, limits, class map, format and inputs.
    /// Two commands with equal generations would write the same rows.
    pub fn generation(&self, o: &PhotosOptions) -> String {
        let mut h = KeyHasher::new(LOCK_STAGE);
        h.str(&self.model_digest)
            .u64(self.geometry.tile.into())
            .u64(self.geometry.stride.into())
            .u64(self.geometry.sample.into())
            .u64(o.max_pixels)
            .u64(o.max_bad)
            .str(&format!("{:?}", self.format))
            .str(&serde_json::to_string(&self.layout.map).unwrap_or_default());
        match &o.watch {
            Some(w) => h.str("watch").str(&w.dir.display().to_string()),
            None => h.str("batch"),
        };
        for i in &o.inputs {
            h.str(&i.display().to_string());
        }
        h.finish_hex()
    }

    /// Locks every output file (`--out`, `--per-tile`) before anything is read back or
    /// written, so a second writer is refused while this one runs (exit 1, naming the holder).
    pub fn lock_outputs(&self, o: &PhotosOptions) -> Result<Vec<OutputLock>> {
        if let (Some(a), Some(b)) = (&o.out, &o.per_tile)
            && a == b
        {
            return Err(ScoreError::usage(format!(
                "--out and --per-tile are the same file {}",
                a.display()
            )));
        }
        let generation = self.generation(o);
        let req = LockRequest {
            stage: LOCK_STAGE,
            generation: &generation,
            job: JobShard::WHOLE,
        };
        let mut locks = Vec::new();
        for file in [&o.out, &o.per_tile].into_iter().flatten() {
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| ScoreError::io(parent, e))?;
            }
            locks.push(lock::acquire_for_file(file, &req)?);
        }
        Ok(locks)
    }

    pub fn run_info(&self, dir: &Path) -> RunInfo {
        RunInfo {
            dir: dir.display().to_string(),
            identity: self.run.config.identity.clone(),
            model_digest: self.model_digest.clone(),
            epoch: self.run.meta.epoch,
        }
    }
}

/// Runs `scorer photos` (batch or watch mode).
pub fn photos(o: &PhotosOptions) -> Result<PhotosReport> {
    let session = Session::open(o)?;
    match &o.watch {
        Some(w) => {
            if o.per_tile.is_some() {
                return Err(ScoreError::usage(
                    "--per-tile is not available with --watch",
                ));
            }
            if !o.inputs.is_empty() {
                return Err(ScoreError::usage(
                    "--watch DIR scores the photos that appear in DIR: give no other photos",
                ));
            }
            // Before the lock is visible to anyone: a SIGTERM from then on stops the loop
            // cleanly instead of killing the process.
            watch::install_signal_handlers();
            let _locks = session.lock_outputs(o)?;
            watch::watch(&session, o, w)
        }
        None => batch(&session, o),
    }
}

/// Where batch rows go: streamed to stdout (CSV, JSON Lines) or kept for one atomic write.
enum Sink {
    Stdout,
    Keep(Vec<PhotoRow>),
}

fn batch(session: &Session, o: &PhotosOptions) -> Result<PhotosReport> {
    if o.inputs.is_empty() {
        return Err(ScoreError::usage(
            "no photos given: name photo files or folders (or use --watch DIR)",
        ));
    }
    let per_tile_format = match &o.per_tile {
        Some(p) => Some(match Format::from_path(p) {
            Some(f @ (Format::Csv | Format::Jsonl)) => f,
            _ => {
                return Err(ScoreError::usage(format!(
                    "--per-tile {}: use a .csv or .jsonl file",
                    p.display()
                )));
            }
        }),
        None => None,
    };
    let items = inputs::expand(&o.inputs);
    if items.is_empty() {
        return Err(ScoreError::Photos(format!(
            "no photos (.jpg, .jpeg, .png, .tif, .tiff) in {}",
            o.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let scorer = session.scorer(o)?;
    let _locks = session.lock_outputs(o)?;
    let layout = &session.layout;
    let format = session.format;
    let mut sink = match (&o.out, format) {
        (None, Format::Csv | Format::Jsonl) => Sink::Stdout,
        _ => Sink::Keep(Vec::with_capacity(items.len())),
    };
    if matches!(sink, Sink::Stdout) && format == Format::Csv {
        ballast_cli::println(&layout.csv_header()).map_err(|e| ScoreError::io("stdout", e))?;
    }
    let mut tile_lines = Vec::new();
    if per_tile_format == Some(Format::Csv) {
        tile_lines.push(per_tile_header(layout));
    }
    let bar = ballast_cli::progress(items.len() as u64, "photos", o.quiet);
    // A few photos in flight at once keeps both decoding and the model busy; memory stays at
    // a few decoded photos.
    let in_flight = 2 * rayon::current_num_threads().max(1);
    let (mut scored, mut bad) = (0usize, 0usize);
    for chunk in items.chunks(in_flight) {
        let results: Vec<Result<std::result::Result<PhotoScores, Bad>>> = chunk
            .par_iter()
            .map(|item| match item {
                Ok(input) => scorer.score_file(&input.path),
                Err(e) => Ok(Err(Bad {
                    reason: e.reason.clone(),
                    digest: None,
                })),
            })
            .collect();
        let mut lines = String::new();
        for (item, result) in chunk.iter().zip(results) {
            let name = match item {
                Ok(i) => i.name.clone(),
                Err(e) => e.name.clone(),
            };
            let outcome = match result? {
                Ok(ps) => {
                    scored += 1;
                    if let Some(f) = per_tile_format {
                        per_tile_rows(
                            layout,
                            &name,
                            &ps,
                            session.geometry.tile,
                            f,
                            &mut tile_lines,
                        );
                    }
                    Ok(ps.scored)
                }
                Err(b) => {
                    bad += 1;
                    bar.suspend(|| warn!("skipped {name}: {}", b.reason));
                    Err(b)
                }
            };
            let row = PhotoRow {
                photo: name,
                outcome,
            };
            match &mut sink {
                Sink::Stdout => {
                    lines.push_str(&layout.line(format, &row));
                    lines.push('\n');
                }
                Sink::Keep(rows) => rows.push(row),
            }
            bar.inc(1);
        }
        if !lines.is_empty() {
            ballast_cli::print(&lines).map_err(|e| ScoreError::io("stdout", e))?;
        }
    }
    bar.finish_and_clear();
    let total = scored + bad;
    if scored == 0 {
        return Err(ScoreError::Photos(format!(
            "none of the {total} photo(s) could be scored{}",
            nothing_written(o)
        )));
    }
    if bad as u64 > o.max_bad {
        return Err(ScoreError::Photos(format!(
            "{bad} of {total} photos could not be scored, more than --max-bad {}{}",
            o.max_bad,
            nothing_written(o)
        )));
    }
    if let Sink::Keep(rows) = sink {
        let bytes = render(session, o, &rows)?;
        match &o.out {
            Some(p) => atomic::write_bytes(p, &bytes, Durability::Fsync)?,
            // Rendered from Strings, so UTF-8.
            None => ballast_cli::print(&String::from_utf8_lossy(&bytes))
                .map_err(|e| ScoreError::io("stdout", e))?,
        }
    }
    if let (Some(p), Some(_)) = (&o.per_tile, per_tile_format) {
        let mut text = tile_lines.join("\n");
        text.push('\n');
        atomic::write_bytes(p, text.as_bytes(), Durability::Fsync)?;
    }
    info!(
        "scored {scored} photo(s){}{}",
        if bad > 0 {
            format!(", {bad} skipped (listed with their reasons in the output)")
        } else {
            String::new()
        },
        match &o.out {
            Some(p) => format!("; wrote {}", p.display()),
            None => String::new(),
        }
    );
    Ok(PhotosReport { scored, bad })
}

fn nothing_written(o: &PhotosOptions) -> String {
    match &o.out {
        Some(p) => format!("; {} was not written", p.display()),
        None => String::new(),
    }
}

/// The whole output for `rows` in the session's format.
pub fn render(session: &Session, o: &PhotosOptions, rows: &[PhotoRow]) -> Result<Vec<u8>> {
    let layout = &session.layout;
    match session.format {
        Format::Csv | Format::Jsonl => {
            let mut text = String::new();
            if session.format == Format::Csv {
                text.push_str(&layout.csv_header());
                text.push('\n');
            }
            for r in rows {
                text.push_str(&layout.line(session.format, r));
                text.push('\n');
            }
            Ok(text.into_bytes())
        }
        Format::Json => {
            let doc = ScoresDocument {
                format: SCORES_FORMAT,
                run: session.run_info(&o.run),
                classes: &layout.classes,
                tile_size: session.geometry.tile,
                stride: session.geometry.stride,
                sample_size: session.geometry.sample,
                class_map: layout.map.as_ref(),
                photos: rows
                    .iter()
                    .filter(|r| r.outcome.is_ok())
                    .map(|r| layout.json(r))
                    .collect(),
                errors: rows
                    .iter()
                    .filter(|r| r.outcome.is_err())
                    .map(|r| layout.json(r))
                    .collect(),
            };
            let mut bytes = serde_json::to_vec_pretty(&doc)
                .map_err(|e| ScoreError::Photos(format!("cannot serialise the scores: {e}")))?;
            bytes.push(b'\n');
            Ok(bytes)
        }
    }
}

fn per_tile_header(layout: &Layout) -> String {
    let mut h: Vec<String> = ["photo", "x", "y", "size", "predicted"]
        .map(String::from)
        .to_vec();
    h.extend(layout.classes.iter().map(|c| format!("p_{c}")));
    h.extend(layout.gradation_columns());
    crate::csv_text::join(&h)
}

#[derive(Serialize)]
struct TileJson<'a> {
    photo: &'a str,
    x: u32,
    y: u32,
    size: u32,
    predicted: &'a str,
    probabilities: ClassValues<'a, f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gradation: Option<crate::output::JsonGradation>,
}

/// Per-window lines. Probabilities are written in full f32 precision (shortest round-trip
/// form), so they can be compared exactly.
fn per_tile_rows(
    layout: &Layout,
    name: &str,
    ps: &PhotoScores,
    tile: u32,
    f: Format,
    out: &mut Vec<String>,
) {
    for (i, &(x, y)) in ps.windows.iter().enumerate() {
        let probs = ps.tiles.probs_of(i);
        let predicted = &layout.classes[ps.tiles.preds[i] as usize];
        let p64: Vec<f64> = probs.iter().map(|&p| p as f64).collect();
        if f == Format::Csv {
            let mut fields = vec![
                name.to_string(),
                x.to_string(),
                y.to_string(),
                tile.to_string(),
                predicted.clone(),
            ];
            fields.extend(probs.iter().map(|p| p.to_string()));
            fields.extend(layout.gradation_cells(&p64));
            out.push(crate::csv_text::join(&fields));
        } else {
            let row = TileJson {
                photo: name,
                x,
                y,
                size: tile,
                predicted,
                probabilities: ClassValues {
                    classes: &layout.classes,
                    values: probs,
                },
                gradation: layout.gradation_json(&p64),
            };
            out.push(serde_json::to_string(&row).unwrap_or_default());
        }
    }
}
