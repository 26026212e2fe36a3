//! The training loop and the run folder's life cycle: new run, up to date, resume, force.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use tracing::info;

use crate::args::TrainArgs;
use crate::checkpoint::{self, Checkpoint, EpochScores, ModelMeta, TrainState};
use crate::curves;
use crate::data::{CacheInfo, DeviceCache, DeviceSplit, EpochPlan};
use crate::error::{Result, TrainError};
use crate::model::{Logits, Model, Normalizer, cross_entropy, dropout_masks};
use crate::notes;
use crate::optim::Optimizer;
use crate::run_files::{
    self, CONFIG_FILE, CURVES_FILE, DataRecord, EpochMetrics, LAST_FILE, LOG_FILE, LogEvent,
    METRICS_FILE, MODEL_FILE, NOTES_FILE, RUN_FORMAT, RunConfig, RunDir,
};
use crate::spec::TrainSpec;
use crate::tally::Tally;
use crate::tensor_file::HostTensor;

/// One `trainer --cache ... --run ...` invocation.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    pub args: TrainArgs,
    /// Ids of the flags given on the command line (clap ids: `lr`, `weight_decay`, ...): with
    /// `--resume`, only these may differ from the stored run, and must not.
    pub explicit: BTreeSet<String>,
    pub argv: Vec<String>,
    /// The CPU thread count in effect (recorded; bitwise reproducibility holds per count).
    pub threads: usize,
    pub quiet: bool,
}

/// How an invocation ended (errors aside).
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The run folder already holds this complete run: nothing was done.
    UpToDate { epochs_done: usize },
    /// Training finished (all epochs, or early stopping).
    Finished {
        epochs_done: usize,
        stopped_early: bool,
        best: Option<EpochScores>,
    },
    /// `--stop-after` reached; `--resume` continues.
    Paused { epochs_done: usize },
}

/// Trains (or resumes, or finds up to date) the run described by `req`.
pub fn train(req: &TrainRequest) -> Result<Outcome> {
    let args = &req.args;
    let cache_dir = args
        .cache
        .as_deref()
        .ok_or_else(|| TrainError::config("--cache is required"))?;
    let run_dir = args
        .run
        .as_deref()
        .ok_or_else(|| TrainError::config("--run is required"))?;
    if let Some(0) = args.stop_after {
        return Err(TrainError::config("--stop-after must be at least 1"));
    }
    if let Some(0) = args.patience {
        return Err(TrainError::config(
            "--patience must be at least 1 (leave it out to train every epoch)",
        ));
    }
    let info = CacheInfo::open(cache_dir)?;
    let run = RunDir::new(run_dir);
    let created = !run.dir.exists();
    // One trainer per run folder: nothing below writes there without this lock (a second
    // trainer, even with the same settings, would interleave its epochs with ours).
    let lock = ballast_format::lock::acquire(
        &run.dir,
        &ballast_format::lock::LockRequest {
            stage: "trainer",
            generation: "run",
            job: ballast_format::JobShard::WHOLE,
        },
    )?;
    let result = train_locked(req, cache_dir, info, run.clone());
    if result.is_err() && created {
        // A run refused before it wrote anything leaves no folder behind (only the lock file
        // would be in it).
        drop(lock);
        let only_lock = std::fs::read_dir(&run.dir).is_ok_and(|entries| {
            entries
                .flatten()
                .all(|e| e.file_name() == ballast_format::lock::LOCK_FILE)
        });
        if only_lock {
            let _ = std::fs::remove_file(run.dir.join(ballast_format::lock::LOCK_FILE));
            let _ = std::fs::remove_dir(&run.dir);
        }
    }
    result
}

