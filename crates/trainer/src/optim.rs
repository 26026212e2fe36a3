//! SGD with momentum and AdamW over candle `Var`s, with PyTorch's update rules.
//!
//! candle-nn's `SGD` has no momentum (its doc comment says so), hence these. Parameters are
//! visited in name order and the state (buffers and step count) is saved by name, so a resumed
//! run continues with exactly the state it stopped with.

use std::collections::BTreeMap;

use candle_core::Var;
use candle_core::backprop::GradStore;

use crate::error::{Result, TrainError};
use crate::spec::{OptimSpec, OptimizerKind};
use crate::tensor_file::HostTensor;

/// Optimiser state: per-parameter buffers and the number of steps taken.
pub struct Optimizer {
    spec: OptimSpec,
    /// `(param name, buffer name)` → buffer, e.g. `("fc1.weight", "momentum_buffer")`.
    buffers: BTreeMap<(String, &'static str), candle_core::Tensor>,
    steps: u64,
}

const MOMENTUM: &str = "momentum_buffer";
const EXP_AVG: &str = "exp_avg";
const EXP_AVG_SQ: &str = "exp_avg_sq";

fn buffer_names(kind: OptimizerKind) -> &'static [&'static str] {
    match kind {
        OptimizerKind::Sgd => &[MOMENTUM],
        OptimizerKind::Adamw => &[EXP_AVG, EXP_AVG_SQ],
    }
}

/// The name a buffer has in a checkpoint: `optim.<param>.<buffer>`.
pub fn state_name(param: &str, buffer: &str) -> String {
    format!("optim.{param}.{buffer}")
}

impl Optimizer {
    pub fn new(spec: &OptimSpec) -> Optimizer {
        Optimizer {
            spec: spec.clone(),
            buffers: BTreeMap::new(),
            steps: 0,
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update of every parameter that has a gradient, at learning rate `lr`.
    pub fn step(
        &mut self,
        params: &BTreeMap<String, Var>,
        grads: &GradStore,
        lr: f64,
    ) -> Result<()> {
        self.steps += 1;
        for (name, var) in params {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            match self.spec.kind {
                OptimizerKind::Sgd => self.sgd(name, var, g, lr)?,
                OptimizerKind::Adamw => self.adamw(name, var, g, lr)?,
            }
        }
        Ok(())
    }

    /// torch.optim.SGD: g += wd·p; b = μ·b + g (b = g on the first step); with nesterov
    /// g += μ·b, else g = b; p −= lr·g.
    fn sgd(&mut self, name: &str, var: &Var, g: &candle_core::Tensor, lr: f64) -> Result<()> {
        let s = &self.spec;
        let p = var.as_tensor();
        let mut g = if s.weight_decay != 0.0 {
            (g + p.affine(s.weight_decay, 0.0)?)?
        } else {
            g.clone()
        };
        if s.momentum != 0.0 {
            let key = (name.to_string(), MOMENTUM);
            let b = match self.buffers.get(&key) {
                Some(b) => (b.affine(s.momentum, 0.0)? + &g)?,
                None => g.copy()?,
            };
            g = if s.nesterov {
                (&g + b.affine(s.momentum, 0.0)?)?
            } else {
                b.clone()
            };
            self.buffers.insert(key, b);
        }
        var.set(&(p - g.affine(lr, 0.0)?)?)?;
        Ok(())
    }

    /// torch.optim.AdamW: p ·= 1 − lr·wd; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
    /// p −= lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps).
    fn adamw(&mut self, name: &str, var: &Var, g: &candle_core::Tensor, lr: f64) -> Result<()> {
        let s = &self.spec;
        let t = self.steps as i32;
        let mut p = var.as_tensor().clone();
        if s.weight_decay != 0.0 {
            p = p.affine(1.0 - lr * s.weight_decay, 0.0)?;
        }
        let km = (name.to_string(), EXP_AVG);
        let kv = (name.to_string(), EXP_AVG_SQ);
        let m = match self.buffers.get(&km) {
            Some(m) => (m.affine(s.beta1, 0.0)? + g.affine(1.0 - s.beta1, 0.0)?)?,
            None => g.affine(1.0 - s.beta1, 0.0)?,
        };
        let g2 = g.sqr()?.affine(1.0 - s.beta2, 0.0)?;
        let v = match self.buffers.get(&kv) {
            Some(v) => (v.affine(s.beta2, 0.0)? + g2)?,
            None => g2,
        };
        let bc1 = 1.0 - s.beta1.powi(t);
        let bc2 = 1.0 - s.beta2.powi(t);
        let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), s.eps)?;
        let update = (m.affine(lr / bc1, 0.0)? / denom)?;
        var.set(&(p - update)?)?;
        self.buffers.insert(km, m);
        self.buffers.insert(kv, v);
        Ok(())
    }

    /// The buffers as checkpoint tensors (`optim.<param>.<buffer>`).
    pub fn state_tensors(&self) -> Result<BTreeMap<String, HostTensor>> {
        self.buffers
            .iter()
            .map(|((p, b), t)| Ok((state_name(p, b), HostTensor::from_tensor(t)?)))
            .collect()
    }

