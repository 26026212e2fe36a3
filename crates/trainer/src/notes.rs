//! notes.md: a readable account of a run, rewritten after every epoch.

use std::fmt::Write as _;

use crate::checkpoint::TrainState;
use crate::run_files::RunConfig;

/// Shell-quotes one argument for the "how to reproduce" line.
fn quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

/// Renders notes.md. `failure` is the error that stopped the run, if any.
pub fn render(
    name: &str,
    config: &RunConfig,
    state: &TrainState,
    param_count: usize,
    failure: Option<&str>,
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Training run `{name}`\n");
    let _ = writeln!(o, "Status: {}\n", status(config, state, failure));
    warnings(&mut o, config, state);
    data(&mut o, config);
    model(&mut o, config, param_count);
    optimisation(&mut o, config);
    result(&mut o, state);
    files(&mut o, config);
    reproduce(&mut o, config);
    o
}

/// What makes this run likely to sit at the ln(C) plateau, if anything.
fn warnings(o: &mut String, config: &RunConfig, state: &TrainState) {
    let s = &config.spec;
    let found: Vec<String> = [
        crate::preflight::settings(s, config.data.train_samples),
        crate::preflight::history(s, &state.history),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !found.is_empty() {
        let _ = writeln!(o, "## Warnings\n");
        for w in found {
            let _ = writeln!(o, "- {w}");
        }
        let _ = writeln!(o);
    }
}

/// The run's state in one line.
fn status(config: &RunConfig, state: &TrainState, failure: Option<&str>) -> String {
    let s = &config.spec;
    if let Some(f) = failure {
        format!("**FAILED** after {} epoch(s): {f}", state.epochs_done)
    } else if state.stopped_early {
        format!(
            "stopped early after epoch {} of {} (val loss had not improved for {} epochs)",
            state.epochs_done,
            s.epochs,
            s.patience.unwrap_or(0)
        )
    } else if state.epochs_done >= s.epochs {
        format!("complete: {} of {} epochs", state.epochs_done, s.epochs)
    } else {
        format!(
            "in progress or interrupted: {} of {} epochs done (continue with `--resume`)",
            state.epochs_done, s.epochs
        )
    }
}

fn data(o: &mut String, config: &RunConfig) {
    let s = &config.spec;
    let d = &config.data;
    let _ = writeln!(o, "\n## Data\n");
    let _ = writeln!(
        o,
        "- cache `{}` (index.json BLAKE3 `{}`)",
        d.cache,
        d.index_digest.get(..16).unwrap_or(&d.index_digest)
    );
    let _ = writeln!(o, "- {} classes: {}", d.classes.len(), d.classes.join(", "));
    let _ = writeln!(
        o,
        "- {0}x{0} grayscale; {1} train and {2} val samples; normalised with train mean {3:.4} and std {4:.4}",
        d.size, d.train_samples, d.val_samples, d.mean, d.std
    );
    let _ = writeln!(
        o,
        "- loaded onto the device once: {:.1} MB of images; batches are gathered there",
        d.load_image_bytes as f64 / 1e6
    );
    if let Some(j) = s.augment {
        let _ = writeln!(
            o,
            "- augmentation: brightness/contrast jitter ±{j} per sample, new every epoch"
        );
    }
    if s.flips {
        let _ = writeln!(
            o,
            "- augmentation: a random flip or quarter turn per sample, new every epoch"
        );
    }
}

fn model(o: &mut String, config: &RunConfig, param_count: usize) {
    let s = &config.spec;
    let _ = writeln!(o, "\n## Model\n");
    let _ = writeln!(o, "- {}", s.model.summary());
    let _ = writeln!(
        o,
        "- {param_count} parameters; ends in logits, loss is cross-entropy on logits"
    );
    let init = match s.init {
        crate::spec::InitKind::Pytorch => "PyTorch's default (kaiming-uniform a=√5)",
        crate::spec::InitKind::He => "He (kaiming-uniform, gain √2) before each ReLU, zero biases",
    };
    let _ = writeln!(o, "- initial weights: {init}, drawn from the seed");
}

fn optimisation(o: &mut String, config: &RunConfig) {
    let s = &config.spec;
    let _ = writeln!(o, "\n## Optimisation\n");
    let opt = &s.optimizer;
    let opt_desc = match opt.kind {
        crate::spec::OptimizerKind::Sgd => format!(
            "SGD lr {} momentum {}{} weight decay {}",
            opt.lr,
            opt.momentum,
            if opt.nesterov { " (nesterov)" } else { "" },
            opt.weight_decay
        ),
        crate::spec::OptimizerKind::Adamw => format!(
            "AdamW lr {} betas ({}, {}) eps {} weight decay {}",
            opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay
        ),
    };
    let _ = writeln!(o, "- {opt_desc}");
    let _ = writeln!(
        o,
        "- schedule {} (warm-up {} epochs), {} epochs, batch {}, seed {}{}",
        s.schedule.kind.as_str(),
        s.schedule.warmup_epochs,
        s.epochs,
        s.batch,
        s.seed,
        s.patience
            .map(|p| format!(", early stopping patience {p}"))
            .unwrap_or_default()
    );
}

fn result(o: &mut String, state: &TrainState) {
    let _ = writeln!(o, "\n## Result\n");
    match &state.best {
        Some(b) => {
            let _ = writeln!(
                o,
                "- best epoch (lowest val loss, kept in model.safetensors): {} — val loss {:.4}, val accuracy {:.2} %",
                b.epoch,
                b.val_loss,
                100.0 * b.val_acc
            );
        }
        None => {
            let _ = writeln!(o, "- no epoch completed yet");
        }
    }
    if let Some(last) = state.history.last() {
        let _ = writeln!(
            o,
            "- last epoch {}: train loss {:.4}, train accuracy {:.2} %, val loss {:.4}, val accuracy {:.2} %",
            last.epoch,
            last.train_loss,
            100.0 * last.train_acc,
            last.val_loss,
            100.0 * last.val_acc
        );
    }
    if !state.history.is_empty() {
        let _ = writeln!(
            o,
            "\n| epoch | lr | train loss | train acc | val loss | val acc |"
        );
        let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|");
        for h in &state.history {
            let _ = writeln!(
                o,
                "| {} | {:.5} | {:.4} | {:.3} | {:.4} | {:.3} |",
                h.epoch, h.lr, h.train_loss, h.train_acc, h.val_loss, h.val_acc
            );
        }
    }
}

fn files(o: &mut String, config: &RunConfig) {
    let s = &config.spec;
    let _ = writeln!(o, "\n## Files\n");
    let _ = writeln!(
        o,
        "- `model.safetensors`: best epoch's weights, PyTorch state-dict names (conv1..conv{}, fc1..fc{})",
        s.model.conv.len(),
        s.model.fc.len() + 1
    );
    let _ = writeln!(
        o,
        "- `last.safetensors`: latest weights + best weights + optimiser state (what --resume uses)"
    );
    let _ = writeln!(
        o,
        "- `config.json`, `metrics.jsonl` (one line per epoch), `curves.svg`; `checkpoints.json` \
         (BLAKE3 of both weight files); `log.jsonl` (each invocation and epoch timings: the only \
         file that differs between equal runs)"
    );
}

fn reproduce(o: &mut String, config: &RunConfig) {
    let s = &config.spec;
    let d = &config.data;
    let _ = writeln!(o, "\n## Reproduce\n");
    let cmd: Vec<String> = crate::args::command_line(s, &d.cache, "NEW_RUN_DIR")
        .iter()
        .map(|a| quote(a))
        .collect();
    let threads = config.threads;
    let _ = writeln!(
        o,
        "`{} --threads {threads}` on the same cache (same index.json digest) trains this run again; \
         on CPU with the same thread count, model.safetensors and last.safetensors come out byte \
         for byte identical.",
        cmd.join(" ")
    );
}