/// [`train`] once the run folder is locked.
fn train_locked(
    req: &TrainRequest,
    cache_dir: &Path,
    info: CacheInfo,
    run: RunDir,
) -> Result<Outcome> {
    let args = &req.args;
    let plan = plan_run(req, &info, &run)?;
    let (spec, stored, ckpt, replace) = match plan {
        Plan::UpToDate(state) => {
            info!(
                "{}: up to date ({} epochs done, same config and data)",
                run.dir.display(),
                state.epochs_done
            );
            return Ok(Outcome::UpToDate {
                epochs_done: state.epochs_done,
            });
        }
        Plan::Train(p) => (p.spec, p.stored, p.checkpoint, p.replace),
    };

    let device = crate::device::open(&args.device)?;
    // The training loop issues every op from this thread (data, model and optimiser).
    crate::device::single_stream(&device);
    let norm = info.normalizer();
    norm.check()?;
    let cache = DeviceCache::load(info, &device)?;
    let load_bytes = cache.transfers.image_bytes();
    info!(
        "loaded {} train + {} val samples ({:.1} MB of u8 images) onto {} in {:.2} s",
        cache.train.len(),
        cache.val.len(),
        load_bytes as f64 / 1e6,
        crate::device::describe(&device),
        cache.load_seconds
    );

    let identity = run_files::identity(&spec, &cache.info.index_digest);
    let from_epoch = ckpt.as_ref().map(|c| c.state.epochs_done).unwrap_or(0);
    let invocation = LogEvent::Invocation {
        argv: req.argv.clone(),
        threads: req.threads,
        device: crate::device::describe(&device),
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: run_files::git_revision(),
        from_epoch,
        started: ballast_format::lock::rfc3339(std::time::SystemTime::now()),
    };
    let config = match stored {
        Some(mut c) if from_epoch > 0 => {
            c.spec = spec.clone();
            c.identity = identity.clone();
            if c.threads != req.threads {
                tracing::warn!(
                    "resuming with {} threads where the run started with {}: the result is \
                     reproducible only with the thread count it was started with",
                    req.threads,
                    c.threads
                );
            }
            c
        }
        _ => RunConfig {
            format: RUN_FORMAT.into(),
            identity: identity.clone(),
            spec: spec.clone(),
            data: DataRecord {
                cache: cache_dir.display().to_string(),
                index_digest: cache.info.index_digest.clone(),
                classes: cache.info.index.classes.clone(),
                size: cache.info.index.size as usize,
                mean: cache.info.index.mean,
                std: cache.info.index.std,
                train_samples: cache.train.len() as u64,
                val_samples: cache.val.len() as u64,
                load_image_bytes: load_bytes,
                luma: cache.info.index.params.luma.clone(),
                resize: cache.info.index.params.resize.clone(),
                tile_sizes: cache.info.index.tile_sizes.clone(),
            },
            threads: req.threads,
        },
    };
    // Only now, with the new config checked and the data loaded, is an old run replaced.
    if args.force || replace {
        run.clear()?;
    }
    std::fs::create_dir_all(&run.dir).map_err(|e| TrainError::io(&run.dir, e))?;
    run.remove_temps()?;
    config.write(&run.path(CONFIG_FILE))?;
    run_files::append_log(&run.path(LOG_FILE), &invocation)?;

    let mut session = Session::start(req, run, config, cache, norm, device, ckpt)?;
    session.run_epochs()
}

enum Plan {
    UpToDate(TrainState),
    Train(Box<TrainPlan>),
}

struct TrainPlan {
    spec: TrainSpec,
    stored: Option<RunConfig>,
    checkpoint: Option<Checkpoint>,
    /// The folder holds another run that this one replaces (`--restart-if-changed`).
    replace: bool,
}