    /// Restores the state saved by [`Optimizer::state_tensors`] after `steps` steps. Every
    /// parameter must have its buffers once a step was taken (with SGD, when momentum is on).
    pub fn restore(
        &mut self,
        params: &BTreeMap<String, Var>,
        saved: &BTreeMap<String, HostTensor>,
        steps: u64,
        source: &std::path::Path,
    ) -> Result<()> {
        self.buffers.clear();
        self.steps = steps;
        let needs_buffers =
            steps > 0 && (self.spec.kind == OptimizerKind::Adamw || self.spec.momentum != 0.0);
        if !needs_buffers {
            return Ok(());
        }
        for (name, var) in params {
            for &b in buffer_names(self.spec.kind) {
                let key = state_name(name, b);
                let t = saved.get(&key).ok_or_else(|| {
                    TrainError::file(source, format!("missing optimiser state `{key}`"))
                })?;
                if t.shape != var.dims() {
                    return Err(TrainError::file(
                        source,
                        format!(
                            "optimiser state `{key}` has shape {:?}, expected {:?}",
                            t.shape,
                            var.dims()
                        ),
                    ));
                }
                self.buffers
                    .insert((name.clone(), b), t.to_tensor(var.device())?);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn spec(kind: OptimizerKind) -> OptimSpec {
        OptimSpec {
            kind,
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// f(p) = Σ c·p², so the gradient is 2·c·p: checks the update rules step by step against a
    /// scalar transcription of PyTorch's formulas.
    fn run(kind: OptimizerKind, nesterov: bool, steps: usize) -> (Vec<f32>, Vec<f64>) {
        let mut s = spec(kind);
        s.nesterov = nesterov;
        let p0 = [1.0f32, -2.0, 0.5];
        let c = [1.0f64, 0.5, 3.0];
        let var = Var::new(&p0, &Device::Cpu).unwrap();
        let mut params = BTreeMap::new();
        params.insert("w".to_string(), var.clone());
        let mut opt = Optimizer::new(&s);
        let ct = Tensor::new(&[1.0f32, 0.5, 3.0], &Device::Cpu).unwrap();
        for _ in 0..steps {
            let loss = (var.as_tensor().sqr().unwrap() * &ct)
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&params, &grads, s.lr).unwrap();
        }
        let got = var.as_tensor().to_vec1::<f32>().unwrap();

        // Scalar reference in f64.
        let mut want = Vec::new();
        for i in 0..3 {
            let mut p = p0[i] as f64;
            let (mut b, mut m, mut v) = (0.0f64, 0.0f64, 0.0f64);
            for t in 1..=steps {
                let g = 2.0 * c[i] * p;
                match kind {
                    OptimizerKind::Sgd => {
                        let g = g + s.weight_decay * p;
                        b = if t == 1 { g } else { s.momentum * b + g };
                        let d = if nesterov { g + s.momentum * b } else { b };
                        p -= s.lr * d;
                    }
                    OptimizerKind::Adamw => {
                        p *= 1.0 - s.lr * s.weight_decay;
                        m = s.beta1 * m + (1.0 - s.beta1) * g;
                        v = s.beta2 * v + (1.0 - s.beta2) * g * g;
                        let bc1 = 1.0 - s.beta1.powi(t as i32);
                        let bc2 = 1.0 - s.beta2.powi(t as i32);
                        p -= s.lr / bc1 * m / (v.sqrt() / bc2.sqrt() + s.eps);
                    }
                }
            }
            want.push(p);
        }
        (got, want)
    }

    #[test]
    fn updates_follow_pytorch_rules() {
        for (kind, nesterov) in [
            (OptimizerKind::Sgd, false),
            (OptimizerKind::Sgd, true),
            (OptimizerKind::Adamw, false),
        ] {
            let (got, want) = run(kind, nesterov, 5);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() < 1e-5 * w.abs().max(1.0),
                    "{kind:?} nesterov={nesterov}: {got:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn momentum_actually_accumulates() {
        // Plain SGD (no momentum) after 5 steps differs from momentum SGD.
        let (with, _) = run(OptimizerKind::Sgd, false, 5);
        let mut s = spec(OptimizerKind::Sgd);
        s.momentum = 0.0;
        let var = Var::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap();
        let mut params = BTreeMap::new();
        params.insert("w".to_string(), var.clone());
        let mut opt = Optimizer::new(&s);
        let ct = Tensor::new(&[1.0f32, 0.5, 3.0], &Device::Cpu).unwrap();
        for _ in 0..5 {
            let loss = (var.as_tensor().sqr().unwrap() * &ct)
                .unwrap()
                .sum_all()
                .unwrap();
            opt.step(&params, &loss.backward().unwrap(), 0.1).unwrap();
        }
        assert_ne!(with, var.as_tensor().to_vec1::<f32>().unwrap());
        assert!(opt.state_tensors().unwrap().is_empty());
    }

    #[test]
    fn state_round_trips_and_missing_state_is_named() {
        let s = spec(OptimizerKind::Adamw);
        let var = Var::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        let mut params = BTreeMap::new();
        params.insert("fc1.bias".to_string(), var.clone());
        let mut opt = Optimizer::new(&s);
        let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
        opt.step(&params, &loss.backward().unwrap(), 0.1).unwrap();
        let saved = opt.state_tensors().unwrap();
        assert!(saved.contains_key("optim.fc1.bias.exp_avg"));
        assert!(saved.contains_key("optim.fc1.bias.exp_avg_sq"));
        let mut back = Optimizer::new(&s);
        back.restore(&params, &saved, 1, "c".as_ref()).unwrap();
        assert_eq!(back.state_tensors().unwrap(), saved);
        let mut partial = saved.clone();
        partial.remove("optim.fc1.bias.exp_avg");
        let e = back
            .restore(&params, &partial, 1, "last.safetensors".as_ref())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("optim.fc1.bias.exp_avg"), "{e}");
    }
}
