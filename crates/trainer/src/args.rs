//! The training command line and how it becomes a [`TrainSpec`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::data::CacheInfo;
use crate::spec::{
    InitKind, ModelSpec, OptimSpec, OptimizerKind, Padding, ScheduleKind, ScheduleSpec, TrainSpec,
};

/// A comma-separated list of layer widths (`6,16,32`; `none` or empty for no layer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widths(pub Vec<usize>);

/// clap value parser for [`Widths`].
pub fn parse_widths(s: &str) -> Result<Widths, String> {
    let s = s.trim();
    if s.is_empty() || s == "none" {
        return Ok(Widths(Vec::new()));
    }
    s.split(',')
        .map(|p| {
            let p = p.trim();
            match p.parse::<usize>() {
                Ok(0) => Err("a layer width must be at least 1".to_string()),
                Ok(n) => Ok(n),
                Err(_) => Err(format!(
                    "{p:?} is not a layer width (expected e.g. 6,16,32)"
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Widths)
}

/// `trainer --cache DIR --run DIR [...]`.
#[derive(Clone, Debug, clap::Args)]
pub struct TrainArgs {
    /// Tensor cache folder made by packer (index.json + shards).
    #[arg(long, required = true, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Run folder: config, metrics, checkpoints, curves and notes go here.
    #[arg(long, required = true, value_name = "DIR")]
    pub run: Option<PathBuf>,
    /// Where the optimiser settings start: ballast's measured default, or the field report's
    /// (SGD lr 0.01, momentum 0.9, batch 64). Flags given alongside override it.
    #[arg(long, value_enum, default_value = "ballast")]
    pub recipe: Recipe,
    /// Epochs to train (the cosine schedule spans them).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Training batch size [default: from --recipe: 32 ballast, 64 report].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Validation batch size (memory only; results do not depend on it beyond float rounding).
    #[arg(long, default_value_t = 256)]
    pub eval_batch: usize,
    /// Base learning rate [default: from --recipe: 0.002 ballast, 0.01 report].
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum (PyTorch semantics; 0 disables).
    #[arg(long, default_value_t = crate::spec::DEFAULT_MOMENTUM)]
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    #[arg(long)]
    pub nesterov: bool,
    /// Optimiser [default: from --recipe: adamw ballast, sgd report].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Weight decay [default: 0 for sgd, 0.01 for adamw (PyTorch's defaults)].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// AdamW beta1.
    #[arg(long, default_value_t = crate::spec::DEFAULT_BETA1)]
    pub beta1: f64,
    /// AdamW beta2.
    #[arg(long, default_value_t = crate::spec::DEFAULT_BETA2)]
    pub beta2: f64,
    /// AdamW epsilon.
    #[arg(long, default_value_t = crate::spec::DEFAULT_ADAM_EPS)]
    pub adam_eps: f64,
    /// Dropout probability after each hidden fully connected layer.
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Conv block channels (each: conv k×k, ReLU, 2×2 max-pool).
    #[arg(long, value_parser = parse_widths, default_value = "6,16,32")]
    pub conv: Widths,
    /// Hidden fully connected widths ("none" for none); the logits layer follows.
    #[arg(long, value_parser = parse_widths, default_value = "128,64,32")]
    pub fc: Widths,
    /// Convolution kernel size.
    #[arg(long, default_value_t = 5)]
    pub kernel: usize,
    /// Convolution padding: same keeps map sizes (32 and 64 both work), valid shrinks them.
    #[arg(long, value_enum, default_value = "same")]
    pub padding: Padding,
    /// Learning-rate schedule (stepped once per epoch).
    #[arg(long, value_enum, default_value = "cosine")]
    pub schedule: ScheduleKind,
    /// Epochs of linear warm-up before the schedule [default: from --recipe: 0 for both].
    #[arg(long)]
    pub warmup_epochs: Option<usize>,
    /// Step schedule: epochs between decays.
    #[arg(long, default_value_t = crate::spec::DEFAULT_STEP_SIZE)]
    pub step_size: usize,
    /// Step schedule: decay factor.
    #[arg(long, default_value_t = crate::spec::DEFAULT_GAMMA)]
    pub gamma: f64,
    /// Cosine schedule: final learning rate.
    #[arg(long, default_value_t = crate::spec::DEFAULT_MIN_LR)]
    pub min_lr: f64,
    /// Early stopping: stop after this many epochs without a lower val loss.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Random brightness/contrast jitter on the device, new every epoch.
    #[arg(long)]
    pub augment: bool,
    /// Jitter strength j: factors uniform in [1-j, 1+j].
    #[arg(long, default_value_t = 0.25, requires = "augment")]
    pub augment_strength: f64,
    /// Draw each sample through a random flip or quarter turn (one of the square's 8
    /// symmetries), new every epoch: textures seen from above have no preferred orientation
    /// [default: from --recipe: true ballast, false report].
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub flips: Option<bool>,
    /// Initial weights: he (variance-preserving through the ReLUs) or pytorch (PyTorch's
    /// default) [default: pytorch for both recipes].
    #[arg(long, value_enum)]
    pub init: Option<InitKind>,
    /// Seed of the initial weights, the epoch shuffles, dropout masks and jitter.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// cpu, or cuda:N (needs the CUDA build).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads [default: RAYON_NUM_THREADS, else all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Continue the run in --run from its last checkpoint (starts it if there is none).
    #[arg(long)]
    pub resume: bool,
    /// Start over: delete the run's files in --run first.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// For Makefiles and cluster jobs: if --run holds a run of other settings or other data,
    /// start over instead of refusing (an identical complete run is still up to date, and with
    /// --resume an identical unfinished one is continued).
    #[arg(long)]
    pub restart_if_changed: bool,
    /// Stop after this epoch, leaving a run that --resume continues (as a job time limit would).
    #[arg(long, value_name = "EPOCH")]
    pub stop_after: Option<usize>,
}

/// A named starting point for the settings that decide whether this network learns at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Recipe {
    /// Measured on synth caches of 1 000 to 20 000 samples, 2 to 6 classes, 32 and 64 px
    /// (BENCHMARKS.md): leaves the ln(C) plateau within the first epochs on all of them. AdamW
    /// lr 0.002, batch 32, and random flips and quarter turns (textures have no orientation).
    #[default]
    Ballast,
    /// The field report's: SGD lr 0.01, momentum 0.9, batch 64 (ballast's defaults before
    /// 0.4); sits at the plateau for hundreds of steps on small caches.
    Report,
}

/// The settings a [`Recipe`] decides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecipeSettings {
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub batch: usize,
    pub warmup_epochs: usize,
    pub flips: bool,
    pub init: InitKind,
}

impl Recipe {
    pub fn settings(self) -> RecipeSettings {
        match self {
            Recipe::Ballast => RecipeSettings {
                optimizer: OptimizerKind::Adamw,
                lr: 0.002,
                batch: 32,
                warmup_epochs: 0,
                flips: true,
                init: InitKind::Pytorch,
            },
            Recipe::Report => RecipeSettings {
                optimizer: OptimizerKind::Sgd,
                lr: 0.01,
                batch: 64,
                warmup_epochs: 0,
                flips: false,
                init: InitKind::Pytorch,
            },
        }
    }
}

fn default_weight_decay(kind: OptimizerKind) -> f64 {
    match kind {
        OptimizerKind::Sgd => 0.0,
        OptimizerKind::Adamw => 0.01,
    }
}

impl TrainArgs {
    /// The spec these arguments describe for `cache` (size and classes come from the cache).
    pub fn spec(&self, cache: &CacheInfo) -> TrainSpec {
        self.spec_with(
            cache.index.channels as usize,
            cache.index.size as usize,
            cache.index.classes.len(),
        )
    }

    /// The spec for inputs of `size`×`size` with `in_channels` channels and `classes` classes.
    /// The recipe's settings with the flags given on the command line applied.
    pub fn recipe_settings(&self) -> RecipeSettings {
        let r = self.recipe.settings();
        RecipeSettings {
            optimizer: self.optimizer.unwrap_or(r.optimizer),
            lr: self.lr.unwrap_or(r.lr),
            batch: self.batch.unwrap_or(r.batch),
            warmup_epochs: self.warmup_epochs.unwrap_or(r.warmup_epochs),
            flips: self.flips.unwrap_or(r.flips),
            init: self.init.unwrap_or(r.init),
        }
    }

    pub fn spec_with(&self, in_channels: usize, size: usize, classes: usize) -> TrainSpec {
        let r = self.recipe_settings();
        TrainSpec {
            model: ModelSpec {
                in_channels,
                size,
                classes,
                conv: self.conv.0.clone(),
                fc: self.fc.0.clone(),
                kernel: self.kernel,
                padding: self.padding,
                dropout: self.dropout,
            },
            optimizer: OptimSpec {
                kind: r.optimizer,
                lr: r.lr,
                momentum: self.momentum,
                nesterov: self.nesterov,
                weight_decay: self
                    .weight_decay
                    .unwrap_or_else(|| default_weight_decay(r.optimizer)),
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.adam_eps,
            },
            schedule: ScheduleSpec {
                kind: self.schedule,
                warmup_epochs: r.warmup_epochs,
                step_size: self.step_size,
                gamma: self.gamma,
                min_lr: self.min_lr,
            },
            epochs: self.epochs,
            batch: r.batch,
            eval_batch: self.eval_batch,
            seed: self.seed,
            patience: self.patience,
            augment: self.augment.then_some(self.augment_strength),
            flips: r.flips,
            init: r.init,
        }
        .canonical()
    }

    /// `base` (a stored run's spec) with only the flags given on the command line applied:
    /// what `--resume` compares against the stored spec.
    pub fn apply_explicit(&self, base: &TrainSpec, explicit: &BTreeSet<String>) -> TrainSpec {
        // `--recipe` stands for its settings, each unless given explicitly itself.
        let e = |f: &str| {
            explicit.contains(f)
                || (explicit.contains("recipe")
                    && ["optimizer", "lr", "batch", "warmup_epochs", "flips", "init"].contains(&f))
        };
        let r = self.recipe_settings();
        let mut s = base.clone();
        let m = &mut s.model;
        if e("conv") {
            m.conv = self.conv.0.clone();
        }
        if e("fc") {
            m.fc = self.fc.0.clone();
        }
        if e("kernel") {
            m.kernel = self.kernel;
        }
        if e("padding") {
            m.padding = self.padding;
        }
        if e("dropout") {
            m.dropout = self.dropout;
        }
        let o = &mut s.optimizer;
        if e("optimizer") {
            o.kind = r.optimizer;
            if !e("weight_decay") {
                o.weight_decay = default_weight_decay(r.optimizer);
            }
        }
        if e("weight_decay") {
            o.weight_decay = self.weight_decay.unwrap_or(o.weight_decay);
        }
        if e("lr") {
            o.lr = r.lr;
        }
        if e("momentum") {
            o.momentum = self.momentum;
        }
        if e("nesterov") {
            o.nesterov = self.nesterov;
        }
        if e("beta1") {
            o.beta1 = self.beta1;
        }
        if e("beta2") {
            o.beta2 = self.beta2;
        }
        if e("adam_eps") {
            o.eps = self.adam_eps;
        }
        let sc = &mut s.schedule;
        if e("schedule") {
            sc.kind = self.schedule;
        }
        if e("warmup_epochs") {
            sc.warmup_epochs = r.warmup_epochs;
        }
        if e("step_size") {
            sc.step_size = self.step_size;
        }
        if e("gamma") {
            sc.gamma = self.gamma;
        }
        if e("min_lr") {
            sc.min_lr = self.min_lr;
        }
        if e("epochs") {
            s.epochs = self.epochs;
        }
        if e("batch") {
            s.batch = r.batch;
        }
        if e("eval_batch") {
            s.eval_batch = self.eval_batch;
        }
        if e("seed") {
            s.seed = self.seed;
        }
        if e("patience") {
            s.patience = self.patience;
        }
        if e("augment") || e("augment_strength") {
            s.augment = self.augment.then_some(self.augment_strength);
        }
        if e("flips") {
            s.flips = r.flips;
        }
        if e("init") {
            s.init = r.init;
        }
        s.canonical()
    }
}

/// A command line that trains `spec` again, every setting spelled out.
pub fn command_line(spec: &TrainSpec, cache: &str, run: &str) -> Vec<String> {
    let list = |v: &[usize]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
        }
    };
    let m = &spec.model;
    let o = &spec.optimizer;
    let sc = &spec.schedule;
    let mut a: Vec<String> = vec![
        "trainer".into(),
        "--cache".into(),
        cache.into(),
        "--run".into(),
        run.into(),
    ];
    // An empty value stands for a switch (a flag without a value).
    let mut push = |k: &str, v: String| {
        a.push(format!("--{k}"));
        if !v.is_empty() {
            a.push(v);
        }
    };
    push("epochs", spec.epochs.to_string());
    push("batch", spec.batch.to_string());
    push("eval-batch", spec.eval_batch.to_string());
    push("seed", spec.seed.to_string());
    push("conv", list(&m.conv));
    push("fc", list(&m.fc));
    push("kernel", m.kernel.to_string());
    push("padding", m.padding.as_str().into());
    push("dropout", m.dropout.to_string());
    push("optimizer", o.kind.as_str().into());
    push("lr", o.lr.to_string());
    push("weight-decay", o.weight_decay.to_string());
    match o.kind {
        OptimizerKind::Sgd => {
            push("momentum", o.momentum.to_string());
            if o.nesterov {
                push("nesterov", String::new());
            }
        }
        OptimizerKind::Adamw => {
            push("beta1", o.beta1.to_string());
            push("beta2", o.beta2.to_string());
            push("adam-eps", o.eps.to_string());
        }
    }
    push("schedule", sc.kind.as_str().into());
    if sc.warmup_epochs > 0 {
        push("warmup-epochs", sc.warmup_epochs.to_string());
    }
    match sc.kind {
        ScheduleKind::Step => {
            push("step-size", sc.step_size.to_string());
            push("gamma", sc.gamma.to_string());
        }
        ScheduleKind::Cosine if sc.min_lr > 0.0 => push("min-lr", sc.min_lr.to_string()),
        _ => {}
    }
    if let Some(p) = spec.patience {
        push("patience", p.to_string());
    }
    push("init", spec.init.as_str().into());
    push("flips", spec.flips.to_string());
    if let Some(j) = spec.augment {
        push("augment-strength", j.to_string());
        a.push("--augment".into());
    }
    if o.kind == OptimizerKind::Sgd && o.nesterov {
        a.push("--nesterov".into());
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: TrainArgs,
    }

    fn parse(argv: &[&str]) -> TrainArgs {
        use clap::Parser;
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn command_line_round_trips() {
        let a = parse(&[
            "trainer",
            "--cache",
            "c",
            "--run",
            "r",
            "--optimizer",
            "adamw",
            "--lr",
            "0.003",
            "--fc",
            "none",
            "--augment",
            "--augment-strength",
            "0.1",
            "--schedule",
            "step",
            "--step-size",
            "3",
            "--patience",
            "2",
            "--dropout",
            "0.25",
        ]);
        let spec = a.spec_with(1, 32, 4);
        assert_eq!(spec.optimizer.weight_decay, 0.01);
        let argv = command_line(&spec, "c", "r");
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(parse(&argv).spec_with(1, 32, 4), spec);
        let d = parse(&["trainer", "--cache", "c", "--run", "r"]).spec_with(1, 64, 5);
        let argv = command_line(&d, "c", "r");
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(parse(&argv).spec_with(1, 64, 5), d);
    }

    #[test]
    fn resume_applies_only_explicit_flags() {
        let stored =
            parse(&["t", "--cache", "c", "--run", "r", "--lr", "0.05"]).spec_with(1, 32, 3);
        let now = parse(&["t", "--cache", "c", "--run", "r", "--resume"]);
        let none = BTreeSet::new();
        assert_eq!(now.apply_explicit(&stored, &none), stored);
        let explicit: BTreeSet<String> = ["lr".to_string()].into();
        let merged = now.apply_explicit(&stored, &explicit);
        let lr = Recipe::Ballast.settings().lr;
        assert_eq!(merged.optimizer.lr, lr);
        assert_eq!(
            stored.differences(&merged),
            vec![format!("optimizer.lr: 0.05 vs {lr}")]
        );
    }

    #[test]
    fn the_report_recipe_is_one_flag_away() {
        let report = parse(&["t", "--cache", "c", "--run", "r", "--recipe", "report"]);
        let s = report.spec_with(1, 64, 6);
        assert_eq!(s.optimizer.kind, OptimizerKind::Sgd);
        assert_eq!(
            (s.optimizer.lr, s.optimizer.momentum, s.batch),
            (0.01, 0.9, 64)
        );
        assert_eq!(s.optimizer.weight_decay, 0.0);
        // Flags given alongside a recipe win over it.
        let tuned = parse(&[
            "t", "--cache", "c", "--run", "r", "--recipe", "report", "--lr", "0.003",
        ]);
        let t = tuned.spec_with(1, 64, 6);
        assert_eq!(
            (t.optimizer.kind, t.optimizer.lr, t.batch),
            (OptimizerKind::Sgd, 0.003, 64)
        );
        // The default recipe is not the report's.
        let d = parse(&["t", "--cache", "c", "--run", "r"]).spec_with(1, 64, 6);
        assert_ne!(d, s);
        let b = Recipe::Ballast.settings();
        assert_eq!(
            (d.optimizer.kind, d.optimizer.lr, d.batch),
            (b.optimizer, b.lr, b.batch)
        );
        // Flips come with the default recipe, not the report's; both start from PyTorch's init.
        assert!(d.flips && !s.flips);
        assert_eq!((d.init, s.init), (InitKind::Pytorch, InitKind::Pytorch));
        let off = parse(&["t", "--cache", "c", "--run", "r", "--flips", "false"]);
        assert!(!off.spec_with(1, 64, 6).flips);
        let he = parse(&[
            "t", "--cache", "c", "--run", "r", "--recipe", "report", "--init", "he", "--flips",
            "true",
        ])
        .spec_with(1, 64, 6);
        assert_eq!((he.init, he.flips, he.batch), (InitKind::He, true, 64));
        // The command in notes.md spells both out, so it trains the same spec again.
        let argv = command_line(&he, "c", "r");
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(parse(&argv).spec_with(1, 64, 6), he);
    }

    #[test]
    fn runs_made_before_flips_and_init_existed_read_as_off_and_pytorch() {
        let d = parse(&["t", "--cache", "c", "--run", "r"]).spec_with(1, 32, 3);
        let mut v = serde_json::to_value(&d).unwrap();
        let o = v.as_object_mut().unwrap();
        assert!(o.remove("flips").is_some() && o.remove("init").is_some());
        let old: TrainSpec = serde_json::from_value(v).unwrap();
        assert!(!old.flips);
        assert_eq!(old.init, InitKind::Pytorch);
        // Resuming such a run keeps its settings unless the flags are given.
        let plain = parse(&["t", "--cache", "c", "--run", "r", "--resume"]);
        assert_eq!(plain.apply_explicit(&old, &BTreeSet::new()), old);
        let explicit: BTreeSet<String> = ["flips".to_string()].into();
        let on = parse(&["t", "--cache", "c", "--run", "r", "--flips", "true"]);
        assert!(on.apply_explicit(&old, &explicit).flips);
    }

    #[test]
    fn resume_with_a_recipe_applies_its_settings() {
        let stored = parse(&["t", "--cache", "c", "--run", "r"]).spec_with(1, 32, 3);
        let now = parse(&[
            "t", "--cache", "c", "--run", "r", "--recipe", "report", "--batch", "16",
        ]);
        let explicit: BTreeSet<String> = ["recipe".to_string(), "batch".to_string()].into();
        let merged = now.apply_explicit(&stored, &explicit);
        assert_eq!(merged.optimizer.kind, OptimizerKind::Sgd);
        assert_eq!((merged.optimizer.lr, merged.batch), (0.01, 16));
        assert_eq!(merged.optimizer.weight_decay, 0.0);
        // Without --recipe on the command line, the stored run's settings stay.
        let plain = parse(&["t", "--cache", "c", "--run", "r", "--resume"]);
        assert_eq!(plain.apply_explicit(&stored, &BTreeSet::new()), stored);
    }

    #[test]
    fn widths_parse() {
        assert_eq!(parse_widths("6,16,32").unwrap().0, vec![6, 16, 32]);
        assert_eq!(parse_widths(" 8 , 4 ").unwrap().0, vec![8, 4]);
        assert!(parse_widths("none").unwrap().0.is_empty());
        assert!(parse_widths("").unwrap().0.is_empty());
        assert!(parse_widths("6,0").unwrap_err().contains("at least 1"));
        assert!(parse_widths("6,x").unwrap_err().contains("\"x\""));
    }
}
