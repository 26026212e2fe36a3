//! Where PyTorch's semantics and candle's differ: exact ties in the max-pool window and ReLU at
//! exactly zero. The fused CPU block follows PyTorch; these tests pin that down, and pin down
//! what the plain-candle reference does instead (and why the reference avoids candle's own
//! `max_pool2d`).

mod common;

use ballast_kernels::reference;
use candle_core::{D, Device, Result, Tensor, Var};
use common::*;

fn case(pool: bool) -> Case {
    Case {
        b: 2,
        cin: 2,
        h: 6,
        w: 7,
        cout: 3,
        k: 3,
        pad: 0,
        pool,
    }
}

/// Zero input: every conv output equals the bias exactly, so every pooling window is a 4-way tie.
#[test]
fn pool_ties_send_the_gradient_to_the_first_window_element_only() -> Result<()> {
    let c = case(true);
    let (_, w, _) = inputs(&c, "ties");
    let x = vec![0.0f32; c.x_len()];
    let b = vec![0.5f32, 0.25, 0.125];
    let gy = uniform(&mut rng("ties-gy"), c.y_len(), -1.0, 1.0);
    let (y, dx, dw, db) = run_block(&c, &x, &w, &b, &gy, ballast_kernels::conv_relu_pool)?;
    let (ax, aw, ab) = direct_backward(&c, &to64(&x), &to64(&w), &to64(&b), &to64(&gy));
    assert!(
        rel_err(
            &y,
            &direct_forward(&c, &to64(&x), &to64(&w), &to64(&b)),
            1e-3
        ) < 1e-6
    );
    assert!(
        rel_err(&dx, &ax, 1e-3) < 1e-6,
        "dx routes through the first element only"
    );
    assert!(rel_err(&dw, &aw, 1e-3) < 1e-6);
    assert!(rel_err(&db, &ab, 1e-3) < 1e-6);
    // Each window passes its gradient once: db[co] = Σ gy over co's outputs.
    let per = c.y_len() / (c.b * c.cout);
    for (co, &got) in db.iter().enumerate() {
        let want: f64 = (0..c.b)
            .flat_map(|n| (0..per).map(move |i| (n * c.cout + co) * per + i))
            .map(|i| gy[i] as f64)
            .sum();
        assert!((got as f64 - want).abs() < 1e-5, "db[{co}] {got} vs {want}");
    }

    // The reference (candle's `max` backward) gives the gradient to all four tied elements, so
    // its db is four times PyTorch's: the one remaining difference between the two paths.
    let (_, _, _, db_ref) = run_block(&c, &x, &w, &b, &gy, reference::conv_relu_pool)?;
    for co in 0..c.cout {
        assert!(
            (db_ref[co] - 4.0 * db[co]).abs() < 1e-4,
            "{} vs 4×{}",
            db_ref[co],
            db[co]
        );
    }
    Ok(())
}

/// Zero input and zero bias: every pre-activation is exactly 0, where PyTorch's ReLU gradient is 0.
#[test]
fn relu_gradient_is_zero_at_exactly_zero() -> Result<()> {
    for pool in [false, true] {
        let c = case(pool);
        let (_, w, _) = inputs(&c, "relu0");
        let x = vec![0.0f32; c.x_len()];
        let b = vec![0.0f32; c.cout];
        let gy = uniform(&mut rng("relu0-gy"), c.y_len(), 0.5, 1.0);
        let (y, dx, dw, db) = run_block(&c, &x, &w, &b, &gy, ballast_kernels::conv_relu_pool)?;
        assert!(y.iter().all(|&v| v == 0.0));
        for (name, g) in [("dx", &dx), ("dw", &dw), ("db", &db)] {
            assert!(
                g.iter().all(|&v| v == 0.0),
                "pool {pool}: {name} must be 0: {g:?}"
            );
        }
        // candle's ReLU passes the gradient at 0 (its mask is x >= 0): the reference's db is not 0.
        let (_, _, _, db_ref) = run_block(&c, &x, &w, &b, &gy, reference::conv_relu_pool)?;
        assert!(
            db_ref.iter().all(|&v| v > 0.0),
            "pool {pool}: reference db {db_ref:?}"
        );
    }
    Ok(())
}

