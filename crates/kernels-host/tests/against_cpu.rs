//! The host build of the CUDA kernels against the CPU path they must match:
//! `ballast_kernels::fused` (bias + ReLU + pool, its backward, im2col / col2im through a whole
//! conv), the trainer's `Optimizer` (SGD, AdamW), and candle's log-softmax / argmax.
//!
//! Selections (max, winner, routing) and sums whose every partial is exact (small integers) are
//! compared bit for bit; other sums within 1e-6 relative.

use std::collections::BTreeMap;

use ballast_kernels::fused::{self, Mask};
use ballast_kernels::geometry::{self, Geometry};
use ballast_kernels_host::{
    self as kh, AdamW, Layout, NO_GRAD, Patches, Planes, Sgd, bias_grad, bias_relu_pool_bwd,
    bias_relu_pool_fwd,
};
use ballast_trainer::optim::{Optimizer, state_name};
use ballast_trainer::spec::{OptimSpec, OptimizerKind};
use candle_core::{Device, Tensor, Var};

/// splitmix64: small, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// An integer in [lo, hi] as f32.
    fn int(&mut self, lo: i32, hi: i32) -> f32 {
        (lo + self.below((hi - lo + 1) as usize) as i32) as f32
    }
}

/// Bit-identical, or both NaN.
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[track_caller]
fn assert_same(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(i) = (0..got.len()).find(|&i| !same(got[i], want[i])) {
        panic!("{what}: element {i}: kernel {} vs CPU {}", got[i], want[i]);
    }
}

/// |got - want| <= tol · scale, NaN matching NaN.
#[track_caller]
fn assert_close(what: &str, got: f64, want: f64, scale: f64, tol: f64) {
    let ok = (got.is_nan() && want.is_nan()) || (got - want).abs() <= tol * scale.max(1e-30);
    assert!(ok, "{what}: kernel {got} vs CPU {want} (scale {scale})");
}

/// The CPU fused op's bias + ReLU + pool epilogue on a given pre-activation `pre` (NCHW): one
/// 1×1 conv with weight 1 per channel, whose conv output is its input exactly, so the epilogue
/// and its backward are the CPU op's own. Returns (out, codes, pre-activation grad, db).
fn cpu_pool(
    pre: &[f32],
    bias: &[f32],
    gout: &[f32],
    (b, c, h, w): (usize, usize, usize, usize),
) -> (Vec<f32>, Vec<u8>, Vec<f32>, Vec<f32>) {
    let (oh, ow) = (h / 2, w / 2);
    let g = Geometry::new(&[b, 1, h, w], &[1, 1, 1, 1], &[1], 0, true).unwrap();
    let mut out = vec![0.0; b * c * oh * ow];
    let mut codes = vec![0u8; out.len()];
    let mut gpre = vec![0.0; pre.len()];
    let mut db = vec![0.0; c];
    for ch in 0..c {
        let plane = |src: &[f32], n: usize| -> Vec<f32> {
            (0..b)
                .flat_map(|i| src[(i * c + ch) * n..][..n].to_vec())
                .collect()
        };
        let x = plane(pre, h * w);
        let (y, cd) = fused::forward(&g, &x, &[1.0], &[bias[ch]]);
        let gy = plane(gout, oh * ow);
        let grads = fused::backward(&g, &x, &[1.0], Mask::Pool(&cd), &gy, true);
        let dx = grads.dx.unwrap();
        for i in 0..b {
            let (o, p) = ((i * c + ch) * oh * ow, (i * c + ch) * h * w);
            out[o..o + oh * ow].copy_from_slice(&y[i * oh * ow..][..oh * ow]);
            codes[o..o + oh * ow].copy_from_slice(&cd[i * oh * ow..][..oh * ow]);
            gpre[p..p + h * w].copy_from_slice(&dx[i * h * w..][..h * w]);
        }
        db[ch] = grads.db[0];
    }
    (out, codes, gpre, db)
}

