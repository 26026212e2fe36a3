//! How the fused block sits in candle's autograd: no input gradient for the data batch, correct
//! input gradients deeper in the stack, bit-identical results whatever the rayon thread count,
//! dispatch to the reference off the CPU-f32 path, and errors instead of panics on bad shapes.

mod common;

use ballast_kernels::{fused, reference};
use candle_core::{DType, Device, Result, Tensor, Var};
use common::*;

/// Three blocks (1→4→6→8 channels, 5×5 "same", pool) on a 2×1×20×18 data batch.
struct Stack {
    x: Tensor,
    params: Vec<(Var, Var)>,
}

fn stack() -> Result<Stack> {
    let mut r = rng("stack");
    let dev = Device::Cpu;
    let x = Tensor::from_vec(uniform(&mut r, 2 * 20 * 18, 0.0, 1.0), (2, 1, 20, 18), &dev)?;
    let mut params = Vec::new();
    let mut cin = 1;
    for cout in [4, 6, 8] {
        let bound = 1.0 / ((cin * 25) as f64).sqrt();
        let w = Var::from_vec(
            uniform(&mut r, cout * cin * 25, -bound, bound),
            (cout, cin, 5, 5),
            &dev,
        )?;
        let b = Var::from_vec(uniform(&mut r, cout, -bound, bound), cout, &dev)?;
        params.push((w, b));
        cin = cout;
    }
    Ok(Stack { x, params })
}

type Block = fn(&Tensor, &Tensor, &Tensor, usize, bool) -> Result<Tensor>;

