//! `scorer eval`: the run's best model on the cache's val split.
//!
//! Writes to `--out` (default `RUN/eval`), each file atomically:
//! - `report.json`: accuracy, loss, per-class precision/recall/F1/support, macro and weighted
//!   averages, the confusion matrix with class names, per-photo accuracy (tile probabilities
//!   averaged per photo) with every photo's row, every misclassified tile and photo with its
//!   provenance, and what was evaluated (run name and identity, model digest, cache index
//!   digest). Deterministic: no timings, no thread counts, and no file system paths, so the
//!   same run and cache give the same bytes wherever they lie and however they are named on
//!   the command line.
//! - `confusion.svg` (tiles) and `confusion-photos.svg` (photos): counts in the cells, colour
//!   by row-normalised value.
//! - `predictions.csv`: one row per val sample with its provenance and class probabilities.
//!
//! The output folder is locked for the whole command ([`ballast_format::lock`], stage
//! `scorer-eval`): a second evaluation into it is refused at once, naming the holder.
//!
//! A cache whose classes, sample size or preprocessing differ from the run's data is refused
//! (a usage error);
//! a different cache with the same shape (a rebuilt one, with new photos) is evaluated with a
//! warning and `same_cache_as_training: false`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ballast_format::atomic::{self, Durability};
use ballast_format::digest::KeyHasher;
use ballast_format::lock::{self, LockRequest, OutputLock};
use ballast_format::{JobShard, Split};
use ballast_model::classifier::TrainedRun;
use ballast_model::data::{CacheInfo, Transfers};
use candle_core::Device;
use serde::Serialize;
use tracing::{info, warn};

use crate::aggregate::{TileScores, verdict};
use crate::compat;
use crate::confusion_svg;
use crate::csv_text;
use crate::error::{Result, ScoreError};
use crate::inference;
use crate::metrics::{Confusion, Metrics};
use crate::novelty;
use crate::run_model::{self, LoadedRun};
use crate::trust::{self, FitInputs, Trust};

pub const EVAL_FORMAT: &str = "ballast-eval/2";
/// The lock holder's stage name.
pub const LOCK_STAGE: &str = "scorer-eval";
pub const EVAL_DIR: &str = "eval";
pub const REPORT_FILE: &str = "report.json";
pub const CONFUSION_FILE: &str = "confusion.svg";
pub const PHOTO_CONFUSION_FILE: &str = "confusion-photos.svg";
pub const PREDICTIONS_FILE: &str = "predictions.csv";
const ZERO_DIVISION: &str = "a precision, recall or F1 whose denominator is 0 is reported as 0 \
     (scikit-learn's default zero_division), with a warning; macro averages are over the classes \
     that occur in the truth or the predictions (scikit-learn's default labels)";

#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub run: PathBuf,
    pub cache: PathBuf,
    /// Output folder; `RUN/eval` when absent.
    pub out: Option<PathBuf>,
    /// Samples per model call; the run's `eval_batch` when absent (the trainer's batches, so
    /// the logits are bit for bit the ones it logged).
    pub batch: Option<usize>,
    pub device: Device,
    /// Evaluate even when report.json already describes this model on this cache.
    pub force: bool,
    pub quiet: bool,
}

/// How `scorer eval` ended, with the output folder's lock: hold it while reporting, so that
/// nobody replaces the files being reported on.
#[derive(Debug)]
pub struct Evaluation {
    pub outcome: EvalOutcome,
    pub lock: OutputLock,
}