/// NCHW → CNHW (channel-major planes).
fn to_channel_major(x: &[f32], b: usize, c: usize, plane: usize) -> Vec<f32> {
    (0..c)
        .flat_map(|ch| (0..b).flat_map(move |i| (0..plane).map(move |q| (i * c + ch) * plane + q)))
        .map(|at| x[at])
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Inputs {
    Uniform,
    /// Five levels, many exact ties and exact zeros.
    Ties,
    /// ±1e30 and ±inf among ordinary values.
    Saturated,
    /// NaN in about a fifth of the positions (windows with one, several, first, last NaN).
    Nan,
}

fn inputs(kind: Inputs, n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n)
        .map(|_| match kind {
            Inputs::Uniform => rng.uniform(-1.0, 1.0),
            Inputs::Ties => [-1.0, -0.5, 0.0, 0.5, 1.0][rng.below(5)],
            Inputs::Saturated => {
                [1e30, -1e30, f32::INFINITY, f32::NEG_INFINITY, 0.25, -0.25][rng.below(6)]
            }
            Inputs::Nan => {
                if rng.below(5) == 0 {
                    f32::NAN
                } else {
                    [-1.0, 0.0, 1.0, rng.uniform(-1.0, 1.0)][rng.below(4)]
                }
            }
        })
        .collect()
}

#[test]
fn no_grad_code_is_the_cpu_ops() {
    assert_eq!(NO_GRAD, geometry::NO_GRAD);
}

#[test]
fn pool_forward_and_backward_match_the_cpu_op() {
    let mut rng = Rng(14);
    // Odd H / W (the pool floors), batch 1, C = 1 and C = 7, the smallest pooled shape.
    let shapes = [
        (1, 1, 5, 7),
        (1, 7, 9, 9),
        (3, 7, 6, 11),
        (2, 1, 2, 2),
        (4, 3, 13, 8),
        (1, 7, 3, 3),
    ];
    let kinds = [
        Inputs::Uniform,
        Inputs::Ties,
        Inputs::Saturated,
        Inputs::Nan,
    ];
    let (mut no_grad_seen, mut tied_wins) = (0, 0);
    for &(b, c, h, w) in &shapes {
        for kind in kinds {
            let what = format!("{kind:?} B={b} C={c} {h}×{w}");
            let pre = inputs(kind, b * c * h * w, &mut rng);
            // Zero bias keeps the exact zeros and ties of the tie-heavy inputs.
            let bias: Vec<f32> = match kind {
                Inputs::Ties => (0..c).map(|i| [0.0, 0.5, -0.5][i % 3]).collect(),
                _ => (0..c).map(|_| rng.uniform(-0.5, 0.5)).collect(),
            };
            let (oh, ow) = (h / 2, w / 2);
            let gout: Vec<f32> = (0..b * c * oh * ow)
                .map(|_| rng.uniform(0.1, 2.0))
                .collect();
            let (want_out, want_codes, want_gpre, want_db) =
                cpu_pool(&pre, &bias, &gout, (b, c, h, w));
            if let Inputs::Ties = kind {
                no_grad_seen += want_codes.iter().filter(|&&c| c == NO_GRAD).count();
                tied_wins += count_tied_wins(&pre, &bias, (b, c, h, w));
            }

            for layout in [Layout::ImageMajor, Layout::ChannelMajor] {
                let planes = Planes {
                    batch: b,
                    channels: c,
                    h,
                    w,
                    layout,
                };
                let arrange = |x: &[f32]| match layout {
                    Layout::ImageMajor => x.to_vec(),
                    Layout::ChannelMajor => to_channel_major(x, b, c, h * w),
                };
                let what = format!("{what} {layout:?}");
                let mut out = vec![f32::NAN; gout.len()];
                let mut codes = vec![7u8; gout.len()];
                bias_relu_pool_fwd(planes, &arrange(&pre), &bias, &mut out, &mut codes).unwrap();
                assert_same(&format!("{what}: forward"), &out, &want_out);
                assert_eq!(codes, want_codes, "{what}: winner codes");

                let mut gpre = vec![f32::NAN; pre.len()];
                bias_relu_pool_bwd(planes, &gout, &codes, &mut gpre).unwrap();
                assert_same(
                    &format!("{what}: pre-activation grad"),
                    &gpre,
                    &arrange(&want_gpre),
                );

                let mut db = vec![f32::NAN; c];
                bias_grad(planes, &gout, &codes, &mut db).unwrap();
                for ch in 0..c {
                    let scale: f64 = (0..b)
                        .flat_map(|i| gout[(i * c + ch) * oh * ow..][..oh * ow].iter())
                        .map(|&g| g.abs() as f64)
                        .sum();
                    let (got, want) = (db[ch] as f64, want_db[ch] as f64);
                    assert_close(&format!("{what}: db[{ch}]"), got, want, scale, 1e-6);
                }
            }
        }
    }
    // The tie-heavy inputs really exercise the tie rule and the ReLU cut.
    assert!(
        tied_wins > 20 && no_grad_seen > 20,
        "{tied_wins} ties, {no_grad_seen} cut"
    );
}

