//! Warnings about runs likely to sit at the ln(C) plateau, the field report's "Challenge 2":
//! before training, from the settings (plain SGD with too few optimiser steps for this
//! network), and after epochs, from the history (a training loss still at ln(C)). They go to
//! stderr and into notes.md; both are functions of the run's settings and results only.

use crate::checkpoint::EpochScores;
use crate::spec::{InitKind, OptimizerKind, TrainSpec};

/// Optimiser steps below which plain SGD on this network, with PyTorch's default
/// initialisation, is likely to end where it started (MEASUREMENTS.md: it sits at ln(C) for
/// the first few hundred steps whatever the data; 470 steps at lr 0.001 learned nothing).
pub const SGD_MIN_STEPS: u64 = 1000;

/// The warning about the settings, if any, for `train_samples` samples. He initialisation
/// keeps the gradients of the first layers from vanishing, and SGD then learns within its
/// first epochs (BENCHMARKS.md: the report's recipe on 1 000 samples, 32 % → 63 %).
pub fn settings(spec: &TrainSpec, train_samples: u64) -> Option<String> {
    let per_epoch = train_samples.div_ceil(spec.batch.max(1) as u64);
    let steps = per_epoch * spec.epochs as u64;
    let sgd_default_init =
        spec.optimizer.kind == OptimizerKind::Sgd && spec.init == InitKind::Pytorch;
    (sgd_default_init && steps < SGD_MIN_STEPS).then(|| {
        format!(
            "plateau risk: plain SGD with {steps} optimiser steps ({} epochs × {per_epoch} \
             batches of {}); this network usually sits at loss ln({}) = {:.3} for the first few \
             hundred SGD steps with PyTorch's initialisation. Use --init he, --optimizer adamw \
             --lr 0.001, a smaller --batch, or more --epochs (at least {SGD_MIN_STEPS} steps)",
            spec.epochs,
            spec.batch,
            spec.model.classes,
            (spec.model.classes as f64).ln()
        )
    })
}

/// The warning about the results, if any: the first epoch (from the second on) whose training
/// loss is still within 2 % of ln(C).
pub fn history(spec: &TrainSpec, history: &[EpochScores]) -> Option<String> {
    let chance = (spec.model.classes as f64).ln();
    history
        .iter()
        .skip(1)
        .find(|h| (h.train_loss - chance).abs() <= 0.02 * chance)
        .map(|h| {
            format!(
                "plateau: the training loss is still {:.4} ≈ ln({}) = {chance:.4} after epoch {}: \
                 the network has not started to learn. Use --optimizer adamw --lr 0.001, a \
                 smaller --batch or more epochs",
                h.train_loss, spec.model.classes, h.epoch
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: OptimizerKind, batch: usize, epochs: usize) -> TrainSpec {
        #[derive(clap::Parser)]
        struct A {
            #[command(flatten)]
            a: crate::args::TrainArgs,
        }
        let a = <A as clap::Parser>::parse_from(["t", "--cache", "c", "--run", "r"]).a;
        let mut s = a.spec_with(1, 32, 6);
        s.optimizer.kind = kind;
        s.batch = batch;
        s.epochs = epochs;
        s
    }

    fn scores(epoch: usize, train_loss: f64) -> EpochScores {
        EpochScores {
            epoch,
            train_loss,
            train_acc: 0.0,
            val_loss: 0.0,
            val_acc: 0.0,
            lr: 0.01,
        }
    }

    #[test]
    fn few_sgd_steps_warn_adamw_and_many_steps_do_not() {
        // The issue's trap: 1 000 samples, batch 64, 10 epochs = 160 steps.
        let w = settings(&spec(OptimizerKind::Sgd, 64, 10), 1000).unwrap();
        assert!(
            w.contains("160 optimiser steps") && w.contains("ln(6) = 1.792"),
            "{w}"
        );
        assert!(settings(&spec(OptimizerKind::Adamw, 64, 10), 1000).is_none());
        assert!(settings(&spec(OptimizerKind::Sgd, 16, 20), 1000).is_none());
        // He initialisation takes SGD off the plateau, so the same steps do not warn.
        let mut he = spec(OptimizerKind::Sgd, 64, 10);
        he.init = InitKind::He;
        assert!(settings(&he, 1000).is_none());
    }

    #[test]
    fn a_loss_still_at_ln_c_after_the_first_epoch_warns() {
        let s = spec(OptimizerKind::Sgd, 64, 10);
        let c = 6f64.ln();
        assert!(
            history(&s, &[scores(1, c)]).is_none(),
            "epoch 1 alone never warns"
        );
        let w = history(&s, &[scores(1, c), scores(2, c - 0.01)]).unwrap();
        assert!(w.contains("after epoch 2"), "{w}");
        assert!(history(&s, &[scores(1, c), scores(2, 0.9 * c)]).is_none());
    }
}