/// How `scorer eval` ended.
#[derive(Clone, Debug)]
pub enum EvalOutcome {
    /// The folder already holds this evaluation; `summary` is read from report.json.
    UpToDate { out: PathBuf, summary: String },
    Written {
        out: PathBuf,
        report: Box<Report>,
        summary: String,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct RunSection {
    /// The run folder's name (its last path component), as the trainer's `runs` table shows it.
    pub name: String,
    pub identity: String,
    /// BLAKE3 of model.safetensors: of the bytes the evaluated weights were decoded from.
    pub model_digest: String,
    /// The epoch the weights come from (the best by val loss), and what the trainer logged.
    pub checkpoint_epoch: usize,
    pub logged_val_acc: f64,
    pub logged_val_loss: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CacheSection {
    pub index_digest: String,
    /// The index digest the run was trained on.
    pub training_index_digest: String,
    pub same_cache_as_training: bool,
    pub split: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Counts {
    pub samples: u64,
    pub correct: u64,
    pub misclassified: u64,
    pub photos: u64,
    pub photos_correct: u64,
    pub photos_misclassified: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConfusionSection {
    pub rows: &'static str,
    pub columns: &'static str,
    pub classes: Vec<String>,
    pub matrix: Vec<Vec<u64>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhotoEntry {
    pub photo: String,
    pub class: String,
    pub predicted: String,
    pub correct: bool,
    pub n_tiles: usize,
    /// Share of the photo's tiles whose own prediction is `predicted`.
    pub agreement: f64,
    /// Mean tile probability per class, in class order.
    pub probabilities: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PerPhoto {
    pub accuracy: f64,
    pub photos: u64,
    pub correct: u64,
    pub metrics: Metrics,
    pub confusion: ConfusionSection,
    /// Every photo, sorted by path.
    pub rows: Vec<PhotoEntry>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TileMistake {
    pub tile: String,
    pub photo: String,
    pub shard: String,
    pub position: usize,
    pub copy: u32,
    pub class: String,
    pub predicted: String,
    pub p_class: f32,
    pub p_predicted: f32,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhotoMistake {
    pub photo: String,
    pub class: String,
    pub predicted: String,
    pub n_tiles: usize,
    pub p_class: f64,
    pub p_predicted: f64,
    pub agreement: f64,
}

/// report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub run: RunSection,
    pub cache: CacheSection,
    pub eval_batch: usize,
    pub classes: Vec<String>,
    pub counts: Counts,
    pub accuracy: f64,
    /// Whether `accuracy` equals the trainer's logged val accuracy for the checkpoint's epoch
    /// (only when the cache is the one the run was trained on).
    pub matches_logged_accuracy: Option<bool>,
    /// Mean cross-entropy of the logits (f64 on the host).
    pub loss: f64,
    pub zero_division: &'static str,
    pub metrics: Metrics,
    pub confusion: ConfusionSection,
    pub per_photo: PerPhoto,
    pub misclassified_tiles: Vec<TileMistake>,
    pub misclassified_photos: Vec<PhotoMistake>,
    /// Temperature scaling fitted on these val tiles (stored in RUN/calibration.json).
    pub calibration: crate::calibration::Temperature,
    pub novelty: NoveltySection,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupSection {
    pub name: String,
    pub dim: usize,
    pub threshold: f64,
}

/// The novelty check fitted for `scorer photos`, and what it says about the val photos.
#[derive(Clone, Debug, Serialize)]
pub struct NoveltySection {
    pub fitted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub method: &'static str,
    /// Each feature group with its threshold: the distance at `quantile` of the val windows.
    pub groups: Vec<GroupSection>,
    pub train_samples: u64,
    pub val_samples: u64,
    pub quantile: f64,
    /// A photo is flagged when the median of its windows' ratios exceeds 1.
    pub rule: &'static str,
    pub val_photos: u64,
    pub val_photos_flagged: u64,
    /// The highest val photo score (median window ratio).
    pub val_photo_score_max: f64,
}

/// The digest of what an evaluation depends on: the model bytes, the cache index and the
/// batch size (and the report format). Equal generations write equal files.
pub fn generation(model_digest: &str, index_digest: &str, batch: usize) -> String {
    KeyHasher::new(LOCK_STAGE)
        .str(EVAL_FORMAT)
        .str(model_digest)
        .str(index_digest)
        .u64(batch as u64)
        .finish_hex()
}

/// Runs `scorer eval`.
pub fn eval(o: &EvalOptions) -> Result<Evaluation> {
    let LoadedRun { run, model_digest } = run_model::load(&o.run, &o.device)?;
    compat::check_run(&run)?;
    let cache = CacheInfo::open(&o.cache)?;
    compat::check_cache(&run, &cache.index, &o.cache.display().to_string())?;
    let out = o.out.clone().unwrap_or_else(|| o.run.join(EVAL_DIR));
    let batch = o.batch.unwrap_or(run.config.spec.eval_batch);
    if batch == 0 {
        return Err(ScoreError::usage("--batch must be at least 1"));
    }
    let same_cache = cache.index_digest == run.config.data.index_digest;
    // Before the folder is read (up to date?) or written.
    let lock = lock::acquire(
        &out,
        &LockRequest {
            stage: LOCK_STAGE,
            generation: &generation(&model_digest, &cache.index_digest, batch),
            job: JobShard::WHOLE,
        },
    )?;

    if !o.force
        && let Some(summary) = up_to_date(
            &o.run,
            &out,
            &model_digest,
            &run.config.identity,
            &cache.index_digest,
            batch,
        )
    {
        return Ok(Evaluation {
            outcome: EvalOutcome::UpToDate { out, summary },
            lock,
        });
    }
    let mut warnings = Vec::new();
    if !same_cache {
        let w = format!(
            "the cache is not the one the run was trained on (its index.json digest {} differs \
             from the run's {}); it has the same classes, size and preprocessing, so it is \
             evaluated, but the accuracy is not the trainer's",
            short(&cache.index_digest),
            short(&run.config.data.index_digest)
        );
        warn!("{}: {w}", o.cache.display());
        warnings.push(w);
    }

    let val = cache.load_split(Split::Val, &o.device, &Transfers::default())?;
    info!(
        "evaluating {} (epoch {}) on {} val samples of {}",
        o.run.display(),
        run.meta.epoch,
        val.len(),
        o.cache.display()
    );
    let bar = ballast_cli::progress(val.len() as u64, "val", o.quiet);
    let how = inference::Scoring {
        temperature: 1.0,
        features: true,
    };
    let scores = inference::score(&run, val.images(), batch, how, |n| bar.inc(n as u64))?;
    bar.finish_and_clear();

    let classes = run.classes().to_vec();
    let labels: Vec<usize> = val.labels_host.iter().map(|&l| l as usize).collect();
    if let Some(&bad) = labels.iter().find(|&&l| l >= classes.len()) {
        return Err(ScoreError::file(
            o.cache.join(ballast_format::cache_files::INDEX_FILE),
            format!(
                "a val label is {bad}, but there are only {} classes",
                classes.len()
            ),
        ));
    }
    let trust = trust::fit(FitInputs {
        run: &run,
        model_digest: &model_digest,
        cache: &cache,
        device: &o.device,
        batch,
        val: &scores,
        val_labels: &labels,
        quiet: o.quiet,
    })?;
    let report = build_report(ReportInputs {
        o,
        run: &run,
        cache: &cache,
        model_digest,
        batch,
        classes,
        labels: &labels,
        sources: &val.sources,
        scores: &scores,
        trust: &trust,
        warnings,
    });
    if same_cache && report.matches_logged_accuracy == Some(false) {
        warn!(
            "accuracy {:.6} differs from the {:.6} the trainer logged for epoch {} (a different \
             thread count or device rounds differently)",
            report.accuracy, report.run.logged_val_acc, report.run.checkpoint_epoch
        );
    }
    // Before report.json, whose presence marks the evaluation up to date. A run folder that
    // cannot be written (shared read-only) still gets its report, with a warning.
    if let Err(e) = trust.write(&o.run) {
        warn!(
            "cannot store the calibration in the run folder ({e}): `scorer photos` with this run \
             will report uncalibrated probabilities and no flag"
        );
    }
    write_outputs(&out, &report, &labels, &val.sources, &scores)?;
    let summary = summary_text(&report, &o.run, &o.cache);
    Ok(Evaluation {
        outcome: EvalOutcome::Written {
            out,
            report: Box::new(report),
            summary,
        },
        lock,
    })
}

fn short(d: &str) -> &str {
    d.get(..12).unwrap_or(d)
}

/// The summary of an existing report when it describes this model, cache and batch size and
/// every output file is there.
fn up_to_date(
    run: &Path,
    out: &Path,
    model_digest: &str,
    identity: &str,
    index_digest: &str,
    batch: usize,
) -> Option<String> {
    for f in [CONFUSION_FILE, PHOTO_CONFUSION_FILE, PREDICTIONS_FILE] {
        if !out.join(f).is_file() {
            return None;
        }
    }
    let text = std::fs::read_to_string(out.join(REPORT_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_string);
    let same = s("/format").as_deref() == Some(EVAL_FORMAT)
        && s("/run/model_digest").as_deref() == Some(model_digest)
        && s("/run/identity").as_deref() == Some(identity)
        && s("/cache/index_digest").as_deref() == Some(index_digest)
        && v.pointer("/eval_batch").and_then(|x| x.as_u64()) == Some(batch as u64);
    let classes = v
        .pointer("/classes")
        .and_then(|c| c.as_array())
        .map_or(0, Vec::len);
    if !same || !trust_current(run, classes, model_digest, index_digest) {
        return None;
    }
    let f = |p: &str| v.pointer(p).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
    Some(format!(
        "accuracy {:.4}, macro F1 {:.4}, per-photo accuracy {:.4} (from {})",
        f("/accuracy"),
        f("/metrics/macro_avg/f1"),
        f("/per_photo/accuracy"),
        out.join(REPORT_FILE).display()
    ))
}

/// Whether RUN/calibration.json is whole and was fitted for this model on this cache.
fn trust_current(run: &Path, classes: usize, model_digest: &str, index_digest: &str) -> bool {
    matches!(
        Trust::read(run, classes),
        Ok(Some(t)) if t.model_digest == model_digest && t.cache_index_digest == index_digest
    )
}

struct ReportInputs<'a> {
    o: &'a EvalOptions,
    run: &'a TrainedRun,
    cache: &'a CacheInfo,
    model_digest: String,
    batch: usize,
    classes: Vec<String>,
    labels: &'a [usize],
    sources: &'a [ballast_model::data::SampleSource],
    scores: &'a TileScores,
    trust: &'a Trust,
    warnings: Vec<String>,
}

fn build_report(r: ReportInputs<'_>) -> Report {
    let classes = r.classes;
    let c = classes.len();
    let n = r.labels.len();
    let mut warnings = r.warnings;
    let conf = Confusion::from_pairs(c, (0..n).map(|i| (r.labels[i], r.scores.preds[i] as usize)));
    let metrics = Metrics::compute(&conf, &classes);
    let loss = if n == 0 {
        0.0
    } else {
        (0..n)
            .map(|i| r.scores.loss_of(i, r.labels[i]))
            .sum::<f64>()
            / n as f64
    };

    // Samples by photo, photos sorted by path, samples in split order.
    let mut by_photo: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in r.sources.iter().enumerate() {
        by_photo.entry(s.photo.as_str()).or_default().push(i);
    }
    let mut photo_conf = Confusion::new(c);
    let mut rows = Vec::with_capacity(by_photo.len());
    let mut photo_mistakes = Vec::new();
    for (photo, idx) in &by_photo {
        let truth = r.labels[idx[0]];
        if idx.iter().any(|&i| r.labels[i] != truth) {
            warnings.push(format!(
                "photo {photo} has samples of several classes; its class is taken from its first \
                 sample ({})",
                classes[truth]
            ));
        }
        let v = verdict(r.scores, idx);
        photo_conf.add(truth, v.predicted);
        let correct = v.predicted == truth;
        if !correct {
            photo_mistakes.push(PhotoMistake {
                photo: photo.to_string(),
                class: classes[truth].clone(),
                predicted: classes[v.predicted].clone(),
                n_tiles: v.n_tiles,
                p_class: v.mean[truth],
                p_predicted: v.mean[v.predicted],
                agreement: v.agreement,
            });
        }
        rows.push(PhotoEntry {
            photo: photo.to_string(),
            class: classes[truth].clone(),
            predicted: classes[v.predicted].clone(),
            correct,
            n_tiles: v.n_tiles,
            agreement: v.agreement,
            probabilities: v.mean,
        });
    }
    let photo_metrics = Metrics::compute(&photo_conf, &classes);
    let novelty = novelty_section(r.trust, r.scores, &by_photo);

    let tile_mistakes: Vec<TileMistake> = (0..n)
        .filter(|&i| r.scores.preds[i] as usize != r.labels[i])
        .map(|i| {
            let s = &r.sources[i];
            let p = r.scores.probs_of(i);
            let pred = r.scores.preds[i] as usize;
            TileMistake {
                tile: s.tile.clone(),
                photo: s.photo.clone(),
                shard: s.shard.clone(),
                position: s.position,
                copy: s.copy,
                class: classes[r.labels[i]].clone(),
                predicted: classes[pred].clone(),
                p_class: p[r.labels[i]],
                p_predicted: p[pred],
            }
        })
        .collect();

    let same_cache = r.cache.index_digest == r.run.config.data.index_digest;
    let accuracy = conf.accuracy();
    let meta = &r.run.meta;
    let confusion = |m: &Confusion| ConfusionSection {
        rows: "true class",
        columns: "predicted class",
        classes: classes.clone(),
        matrix: m.counts.clone(),
    };
    Report {
        format: EVAL_FORMAT,
        run: RunSection {
            name: run_name(&r.o.run),
            identity: r.run.config.identity.clone(),
            model_digest: r.model_digest,
            checkpoint_epoch: meta.epoch,
            logged_val_acc: meta.val_acc,
            logged_val_loss: meta.val_loss,
        },
        cache: CacheSection {
            index_digest: r.cache.index_digest.clone(),
            training_index_digest: r.run.config.data.index_digest.clone(),
            same_cache_as_training: same_cache,
            split: "val",
        },
        eval_batch: r.batch,
        counts: Counts {
            samples: n as u64,
            correct: conf.correct(),
            misclassified: n as u64 - conf.correct(),
            photos: photo_conf.total(),
            photos_correct: photo_conf.correct(),
            photos_misclassified: photo_conf.total() - photo_conf.correct(),
        },
        accuracy,
        matches_logged_accuracy: same_cache.then_some(accuracy == meta.val_acc),
        loss,
        zero_division: ZERO_DIVISION,
        metrics,
        confusion: confusion(&conf),
        per_photo: PerPhoto {
            accuracy: photo_conf.accuracy(),
            photos: photo_conf.total(),
            correct: photo_conf.correct(),
            metrics: photo_metrics,
            confusion: confusion(&photo_conf),
            rows,
        },
        misclassified_tiles: tile_mistakes,
        misclassified_photos: photo_mistakes,
        calibration: r.trust.calibration.clone(),
        novelty,
        warnings,
        classes,
    }
}

/// The novelty section: the fitted statistics' figures and each val photo's verdict.
fn novelty_section(
    trust: &Trust,
    scores: &TileScores,
    by_photo: &BTreeMap<&str, Vec<usize>>,
) -> NoveltySection {
    let mut s = NoveltySection {
        fitted: false,
        note: trust.novelty_note.clone(),
        method: novelty::METHOD,
        groups: Vec::new(),
        train_samples: 0,
        val_samples: 0,
        quantile: novelty::QUANTILE,
        rule: "unlike-training when the median of a photo's window scores exceeds 1",
        val_photos: by_photo.len() as u64,
        val_photos_flagged: 0,
        val_photo_score_max: 0.0,
    };
    let Some(m) = &trust.novelty else {
        return s;
    };
    let ratios = m.ratios(&scores.features);
    for idx in by_photo.values() {
        let r: Vec<f64> = idx.iter().filter_map(|&i| ratios.get(i).copied()).collect();
        if let Some(v) = novelty::verdict(&r) {
            s.val_photos_flagged += u64::from(v.unlike_training);
            s.val_photo_score_max = s.val_photo_score_max.max(v.score);
        }
    }
    s.fitted = true;
    s.groups = m
        .groups
        .iter()
        .map(|g| GroupSection {
            name: g.name.clone(),
            dim: g.dim,
            threshold: g.threshold,
        })
        .collect();
    s.train_samples = m.train_samples;
    s.val_samples = m.val_samples;
    s
}

/// predictions.csv: `tile,photo,copy,shard,position,true,predicted,p_<class>...`.
pub fn predictions_csv(
    classes: &[String],
    labels: &[usize],
    sources: &[ballast_model::data::SampleSource],
    scores: &TileScores,
) -> String {
    let mut header: Vec<String> = [
        "tile",
        "photo",
        "copy",
        "shard",
        "position",
        "true",
        "predicted",
    ]
    .map(String::from)
    .to_vec();
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    let mut text = csv_text::join(&header);
    text.push('\n');
    for (i, s) in sources.iter().enumerate() {
        let mut f = vec![
            s.tile.clone(),
            s.photo.clone(),
            s.copy.to_string(),
            s.shard.clone(),
            s.position.to_string(),
            classes[labels[i]].clone(),
            classes[scores.preds[i] as usize].clone(),
        ];
        f.extend(scores.probs_of(i).iter().map(|p| format!("{p:.6}")));
        text.push_str(&csv_text::join(&f));
        text.push('\n');
    }
    text
}

fn write_outputs(
    out: &Path,
    report: &Report,
    labels: &[usize],
    sources: &[ballast_model::data::SampleSource],
    scores: &TileScores,
) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| ScoreError::io(out, e))?;
    let classes = &report.classes;
    atomic::write_bytes(
        &out.join(PREDICTIONS_FILE),
        predictions_csv(classes, labels, sources, scores).as_bytes(),
        Durability::Fsync,
    )?;
    let svg = confusion_svg::render(
        classes,
        &report.confusion.matrix,
        &format!(
            "val tiles: accuracy {:.4} ({}/{})",
            report.accuracy, report.counts.correct, report.counts.samples
        ),
    );
    atomic::write_bytes(&out.join(CONFUSION_FILE), svg.as_bytes(), Durability::Fsync)?;
    let svg = confusion_svg::render(
        classes,
        &report.per_photo.confusion.matrix,
        &format!(
            "val photos (mean tile probabilities): accuracy {:.4} ({}/{})",
            report.per_photo.accuracy, report.per_photo.correct, report.per_photo.photos
        ),
    );
    atomic::write_bytes(
        &out.join(PHOTO_CONFUSION_FILE),
        svg.as_bytes(),
        Durability::Fsync,
    )?;
    // The report last: its presence with the same digests is the up-to-date mark.
    atomic::write_json(&out.join(REPORT_FILE), report)?;
    Ok(())
}

/// The run folder's name: its last component once `.` and `..` are resolved lexically
/// (`runs/demo/` and `runs/demo/.` are both `demo`), else the folder as given.
fn run_name(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in abs.components() {
        match c {
            std::path::Component::Normal(n) => parts.push(n),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts
        .last()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The human summary printed on stdout (the folders as given on the command line).
pub fn summary_text(r: &Report, run: &Path, cache: &Path) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "run {} (epoch {}) on {} val: {} tiles from {} photos\n",
        run.display(),
        r.run.checkpoint_epoch,
        cache.display(),
        r.counts.samples,
        r.counts.photos
    ));
    s.push_str(&format!(
        "accuracy {:.4} ({}/{})   macro F1 {:.4}   per-photo accuracy {:.4} ({}/{})   loss {:.4}\n",
        r.accuracy,
        r.counts.correct,
        r.counts.samples,
        r.metrics.macro_avg.f1,
        r.per_photo.accuracy,
        r.per_photo.correct,
        r.per_photo.photos,
        r.loss
    ));
    let width = r
        .classes
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    s.push_str(&format!(
        "{:<width$}  precision  recall      f1  support\n",
        "class"
    ));
    for m in &r.metrics.per_class {
        s.push_str(&format!(
            "{:<width$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}\n",
            m.class, m.precision, m.recall, m.f1, m.support
        ));
    }
    s.push_str(&format!(
        "{:<width$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}\n",
        "macro avg",
        r.metrics.macro_avg.precision,
        r.metrics.macro_avg.recall,
        r.metrics.macro_avg.f1,
        r.counts.samples
    ));
    match r.matches_logged_accuracy {
        Some(true) => s.push_str(&format!(
            "= the trainer's logged val accuracy for epoch {}\n",
            r.run.checkpoint_epoch
        )),
        Some(false) => s.push_str(&format!(
            "the trainer logged {:.4} for epoch {} (see the warning above)\n",
            r.run.logged_val_acc, r.run.checkpoint_epoch
        )),
        None => s.push_str("(a different cache than the run was trained on)\n"),
    }
    let c = &r.calibration;
    s.push_str(&format!(
        "calibration: temperature {:.4}, expected calibration error {:.4} → {:.4} (stored in \
         {}/{})\n",
        c.temperature,
        c.ece_before,
        c.ece_after,
        run.display(),
        crate::trust::TRUST_FILE
    ));
    let n = &r.novelty;
    if n.fitted {
        s.push_str(&format!(
            "novelty check: {} feature groups of {} train samples, thresholds at the {} \
             quantile of val windows; {}/{} val photos flagged (highest score {:.3})\n",
            n.groups.len(),
            n.train_samples,
            n.quantile,
            n.val_photos_flagged,
            n.val_photos,
            n.val_photo_score_max
        ));
    } else {
        s.push_str(&format!(
            "novelty check: not fitted ({})\n",
            n.note.as_deref().unwrap_or("unknown reason")
        ));
    }
    for w in &r.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    for w in &r.metrics.warnings {
        s.push_str(&format!("note: {w}\n"));
    }
    s
}