#[test]
fn nan_propagates_forward_like_pytorch() -> Result<()> {
    // A diverged weight must not be hidden by ReLU or the pool: outputs it touches are NaN.
    let c = case(true);
    let (x, mut w, b) = inputs(&c, "nan");
    w[0] = f32::NAN;
    let y = ballast_kernels::conv_relu_pool(
        &Tensor::from_vec(x, c.x_shape(), &Device::Cpu)?,
        &Tensor::from_vec(w, c.w_shape(), &Device::Cpu)?,
        &Tensor::from_vec(b, c.cout, &Device::Cpu)?,
        c.pad,
        c.pool,
    )?;
    let y = y.flatten_all()?.to_vec1::<f32>()?;
    let per = y.len() / (c.b * c.cout);
    assert!(
        y[..per].iter().all(|v| v.is_nan()),
        "channel 0 of image 0 is NaN"
    );
    assert!(
        y[per..2 * per].iter().all(|v| v.is_finite()),
        "channel 1 is not"
    );
    Ok(())
}

/// Gradient of Σ pool(x)·r through `f`, for a 1×1×h×w input.
fn pool_grad(
    x: &[f32],
    h: usize,
    w: usize,
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Vec<f32>> {
    let xv = Var::from_vec(x.to_vec(), (1, 1, h, w), &Device::Cpu)?;
    let y = f(xv.as_tensor())?;
    let r = Tensor::arange(1f32, y.elem_count() as f32 + 1.0, &Device::Cpu)?.reshape(y.shape())?;
    let g = (&y * &r)?.sum_all()?.backward()?;
    match g.get(xv.as_tensor()) {
        Some(g) => g.flatten_all()?.to_vec1::<f32>(),
        None => candle_core::bail!("no gradient"),
    }
}

/// The right max-pool gradient: window (y2, x2)'s weight r = y2·(w/2) + x2 + 1 at its argmax.
fn pool_grad_want(x: &[f32], h: usize, w: usize) -> Vec<f32> {
    let mut g = vec![0.0; h * w];
    for y2 in 0..h / 2 {
        for x2 in 0..w / 2 {
            let mut best = (2 * y2) * w + 2 * x2;
            for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
                let i = (2 * y2 + dy) * w + 2 * x2 + dx;
                if x[i] > x[best] {
                    best = i;
                }
            }
            g[best] += (y2 * (w / 2) + x2 + 1) as f32;
        }
    }
    g
}

#[test]
fn candle_max_pool2d_backward_is_wrong_and_the_reference_pool_is_right() -> Result<()> {
    // Distinct values (no ties), even and odd sizes.
    for (h, w) in [(6, 6), (7, 7), (4, 6), (5, 4)] {
        let n = h * w;
        let x: Vec<f32> = (0..n).map(|i| ((i * 37) % n) as f32).collect();
        let want = pool_grad_want(&x, h, w);
        let ours = pool_grad(&x, h, w, reference::max_pool2)?;
        assert_eq!(ours, want, "reference max_pool2 {h}×{w}");
        let candle = pool_grad(&x, h, w, |t| t.max_pool2d(2))?;
        // candle 0.11's MaxPool2D backward scales every gradient by 1/4 (it multiplies by the
        // window's average of the max mask instead of dividing by the tie count), and for an odd
        // pre-pool size also misroutes it (upsample_nearest2d from the pooled size).
        assert_ne!(
            candle, want,
            "candle max_pool2d {h}×{w} (if this fails, candle was fixed)"
        );
        if h % 2 == 0 && w % 2 == 0 {
            let quarter: Vec<f32> = want.iter().map(|v| v / 4.0).collect();
            assert_eq!(
                candle, quarter,
                "candle max_pool2d {h}×{w}: a quarter of the gradient"
            );
        }
    }
    Ok(())
}

#[test]
fn candle_max_backward_gives_every_tied_element_the_full_gradient() -> Result<()> {
    let t = Var::new(&[[1f32, 3., 3., 2.]], &Device::Cpu)?;
    let g = t.max(D::Minus1)?.sum_all()?.backward()?;
    let Some(g) = g.get(t.as_tensor()) else {
        candle_core::bail!("no gradient")
    };
    assert_eq!(g.to_vec2::<f32>()?, vec![vec![0.0, 1.0, 1.0, 0.0]]);
    Ok(())
}