/// Windows whose positive maximum occurs more than once (where the tie rule decides).
fn count_tied_wins(pre: &[f32], bias: &[f32], (b, c, h, w): (usize, usize, usize, usize)) -> usize {
    let mut n = 0;
    for (i, &bv) in (0..b * c).map(|i| (i, &bias[i % c])) {
        for oy in 0..h / 2 {
            for ox in 0..w / 2 {
                let at = |dy: usize, dx: usize| pre[(i * h + 2 * oy + dy) * w + 2 * ox + dx] + bv;
                let v = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                let m = v.iter().copied().fold(f32::MIN, f32::max);
                n += usize::from(m > 0.0 && v.iter().filter(|&&x| x == m).count() > 1);
            }
        }
    }
    n
}

#[test]
fn pool_tie_and_nan_rules_by_hand() {
    // One image, one channel, 3×9: the pool floors the last row and column away (1×4 outputs).
    let nan = f32::NAN;
    #[rustfmt::skip]
    let pre = [
        2.0, 2.0,   1.0, 3.0,  -1.0, -2.0,  nan, 1.0,   9.0,
        2.0, 2.0,   3.0, 0.0,  -3.0, -4.0,  nan, 2.0,   9.0,
        9.0, 9.0,   9.0, 9.0,   9.0,  9.0,  9.0, 9.0,   9.0,
    ];
    // Window 0: all tied, the first wins. Window 1: tie 3 / 3, the first in row-major order (b).
    // Window 2: max < 0, no gradient. Window 3: two NaNs, the last one (d) wins and propagates.
    let want_codes = [0u8, 1, NO_GRAD, 2];
    let gout = [10.0f32, 20.0, 30.0, 40.0];
    #[rustfmt::skip]
    let want_gpre = [
        10.0, 0.0,  0.0, 20.0,  0.0, 0.0,  0.0, 0.0,  0.0,
        0.0,  0.0,  0.0, 0.0,   0.0, 0.0,  40.0, 0.0, 0.0,
        0.0,  0.0,  0.0, 0.0,   0.0, 0.0,  0.0, 0.0,  0.0,
    ];
    let planes = Planes {
        batch: 1,
        channels: 1,
        h: 3,
        w: 9,
        layout: Layout::ImageMajor,
    };
    let (mut out, mut codes) = (vec![0.0; 4], vec![0u8; 4]);
    bias_relu_pool_fwd(planes, &pre, &[0.0], &mut out, &mut codes).unwrap();
    assert_eq!(codes, want_codes);
    assert_same("forward", &out, &[2.0, 3.0, 0.0, nan]);
    let mut gpre = vec![f32::NAN; pre.len()];
    bias_relu_pool_bwd(planes, &gout, &codes, &mut gpre).unwrap();
    assert_same("backward", &gpre, &want_gpre);
    let mut db = [0.0];
    bias_grad(planes, &gout, &codes, &mut db).unwrap();
    assert_eq!(db, [70.0]);
    // The CPU op agrees with the hand-written expectations.
    let (cpu_out, cpu_codes, cpu_gpre, cpu_db) = cpu_pool(&pre, &[0.0], &gout, (1, 1, 3, 9));
    assert_eq!(cpu_codes, want_codes);
    assert_same("CPU forward", &cpu_out, &out);
    assert_same("CPU backward", &cpu_gpre, &want_gpre);
    assert_eq!(cpu_db, db);

    // Zero is no gradient (ReLU's gradient at exactly 0), and the bias is added before the max:
    // with bias -2 the maximum 2 becomes 0.
    bias_relu_pool_fwd(planes, &pre, &[-2.0], &mut out, &mut codes).unwrap();
    assert_eq!(codes, [NO_GRAD, 1, NO_GRAD, 2]);
    assert_same("forward, bias -2", &out, &[0.0, 1.0, 0.0, nan]);
}

