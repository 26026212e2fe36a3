//! Test helpers: seeded random tensors and a direct f64 implementation of the block with
//! PyTorch's semantics (ReLU gradient 0 at 0; max-pool gradient to the first maximum in
//! row-major window order; floor mode), used as the yardstick.

#![allow(dead_code)]

use ballast_format::rng::SeededRng;
use candle_core::{Device, Result, Tensor, Var};

/// One block's shapes.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub b: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub pad: usize,
    pub pool: bool,
}

impl Case {
    pub fn ho(&self) -> usize {
        self.h + 2 * self.pad - self.k + 1
    }
    pub fn wo(&self) -> usize {
        self.w + 2 * self.pad - self.k + 1
    }
    pub fn out_hw(&self) -> (usize, usize) {
        if self.pool {
            (self.ho() / 2, self.wo() / 2)
        } else {
            (self.ho(), self.wo())
        }
    }
    pub fn x_len(&self) -> usize {
        self.b * self.cin * self.h * self.w
    }
    pub fn w_len(&self) -> usize {
        self.cout * self.cin * self.k * self.k
    }
    pub fn y_len(&self) -> usize {
        let (oh, ow) = self.out_hw();
        self.b * self.cout * oh * ow
    }
    pub fn x_shape(&self) -> (usize, usize, usize, usize) {
        (self.b, self.cin, self.h, self.w)
    }
    pub fn w_shape(&self) -> (usize, usize, usize, usize) {
        (self.cout, self.cin, self.k, self.k)
    }
    pub fn y_shape(&self) -> (usize, usize, usize, usize) {
        let (oh, ow) = self.out_hw();
        (self.b, self.cout, oh, ow)
    }
}

pub fn rng(tag: &str) -> SeededRng {
    SeededRng::for_key("ballast-kernels.tests", 0, &[tag.as_bytes()])
}

/// Uniform in [lo, hi) as f32.
pub fn uniform(rng: &mut SeededRng, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(lo, hi) as f32).collect()
}

/// Random inputs for a case: x in [-1, 1), w and b scaled like PyTorch's default init.
pub fn inputs(c: &Case, tag: &str) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut r = rng(tag);
    let bound = 1.0 / ((c.cin * c.k * c.k) as f64).sqrt();
    (
        uniform(&mut r, c.x_len(), -1.0, 1.0),
        uniform(&mut r, c.w_len(), -bound, bound),
        uniform(&mut r, c.cout, -bound, bound),
    )
}

pub fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

/// conv + bias (pre-ReLU), [B, Cout, Ho, Wo].
pub fn direct_conv(c: &Case, x: &[f64], w: &[f64], bias: &[f64]) -> Vec<f64> {
    let (ho, wo) = (c.ho(), c.wo());
    let mut y = vec![0.0; c.b * c.cout * ho * wo];
    for n in 0..c.b {
        for co in 0..c.cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut s = bias[co];
                    for ci in 0..c.cin {
                        for kh in 0..c.k {
                            for kw in 0..c.k {
                                let iy = oy as isize + kh as isize - c.pad as isize;
                                let ix = ox as isize + kw as isize - c.pad as isize;
                                if iy < 0 || ix < 0 || iy >= c.h as isize || ix >= c.w as isize {
                                    continue;
                                }
                                let xv =
                                    x[((n * c.cin + ci) * c.h + iy as usize) * c.w + ix as usize];
                                s += xv * w[((co * c.cin + ci) * c.k + kh) * c.k + kw];
                            }
                        }
                    }
                    y[((n * c.cout + co) * ho + oy) * wo + ox] = s;
                }
            }
        }
    }
    y
}

/// For each output element, the index into the pre-ReLU map it comes from (first maximum).
fn winners(c: &Case, pre: &[f64]) -> Vec<usize> {
    let (ho, wo) = (c.ho(), c.wo());
    let (oh, ow) = c.out_hw();
    let mut idx = Vec::with_capacity(c.y_len());
    for plane in 0..c.b * c.cout {
        for y in 0..oh {
            for x in 0..ow {
                if !c.pool {
                    idx.push((plane * ho + y) * wo + x);
                    continue;
                }
                let mut best = (plane * ho + 2 * y) * wo + 2 * x;
                for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
                    let i = (plane * ho + 2 * y + dy) * wo + 2 * x + dx;
                    // Compare ReLU outputs, as PyTorch pools after ReLU: strictly greater wins.
                    if pre[i].max(0.0) > pre[best].max(0.0) {
                        best = i;
                    }
                }
                idx.push(best);
            }
        }
    }
    idx
}

