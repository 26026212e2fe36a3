//! Forward and gradients of the fused CPU block and of the plain-candle reference, against a
//! direct f64 implementation and f64 central differences, on fixed and random shapes (odd sizes,
//! batch 1, one and several input channels, pool on and off, padding 0 and 2, kernels 3 and 5).

mod common;

use ballast_kernels::reference;
use candle_core::Result;
use common::*;

/// Multiply-adds of finite differences allowed per case.
const FD_BUDGET: usize = 40_000_000;

fn fixed_cases() -> Vec<Case> {
    let c = |b, cin, h, w, cout, k, pad, pool| Case {
        b,
        cin,
        h,
        w,
        cout,
        k,
        pad,
        pool,
    };
    vec![
        c(1, 1, 7, 9, 3, 3, 0, true),  // batch 1, one channel, odd map 5×7 → 2×3
        c(2, 3, 9, 7, 4, 5, 2, true),  // odd sizes, "same" 5×5
        c(3, 2, 8, 8, 5, 5, 0, false), // valid, no pool
        c(1, 4, 6, 5, 2, 3, 2, false), // padding wider than needed: output 8×7
        c(2, 1, 11, 10, 6, 5, 2, true), // the first layer's shape, small
        c(2, 2, 5, 5, 3, 3, 0, true),  // 3×3 → 1×1 pool, odd row/column dropped
        c(5, 16, 8, 8, 32, 5, 2, true), // the third layer's channels at 32×32 input
        c(1, 6, 12, 12, 16, 5, 0, true), // the second layer's channels, valid
    ]
}

fn random_cases(n: usize) -> Vec<Case> {
    let mut r = rng("random-shapes");
    let mut pick = |lo: u64, hi: u64| (lo + r.below(hi - lo + 1)) as usize;
    let mut out = Vec::new();
    while out.len() < n {
        let k = if pick(0, 1) == 0 { 3 } else { 5 };
        let pad = if pick(0, 1) == 0 { 0 } else { 2 };
        let c = Case {
            b: pick(1, 4),
            cin: pick(1, 4),
            h: pick(3, 13),
            w: pick(3, 13),
            cout: pick(1, 7),
            k,
            pad,
            pool: pick(0, 1) == 1,
        };
        let ok =
            c.h + 2 * pad >= k && c.w + 2 * pad >= k && (!c.pool || (c.ho() >= 2 && c.wo() >= 2));
        if ok {
            out.push(c);
        }
    }
    out
}

/// Checks one block implementation on one case; `what` names it in failures.
fn check(c: &Case, tag: &str, what: &str, f: Block) -> Result<bool> {
    let (x, w, b) = inputs(c, tag);
    let gy = uniform(&mut rng(&format!("{tag}-gy")), c.y_len(), -1.0, 1.0);
    let (x64, w64, b64, gy64) = (to64(&x), to64(&w), to64(&b), to64(&gy));
    let (y, dx, dw, db) = run_block(c, &x, &w, &b, &gy, f)?;

    let y_want = direct_forward(c, &x64, &w64, &b64);
    let e = rel_err(&y, &y_want, 1e-3);
    assert!(e < 1e-5, "{what} {c:?}: forward rel err {e:e}");

    let (ax, aw, ab) = direct_backward(c, &x64, &w64, &b64, &gy64);
    // Central differences cost two forwards per input element: only on small cases (the large
    // ones are checked against the direct analytic gradient, itself checked against them here).
    let forward_macs = c.y_len() * c.w_len() / c.cout * if c.pool { 4 } else { 1 };
    let small = (c.x_len() + c.w_len() + c.cout) * forward_macs <= FD_BUDGET;
    if small {
        let (fx, fw, fb) = finite_differences(c, &x64, &w64, &b64, &gy64);
        for (name, got, want) in [("dx", &dx, &fx), ("dw", &dw, &fw), ("db", &db, &fb)] {
            let e = rel_err(got, want, 1e-3);
            assert!(
                e < 1e-4,
                "{what} {c:?}: {name} vs finite differences rel err {e:e}"
            );
        }
        for (name, got, want) in [("dx", &ax, &fx), ("dw", &aw, &fw), ("db", &ab, &fb)] {
            let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
            let e = got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
                / scale;
            assert!(
                e < 1e-6,
                "direct {c:?}: {name} vs finite differences rel err {e:e}"
            );
        }
    }
    for (name, got, want) in [("dx", &dx, &ax), ("dw", &dw, &aw), ("db", &db, &ab)] {
        let e = rel_err(got, want, 1e-3);
        assert!(e < 2e-5, "{what} {c:?}: {name} vs direct f64 rel err {e:e}");
    }
    Ok(small)
}

type Block = fn(
    &candle_core::Tensor,
    &candle_core::Tensor,
    &candle_core::Tensor,
    usize,
    bool,
) -> Result<candle_core::Tensor>;

/// Runs [`check`] on every case; at least `min_fd` of them must be small enough for finite
/// differences.
fn check_all(cases: &[Case], tag: &str, what: &str, f: Block, min_fd: usize) -> Result<()> {
    let mut fd = 0;
    for (i, c) in cases.iter().enumerate() {
        fd += usize::from(check(c, &format!("{tag}-{i}"), what, f)?);
    }
    assert!(
        fd >= min_fd,
        "only {fd} of {} cases had finite differences",
        cases.len()
    );
    Ok(())
}

#[test]
fn fused_block_matches_finite_differences_on_fixed_shapes() -> Result<()> {
    check_all(
        &fixed_cases(),
        "fixed",
        "fused",
        ballast_kernels::conv_relu_pool,
        5,
    )
}

#[test]
fn fused_block_matches_finite_differences_on_random_shapes() -> Result<()> {
    check_all(
        &random_cases(24),
        "random",
        "fused",
        ballast_kernels::conv_relu_pool,
        8,
    )
}

#[test]
fn reference_block_matches_finite_differences() -> Result<()> {
    // The yardstick itself: right on data without exact ties (see tests/semantics.rs for ties).
    let cases: Vec<Case> = fixed_cases().into_iter().chain(random_cases(12)).collect();
    check_all(&cases, "ref", "reference", reference::conv_relu_pool, 8)
}

#[test]
fn fused_and_reference_agree_on_random_shapes() -> Result<()> {
    for (i, c) in random_cases(16).iter().enumerate() {
        let (x, w, b) = inputs(c, &format!("agree-{i}"));
        let gy = uniform(&mut rng(&format!("agree-gy-{i}")), c.y_len(), -1.0, 1.0);
        let got = run_block(c, &x, &w, &b, &gy, ballast_kernels::conv_relu_pool)?;
        let want = run_block(c, &x, &w, &b, &gy, reference::conv_relu_pool)?;
        for (name, g, r) in [
            ("y", &got.0, &want.0),
            ("dx", &got.1, &want.1),
            ("dw", &got.2, &want.2),
            ("db", &got.3, &want.3),
        ] {
            let e = rel_err(g, &to64(r), 1e-3);
            let tol = if name == "y" { 1e-5 } else { 2e-5 };
            assert!(e < tol, "{c:?}: {name} fused vs reference rel err {e:e}");
        }
    }
    Ok(())
}
