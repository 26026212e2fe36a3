//! What a run is: the model architecture, the optimiser, the learning-rate schedule and the
//! training loop's parameters. Two runs with equal [`TrainSpec`]s on the same data (same
//! index.json digest) are the same experiment; threads and device are not part of it.
//!
//! Every configuration is checked here, before any data is loaded: a map that would shrink
//! below what its convolution or pool needs is rejected with the layer and the sizes named.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// How each convolution pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// (k-1)/2 zeros on each side: the map keeps its size and only the pools halve it, so
    /// 64→64→32→32→16→16→8 and 32→…→4. Needs an odd kernel.
    Same,
    /// No padding: each k×k convolution loses k-1 pixels.
    Valid,
}

impl Padding {
    pub fn as_str(&self) -> &'static str {
        match self {
            Padding::Same => "same",
            Padding::Valid => "valid",
        }
    }
}

/// The network: conv blocks (conv k×k, ReLU, 2×2 max-pool), then fully connected layers with
/// ReLU (and dropout when training), then a linear layer to one logit per class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub in_channels: usize,
    /// Input side in pixels (the cache's sample size).
    pub size: usize,
    pub classes: usize,
    /// Output channels of each conv block.
    pub conv: Vec<usize>,
    /// Widths of the hidden fully connected layers (the logits layer comes after them).
    pub fc: Vec<usize>,
    pub kernel: usize,
    pub padding: Padding,
    /// Dropout probability after each hidden fully connected layer (training only).
    pub dropout: f64,
}

/// Map sizes through the network, as computed from a [`ModelSpec`].
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    /// Zero padding of every convolution.
    pub pad: usize,
    /// Per conv block: (input side, side after the convolution, side after the pool).
    pub blocks: Vec<(usize, usize, usize)>,
    /// Inputs of the first fully connected layer: C_last · side².
    pub flatten: usize,
}

/// One trainable tensor: its state-dict name, shape and PyTorch fan-in (for the default init).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamShape {
    pub name: String,
    pub shape: Vec<usize>,
    pub fan_in: usize,
}

/// Largest input side and layer width a spec may name, and the most parameters a model may
/// have (8 GiB of f32 weights): bounds far beyond this network's use, so a config read from
/// disk can neither overflow a size nor ask for an allocation that aborts.
pub const MAX_SIDE: usize = 4096;
pub const MAX_WIDTH: usize = 1 << 16;
pub const MAX_PARAMS: usize = 1 << 31;