pub fn direct_forward(c: &Case, x: &[f64], w: &[f64], bias: &[f64]) -> Vec<f64> {
    let pre = direct_conv(c, x, w, bias);
    winners(c, &pre).iter().map(|&i| pre[i].max(0.0)).collect()
}

/// Analytic gradients (dx, dw, db) of Σ y·gy, PyTorch's semantics.
pub fn direct_backward(
    c: &Case,
    x: &[f64],
    w: &[f64],
    bias: &[f64],
    gy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let pre = direct_conv(c, x, w, bias);
    let mut gpre = vec![0.0; pre.len()];
    for (o, &i) in winners(c, &pre).iter().enumerate() {
        if pre[i] > 0.0 {
            gpre[i] += gy[o];
        }
    }
    let (ho, wo) = (c.ho(), c.wo());
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; c.cout];
    for n in 0..c.b {
        for co in 0..c.cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let g = gpre[((n * c.cout + co) * ho + oy) * wo + ox];
                    if g == 0.0 {
                        continue;
                    }
                    db[co] += g;
                    for ci in 0..c.cin {
                        for kh in 0..c.k {
                            for kw in 0..c.k {
                                let iy = oy as isize + kh as isize - c.pad as isize;
                                let ix = ox as isize + kw as isize - c.pad as isize;
                                if iy < 0 || ix < 0 || iy >= c.h as isize || ix >= c.w as isize {
                                    continue;
                                }
                                let xi = ((n * c.cin + ci) * c.h + iy as usize) * c.w + ix as usize;
                                let wi = ((co * c.cin + ci) * c.k + kh) * c.k + kw;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw, db)
}

/// Central differences of L = Σ direct_forward(...)·gy with respect to each of x, w, b.
pub fn finite_differences(
    c: &Case,
    x: &[f64],
    w: &[f64],
    bias: &[f64],
    gy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    const EPS: f64 = 1e-6;
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        direct_forward(c, x, w, b)
            .iter()
            .zip(gy)
            .map(|(a, g)| a * g)
            .sum()
    };
    let mut grads = [x.to_vec(), w.to_vec(), bias.to_vec()];
    for which in 0..3 {
        for i in 0..grads[which].len() {
            let mut args = [x.to_vec(), w.to_vec(), bias.to_vec()];
            args[which][i] += EPS;
            let up = loss(&args[0], &args[1], &args[2]);
            args[which][i] -= 2.0 * EPS;
            let down = loss(&args[0], &args[1], &args[2]);
            grads[which][i] = (up - down) / (2.0 * EPS);
        }
    }
    let [gx, gw, gb] = grads;
    (gx, gw, gb)
}

/// max |a - b| / max(max |b|, floor): error relative to the size of the expected values.
pub fn rel_err(a: &[f32], b: &[f64], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let scale = b.iter().fold(floor, |m, &v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(&a, &b)| (a as f64 - b).abs())
        .fold(0.0, f64::max)
        / scale
}

/// (y, dx, dw, db) of one block, flat.
pub type Outputs = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// Runs `f` (the block under test) forward and backward on Vars made from the inputs, with
/// L = Σ y·gy; returns (y, dx, dw, db) as flat f32 vectors.
pub fn run_block(
    c: &Case,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    gy: &[f32],
    f: impl Fn(&Tensor, &Tensor, &Tensor, usize, bool) -> Result<Tensor>,
) -> Result<Outputs> {
    let dev = Device::Cpu;
    let xv = Var::from_vec(x.to_vec(), c.x_shape(), &dev)?;
    let wv = Var::from_vec(w.to_vec(), c.w_shape(), &dev)?;
    let bv = Var::from_vec(b.to_vec(), c.cout, &dev)?;
    let y = f(
        xv.as_tensor(),
        wv.as_tensor(),
        bv.as_tensor(),
        c.pad,
        c.pool,
    )?;
    let gyt = Tensor::from_vec(gy.to_vec(), c.y_shape(), &dev)?;
    let grads = (&y * &gyt)?.sum_all()?.backward()?;
    let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
    let get = |v: &Var| -> Result<Vec<f32>> {
        match grads.get(v.as_tensor()) {
            Some(g) => flat(g),
            None => candle_core::bail!("no gradient"),
        }
    };
    Ok((flat(&y)?, get(&xv)?, get(&wv)?, get(&bv)?))
}