/// Naive im2col of a batch by its definition, in `layout`.
fn naive_im2col(p: &Patches, x: &[f32]) -> Vec<f32> {
    let (hw, rows) = (p.hc * p.wc, p.cin * p.k * p.k);
    let mut col = vec![0.0; p.batch * rows * hw];
    for b in 0..p.batch {
        for r in 0..rows {
            let (ci, kh, kw) = (r / (p.k * p.k), (r / p.k) % p.k, r % p.k);
            for oy in 0..p.hc {
                for ox in 0..p.wc {
                    let (iy, ix) = (
                        (oy + kh) as isize - p.pad as isize,
                        (ox + kw) as isize - p.pad as isize,
                    );
                    let inside = iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w;
                    let v = if inside {
                        x[((b * p.cin + ci) * p.h + iy as usize) * p.w + ix as usize]
                    } else {
                        0.0
                    };
                    let at = match p.layout {
                        Layout::ImageMajor => (b * rows + r) * hw,
                        Layout::ChannelMajor => (r * p.batch + b) * hw,
                    };
                    col[at + oy * p.wc + ox] = v;
                }
            }
        }
    }
    col
}

/// (m×n) = a (m×k) · b (k×n) for element accessors `a(i, r)`, `b(r, j)`, row-major result.
/// Exact on the small integers used below, whatever the summation order.
fn gemm(
    m: usize,
    n: usize,
    k: usize,
    a: impl Fn(usize, usize) -> f32,
    b: impl Fn(usize, usize) -> f32,
) -> Vec<f32> {
    let mut d = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            d[i * n + j] = (0..k).map(|r| a(i, r) * b(r, j)).sum();
        }
    }
    d
}

