//! The CNN: conv blocks through [`ballast_kernels::conv_relu_pool`], fully connected layers
//! through `candle_nn::Linear`, ending in logits.
//!
//! The model's only outputs are [`Logits`]. The loss ([`cross_entropy`]) takes `Logits`, and
//! `Logits` can only be made by the model, so nothing can slip a softmax between the network and
//! the loss: cross-entropy applies log-softmax itself, and a second softmax before it would
//! squash the gradients (the field report's lost weeks). Probabilities exist only through
//! [`Logits::probabilities`], for scoring.

use std::collections::BTreeMap;

use ballast_format::rng::SeededRng;
use candle_core::{DType, Device, Module, Tensor, Var};

use crate::error::{ModelError, Result};
use crate::spec::{Geometry, InitKind, ModelSpec};
use crate::tensor_file::HostTensor;

/// The pixel normalisation: (x/255 − mean)/std with the train split's mean and std (0–1 scale).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalizer {
    pub mean: f64,
    pub std: f64,
}

impl Normalizer {
    /// Casts a u8 (or f32 on the 0–255 scale) batch to normalised f32, on its device.
    pub fn apply(&self, images: &Tensor) -> Result<Tensor> {
        let x = images.to_dtype(DType::F32)?;
        Ok(x.affine(1.0 / (255.0 * self.std), -self.mean / self.std)?)
    }

    pub fn check(&self) -> Result<()> {
        if !(self.mean.is_finite() && self.std.is_finite() && self.std > 0.0) {
            return Err(ModelError::config(format!(
                "normalisation mean {} / std {} is unusable (std must be positive)",
                self.mean, self.std
            )));
        }
        Ok(())
    }
}

/// The network's raw class scores, [B, classes]. Only [`Model`] makes them.
#[derive(Clone, Debug)]
pub struct Logits(Tensor);

impl Logits {
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }

    /// Softmax over classes: for scoring and reporting only, never for the loss.
    pub fn probabilities(&self) -> Result<Tensor> {
        Ok(candle_nn::ops::softmax_last_dim(&self.0)?)
    }

    /// Softmax of the logits divided by `temperature` (temperature scaling, fitted on val by
    /// the scorer): the same ranking, better-calibrated confidence. 1 is [`Self::probabilities`].
    pub fn probabilities_at(&self, temperature: f64) -> Result<Tensor> {
        if temperature == 1.0 {
            return self.probabilities();
        }
        let scaled = self.0.affine(1.0 / temperature, 0.0)?;
        Ok(candle_nn::ops::softmax_last_dim(&scaled)?)
    }

    /// The most likely class of each sample (u32 [B]).
    pub fn predictions(&self) -> Result<Tensor> {
        Ok(self.0.argmax(1)?)
    }

    #[cfg(test)]
    pub(crate) fn from_raw(t: Tensor) -> Logits {
        Logits(t)
    }
}

/// Mean cross-entropy of `logits` against integer `labels` ([B], u32 or i64): log-softmax and
/// negative log-likelihood in one, on the logits.
pub fn cross_entropy(logits: &Logits, labels: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::loss::cross_entropy(&logits.0, labels)?)
}

/// The model's parameters as candle `Var`s, by state-dict name (sorted).
pub struct Model {
    spec: ModelSpec,
    geometry: Geometry,
    params: BTreeMap<String, Var>,
    device: Device,
}

