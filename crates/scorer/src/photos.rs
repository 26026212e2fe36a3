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
use crate::figures::{self, Figures, MapFiles, Wanted};
use crate::inputs;
use crate::output::{Bad, ClassValues, Format, JsonRow, Layout, PhotoRow, Scored};
use crate::photo_scorer::{Geometry, PhotoScorer, PhotoScores};
use crate::report_page;
use crate::run_model::{self, LoadedRun};
use crate::trust::{self, Trust};
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
    /// Folder for one map PNG (and curve SVG) per photo.
    pub maps: Option<PathBuf>,
    /// One self-contained HTML report, batch mode only.
    pub html: Option<PathBuf>,
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
    /// `scorer eval`'s calibration and novelty check for this model, when there is one.
    pub trust: Option<Trust>,
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
    /// The calibration applied (null: none fitted for this model).
    calibration: Option<TrustInfo>,
    photos: Vec<JsonRow<'a>>,
    errors: Vec<JsonRow<'a>>,
}

/// What the JSON document says about calibration and the novelty check.
#[derive(Serialize)]
struct TrustInfo {
    temperature: f64,
    ece_before: f64,
    ece_after: f64,
    /// Whether a novelty check fills ood_score and flag.
    novelty: bool,
}

impl TrustInfo {
    fn of(t: &Trust) -> TrustInfo {
        TrustInfo {
            temperature: t.calibration.temperature,
            ece_before: t.calibration.ece_before,
            ece_after: t.calibration.ece_after,
            novelty: t.novelty.is_some(),
        }
    }
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
        let trust = load_trust(&o.run, &run, &model_digest)?;
        Ok(Session {
            trust,
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
        let pictures = o.maps.is_some() || o.html.is_some();
        Ok(
            PhotoScorer::new(&self.run, self.geometry, o.max_pixels, o.batch)?
                .with_trust(self.trust.as_ref())
                .with_thumbnails(pictures.then_some(figures::MAP_SIDE)),
        )
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
            .str(&serde_json::to_string(&self.layout.map).unwrap_or_default())
            .str(&serde_json::to_string(&self.trust).unwrap_or_default());
        match &o.watch {
            Some(w) => h.str("watch").str(&w.dir.display().to_string()),
            None => h.str("batch"),
        };
        for extra in [&o.maps, &o.html] {
            h.str(
                &extra
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
        for i in &o.inputs {
            h.str(&i.display().to_string());
        }
        h.finish_hex()
    }

    /// Locks every output (`--out`, `--per-tile`, `--html` files and the `--maps` folder)
    /// before anything is read back or written, so a second writer is refused while this one
    /// runs (exit 1, naming the holder).
    pub fn lock_outputs(&self, o: &PhotosOptions) -> Result<Vec<OutputLock>> {
        let files: Vec<(&str, &PathBuf)> = [
            ("--out", &o.out),
            ("--per-tile", &o.per_tile),
            ("--html", &o.html),
        ]
        .into_iter()
        .filter_map(|(flag, f)| Some((flag, f.as_ref()?)))
        .collect();
        for (i, (fa, a)) in files.iter().enumerate() {
            if let Some((fb, _)) = files[i + 1..].iter().find(|(_, b)| b == a) {
                return Err(ScoreError::usage(format!(
                    "{fa} and {fb} are the same file {}",
                    a.display()
                )));
            }
        }
        let generation = self.generation(o);
        let req = LockRequest {
            stage: LOCK_STAGE,
            generation: &generation,
            job: JobShard::WHOLE,
        };
        let mut locks = Vec::new();
        for (_, file) in files {
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| ScoreError::io(parent, e))?;
            }
            locks.push(lock::acquire_for_file(file, &req)?);
        }
        if let Some(dir) = &o.maps {
            if dir.exists() && !dir.is_dir() {
                return Err(ScoreError::usage(format!(
                    "--maps {}: exists and is not a folder",
                    dir.display()
                )));
            }
            locks.push(lock::acquire(dir, &req)?);
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

/// The run's calibration file when it was fitted for this very model; otherwise `None`, with
/// a warning saying what the output then lacks.
fn load_trust(dir: &Path, run: &TrainedRun, model_digest: &str) -> Result<Option<Trust>> {
    let lacks = "probabilities are the model's own (uncalibrated) and ood_score/flag are empty";
    match Trust::read(dir, run.classes().len())? {
        None => {
            warn!(
                "{} has no {}: {lacks}; run `scorer eval --run {} --cache CACHE` to fit them",
                dir.display(),
                trust::TRUST_FILE,
                dir.display()
            );
            Ok(None)
        }
        Some(t) if t.model_digest != model_digest => {
            warn!(
                "{} was fitted for another model (the run was retrained since): {lacks}; run \
                 `scorer eval` again",
                trust::path(dir).display()
            );
            Ok(None)
        }
        Some(t) => {
            if t.novelty.is_none() {
                warn!(
                    "{}: no novelty check ({}): ood_score/flag are empty",
                    trust::path(dir).display(),
                    t.novelty_note.as_deref().unwrap_or("not fitted")
                );
            }
            Ok(Some(t))
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
            if o.html.is_some() {
                return Err(ScoreError::usage(
                    "--html is not available with --watch (it writes one page for a batch of \
                     photos; --maps works in watch mode)",
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

/// Everything a batch run writes, gathered photo by photo.
struct BatchOutput<'s> {
    session: &'s Session,
    sink: Sink,
    per_tile: Option<(Format, Vec<String>)>,
    maps: Option<MapFiles>,
    /// With --html: every row's pictures, in row order.
    page: Option<Vec<(PhotoRow, Option<Figures>)>>,
    scored: usize,
    bad: usize,
}

impl<'s> BatchOutput<'s> {
    fn new(session: &'s Session, o: &PhotosOptions, per_tile: Option<Format>) -> Result<Self> {
        let format = session.format;
        let sink = match (&o.out, format) {
            (None, Format::Csv | Format::Jsonl) => Sink::Stdout,
            _ => Sink::Keep(Vec::new()),
        };
        if matches!(sink, Sink::Stdout) && format == Format::Csv {
            ballast_cli::println(&session.layout.csv_header())
                .map_err(|e| ScoreError::io("stdout", e))?;
        }
        let per_tile = per_tile.map(|f| {
            let lines = match f {
                Format::Csv => vec![per_tile_header(&session.layout)],
                _ => Vec::new(),
            };
            (f, lines)
        });
        Ok(BatchOutput {
            session,
            sink,
            per_tile,
            maps: o.maps.as_deref().map(MapFiles::new).transpose()?,
            page: o.html.as_ref().map(|_| Vec::new()),
            scored: 0,
            bad: 0,
        })
    }

    /// Takes one photo's result; returns its line when rows are streamed.
    fn add(
        &mut self,
        name: String,
        result: std::result::Result<Scored, Bad>,
        figures: Option<Figures>,
        warn_bad: impl FnOnce(&str),
    ) -> Result<Option<String>> {
        match &result {
            Ok(_) => self.scored += 1,
            Err(b) => {
                self.bad += 1;
                warn_bad(&format!("skipped {name}: {}", b.reason));
            }
        }
        if let (Some(m), Some(f)) = (&mut self.maps, &figures) {
            m.write(&name, f)?;
        }
        let row = PhotoRow {
            photo: name,
            outcome: result,
        };
        let line = match &mut self.sink {
            Sink::Stdout => Some(self.session.layout.line(self.session.format, &row)),
            Sink::Keep(rows) => {
                rows.push(row.clone());
                None
            }
        };
        if let Some(p) = &mut self.page {
            p.push((row, figures));
        }
        Ok(line)
    }

    /// The per-window lines of a scored photo (with --per-tile).
    fn add_tiles(&mut self, name: &str, ps: &PhotoScores) {
        if let Some((f, lines)) = &mut self.per_tile {
            let tile = self.session.geometry.tile;
            per_tile_rows(&self.session.layout, name, ps, tile, *f, lines);
        }
    }

    /// Checks the counts, then writes what was kept: --out, --per-tile, --html.
    fn finish(self, o: &PhotosOptions) -> Result<PhotosReport> {
        let (scored, bad) = (self.scored, self.bad);
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
        if let Sink::Keep(rows) = &self.sink {
            let bytes = render(self.session, o, rows)?;
            match &o.out {
                Some(p) => atomic::write_bytes(p, &bytes, Durability::Fsync)?,
                // Rendered from Strings, so UTF-8.
                None => ballast_cli::print(&String::from_utf8_lossy(&bytes))
                    .map_err(|e| ScoreError::io("stdout", e))?,
            }
        }
        if let (Some(p), Some((_, lines))) = (&o.per_tile, &self.per_tile) {
            let mut text = lines.join("\n");
            text.push('\n');
            atomic::write_bytes(p, text.as_bytes(), Durability::Fsync)?;
        }
        if let (Some(p), Some(rows)) = (&o.html, &self.page) {
            let html = report_page::render(self.session, o, rows);
            atomic::write_bytes(p, html.as_bytes(), Durability::Fsync)?;
        }
        Ok(PhotosReport { scored, bad })
    }
}

/// The format of --per-tile's file: CSV or JSON Lines.
fn per_tile_format(o: &PhotosOptions) -> Result<Option<Format>> {
    let Some(p) = &o.per_tile else {
        return Ok(None);
    };
    match Format::from_path(p) {
        Some(f @ (Format::Csv | Format::Jsonl)) => Ok(Some(f)),
        _ => Err(ScoreError::usage(format!(
            "--per-tile {}: use a .csv or .jsonl file",
            p.display()
        ))),
    }
}

/// The photos named on the command line, folders expanded; an error when there are none.
fn batch_items(o: &PhotosOptions) -> Result<Vec<inputs::Item>> {
    if o.inputs.is_empty() {
        return Err(ScoreError::usage(
            "no photos given: name photo files or folders (or use --watch DIR)",
        ));
    }
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
    Ok(items)
}

/// One photo scored, with its pictures when maps or a page were asked for.
type Outcome = (std::result::Result<PhotoScores, Bad>, Option<Figures>);

/// Scores `chunk` in parallel (and draws the pictures there too).
fn score_chunk(
    session: &Session,
    o: &PhotosOptions,
    scorer: &PhotoScorer<'_>,
    chunk: &[inputs::Item],
) -> Result<Vec<Outcome>> {
    chunk
        .par_iter()
        .map(|item| {
            let result = match item {
                Ok(input) => scorer.score_file(&input.path)?,
                Err(e) => Err(Bad {
                    reason: e.reason.clone(),
                    digest: None,
                }),
            };
            let figures = match (&result, item) {
                (Ok(ps), Ok(input)) => {
                    let wanted = Wanted {
                        png: o.maps.is_some(),
                        jpeg: o.html.is_some(),
                    };
                    let tile = session.geometry.tile;
                    figures::draw(&session.layout, &input.name, ps, tile, wanted)?
                }
                _ => None,
            };
            Ok((result, figures))
        })
        .collect()
}

fn batch(session: &Session, o: &PhotosOptions) -> Result<PhotosReport> {
    let per_tile = per_tile_format(o)?;
    let items = batch_items(o)?;
    let scorer = session.scorer(o)?;
    let _locks = session.lock_outputs(o)?;
    let mut out = BatchOutput::new(session, o, per_tile)?;
    let bar = ballast_cli::progress(items.len() as u64, "photos", o.quiet);
    // A few photos in flight at once keeps both decoding and the model busy; memory stays at
    // a few decoded photos.
    let in_flight = 2 * rayon::current_num_threads().max(1);
    for chunk in items.chunks(in_flight) {
        let results = score_chunk(session, o, &scorer, chunk)?;
        let mut lines = String::new();
        for (item, (result, figures)) in chunk.iter().zip(results) {
            let name = match item {
                Ok(i) => i.name.clone(),
                Err(e) => e.name.clone(),
            };
            if let Ok(ps) = &result {
                out.add_tiles(&name, ps);
            }
            let result = result.map(|ps| ps.scored);
            if let Some(line) = out.add(name, result, figures, |m| bar.suspend(|| warn!("{m}")))? {
                lines.push_str(&line);
                lines.push('\n');
            }
            bar.inc(1);
        }
        if !lines.is_empty() {
            ballast_cli::print(&lines).map_err(|e| ScoreError::io("stdout", e))?;
        }
    }
    bar.finish_and_clear();
    let report = out.finish(o)?;
    info!(
        "scored {} photo(s){}{}",
        report.scored,
        if report.bad > 0 {
            format!(
                ", {} skipped (listed with their reasons in the output)",
                report.bad
            )
        } else {
            String::new()
        },
        match &o.out {
            Some(p) => format!("; wrote {}", p.display()),
            None => String::new(),
        }
    );
    Ok(report)
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
                calibration: session.trust.as_ref().map(TrustInfo::of),
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
    h.push("ood_score".into());
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
    ood_score: Option<f64>,
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
        let ood = ps.novelty.as_ref().and_then(|r| r.get(i).copied());
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
            fields.push(ood.map(|v| format!("{v:.6}")).unwrap_or_default());
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
                ood_score: ood,
            };
            out.push(serde_json::to_string(&row).unwrap_or_default());
        }
    }
}