impl ModelSpec {
    /// Checks the architecture and computes the map sizes. Fails before training, naming the
    /// layer whose map would become too small.
    pub fn geometry(&self) -> Result<Geometry> {
        let bad = |m: String| Err(ModelError::config(m));
        if self.conv.is_empty() {
            return bad("--conv needs at least one conv layer".into());
        }
        if let Some(i) = self.conv.iter().position(|&c| c == 0) {
            return bad(format!("--conv: conv{} has 0 channels", i + 1));
        }
        if let Some(i) = self.fc.iter().position(|&c| c == 0) {
            return bad(format!("--fc: fc{} has width 0", i + 1));
        }
        if self.kernel == 0 {
            return bad("--kernel must be at least 1".into());
        }
        if self.padding == Padding::Same && self.kernel.is_multiple_of(2) {
            return bad(format!(
                "--kernel {} is even: --padding same needs an odd kernel (or use --padding valid)",
                self.kernel
            ));
        }
        if self.classes < 2 {
            return bad(format!(
                "the cache has {} class(es); training needs at least 2",
                self.classes
            ));
        }
        if self.size == 0 || self.in_channels == 0 {
            return bad("input size and channels must be positive".into());
        }
        // Bounds far beyond this network's use, so that no size below can overflow (a config
        // read from disk may hold anything).
        let too_big = |what: &str, v: usize, max: usize| -> Result<()> {
            if v > max {
                return Err(ModelError::config(format!(
                    "{what} {v} is larger than {max}"
                )));
            }
            Ok(())
        };
        too_big("input size", self.size, MAX_SIDE)?;
        too_big("input channels", self.in_channels, 16)?;
        too_big("--kernel", self.kernel, MAX_SIDE)?;
        too_big("classes", self.classes, 1 << 20)?;
        too_big("conv layers", self.conv.len(), 32)?;
        too_big("fc layers", self.fc.len(), 32)?;
        for &w in self.conv.iter().chain(&self.fc) {
            too_big("a layer width", w, MAX_WIDTH)?;
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("--dropout {} is outside [0, 1)", self.dropout));
        }
        let pad = match self.padding {
            Padding::Same => (self.kernel - 1) / 2,
            Padding::Valid => 0,
        };
        let mut side = self.size;
        let mut trail = vec![side.to_string()];
        let mut blocks = Vec::with_capacity(self.conv.len());
        for (i, _) in self.conv.iter().enumerate() {
            let padded = side + 2 * pad;
            let conv_ok = padded >= self.kernel;
            let after_conv = if conv_ok { padded - self.kernel + 1 } else { 0 };
            if !conv_ok || after_conv < 2 {
                let what = if conv_ok {
                    format!("gives a {after_conv}x{after_conv} map, too small for the 2x2 max-pool")
                } else {
                    "is larger than its input".to_string()
                };
                if conv_ok {
                    trail.push(after_conv.to_string());
                }
                return bad(format!(
                    "model rejected: conv{} gets a {side}x{side} map and its {k}x{k} kernel with \
                     {p} padding {what} (input {s}x{s}: {t}); use --padding same, a smaller \
                     --kernel, fewer --conv layers or a larger --size",
                    i + 1,
                    k = self.kernel,
                    p = self.padding.as_str(),
                    s = self.size,
                    t = trail.join("→"),
                ));
            }
            let after_pool = after_conv / 2;
            trail.push(after_conv.to_string());
            trail.push(after_pool.to_string());
            blocks.push((side, after_conv, after_pool));
            side = after_pool;
        }
        let c_last = *self.conv.last().expect("checked non-empty");
        Ok(Geometry {
            pad,
            blocks,
            flatten: c_last * side * side,
        })
    }

    /// Names of the fully connected layers: fc1.. for the hidden ones, then the logits layer.
    pub fn logits_layer(&self) -> String {
        format!("fc{}", self.fc.len() + 1)
    }

    /// Every parameter in state-dict name order (sorted), with shapes in PyTorch layout.
    pub fn params(&self) -> Result<Vec<ParamShape>> {
        let g = self.geometry()?;
        let mut out = Vec::new();
        let mut cin = self.in_channels;
        for (i, &cout) in self.conv.iter().enumerate() {
            let fan_in = cin * self.kernel * self.kernel;
            out.push(ParamShape {
                name: format!("conv{}.weight", i + 1),
                shape: vec![cout, cin, self.kernel, self.kernel],
                fan_in,
            });
            out.push(ParamShape {
                name: format!("conv{}.bias", i + 1),
                shape: vec![cout],
                fan_in,
            });
            cin = cout;
        }
        let mut fin = g.flatten;
        let widths = self.fc.iter().copied().chain([self.classes]);
        for (j, fout) in widths.enumerate() {
            out.push(ParamShape {
                name: format!("fc{}.weight", j + 1),
                shape: vec![fout, fin],
                fan_in: fin,
            });
            out.push(ParamShape {
                name: format!("fc{}.bias", j + 1),
                shape: vec![fout],
                fan_in: fin,
            });
            fin = fout;
        }
        let total = out.iter().try_fold(0usize, |acc, p| {
            p.shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .and_then(|n| acc.checked_add(n))
        });
        if total.is_none_or(|n| n > MAX_PARAMS) {
            return Err(ModelError::config(format!(
                "model {} has more than {MAX_PARAMS} parameters",
                self.summary()
            )));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn param_count(&self) -> Result<usize> {
        Ok(self
            .params()?
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum())
    }

    /// One line: `conv 6,16,32 (5x5 same) → fc 128,64,32 → 5 logits`.
    pub fn summary(&self) -> String {
        let list = |v: &[usize]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
            }
        };
        format!(
            "conv {} ({k}x{k} {p}, ReLU, 2x2 max-pool) → fc {} (ReLU{d}) → {} logits",
            list(&self.conv),
            list(&self.fc),
            self.classes,
            k = self.kernel,
            p = self.padding.as_str(),
            d = if self.dropout > 0.0 {
                format!(", dropout {}", self.dropout)
            } else {
                String::new()
            },
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum, PyTorch semantics (weight decay added to the gradient).
    Sgd,
    /// AdamW, PyTorch semantics (bias correction, decoupled weight decay).
    Adamw,
}

impl OptimizerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adamw => "adamw",
        }
    }
}