/// Decides what to do with the run folder before any data is loaded.
fn plan_run(req: &TrainRequest, info: &CacheInfo, run: &RunDir) -> Result<Plan> {
    let args = &req.args;
    let cfg_path = run.path(CONFIG_FILE);
    let fresh = args.spec(info);
    if args.force || !cfg_path.is_file() {
        if args.resume {
            info!("{}: no run to resume yet; starting it", run.dir.display());
        }
        fresh.check()?;
        return Ok(Plan::Train(Box::new(TrainPlan {
            spec: fresh,
            stored: None,
            checkpoint: None,
            replace: false,
        })));
    }
    let stored = RunConfig::read(&cfg_path)?;
    let dir = run.dir.display();
    let restart = |why: &str| -> Result<Plan> {
        info!("{dir}: {why}; --restart-if-changed: starting over");
        fresh.check()?;
        Ok(Plan::Train(Box::new(TrainPlan {
            spec: fresh.clone(),
            stored: None,
            checkpoint: None,
            replace: true,
        })))
    };
    if stored.data.index_digest != info.index_digest {
        if args.restart_if_changed {
            return restart("the cache changed since this run was trained");
        }
        return Err(TrainError::file(
            &run.dir,
            format!(
                "this run was trained on a different cache (index.json digest {} there, {} in {}); \
                 use --force to start over or choose another --run",
                short(&stored.data.index_digest),
                short(&info.index_digest),
                info.dir.display()
            ),
        ));
    }
    let spec = if args.resume {
        args.apply_explicit(&stored.spec, &req.explicit)
    } else {
        fresh.clone()
    };
    let last = run.path(LAST_FILE);
    let ckpt = if last.is_file() {
        Some(Checkpoint::read(&last, &stored.identity)?)
    } else {
        None
    };
    let done = ckpt.as_ref().map(|c| c.state.epochs_done).unwrap_or(0);
    let diffs = stored.spec.differences(&spec);
    if !diffs.is_empty() {
        let only_epochs = diffs.iter().all(|d| d.starts_with("epochs:"));
        let extend = args.resume && only_epochs && stored.spec.schedule.extensible();
        if !extend && args.restart_if_changed {
            return restart(&format!("settings changed ({})", diffs.join(", ")));
        }
        if !extend {
            let hint = if only_epochs && !stored.spec.schedule.extensible() {
                " (a cosine schedule spans the planned epochs, so a run cannot be extended; \
                 start a new one)"
            } else if only_epochs {
                " (to extend a run with a constant or step schedule, add --resume)"
            } else {
                ""
            };
            let what = if args.resume {
                "--resume: the command line changes the run's settings"
            } else {
                "holds a different run"
            };
            return Err(TrainError::config(format!(
                "{dir}: {what}: {}{hint}; use --force to start over or choose another --run",
                diffs.join(", ")
            )));
        }
        if spec.epochs < done {
            return Err(TrainError::config(format!(
                "{dir}: --epochs {} is fewer than the {done} epochs already done",
                spec.epochs
            )));
        }
        info!(
            "{dir}: extending the run from {} to {} epochs",
            stored.spec.epochs, spec.epochs
        );
    }
    spec.check()?;
    match ckpt {
        Some(c) if c.state.complete(spec.epochs) => {
            let mut c = c;
            if !diffs.is_empty() {
                c.state.identity = run_files::identity(&spec, &info.index_digest);
            }
            // A kill while the finished run wrote a derived file leaves its temporary behind.
            run.remove_temps()?;
            refresh_derived(run, &stored, &c)?;
            Ok(Plan::UpToDate(c.state))
        }
        Some(c) if !args.resume => Err(TrainError::config(format!(
            "{dir} holds an unfinished run ({} of {} epochs done); add --resume to continue it \
             or --force to start over",
            c.state.epochs_done, spec.epochs
        ))),
        None if !args.resume => Err(TrainError::config(format!(
            "{dir} holds a run that has not finished its first epoch; add --resume to continue \
             it or --force to start over"
        ))),
        checkpoint => {
            if checkpoint.is_none() {
                info!("{dir}: no checkpoint yet; starting from epoch 1");
            }
            let identity = run_files::identity(&spec, &info.index_digest);
            let checkpoint = checkpoint.map(|mut c| {
                c.state.identity = identity;
                c
            });
            Ok(Plan::Train(Box::new(TrainPlan {
                spec,
                stored: Some(stored),
                checkpoint,
                replace: false,
            })))
        }
    }
}

fn short(d: &str) -> &str {
    // Digests read from files may hold anything: never slice inside a character.
    d.get(..12).unwrap_or(d)
}

/// Rewrites the files that derive from the checkpoint when missing or stale (after a kill
/// between the checkpoint and them, or after a user deleted one). Cheap: no training.
fn refresh_derived(run: &RunDir, config: &RunConfig, ckpt: &Checkpoint) -> Result<()> {
    let model_path = run.path(MODEL_FILE);
    if let Some(best) = &ckpt.state.best {
        let stale = match checkpoint::read_model(&model_path) {
            Ok((_, meta)) => meta.epoch != best.epoch,
            Err(_) => true,
        };
        if stale {
            write_best_model(&model_path, config, best, &ckpt.best_weights)?;
        }
    }
    let metrics = metrics_of(&ckpt.state);
    checkpoint::settle_record(&run.path(LAST_FILE))?;
    if model_path.exists() {
        checkpoint::settle_record(&model_path)?;
    }
    // Each is rewritten only if it differs from what the checkpoint says it should hold (a
    // kill between the checkpoint and them leaves them stale, not missing).
    run_files::write_metrics(&run.path(METRICS_FILE), &metrics)?;
    curves::write(&run.path(CURVES_FILE), &ckpt.state.history, &run.name())?;
    let params = config.spec.model.param_count()?;
    let text = notes::render(&run.name(), config, &ckpt.state, params, None);
    run_files::write_if_changed(&run.path(NOTES_FILE), text.as_bytes())?;
    Ok(())
}