/// Runs the stack with `f`; returns the activations (input of each block, then the output) and
/// the gradients of Σ out·r.
fn run(s: &Stack, f: Block) -> Result<(Vec<Tensor>, candle_core::backprop::GradStore)> {
    let mut acts = vec![s.x.clone()];
    for (w, b) in &s.params {
        let h = f(
            acts.last().unwrap_or(&s.x),
            w.as_tensor(),
            b.as_tensor(),
            2,
            true,
        )?;
        acts.push(h);
    }
    let out = acts.last().unwrap_or(&s.x);
    let r = Tensor::arange(0f32, out.elem_count() as f32, &Device::Cpu)?
        .reshape(out.shape())?
        .affine(0.01, -0.3)?;
    let grads = (out * r)?.sum_all()?.backward()?;
    Ok((acts, grads))
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

#[test]
fn the_data_batch_gets_no_input_gradient_and_deeper_inputs_do() -> Result<()> {
    let s = stack()?;
    let before = fused::input_grads_computed();
    let (acts, grads) = run(&s, ballast_kernels::conv_relu_pool)?;
    // Blocks 2 and 3 computed dX; block 1, whose input is the data batch, did not.
    assert_eq!(fused::input_grads_computed() - before, 2);
    assert!(
        grads.get(&s.x).is_none(),
        "no gradient stored for the data batch"
    );

    let (_, ref_grads) = run(&s, reference::conv_relu_pool)?;
    assert!(acts.len() == 4);
    for (i, (w, b)) in s.params.iter().enumerate() {
        for v in [w, b] {
            let (Some(g), Some(want)) = (grads.get(v.as_tensor()), ref_grads.get(v.as_tensor()))
            else {
                candle_core::bail!("missing parameter gradient in block {}", i + 1)
            };
            let e = rel_err(&flat(g)?, &to64(&flat(want)?), 1e-3);
            assert!(
                e < 2e-5,
                "block {} parameter gradient vs reference: {e:e}",
                i + 1
            );
        }
    }
    Ok(())
}

#[test]
fn deeper_input_gradients_match_the_reference() -> Result<()> {
    // candle keeps no gradients of intermediate tensors, so cut the stack after block 1: block
    // 1's output becomes a Var feeding blocks 2 and 3, whose dX then lands on it.
    let s = stack()?;
    let (w1, b1) = &s.params[0];
    let h1 = ballast_kernels::conv_relu_pool(&s.x, w1.as_tensor(), b1.as_tensor(), 2, true)?;
    let mut got = Vec::new();
    for f in [
        ballast_kernels::conv_relu_pool as Block,
        reference::conv_relu_pool,
    ] {
        let h1v = Var::from_tensor(&h1.detach())?;
        let cut = Stack {
            x: h1v.as_tensor().clone(),
            params: s.params[1..].to_vec(),
        };
        let (_, grads) = run(&cut, f)?;
        let Some(g) = grads.get(h1v.as_tensor()) else {
            candle_core::bail!("no gradient for block 2's input")
        };
        got.push(flat(g)?);
    }
    let e = rel_err(&got[0], &to64(&got[1]), 1e-3);
    assert!(e < 2e-5, "block 2 input gradient vs reference: {e:e}");
    assert!(got[0].iter().any(|&v| v != 0.0));
    Ok(())
}

#[test]
fn an_input_that_is_a_variable_gets_its_gradient() -> Result<()> {
    // The first layer's input does get dX when it is itself trainable (e.g. input optimisation).
    let c = Case {
        b: 2,
        cin: 3,
        h: 9,
        w: 8,
        cout: 4,
        k: 3,
        pad: 1,
        pool: true,
    };
    let (x, w, b) = inputs(&c, "var-input");
    let gy = uniform(&mut rng("var-input-gy"), c.y_len(), -1.0, 1.0);
    let before = fused::input_grads_computed();
    let (_, dx, _, _) = run_block(&c, &x, &w, &b, &gy, ballast_kernels::conv_relu_pool)?;
    assert_eq!(fused::input_grads_computed() - before, 1);
    let (ax, _, _) = direct_backward(&c, &to64(&x), &to64(&w), &to64(&b), &to64(&gy));
    assert!(rel_err(&dx, &ax, 1e-3) < 2e-5);
    Ok(())
}

/// Forward and all gradients of one block, as raw bits, inside a rayon pool of `threads`.
fn bits_with_threads(c: &Case, threads: usize) -> Result<Vec<Vec<u32>>> {
    let (x, w, b) = inputs(c, "threads");
    let gy = uniform(&mut rng("threads-gy"), c.y_len(), -1.0, 1.0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let (y, dx, dw, db) =
        pool.install(|| run_block(c, &x, &w, &b, &gy, ballast_kernels::conv_relu_pool))?;
    Ok([y, dx, dw, db]
        .iter()
        .map(|v| v.iter().map(|f| f.to_bits()).collect())
        .collect())
}

#[test]
fn results_are_bit_identical_whatever_the_thread_count() -> Result<()> {
    // Batches spanning several backward chunks (partial dW/db reduced across chunks), with and
    // without pool, a 1-channel input and wider ones.
    let cases = [
        Case {
            b: 37,
            cin: 1,
            h: 24,
            w: 22,
            cout: 6,
            k: 5,
            pad: 2,
            pool: true,
        },
        Case {
            b: 29,
            cin: 6,
            h: 12,
            w: 13,
            cout: 16,
            k: 5,
            pad: 2,
            pool: true,
        },
        Case {
            b: 19,
            cin: 3,
            h: 9,
            w: 9,
            cout: 5,
            k: 3,
            pad: 0,
            pool: false,
        },
        // Small batches: backward chunks of one image each, fewer blocks than some pools.
        Case {
            b: 1,
            cin: 6,
            h: 32,
            w: 32,
            cout: 16,
            k: 5,
            pad: 2,
            pool: true,
        },
        Case {
            b: 2,
            cin: 16,
            h: 16,
            w: 15,
            cout: 32,
            k: 5,
            pad: 2,
            pool: true,
        },
    ];
    for c in &cases {
        let one = bits_with_threads(c, 1)?;
        for threads in [2, 3] {
            let many = bits_with_threads(c, threads)?;
            for (i, name) in ["y", "dx", "dw", "db"].iter().enumerate() {
                assert!(
                    one[i] == many[i],
                    "{c:?}: {name} differs between 1 and {threads} threads"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn inference_matches_training_forward() -> Result<()> {
    let c = Case {
        b: 3,
        cin: 2,
        h: 11,
        w: 10,
        cout: 4,
        k: 5,
        pad: 2,
        pool: true,
    };
    let (x, w, b) = inputs(&c, "inference");
    let dev = Device::Cpu;
    let (xt, wt, bt) = (
        Tensor::from_vec(x.clone(), c.x_shape(), &dev)?,
        Tensor::from_vec(w.clone(), c.w_shape(), &dev)?,
        Tensor::from_vec(b.clone(), c.cout, &dev)?,
    );
    let y = ballast_kernels::conv_relu_pool(&xt, &wt, &bt, c.pad, c.pool)?;
    let gy = vec![0.0; c.y_len()];
    let (y_train, ..) = run_block(&c, &x, &w, &b, &gy, ballast_kernels::conv_relu_pool)?;
    assert_eq!(flat(&y)?, y_train);
    Ok(())
}

#[test]
fn strided_inputs_and_other_dtypes_work() -> Result<()> {
    let c = Case {
        b: 2,
        cin: 2,
        h: 7,
        w: 9,
        cout: 3,
        k: 3,
        pad: 1,
        pool: true,
    };
    let (x, w, b) = inputs(&c, "layouts");
    let dev = Device::Cpu;
    let xt = Tensor::from_vec(x, c.x_shape(), &dev)?;
    let (wt, bt) = (
        Tensor::from_vec(w, c.w_shape(), &dev)?,
        Tensor::from_vec(b, c.cout, &dev)?,
    );
    let want = flat(&reference::conv_relu_pool(&xt, &wt, &bt, c.pad, c.pool)?)?;
    // A non-contiguous view of the same values (transposed twice).
    let xs = xt.transpose(2, 3)?.contiguous()?.transpose(2, 3)?;
    assert!(!xs.is_contiguous());
    let got = flat(&ballast_kernels::conv_relu_pool(
        &xs, &wt, &bt, c.pad, c.pool,
    )?)?;
    assert!(rel_err(&got, &to64(&want), 1e-3) < 1e-5);
    // f64 is not the fused kernel's dtype: it goes through the reference, with the same result.
    let (x64, w64, b64) = (
        xt.to_dtype(DType::F64)?,
        wt.to_dtype(DType::F64)?,
        bt.to_dtype(DType::F64)?,
    );
    let y64 = ballast_kernels::conv_relu_pool(&x64, &w64, &b64, c.pad, c.pool)?;
    assert_eq!(y64.dtype(), DType::F64);
    let got = flat(&y64.to_dtype(DType::F32)?)?;
    assert!(rel_err(&got, &to64(&want), 1e-3) < 1e-5);
    Ok(())
}

#[test]
fn bad_shapes_are_errors_not_panics() -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::zeros((1, 2, 8, 8), DType::F32, &dev)?;
    let w = Tensor::zeros((3, 2, 3, 3), DType::F32, &dev)?;
    let b = Tensor::zeros(3, DType::F32, &dev)?;
    let bad_w = Tensor::zeros((3, 4, 3, 3), DType::F32, &dev)?;
    let bad_b = Tensor::zeros(4, DType::F32, &dev)?;
    let tiny = Tensor::zeros((1, 2, 2, 2), DType::F32, &dev)?;
    assert!(ballast_kernels::conv_relu_pool(&x, &bad_w, &b, 0, true).is_err());
    assert!(ballast_kernels::conv_relu_pool(&x, &w, &bad_b, 0, true).is_err());
    assert!(ballast_kernels::conv_relu_pool(&tiny, &w, &b, 0, false).is_err());
    assert!(ballast_kernels::conv_relu_pool(&x.flatten_all()?, &w, &b, 0, false).is_err());
    assert!(ballast_kernels::conv_relu_pool(&x, &w, &b, 1, true).is_ok());
    // An empty batch is fine: an empty output, and no gradient work to do.
    let none = Var::zeros((0, 2, 8, 8), DType::F32, &dev)?;
    let wv = Var::from_tensor(&w)?;
    let y = ballast_kernels::conv_relu_pool(none.as_tensor(), wv.as_tensor(), &b, 1, true)?;
    assert_eq!(y.dims(), &[0, 3, 4, 4]);
    let grads = y.sum_all()?.backward()?;
    assert!(grads.get(wv.as_tensor()).is_some());
    Ok(())
}