impl Model {
    /// Initial weights drawn from ballast's seeded generator as `kind` says ([`InitKind`]).
    /// Each tensor has its own stream keyed by its name, so adding a layer never changes the
    /// others.
    pub fn init(spec: &ModelSpec, kind: InitKind, seed: u64, device: &Device) -> Result<Model> {
        let geometry = spec.geometry()?;
        let logits = format!("{}.", spec.logits_layer());
        let mut params = BTreeMap::new();
        for p in spec.params()? {
            let mut rng = SeededRng::for_key("trainer.init", seed, &[p.name.as_bytes()]);
            let relu_follows = !p.name.starts_with(&logits);
            let bound = match kind {
                InitKind::He if relu_follows && p.name.ends_with(".bias") => 0.0,
                InitKind::He if relu_follows => (6.0 / p.fan_in as f64).sqrt(),
                _ => 1.0 / (p.fan_in as f64).sqrt(),
            };
            let n: usize = p.shape.iter().product();
            let data: Vec<f32> = if bound == 0.0 {
                vec![0.0; n]
            } else {
                (0..n).map(|_| rng.uniform(-bound, bound) as f32).collect()
            };
            let t = Tensor::from_vec(data, p.shape.as_slice(), device)?;
            params.insert(p.name, Var::from_tensor(&t)?);
        }
        Ok(Model {
            spec: spec.clone(),
            geometry,
            params,
            device: device.clone(),
        })
    }