/// metrics.jsonl's lines: the checkpoint's history, so they are the same however the run was
/// interrupted.
fn metrics_of(state: &TrainState) -> Vec<EpochMetrics> {
    state.history.iter().map(EpochMetrics::from).collect()
}

fn write_best_model(
    path: &Path,
    config: &RunConfig,
    best: &EpochScores,
    weights: &BTreeMap<String, HostTensor>,
) -> Result<()> {
    let meta = ModelMeta {
        format: checkpoint::MODEL_FORMAT.into(),
        model: config.spec.model.clone(),
        classes: config.data.classes.clone(),
        mean: config.data.mean,
        std: config.data.std,
        epoch: best.epoch,
        val_loss: best.val_loss,
        val_acc: best.val_acc,
    };
    checkpoint::write_model(path, weights, &meta)
}

/// Loss (mean) and accuracy of `model` on a whole split, in order, without dropout.
pub fn evaluate(
    model: &Model,
    split: &DeviceSplit,
    norm: &Normalizer,
    eval_batch: usize,
) -> Result<(f64, f64)> {
    let n = split.len();
    let (mut loss_sum, mut correct) = (0.0f64, 0u64);
    let mut start = 0;
    while start < n {
        let len = eval_batch.min(n - start);
        let (images, labels) = split.range(start, len)?;
        let logits = model.forward_logits(&norm.apply(&images)?)?;
        loss_sum += cross_entropy(&logits, &labels)?.to_scalar::<f32>()? as f64 * len as f64;
        correct += count_correct(&logits, &labels)?;
        start += len;
    }
    Ok((loss_sum / n as f64, correct as f64 / n as f64))
}

fn count_correct(logits: &Logits, labels: &Tensor) -> Result<u64> {
    let hits = crate::tally::hits(logits.tensor(), labels)?.to_scalar::<f32>()?;
    Ok(hits as u64)
}

struct Session<'a> {
    req: &'a TrainRequest,
    run: RunDir,
    config: RunConfig,
    cache: DeviceCache,
    norm: Normalizer,
    device: Device,
    model: Model,
    optimizer: Optimizer,
    state: TrainState,
    best_weights: BTreeMap<String, HostTensor>,
    metrics: Vec<EpochMetrics>,
}