/// A whole conv + bias + ReLU + pool block, forward and backward, from the kernels plus plain
/// GEMMs, against the CPU fused op. Integer data keeps every sum exact (so the comparison is bit
/// for bit) and makes ties common; `full` pools the whole conv output (odd edge included) instead
/// of only its even part.
#[test]
fn conv_block_from_kernels_matches_the_cpu_op() {
    let mut rng = Rng(2024);
    // (B, Cin, H, W, Cout, K, pad)
    let shapes = [
        (1, 1, 9, 7, 7, 3, 1),
        (3, 2, 8, 11, 1, 5, 2),
        (2, 3, 6, 6, 4, 3, 0),
        (1, 7, 5, 5, 7, 1, 0),
    ];
    for &(bsz, cin, h, w, cout, k, pad) in &shapes {
        let g = Geometry::new(&[bsz, cin, h, w], &[cout, cin, k, k], &[cout], pad, true).unwrap();
        let x: Vec<f32> = (0..g.batch * g.in_image())
            .map(|_| rng.int(-3, 3))
            .collect();
        let wt: Vec<f32> = (0..cout * g.ckk()).map(|_| rng.int(-2, 2)).collect();
        let bias: Vec<f32> = (0..cout).map(|_| rng.int(-2, 2)).collect();
        let (want_y, want_codes) = fused::forward(&g, &x, &wt, &bias);
        let gy: Vec<f32> = (0..want_y.len()).map(|_| rng.int(-4, 4)).collect();
        let want = fused::backward(&g, &x, &wt, Mask::Pool(&want_codes), &gy, true);
        let want_dx = want.dx.unwrap();

        for layout in [Layout::ImageMajor, Layout::ChannelMajor] {
            for full in [false, true] {
                let what = format!(
                    "B={bsz} Cin={cin} {h}×{w} Cout={cout} K={k} pad={pad} {layout:?} full={full}"
                );
                let (hc, wc) = if full { (g.ho, g.wo) } else { (g.hc(), g.wc()) };
                let hw = hc * wc;
                let p = Patches {
                    batch: bsz,
                    cin,
                    h,
                    w,
                    k,
                    pad,
                    hc,
                    wc,
                    layout,
                };
                let mut col = vec![f32::NAN; p.col_len().unwrap()];
                kh::im2col(p, &x, &mut col).unwrap();
                assert_same(&format!("{what}: im2col"), &col, &naive_im2col(&p, &x));

                let ckk = g.ckk();
                // col(r, j) and conv(co, j) addressing for this layout; j = image·hw + pixel.
                let col_at = |r: usize, j: usize| match layout {
                    Layout::ImageMajor => ((j / hw) * ckk + r) * hw + j % hw,
                    Layout::ChannelMajor => r * bsz * hw + j,
                };
                let conv_at = |co: usize, j: usize| match layout {
                    Layout::ImageMajor => ((j / hw) * cout + co) * hw + j % hw,
                    Layout::ChannelMajor => co * bsz * hw + j,
                };
                let prod = gemm(
                    cout,
                    bsz * hw,
                    ckk,
                    |co, r| wt[co * ckk + r],
                    |r, j| col[col_at(r, j)],
                );
                let mut conv = vec![0.0; prod.len()];
                for co in 0..cout {
                    for j in 0..bsz * hw {
                        conv[conv_at(co, j)] = prod[co * bsz * hw + j];
                    }
                }
                let planes = Planes {
                    batch: bsz,
                    channels: cout,
                    h: hc,
                    w: wc,
                    layout,
                };
                let mut y = vec![f32::NAN; want_y.len()];
                let mut codes = vec![0u8; want_y.len()];
                bias_relu_pool_fwd(planes, &conv, &bias, &mut y, &mut codes).unwrap();
                assert_same(&format!("{what}: forward"), &y, &want_y);
                assert_eq!(codes, want_codes, "{what}: codes");

                let mut gconv = vec![f32::NAN; conv.len()];
                bias_relu_pool_bwd(planes, &gy, &codes, &mut gconv).unwrap();
                let mut db = vec![f32::NAN; cout];
                bias_grad(planes, &gy, &codes, &mut db).unwrap();
                assert_same(&format!("{what}: db"), &db, &want.db);
                // dW = gconv · colᵀ; dcol = Wᵀ · gconv, then col2im.
                let dw = gemm(
                    cout,
                    ckk,
                    bsz * hw,
                    |co, j| gconv[conv_at(co, j)],
                    |j, r| col[col_at(r, j)],
                );
                assert_same(&format!("{what}: dw"), &dw, &want.dw);
                let dcol_rows = gemm(
                    ckk,
                    bsz * hw,
                    cout,
                    |r, co| wt[co * ckk + r],
                    |co, j| gconv[conv_at(co, j)],
                );
                let mut dcol = vec![0.0; col.len()];
                for r in 0..ckk {
                    for j in 0..bsz * hw {
                        dcol[col_at(r, j)] = dcol_rows[r * bsz * hw + j];
                    }
                }
                let mut dx = vec![f32::NAN; x.len()];
                kh::col2im(p, &dcol, &mut dx).unwrap();
                assert_same(&format!("{what}: dx"), &dx, &want_dx);
            }
        }
    }
}

#[test]
fn col2im_is_the_adjoint_of_im2col_on_real_values() {
    // <im2col(x), c> == <x, col2im(c)>, for non-integer data, both layouts.
    let mut rng = Rng(5);
    for layout in [Layout::ImageMajor, Layout::ChannelMajor] {
        let p = Patches {
            batch: 2,
            cin: 3,
            h: 7,
            w: 5,
            k: 3,
            pad: 2,
            hc: 8,
            wc: 6,
            layout,
        };
        let x: Vec<f32> = (0..p.input_len().unwrap())
            .map(|_| rng.uniform(-1.0, 1.0))
            .collect();
        let c: Vec<f32> = (0..p.col_len().unwrap())
            .map(|_| rng.uniform(-1.0, 1.0))
            .collect();
        let mut col = vec![0.0; c.len()];
        kh::im2col(p, &x, &mut col).unwrap();
        let mut dx = vec![0.0; x.len()];
        kh::col2im(p, &c, &mut dx).unwrap();
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(&u, &v)| u as f64 * v as f64)
                .sum::<f64>()
        };
        let scale = col
            .iter()
            .zip(&c)
            .map(|(&u, &v)| (u as f64 * v as f64).abs())
            .sum::<f64>();
        assert_close(
            &format!("{layout:?}"),
            dot(&x, &dx),
            dot(&col, &c),
            scale,
            1e-6,
        );
    }
}

