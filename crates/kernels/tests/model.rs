//! The whole report CNN trained with the fused CPU blocks and with the plain-candle reference
//! from the same weights and data: logits after one SGD step and the losses of a few steps agree
//! to float rounding.

mod common;

use ballast_kernels::reference;
use candle_core::{Device, Result, Tensor, Var};
use candle_nn::{Linear, Module};
use common::*;

type Block = fn(&Tensor, &Tensor, &Tensor, usize, bool) -> Result<Tensor>;

/// Initial parameters as plain vectors, shared by both networks: PyTorch's default init bounds.
struct Init {
    convs: Vec<(Vec<usize>, Vec<f32>, Vec<f32>)>,
    fcs: Vec<(Vec<usize>, Vec<f32>, Vec<f32>)>,
}

fn init(size: usize, k: usize, pad: usize, classes: usize) -> Init {
    let mut r = rng(&format!("model-{size}-{k}-{pad}"));
    let mut layer = |shape: Vec<usize>, fan_in: usize| {
        let bound = 1.0 / (fan_in as f64).sqrt();
        let n: usize = shape.iter().product();
        let w = uniform(&mut r, n, -bound, bound);
        let b = uniform(&mut r, shape[0], -bound, bound);
        (shape, w, b)
    };
    let mut convs = Vec::new();
    let (mut cin, mut s) = (1, size);
    for cout in [6, 16, 32] {
        convs.push(layer(vec![cout, cin, k, k], cin * k * k));
        cin = cout;
        let conv_out = s + 2 * pad - k + 1;
        s = conv_out / 2;
    }
    let mut fcs = Vec::new();
    let mut width = cin * s * s;
    for out in [128, 64, 32, classes] {
        fcs.push(layer(vec![out, width], width));
        width = out;
    }
    Init { convs, fcs }
}

struct Net {
    convs: Vec<(Var, Var)>,
    fcs: Vec<(Var, Var)>,
    pad: usize,
    block: Block,
    momentum: Vec<Option<Tensor>>,
}

impl Net {
    fn new(init: &Init, pad: usize, block: Block) -> Result<Net> {
        let dev = Device::Cpu;
        let vars = |layers: &[(Vec<usize>, Vec<f32>, Vec<f32>)]| -> Result<Vec<(Var, Var)>> {
            layers
                .iter()
                .map(|(shape, w, b)| {
                    Ok((
                        Var::from_vec(w.clone(), shape.as_slice(), &dev)?,
                        Var::from_vec(b.clone(), shape[0], &dev)?,
                    ))
                })
                .collect()
        };
        let convs = vars(&init.convs)?;
        let fcs = vars(&init.fcs)?;
        let momentum = vec![None; 2 * (convs.len() + fcs.len())];
        Ok(Net {
            convs,
            fcs,
            pad,
            block,
            momentum,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (w, b) in &self.convs {
            h = (self.block)(&h, w.as_tensor(), b.as_tensor(), self.pad, true)?;
        }
        // Flatten in NCHW order, as PyTorch's torch.flatten(x, 1).
        let mut h = h.flatten_from(1)?;
        let last = self.fcs.len() - 1;
        for (i, (w, b)) in self.fcs.iter().enumerate() {
            h = Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone())).forward(&h)?;
            if i < last {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    /// One step of SGD with momentum, PyTorch's rule; returns the loss before the step.
    fn step(&mut self, x: &Tensor, y: &Tensor, lr: f64, mu: f64) -> Result<f32> {
        let loss = candle_nn::loss::cross_entropy(&self.forward(x)?, y)?;
        let grads = loss.backward()?;
        let vars: Vec<&Var> = self
            .convs
            .iter()
            .chain(&self.fcs)
            .flat_map(|(w, b)| [w, b])
            .collect();
        for (v, buf) in vars.into_iter().zip(self.momentum.iter_mut()) {
            let Some(g) = grads.get(v.as_tensor()) else {
                candle_core::bail!("no gradient for a parameter")
            };
            let nb = match buf.take() {
                Some(b) => ((b * mu)? + g)?,
                None => g.clone(),
            };
            v.set(&(v.as_tensor() - (&nb * lr)?)?)?;
            *buf = Some(nb);
        }
        loss.to_scalar::<f32>()
    }
}

fn data(size: usize, batch: usize, classes: usize, tag: &str) -> Result<(Tensor, Tensor)> {
    let mut r = rng(tag);
    let x = Tensor::from_vec(
        uniform(&mut r, batch * size * size, 0.0, 1.0),
        (batch, 1, size, size),
        &Device::Cpu,
    )?;
    let y: Vec<u32> = (0..batch).map(|_| r.below(classes as u64) as u32).collect();
    Ok((x, Tensor::from_vec(y, batch, &Device::Cpu)?))
}

/// Trains both networks side by side and compares.
fn compare(size: usize, k: usize, pad: usize, batch: usize, steps: usize) -> Result<()> {
    let classes = 5;
    let init = init(size, k, pad, classes);
    let mut fused = Net::new(&init, pad, ballast_kernels::conv_relu_pool)?;
    let mut plain = Net::new(&init, pad, reference::conv_relu_pool)?;
    let (lr, mu) = (0.05, 0.9);
    for step in 0..steps {
        let (x, y) = data(size, batch, classes, &format!("batch-{size}-{step}"))?;
        let lf = fused.step(&x, &y, lr, mu)?;
        let lp = plain.step(&x, &y, lr, mu)?;
        let e = ((lf - lp) / lp).abs();
        assert!(
            e < 1e-4,
            "{size}×{size} k{k} pad {pad}: step {step} loss {lf} vs {lp} ({e:e})"
        );
        if step == 0 {
            // Logits after one step, on the same batch.
            let a = fused.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
            let b = plain.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
            let e = rel_err(&a, &to64(&b), 1e-3);
            assert!(
                e < 1e-4,
                "{size}×{size} k{k} pad {pad}: logits after one step, rel err {e:e}"
            );
            // The step did something: the logits moved.
            let before = Net::new(&init, pad, reference::conv_relu_pool)?
                .forward(&x)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            assert!(
                rel_err(&a, &to64(&before), 1e-3) > 1e-3,
                "the step changed nothing"
            );
        }
    }
    Ok(())
}

#[test]
fn default_network_same_padding_matches_the_reference() -> Result<()> {
    compare(32, 5, 2, 16, 5)
}

#[test]
fn valid_padding_with_odd_maps_matches_the_reference() -> Result<()> {
    // 40 → 36 → 18 → 14 → 7 → 3 → 1: odd maps, the pool drops a row and a column.
    compare(40, 5, 0, 8, 4)
}

#[test]
fn kernel_3_matches_the_reference() -> Result<()> {
    // 27 → 27 → 13 → 13 → 6 → 6 → 3 with "same" 3×3: odd input, odd pooled maps.
    compare(27, 3, 1, 8, 4)
}