impl<'a> Session<'a> {
    fn start(
        req: &'a TrainRequest,
        run: RunDir,
        config: RunConfig,
        cache: DeviceCache,
        norm: Normalizer,
        device: Device,
        ckpt: Option<Checkpoint>,
    ) -> Result<Session<'a>> {
        let spec = &config.spec;
        let mut optimizer = Optimizer::new(&spec.optimizer);
        let (model, state, best_weights, metrics) = match ckpt {
            Some(c) => {
                let last = run.path(LAST_FILE);
                let model = Model::from_weights(&spec.model, &c.weights, &last, &device)?;
                optimizer.restore(model.vars(), &c.optimizer, c.state.optimizer_steps, &last)?;
                if c.state.best.is_some() {
                    for p in spec.model.params()? {
                        let key = format!("best.{}", p.name);
                        match c.best_weights.get(&p.name) {
                            Some(t) if t.shape == p.shape => {}
                            _ => {
                                return Err(TrainError::file(
                                    &last,
                                    format!(
                                        "missing or misshapen tensor `{key}`; use --force to start over"
                                    ),
                                ));
                            }
                        }
                    }
                }
                let metrics = metrics_of(&c.state);
                info!(
                    "resuming {} after epoch {} of {}",
                    run.dir.display(),
                    c.state.epochs_done,
                    spec.epochs
                );
                (model, c.state, c.best_weights, metrics)
            }
            None => {
                let model = Model::init(&spec.model, spec.init, spec.seed, &device)?;
                (
                    model,
                    TrainState::new(&config.identity),
                    BTreeMap::new(),
                    Vec::new(),
                )
            }
        };
        info!(
            "model: {} ({} parameters)",
            spec.model.summary(),
            model.param_count()
        );
        Ok(Session {
            req,
            run,
            config,
            cache,
            norm,
            device,
            model,
            optimizer,
            state,
            best_weights,
            metrics,
        })
    }

    fn run_epochs(&mut self) -> Result<Outcome> {
        let spec = self.config.spec.clone();
        if !self.metrics.is_empty() || self.state.epochs_done > 0 {
            // Bring derived files in line with the checkpoint before going on.
            self.write_derived(None)?;
        }
        if let Some(w) = crate::preflight::settings(&spec, self.config.data.train_samples) {
            tracing::warn!("{w}");
        }
        while !self.state.complete(spec.epochs) {
            let epoch = self.state.epochs_done; // 0-based index of the epoch to run
            if let Err(e) = self.run_epoch(&spec, epoch) {
                if matches!(e, TrainError::NonFinite { .. }) {
                    let _ = self.write_notes(Some(&e.to_string()));
                }
                return Err(e);
            }
            if self.req.args.stop_after == Some(self.state.epochs_done)
                && !self.state.complete(spec.epochs)
            {
                info!(
                    "stopping after epoch {} as asked; continue with --resume",
                    self.state.epochs_done
                );
                return Ok(Outcome::Paused {
                    epochs_done: self.state.epochs_done,
                });
            }
        }
        if let Some(b) = &self.state.best {
            info!(
                "done: best epoch {} (val loss {:.4}, val accuracy {:.2} %) in {}",
                b.epoch,
                b.val_loss,
                100.0 * b.val_acc,
                self.run.path(MODEL_FILE).display()
            );
        }
        Ok(Outcome::Finished {
            epochs_done: self.state.epochs_done,
            stopped_early: self.state.stopped_early,
            best: self.state.best.clone(),
        })
    }

    fn non_finite(&self, value: f64, epoch: usize, batch: String, lr: f64) -> TrainError {
        let checkpoint = if self.state.epochs_done > 0 {
            format!(
                "{} (epoch {})",
                self.run.path(LAST_FILE).display(),
                self.state.epochs_done
            )
        } else {
            "none (no epoch had completed)".to_string()
        };
        TrainError::NonFinite {
            value: if value.is_nan() {
                "NaN".into()
            } else {
                format!("{value}")
            },
            epoch,
            batch,
            lr,
            checkpoint,
        }
    }

    fn run_epoch(&mut self, spec: &TrainSpec, epoch: usize) -> Result<()> {
        let lr = spec.schedule.lr(spec.optimizer.lr, epoch, spec.epochs);
        let start = Instant::now();
        let transfers = &self.cache.transfers;
        let (img0, other0) = (transfers.image_bytes(), transfers.other_bytes());
        let train = &self.cache.train;
        let plan = EpochPlan::new(
            train,
            spec.seed,
            epoch,
            spec.augment,
            spec.flips,
            &self.device,
            transfers,
        )?;
        let batches = plan.batches(spec.batch);
        let bar = ballast_cli::progress(
            batches as u64,
            &format!("epoch {}", epoch + 1),
            self.req.quiet,
        );
        let mut tally = Tally::new(&self.device)?;
        let vars: Vec<Var> = self.model.vars().values().cloned().collect();
        for b in 0..batches {
            let (x, y) = plan.batch(b, spec.batch, train, &self.norm)?;
            let len = y.dim(0)?;
            let masks = dropout_masks(&spec.model, spec.seed, epoch, b, len, &self.device)?;
            transfers.count_other(masks.iter().map(|m| 4 * m.elem_count() as u64).sum());
            let logits = self.model.forward_train(&x, &masks)?;
            let loss = cross_entropy(&logits, &y)?;
            let mut bad = tally.before_step(b, &loss)?;
            if bad.is_none() {
                let grads = loss.backward()?;
                self.optimizer.step(self.model.vars(), &grads, lr)?;
                let last = b + 1 == batches;
                bad = tally.after_step(b, last, (&loss, logits.tensor(), &y, len), &vars)?;
            }
            if let Some(bad) = bad {
                bar.finish_and_clear();
                return Err(self.non_finite(bad.value, epoch + 1, bad.batches, lr));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let (loss_sum, correct) = tally.totals()?;
        let train_seconds = start.elapsed().as_secs_f64();
        let (val_loss, val_acc) =
            evaluate(&self.model, &self.cache.val, &self.norm, spec.eval_batch)?;
        if !val_loss.is_finite() {
            return Err(self.non_finite(val_loss, epoch + 1, "validation".into(), lr));
        }
        let seconds = start.elapsed().as_secs_f64();
        let n = train.len() as f64;
        let scores = EpochScores {
            epoch: epoch + 1,
            train_loss: loss_sum / n,
            train_acc: correct as f64 / n,
            val_loss,
            val_acc,
            lr,
        };
        let improved = self
            .state
            .best
            .as_ref()
            .is_none_or(|b| val_loss < b.val_loss);
        if improved {
            self.state.best = Some(scores.clone());
            self.state.epochs_without_improvement = 0;
            self.best_weights = self.model.weights()?;
        } else {
            self.state.epochs_without_improvement += 1;
        }
        self.state.epochs_done = epoch + 1;
        self.state.optimizer_steps = self.optimizer.steps();
        self.state.history.push(scores.clone());
        if let Some(p) = spec.patience
            && self.state.epochs_without_improvement >= p
            && self.state.epochs_done < spec.epochs
        {
            self.state.stopped_early = true;
        }
        self.metrics.push(EpochMetrics::from(&scores));
        // The checkpoint first: it is the truth the other files are rebuilt from.
        Checkpoint {
            state: self.state.clone(),
            weights: self.model.weights()?,
            best_weights: self.best_weights.clone(),
            optimizer: self.optimizer.state_tensors()?,
        }
        .write(&self.run.path(LAST_FILE))?;
        // Then model.safetensors (rewritten when the best epoch changed), metrics, curves, notes.
        self.write_derived(None)?;
        run_files::append_log(
            &self.run.path(LOG_FILE),
            &LogEvent::Epoch {
                epoch: epoch + 1,
                seconds,
                train_seconds,
                samples_per_s: n / train_seconds.max(1e-9),
                h2d_image_bytes: transfers.image_bytes() - img0,
                h2d_other_bytes: transfers.other_bytes() - other0,
            },
        )?;
        info!(
            "epoch {}/{}: train loss {:.4} acc {:.2} % | val loss {:.4} acc {:.2} %{} | lr {:.3e} | {:.2} s ({:.0} samples/s)",
            epoch + 1,
            spec.epochs,
            scores.train_loss,
            100.0 * scores.train_acc,
            val_loss,
            100.0 * val_acc,
            if improved { " (best)" } else { "" },
            lr,
            seconds,
            n / train_seconds.max(1e-9)
        );
        if let Some(w) = crate::preflight::history(spec, &self.state.history)
            && w.contains(&format!("after epoch {}:", epoch + 1))
        {
            tracing::warn!("{w}");
        }
        if self.state.stopped_early {
            info!(
                "early stopping: val loss has not improved for {} epochs",
                self.state.epochs_without_improvement
            );
        }
        Ok(())
    }

    fn write_derived(&self, failure: Option<&str>) -> Result<()> {
        if let Some(best) = &self.state.best {
            let path = self.run.path(MODEL_FILE);
            let stale = match checkpoint::read_model(&path) {
                Ok((_, meta)) => meta.epoch != best.epoch,
                Err(_) => true,
            };
            if stale {
                write_best_model(&path, &self.config, best, &self.best_weights)?;
            }
        }
        for f in [LAST_FILE, MODEL_FILE] {
            let p = self.run.path(f);
            if p.exists() {
                checkpoint::settle_record(&p)?;
            }
        }
        run_files::write_metrics(&self.run.path(METRICS_FILE), &self.metrics)?;
        curves::write(
            &self.run.path(CURVES_FILE),
            &self.state.history,
            &self.run.name(),
        )?;
        self.write_notes(failure)
    }

    fn write_notes(&self, failure: Option<&str>) -> Result<()> {
        let text = notes::render(
            &self.run.name(),
            &self.config,
            &self.state,
            self.model.param_count(),
            failure,
        );
        run_files::write_if_changed(&self.run.path(NOTES_FILE), text.as_bytes())
    }
}