/// Defaults of the settings that apply to one optimiser or schedule only: the command line's
/// defaults, and the values [`TrainSpec::canonical`] gives them where they do not apply.
pub const DEFAULT_MOMENTUM: f64 = 0.9;
pub const DEFAULT_BETA1: f64 = 0.9;
pub const DEFAULT_BETA2: f64 = 0.999;
pub const DEFAULT_ADAM_EPS: f64 = 1e-8;
pub const DEFAULT_STEP_SIZE: usize = 10;
pub const DEFAULT_GAMMA: f64 = 0.1;
pub const DEFAULT_MIN_LR: f64 = 0.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimSpec {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// SGD only.
    pub momentum: f64,
    /// SGD only.
    pub nesterov: bool,
    pub weight_decay: f64,
    /// AdamW only.
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl OptimSpec {
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::config(m));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr {} must be a positive number", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!("--momentum {} is outside [0, 1)", self.momentum));
        }
        if self.nesterov && self.momentum == 0.0 {
            return bad("--nesterov needs --momentum above 0".into());
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "--weight-decay {} must be 0 or positive",
                self.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return bad("AdamW betas must be in [0, 1)".into());
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("AdamW eps must be positive".into());
        }
        Ok(())
    }
}

/// How the initial weights are drawn (both from the run's seed, one stream per tensor).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum InitKind {
    /// PyTorch's default: weights kaiming-uniform with a=√5 (U(±1/√fan_in)), biases
    /// U(±1/√fan_in). Each ReLU layer shrinks the signal's variance about 6×, so this network
    /// starts with near-zero gradients at its first layers (the ln(C) plateau).
    #[default]
    Pytorch,
    /// He (kaiming-uniform, gain √2: U(±√(6/fan_in))) for every layer a ReLU follows, zero
    /// biases; the logits layer keeps PyTorch's default so the first loss is still ≈ ln(C).
    He,
}

impl InitKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            InitKind::Pytorch => "pytorch",
            InitKind::He => "he",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Constant,
    /// Cosine annealing from lr to min-lr over the epochs after warm-up.
    Cosine,
    /// lr · gamma^(epoch / step-size).
    Step,
}

impl ScheduleKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ScheduleKind::Constant => "constant",
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::Step => "step",
        }
    }
}

/// The learning rate per epoch (it changes between epochs, not within one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    pub kind: ScheduleKind,
    /// Epochs of linear warm-up: lr·(e+1)/(warmup+1) for epoch e < warmup.
    pub warmup_epochs: usize,
    pub step_size: usize,
    pub gamma: f64,
    /// The cosine schedule's floor.
    pub min_lr: f64,
}