fn spec(kind: OptimizerKind, momentum: f64, nesterov: bool, weight_decay: f64) -> OptimSpec {
    OptimSpec {
        kind,
        lr: 0.05,
        momentum,
        nesterov,
        weight_decay,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    }
}

/// Several steps of the trainer's own `Optimizer` and of the kernel on the same random
/// parameters and gradients; parameters and buffers must agree.
fn optimiser_case(s: &OptimSpec, steps: usize) {
    const N: usize = 777;
    let mut rng = Rng(7);
    let p0: Vec<f32> = (0..N).map(|_| rng.uniform(-2.0, 2.0)).collect();
    let var = Var::from_vec(p0.clone(), N, &Device::Cpu).unwrap();
    let mut params = BTreeMap::new();
    params.insert("w".to_string(), var.clone());
    let mut opt = Optimizer::new(s);
    let mut p = p0;
    let (mut a, mut b) = (vec![f32::NAN; N], vec![f32::NAN; N]);
    for t in 1..=steps {
        // Gradients of mixed scales, including exact zeros.
        let g: Vec<f32> = (0..N)
            .map(|i| {
                if i % 50 == 0 {
                    0.0
                } else {
                    rng.uniform(-1.0, 1.0) * [1e-3, 1.0, 30.0][i % 3]
                }
            })
            .collect();
        let gt = Tensor::from_vec(g.clone(), N, &Device::Cpu).unwrap();
        let mut grads = (var.as_tensor() * &gt)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        grads.insert(var.as_tensor(), gt);
        opt.step(&params, &grads, s.lr).unwrap();
        match s.kind {
            OptimizerKind::Sgd => {
                let k = Sgd {
                    lr: s.lr,
                    momentum: s.momentum,
                    nesterov: s.nesterov,
                    weight_decay: s.weight_decay,
                };
                kh::sgd_step(&k, &mut p, &g, &mut a, t == 1).unwrap();
            }
            OptimizerKind::Adamw => {
                let k = AdamW {
                    lr: s.lr,
                    beta1: s.beta1,
                    beta2: s.beta2,
                    eps: s.eps,
                    weight_decay: s.weight_decay,
                };
                kh::adamw_step(&k, t as u64, &mut p, &g, &mut a, &mut b, t == 1).unwrap();
            }
        }
        let what = format!("{s:?} step {t}");
        let want = var.as_tensor().to_vec1::<f32>().unwrap();
        assert_same(&format!("{what}: parameters"), &p, &want);
        let state = opt.state_tensors().unwrap();
        let buffers: Vec<(&str, &Vec<f32>)> = match s.kind {
            OptimizerKind::Sgd if s.momentum != 0.0 => vec![("momentum_buffer", &a)],
            OptimizerKind::Sgd => vec![],
            OptimizerKind::Adamw => vec![("exp_avg", &a), ("exp_avg_sq", &b)],
        };
        assert_eq!(state.len(), buffers.len(), "{what}: buffers");
        for (name, got) in buffers {
            assert_same(
                &format!("{what}: {name}"),
                got,
                &state[&state_name("w", name)].data,
            );
        }
    }
}

#[test]
fn sgd_matches_the_trainers_optimiser() {
    for (momentum, nesterov, wd) in [
        (0.9, false, 0.0),
        (0.9, false, 5e-4),
        (0.9, true, 5e-4),
        (0.0, false, 1e-2),
        (0.5, true, 0.0),
    ] {
        optimiser_case(&spec(OptimizerKind::Sgd, momentum, nesterov, wd), 6);
    }
}

#[test]
fn adamw_matches_the_trainers_optimiser() {
    for wd in [0.0, 0.01, 0.3] {
        optimiser_case(&spec(OptimizerKind::Adamw, 0.0, false, wd), 6);
    }
}