    /// A model from saved weights, checking that every tensor the spec needs is there with its
    /// shape. `source` names the file in errors.
    pub fn from_weights(
        spec: &ModelSpec,
        weights: &BTreeMap<String, HostTensor>,
        source: &std::path::Path,
        device: &Device,
    ) -> Result<Model> {
        let geometry = spec.geometry()?;
        let mut params = BTreeMap::new();
        for p in spec.params()? {
            let t = weights
                .get(&p.name)
                .ok_or_else(|| ModelError::file(source, format!("missing tensor `{}`", p.name)))?;
            if t.shape != p.shape {
                return Err(ModelError::file(
                    source,
                    format!(
                        "tensor `{}` has shape {:?}, the run's model needs {:?}",
                        p.name, t.shape, p.shape
                    ),
                ));
            }
            params.insert(p.name, Var::from_tensor(&t.to_tensor(device)?)?);
        }
        Ok(Model {
            spec: spec.clone(),
            geometry,
            params,
            device: device.clone(),
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The trainable tensors by name, sorted (the order optimisers and files use).
    pub fn vars(&self) -> &BTreeMap<String, Var> {
        &self.params
    }

    pub fn param_count(&self) -> usize {
        self.params.values().map(|v| v.elem_count()).sum()
    }

    /// A host copy of every weight, by name.
    pub fn weights(&self) -> Result<BTreeMap<String, HostTensor>> {
        self.params
            .iter()
            .map(|(k, v)| Ok((k.clone(), HostTensor::from_tensor(v.as_tensor())?)))
            .collect()
    }

    /// Overwrites every weight with `weights` (same names and shapes).
    pub fn set_weights(&self, weights: &BTreeMap<String, HostTensor>) -> Result<()> {
        for (name, var) in &self.params {
            let t = weights
                .get(name)
                .ok_or_else(|| ModelError::config(format!("missing tensor `{name}`")))?;
            var.set(&t.to_tensor(&self.device)?)?;
        }
        Ok(())
    }

    /// A parameter tensor; detached (no autograd graph kept) unless `track`.
    fn param(&self, name: &str, track: bool) -> Result<Tensor> {
        let t = self
            .params
            .get(name)
            .map(Var::as_tensor)
            .ok_or_else(|| ModelError::config(format!("model has no `{name}`")))?;
        Ok(if track { t.clone() } else { t.detach() })
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let s = &self.spec;
        let want = [x.dim(0).unwrap_or(0), s.in_channels, s.size, s.size];
        if x.rank() != 4 || x.dims() != want {
            return Err(ModelError::config(format!(
                "model input must be [B,{},{},{}], got {:?}",
                s.in_channels,
                s.size,
                s.size,
                x.dims()
            )));
        }
        Ok(())
    }

    /// Logits of a normalised f32 batch [B, C, S, S], in evaluation mode (no dropout).
    pub fn forward_logits(&self, x: &Tensor) -> Result<Logits> {
        self.forward(x, None)
    }

    /// Logits in training mode: `dropout` holds one mask per hidden fully connected layer
    /// ([B, width], values 0 or 1/(1-p)), see [`dropout_masks`]; empty when dropout is off.
    pub fn forward_train(&self, x: &Tensor, dropout: &[Tensor]) -> Result<Logits> {
        self.forward(x, Some(dropout))
    }

    /// Logits and feature groups in evaluation mode, for the scorer's out-of-distribution
    /// check: per conv block the mean and standard deviation of each channel over the image
    /// ([B, 2·C], texture statistics), then the penultimate features (the last hidden layer's
    /// activations after its ReLU; the flattened conv output when there is no hidden layer).
    pub fn forward_features(&self, x: &Tensor) -> Result<(Vec<Tensor>, Logits)> {
        let mut groups = Vec::with_capacity(self.spec.conv.len() + 1);
        let logits = self.forward_parts(x, None, Some(&mut groups))?;
        Ok((groups, logits))
    }

    fn forward(&self, x: &Tensor, dropout: Option<&[Tensor]>) -> Result<Logits> {
        self.forward_parts(x, dropout, None)
    }

    fn forward_parts(
        &self,
        x: &Tensor,
        dropout: Option<&[Tensor]>,
        mut features: Option<&mut Vec<Tensor>>,
    ) -> Result<Logits> {
        self.check_input(x)?;
        // Evaluation keeps no autograd graph.
        let track = dropout.is_some();
        let pad = self.geometry.pad;
        let mut h = x.clone();
        for i in 1..=self.spec.conv.len() {
            let w = self.param(&format!("conv{i}.weight"), track)?;
            let b = self.param(&format!("conv{i}.bias"), track)?;
            h = ballast_kernels::conv_relu_pool(&h, &w, &b, pad, true)?;
            if let Some(f) = features.as_deref_mut() {
                f.push(channel_stats(&h)?);
            }
        }
        // NCHW flatten, as PyTorch's x.flatten(1).
        h = h.flatten_from(1)?;
        let n_fc = self.spec.fc.len() + 1;
        for j in 1..=n_fc {
            let w = self.param(&format!("fc{j}.weight"), track)?;
            let b = self.param(&format!("fc{j}.bias"), track)?;
            if j == n_fc
                && let Some(f) = features.as_deref_mut()
            {
                f.push(h.clone());
            }
            h = candle_nn::Linear::new(w, Some(b)).forward(&h)?;
            if j < n_fc {
                h = h.relu()?;
                if let Some(masks) = dropout
                    && let Some(m) = masks.get(j - 1)
                {
                    h = h.mul(m)?;
                }
            }
        }
        Ok(Logits(h))
    }
}

/// Per channel, the mean and standard deviation over the image: [B, C, H, W] → [B, 2·C]
/// (means first).
fn channel_stats(h: &Tensor) -> Result<Tensor> {
    let flat = h.flatten_from(2)?;
    let mean = flat.mean_keepdim(2)?;
    let var = flat.broadcast_sub(&mean)?.sqr()?.mean(2)?;
    Ok(Tensor::cat(&[&mean.squeeze(2)?, &var.sqrt()?], 1)?)
}

/// Inverted-dropout masks for one training batch, drawn from ballast's generator keyed by
/// (seed, epoch, batch, layer), never from candle's unseeded CPU generator.
pub fn dropout_masks(
    spec: &ModelSpec,
    seed: u64,
    epoch: usize,
    batch: usize,
    batch_len: usize,
    device: &Device,
) -> Result<Vec<Tensor>> {
    if spec.dropout <= 0.0 {
        return Ok(Vec::new());
    }
    let keep = 1.0 - spec.dropout;
    let scale = (1.0 / keep) as f32;
    spec.fc
        .iter()
        .enumerate()
        .map(|(j, &width)| {
            let mut rng = SeededRng::for_key(
                "trainer.dropout",
                seed,
                &[
                    &(epoch as u64).to_le_bytes(),
                    &(batch as u64).to_le_bytes(),
                    &(j as u64).to_le_bytes(),
                ],
            );
            let m: Vec<f32> = (0..batch_len * width)
                .map(|_| if rng.next_f64() < keep { scale } else { 0.0 })
                .collect();
            Ok(Tensor::from_vec(m, (batch_len, width), device)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn he_init_widens_relu_layers_and_keeps_the_logits_layer() {
        let spec = ModelSpec {
            in_channels: 1,
            size: 32,
            classes: 4,
            conv: vec![6, 16],
            fc: vec![32],
            kernel: 5,
            padding: crate::spec::Padding::Same,
            dropout: 0.0,
        };
        let dev = Device::Cpu;
        let he = Model::init(&spec, InitKind::He, 5, &dev).unwrap();
        let pt = Model::init(&spec, InitKind::Pytorch, 5, &dev).unwrap();
        let values = |m: &Model, name: &str| -> Vec<f32> {
            m.params[name]
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        for p in spec.params().unwrap() {
            let (h, t) = (values(&he, &p.name), values(&pt, &p.name));
            let max = |v: &[f32]| v.iter().fold(0f32, |a, x| a.max(x.abs()));
            let pt_bound = 1.0 / (p.fan_in as f32).sqrt();
            assert!(max(&t) <= pt_bound, "{}", p.name);
            if p.name.starts_with(&format!("{}.", spec.logits_layer())) {
                assert_eq!(h, t, "the logits layer keeps PyTorch's draw");
            } else if p.name.ends_with(".bias") {
                assert!(h.iter().all(|&x| x == 0.0), "{}", p.name);
            } else {
                // Same stream scaled by √6: U(±√(6/fan_in)) against U(±1/√fan_in).
                for (a, b) in h.iter().zip(&t) {
                    assert!((a - b * 6f32.sqrt()).abs() <= 1e-5 * a.abs().max(1.0));
                }
                assert!(max(&h) > pt_bound * 1.5, "{}", p.name);
            }
        }
    }
    use crate::spec::Padding;

    fn tiny(size: usize, padding: Padding, dropout: f64) -> ModelSpec {
        ModelSpec {
            in_channels: 1,
            size,
            classes: 3,
            conv: vec![2, 3],
            fc: vec![5],
            kernel: 3,
            padding,
            dropout,
        }
    }

    fn random(shape: &[usize], key: &str, scale: f64) -> Tensor {
        let mut rng = SeededRng::for_key("test", 1, &[key.as_bytes()]);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| (rng.normal() * scale) as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Central differences of `f` at the coordinates `coords` of `x`, in f64, for each step in
    /// `EPS`. A step can straddle a ReLU kink or a max-pool switch and then disagree with the
    /// true gradient, so a coordinate passes when any step agrees; a misrouted gradient (as
    /// candle's max_pool2d gives at odd sizes) disagrees at every step.
    fn numeric_grads(x: &Tensor, coords: &[usize], f: &dyn Fn(&Tensor) -> f64) -> Vec<Vec<f64>> {
        let base = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        coords
            .iter()
            .map(|&i| {
                EPS.iter()
                    .map(|&eps| {
                        let mut plus = base.clone();
                        plus[i] += eps;
                        let mut minus = base.clone();
                        minus[i] -= eps;
                        let fp = f(&Tensor::from_vec(plus, x.dims(), &Device::Cpu).unwrap());
                        let fm = f(&Tensor::from_vec(minus, x.dims(), &Device::Cpu).unwrap());
                        (fp - fm) / (2.0 * eps as f64)
                    })
                    .collect()
            })
            .collect()
    }

    const EPS: [f32; 3] = [1e-3, 3e-3, 1e-2];

    fn assert_close(what: &str, analytic: &[f64], numeric: &[Vec<f64>]) {
        for (i, (a, ns)) in analytic.iter().zip(numeric).enumerate() {
            let ok = ns
                .iter()
                .any(|n| (a - n).abs() <= 3e-3 + 2e-2 * a.abs().max(n.abs()));
            assert!(ok, "{what}[{i}]: analytic {a} vs finite differences {ns:?}");
        }
    }

    fn coords(n: usize, k: usize) -> Vec<usize> {
        let mut rng = SeededRng::for_key("test.coords", 0, &[&(n as u64).to_le_bytes()]);
        (0..k.min(n))
            .map(|_| rng.below(n as u64) as usize)
            .collect()
    }

    fn dot(t: &Tensor, r: &Tensor) -> f64 {
        let a = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = r.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    /// conv_relu_pool (the kernels entry point) against finite differences for x, w and b, at
    /// odd map sizes where candle's own max_pool2d backward misroutes gradients.
    #[test]
    fn conv_relu_pool_gradients_match_finite_differences() {
        for &(h, k, pad, pool) in &[
            (7usize, 3usize, 1usize, true),
            (9, 3, 0, true),
            (13, 5, 2, true),
            (6, 3, 1, false),
        ] {
            let x = random(&[2, 2, h, h], "x", 1.0);
            let w = random(&[3, 2, k, k], "w", 0.4);
            let b = random(&[3], "b", 0.2);
            let out = ballast_kernels::conv_relu_pool(&x, &w, &b, pad, pool).unwrap();
            let r = random(out.dims(), "r", 1.0);
            let (xv, wv, bv) = (
                Var::from_tensor(&x).unwrap(),
                Var::from_tensor(&w).unwrap(),
                Var::from_tensor(&b).unwrap(),
            );
            let y = ballast_kernels::conv_relu_pool(&xv, &wv, &bv, pad, pool).unwrap();
            let grads = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let f = |x: &Tensor, w: &Tensor, b: &Tensor| {
                dot(
                    &ballast_kernels::conv_relu_pool(x, w, b, pad, pool).unwrap(),
                    &r,
                )
            };
            for (name, var, n) in [
                ("x", &xv, x.elem_count()),
                ("w", &wv, w.elem_count()),
                ("b", &bv, b.elem_count()),
            ] {
                let g = grads
                    .get(var.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let cs = coords(n, 24);
                let numeric = numeric_grads(var.as_tensor(), &cs, &|t| match name {
                    "x" => f(t, &w, &b),
                    "w" => f(&x, t, &b),
                    _ => f(&x, &w, t),
                });
                let analytic: Vec<f64> = cs.iter().map(|&i| g[i] as f64).collect();
                assert_close(
                    &format!("{name} (h={h} k={k} pad={pad} pool={pool})"),
                    &analytic,
                    &numeric,
                );
            }
        }
    }

    /// The whole model (conv blocks, linear layers, ReLU, dropout, cross-entropy on logits)
    /// against finite differences, for every parameter tensor, at odd map sizes.
    #[test]
    fn model_gradients_match_finite_differences() {
        for (size, padding, dropout) in [
            (9usize, Padding::Same, 0.0),
            (13, Padding::Valid, 0.0),
            (9, Padding::Same, 0.3),
        ] {
            let spec = tiny(size, padding, dropout);
            let model = Model::init(&spec, InitKind::Pytorch, 3, &Device::Cpu).unwrap();
            let x = random(&[4, 1, size, size], "input", 1.0);
            let labels = Tensor::new(&[0u32, 2, 1, 2], &Device::Cpu).unwrap();
            let masks = dropout_masks(&spec, 0, 1, 2, 4, &Device::Cpu).unwrap();
            assert_eq!(masks.len(), if dropout > 0.0 { 1 } else { 0 });
            let loss = cross_entropy(&model.forward_train(&x, &masks).unwrap(), &labels).unwrap();
            let grads = loss.backward().unwrap();
            let weights = model.weights().unwrap();
            for (name, var) in model.vars() {
                let g = grads
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("no gradient for {name}"))
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let cs = coords(var.elem_count(), 12);
                let numeric = numeric_grads(var.as_tensor(), &cs, &|t| {
                    let mut w = weights.clone();
                    w.insert(name.clone(), HostTensor::from_tensor(t).unwrap());
                    let m = Model::from_weights(&spec, &w, "t".as_ref(), &Device::Cpu).unwrap();
                    let logits = m.forward_train(&x, &masks).unwrap();
                    cross_entropy(&logits, &labels)
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap() as f64
                });
                let analytic: Vec<f64> = cs.iter().map(|&i| g[i] as f64).collect();
                assert_close(
                    &format!("{name} (size {size} {padding:?} dropout {dropout})"),
                    &analytic,
                    &numeric,
                );
            }
        }
    }

    #[test]
    fn cross_entropy_is_on_logits() {
        // Against a hand computation: -log softmax(z)[y], averaged.
        let z = Tensor::new(&[[2.0f32, 0.5, -1.0], [0.0, 0.0, 3.0]], &Device::Cpu).unwrap();
        let y = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
        let loss = cross_entropy(&Logits::from_raw(z.clone()), &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        let lse = |v: &[f64]| v.iter().map(|x| x.exp()).sum::<f64>().ln();
        let want = ((lse(&[2.0, 0.5, -1.0]) - 2.0) + (lse(&[0.0, 0.0, 3.0]) - 0.0)) / 2.0;
        assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
        let p = Logits::from_raw(z).probabilities().unwrap();
        let rows = p.sum(1).unwrap().to_vec1::<f32>().unwrap();
        assert!(rows.iter().all(|s| (s - 1.0).abs() < 1e-6));
    }

    #[test]
    fn init_is_seeded_by_name_with_pytorch_bounds() {
        let spec = tiny(9, Padding::Same, 0.0);
        let a = Model::init(&spec, InitKind::Pytorch, 7, &Device::Cpu)
            .unwrap()
            .weights()
            .unwrap();
        let b = Model::init(&spec, InitKind::Pytorch, 7, &Device::Cpu)
            .unwrap()
            .weights()
            .unwrap();
        let c = Model::init(&spec, InitKind::Pytorch, 8, &Device::Cpu)
            .unwrap()
            .weights()
            .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        for p in spec.params().unwrap() {
            let bound = 1.0 / (p.fan_in as f32).sqrt();
            let t = &a[&p.name];
            assert_eq!(t.shape, p.shape);
            assert!(t.data.iter().all(|v| v.abs() <= bound), "{}", p.name);
            // Spread over the range, not a constant.
            let max = t.data.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(t.data.len() < 4 || max > bound * 0.3, "{}", p.name);
        }
    }

    #[test]
    fn dropout_masks_are_seeded_and_scaled() {
        let spec = tiny(9, Padding::Same, 0.5);
        let m1 = dropout_masks(&spec, 0, 1, 2, 64, &Device::Cpu).unwrap();
        let m2 = dropout_masks(&spec, 0, 1, 2, 64, &Device::Cpu).unwrap();
        let m3 = dropout_masks(&spec, 0, 1, 3, 64, &Device::Cpu).unwrap();
        let v = |m: &[Tensor]| m[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v(&m1), v(&m2));
        assert_ne!(v(&m1), v(&m3));
        let vals = v(&m1);
        assert!(vals.iter().all(|&x| x == 0.0 || x == 2.0));
        let kept = vals.iter().filter(|&&x| x > 0.0).count();
        assert!((100..220).contains(&kept), "{kept} of 320 kept");
    }

    #[test]
    fn bad_weights_are_named() {
        let spec = tiny(9, Padding::Same, 0.0);
        let mut w = Model::init(&spec, InitKind::Pytorch, 0, &Device::Cpu)
            .unwrap()
            .weights()
            .unwrap();
        w.get_mut("fc1.weight").unwrap().shape = vec![5, 11];
        let e = Model::from_weights(&spec, &w, "m.safetensors".as_ref(), &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("m.safetensors") && e.contains("fc1.weight"),
            "{e}"
        );
        w.remove("conv2.bias");
        let e = Model::from_weights(&spec, &w, "m.safetensors".as_ref(), &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("missing tensor `conv2.bias`"), "{e}");
    }
}