impl ScheduleSpec {
    /// The learning rate of epoch `epoch` (0-based) of a run planned for `epochs`.
    pub fn lr(&self, base: f64, epoch: usize, epochs: usize) -> f64 {
        if epoch < self.warmup_epochs {
            return base * (epoch + 1) as f64 / (self.warmup_epochs + 1) as f64;
        }
        let e = epoch - self.warmup_epochs;
        let span = epochs.saturating_sub(self.warmup_epochs).max(1);
        match self.kind {
            ScheduleKind::Constant => base,
            ScheduleKind::Cosine => {
                let t = (e as f64 / span as f64).min(1.0);
                self.min_lr + (base - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            ScheduleKind::Step => base * self.gamma.powi((e / self.step_size.max(1)) as i32),
        }
    }

    /// Whether the learning rates of past epochs stay the same when the planned epoch count
    /// grows (then `--resume --epochs N` may extend a run).
    pub fn extensible(&self) -> bool {
        self.kind != ScheduleKind::Cosine
    }

    pub fn check(&self, lr: f64) -> Result<()> {
        if self.kind == ScheduleKind::Step && self.step_size == 0 {
            return Err(ModelError::config("--step-size must be at least 1"));
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return Err(ModelError::config("--gamma must be positive"));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= lr) {
            return Err(ModelError::config("--min-lr must be in [0, lr]"));
        }
        Ok(())
    }
}

/// Everything that decides a run's result (with the data): the identity of the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    pub model: ModelSpec,
    pub optimizer: OptimSpec,
    pub schedule: ScheduleSpec,
    pub epochs: usize,
    pub batch: usize,
    pub eval_batch: usize,
    pub seed: u64,
    /// Stop when the val loss has not improved for this many epochs (None: never).
    pub patience: Option<usize>,
    /// Brightness/contrast jitter strength applied on the device each epoch (None: off).
    pub augment: Option<f64>,
    /// Each sample drawn through a random symmetry of the square (flips and quarter turns),
    /// new every epoch. Absent in runs made before it existed: off.
    #[serde(default)]
    pub flips: bool,
    /// The initial weights' distribution. Absent in runs made before it existed: PyTorch's.
    #[serde(default)]
    pub init: InitKind,
}

impl TrainSpec {
    /// The spec with every setting that does not apply to the chosen optimiser or schedule at
    /// its default, so that two command lines that train the same thing give the same spec
    /// (and the same run identity), and the reproduce command in notes.md, which names only
    /// the settings that apply, gives this spec back.
    pub fn canonical(mut self) -> TrainSpec {
        let o = &mut self.optimizer;
        match o.kind {
            OptimizerKind::Sgd => {
                (o.beta1, o.beta2, o.eps) = (DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_ADAM_EPS);
            }
            OptimizerKind::Adamw => (o.momentum, o.nesterov) = (DEFAULT_MOMENTUM, false),
        }
        let sc = &mut self.schedule;
        if sc.kind != ScheduleKind::Step {
            (sc.step_size, sc.gamma) = (DEFAULT_STEP_SIZE, DEFAULT_GAMMA);
        }
        if sc.kind != ScheduleKind::Cosine {
            sc.min_lr = DEFAULT_MIN_LR;
        }
        self
    }
}

impl TrainSpec {
    /// Checks everything that can be checked without data.
    pub fn check(&self) -> Result<()> {
        self.model.geometry()?;
        self.optimizer.check()?;
        self.schedule.check(self.optimizer.lr)?;
        if self.epochs == 0 {
            return Err(ModelError::config("--epochs must be at least 1"));
        }
        if self.batch == 0 {
            return Err(ModelError::config("--batch must be at least 1"));
        }
        if self.eval_batch == 0 {
            return Err(ModelError::config("--eval-batch must be at least 1"));
        }
        if self.patience == Some(0) {
            return Err(ModelError::config(
                "--patience must be at least 1 (leave it out to disable early stopping)",
            ));
        }
        if let Some(j) = self.augment
            && !(j.is_finite() && j > 0.0 && j < 1.0)
        {
            return Err(ModelError::config(format!(
                "--augment-strength {j} must be in (0, 1)"
            )));
        }
        Ok(())
    }