#[test]
fn nonfinite_count_counts_nan_and_inf_beyond_one_grid() {
    // Longer than one grid of the launcher (1024 blocks × 256 threads): the grid-stride loop runs.
    let n = 300_001;
    let mut x: Vec<f32> = (0..n).map(|i| (i as f32).sin() * 1e30).collect();
    for (i, v) in [
        (0, f32::NAN),
        (1, f32::INFINITY),
        (262_143, f32::NEG_INFINITY),
        (262_144, f32::NAN),
        (n - 1, f32::NAN),
    ] {
        x[i] = v;
    }
    x[5] = f32::MAX;
    x[6] = f32::MIN_POSITIVE / 4.0; // subnormal: finite
    let want = x.iter().filter(|v| !v.is_finite()).count() as u32;
    assert_eq!(want, 5);
    let mut count = 3;
    kh::nonfinite_count(&x, &mut count).unwrap();
    assert_eq!(count, 3 + want);
    let mut none = 0;
    kh::nonfinite_count(&[], &mut none).unwrap();
    assert_eq!(none, 0);
}

/// Per-row cross-entropy and argmax hits as the trainer's CPU evaluation computes them (candle).
fn candle_loss_correct(logits: &[f32], labels: &[u32], k: usize) -> (Vec<f64>, u32) {
    let b = labels.len();
    let z = Tensor::from_vec(logits.to_vec(), (b, k), &Device::Cpu).unwrap();
    let y = Tensor::from_vec(labels.to_vec(), b, &Device::Cpu).unwrap();
    let ls = candle_nn::ops::log_softmax(&z, 1).unwrap();
    let picked = ls
        .gather(&y.unsqueeze(1).unwrap(), 1)
        .unwrap()
        .flatten_all()
        .unwrap();
    let rows = picked
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|&v| -(v as f64))
        .collect();
    let hits = z
        .argmax(1)
        .unwrap()
        .eq(&y)
        .unwrap()
        .to_dtype(candle_core::DType::U32)
        .unwrap();
    (rows, hits.sum_all().unwrap().to_scalar::<u32>().unwrap())
}