    /// The differences from `other`, as `name: ours vs theirs` lines (empty when equal).
    pub fn differences(&self, other: &TrainSpec) -> Vec<String> {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(other).unwrap_or_default();
        let mut out = Vec::new();
        diff_values("", &a, &b, &mut out);
        out
    }
}

fn diff_values(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let null = Value::Null;
                diff_values(
                    &p,
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{path}: {a} vs {b}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn report_model(size: usize, padding: Padding) -> ModelSpec {
        ModelSpec {
            in_channels: 1,
            size,
            classes: 5,
            conv: vec![6, 16, 32],
            fc: vec![128, 64, 32],
            kernel: 5,
            padding,
            dropout: 0.0,
        }
    }

    #[test]
    fn same_padding_fits_32_and_64() {
        let g = report_model(64, Padding::Same).geometry().unwrap();
        assert_eq!(g.pad, 2);
        assert_eq!(
            g.blocks,
            vec![(64, 64, 32), (32, 32, 16), (16, 16, 8)],
            "64→64→32→32→16→16→8"
        );
        assert_eq!(g.flatten, 32 * 8 * 8);
        let g = report_model(32, Padding::Same).geometry().unwrap();
        assert_eq!(g.flatten, 32 * 4 * 4);
    }

    #[test]
    fn valid_padding_at_64_has_odd_maps_and_at_32_is_rejected() {
        let g = report_model(64, Padding::Valid).geometry().unwrap();
        // 64→60→30→26→13→9→4: the odd 13 and 9 are the sizes candle's max_pool2d mishandles.
        assert_eq!(g.blocks, vec![(64, 60, 30), (30, 26, 13), (13, 9, 4)]);
        assert_eq!(g.flatten, 32 * 16);
        let e = report_model(32, Padding::Valid)
            .geometry()
            .unwrap_err()
            .to_string();
        assert!(e.contains("conv3") && e.contains("5x5 map"), "{e}");
        assert!(e.contains("32→28→14→10→5→1"), "{e}");
    }

    #[test]
    fn impossible_and_odd_configs_are_named() {
        let mut m = report_model(4, Padding::Same);
        let e = m.geometry().unwrap_err().to_string();
        assert!(e.contains("conv3") && e.contains("1x1"), "{e}");
        m = report_model(64, Padding::Same);
        m.kernel = 4;
        assert!(m.geometry().unwrap_err().to_string().contains("odd"));
        m.kernel = 70;
        m.padding = Padding::Valid;
        let e = m.geometry().unwrap_err().to_string();
        assert!(
            e.contains("conv1") && e.contains("larger than its input"),
            "{e}"
        );
        m = report_model(64, Padding::Same);
        m.dropout = 1.0;
        assert!(m.geometry().is_err());
        m.dropout = 0.0;
        m.classes = 1;
        assert!(m.geometry().is_err());
    }

    #[test]
    fn params_are_pytorch_names_and_layouts_sorted() {
        let m = report_model(64, Padding::Same);
        let p = m.params().unwrap();
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let get = |n: &str| p.iter().find(|p| p.name == n).unwrap().shape.clone();
        assert_eq!(get("conv1.weight"), vec![6, 1, 5, 5]);
        assert_eq!(get("conv3.weight"), vec![32, 16, 5, 5]);
        assert_eq!(get("fc1.weight"), vec![128, 2048]);
        assert_eq!(get("fc4.weight"), vec![5, 32]);
        assert_eq!(get("fc4.bias"), vec![5]);
        assert_eq!(m.logits_layer(), "fc4");
        assert_eq!(p.len(), 14);
    }

    #[test]
    fn schedules() {
        let s = ScheduleSpec {
            kind: ScheduleKind::Cosine,
            warmup_epochs: 0,
            step_size: 1,
            gamma: 0.1,
            min_lr: 0.0,
        };
        assert_eq!(s.lr(0.1, 0, 10), 0.1);
        assert!((s.lr(0.1, 5, 10) - 0.05).abs() < 1e-12);
        assert!(s.lr(0.1, 9, 10) > 0.0);
        let w = ScheduleSpec {
            warmup_epochs: 1,
            ..s.clone()
        };
        assert_eq!(w.lr(0.1, 0, 10), 0.05);
        assert_eq!(w.lr(0.1, 1, 10), 0.1);
        let st = ScheduleSpec {
            kind: ScheduleKind::Step,
            step_size: 3,
            gamma: 0.5,
            ..s
        };
        assert_eq!(st.lr(1.0, 2, 10), 1.0);
        assert_eq!(st.lr(1.0, 3, 10), 0.5);
        assert_eq!(st.lr(1.0, 6, 10), 0.25);
        assert!(st.extensible());
    }
}