#[test]
fn loss_and_correct_match_candle() {
    let mut rng = Rng(99);
    for (b, k) in [(1, 2), (37, 5), (64, 10), (3, 1)] {
        let mut logits: Vec<f32> = (0..b * k).map(|_| rng.uniform(-8.0, 8.0)).collect();
        let labels: Vec<u32> = (0..b).map(|_| rng.below(k) as u32).collect();
        if b > 3 {
            // Tied rows (argmax: first index), saturated rows.
            logits[..k].fill(1.5);
            logits[k..2 * k].fill(0.0);
            logits[2 * k + 1] = 1e30;
            logits[2 * k + k - 1] = 1e30;
            logits[3 * k] = -1e30;
        }
        let (rows, want_correct) = candle_loss_correct(&logits, &labels, k);
        let want: f64 = rows.iter().sum();
        let scale: f64 = rows.iter().map(|v| v.abs()).sum();
        let (mut loss, mut correct) = (0.5f64, 2u32);
        kh::loss_correct_accumulate(&logits, &labels, k, &mut loss, &mut correct).unwrap();
        assert_close(&format!("loss B={b} K={k}"), loss - 0.5, want, scale, 1e-6);
        assert_eq!(correct - 2, want_correct, "correct B={b} K={k}");
        // The mean the trainer multiplies back by the batch size agrees too (f32 mean).
        let z = Tensor::from_vec(logits.clone(), (b, k), &Device::Cpu).unwrap();
        let y = Tensor::from_vec(labels.clone(), b, &Device::Cpu).unwrap();
        let mean = candle_nn::loss::cross_entropy(&z, &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_close(
            "mean",
            (loss - 0.5) / b as f64,
            mean as f64,
            scale / b as f64,
            1e-5,
        );
    }
}

#[test]
fn argmax_ties_and_nan_follow_candle() {
    let nan = f32::NAN;
    #[rustfmt::skip]
    let logits = [
        2.0, 2.0, 1.0,   // tie: index 0
        1.0, 3.0, 3.0,   // tie: index 1, not 2
        nan, 5.0, 1.0,   // NaN first: never replaced, index 0
        1.0, nan, 5.0,   // NaN later: never wins, index 2
    ];
    let (rows, want_correct) = candle_loss_correct(&logits, &[0, 1, 0, 2], 3);
    assert_eq!(want_correct, 4);
    for labels in [[0u32, 1, 0, 2], [1, 2, 1, 1]] {
        let (_, want) = candle_loss_correct(&logits, &labels, 3);
        let (mut loss, mut correct) = (0.0, 0);
        kh::loss_correct_accumulate(&logits, &labels, 3, &mut loss, &mut correct).unwrap();
        assert_eq!(correct, want, "labels {labels:?}");
        assert!(loss.is_nan() && rows.iter().any(|v| v.is_nan()));
    }
    // Rows without NaN: finite.
    let (mut loss, mut correct) = (0.0, 0);
    kh::loss_correct_accumulate(&logits[..6], &[0, 1], 3, &mut loss, &mut correct).unwrap();
    assert_eq!(correct, 2);
    assert_close("tied rows", loss, rows[0] + rows[1], 2.0, 1e-6);
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let planes = Planes {
        batch: 1,
        channels: 2,
        h: 4,
        w: 4,
        layout: Layout::ImageMajor,
    };
    let (mut out, mut codes) = (vec![0.0; 8], vec![0u8; 8]);
    assert!(bias_relu_pool_fwd(planes, &[0.0; 31], &[0.0; 2], &mut out, &mut codes).is_err());
    assert!(bias_relu_pool_fwd(planes, &[0.0; 32], &[0.0; 1], &mut out, &mut codes).is_err());
    assert!(bias_relu_pool_fwd(planes, &[0.0; 32], &[0.0; 2], &mut out[..7], &mut codes).is_err());
    assert!(bias_relu_pool_bwd(planes, &[0.0; 8], &codes, &mut [0.0; 33]).is_err());
    assert!(bias_grad(planes, &[0.0; 8], &codes[..4], &mut [0.0; 2]).is_err());
    let huge = Planes {
        batch: usize::MAX,
        ..planes
    };
    assert!(bias_relu_pool_fwd(huge, &[], &[0.0; 2], &mut [], &mut []).is_err());
    let p = Patches {
        batch: 1,
        cin: 1,
        h: 4,
        w: 4,
        k: 3,
        pad: 0,
        hc: 3, // the conv output is 2×2
        wc: 2,
        layout: Layout::ChannelMajor,
    };
    assert!(kh::im2col(p, &[0.0; 16], &mut [0.0; 54]).is_err());
    assert!(kh::im2col(Patches { hc: 2, ..p }, &[0.0; 16], &mut [0.0; 35]).is_err());
    assert!(kh::im2col(Patches { hc: 2, ..p }, &[0.0; 16], &mut [0.0; 36]).is_ok());
    let sgd = Sgd {
        lr: 0.1,
        momentum: 0.9,
        nesterov: false,
        weight_decay: 0.0,
    };
    assert!(kh::sgd_step(&sgd, &mut [0.0; 3], &[0.0; 3], &mut [], true).is_err());
    let plain = Sgd {
        momentum: 0.0,
        ..sgd
    };
    assert!(kh::sgd_step(&plain, &mut [1.0; 3], &[1.0; 3], &mut [], true).is_ok());
    let adamw = AdamW {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let (mut m, mut v) = ([0.0; 3], [0.0; 3]);
    assert!(kh::adamw_step(&adamw, 0, &mut [0.0; 3], &[0.0; 3], &mut m, &mut v, true).is_err());
    assert!(kh::adamw_step(&adamw, 1, &mut [0.0; 3], &[0.0; 2], &mut m, &mut v, true).is_err());
    let (mut loss, mut correct) = (0.0, 0);
    assert!(kh::loss_correct_accumulate(&[0.0; 6], &[0, 3], 3, &mut loss, &mut correct).is_err());
    assert!(kh::loss_correct_accumulate(&[0.0; 5], &[0, 1], 3, &mut loss, &mut correct).is_err());
    assert!(kh::loss_correct_accumulate(&[], &[], 0, &mut loss, &mut correct).is_err());
    assert_eq!((loss, correct), (0.0, 0));
}
