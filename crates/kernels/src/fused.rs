//! The fused conv2d + bias + ReLU (+ 2×2 max-pool) block on the CPU, as one candle `CustomOp3`.
//!
//! Forward, per block of images (see [`Geometry::block_images`]): im2col into a per-thread
//! scratch matrix, one GEMM `W · col`, then an epilogue that adds the bias, applies ReLU and
//! pools, writing only the pooled map plus one byte per pooled output naming the window element
//! that won (or [`NO_GRAD`] when the maximum is not positive). Those bytes are all the op keeps
//! for backward: the pre-pool map is never stored.
//!
//! Backward, per fixed chunk of images: rebuild the conv-output gradient from the pooled
//! gradient and the saved bytes, recompute im2col, `dWᵀ += col · dconvᵀ` (accumulated over the
//! chunk inside the GEMM), and only when the input takes part in autograd, `dcol = Wᵀ · dconv`
//! followed by col2im. Chunk partials of dW/db are summed in chunk order.

use std::cell::Cell;
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor, bail};
use rayon::prelude::*;

use crate::geometry::{Geometry, NO_GRAD};
use crate::matmul::{Strides, sgemm};
use crate::patches::{col2im, im2col, pad_image, unpad};
use crate::scratch::with_scratch;

/// What backward needs to route the output gradient to the conv output.
#[derive(Clone, Copy)]
pub enum Mask<'a> {
    /// Pooled: one code per pooled output (0..4 row-major in the window, or [`NO_GRAD`]).
    Pool(&'a [u8]),
    /// Not pooled: the block's own output; ReLU passes gradient where it is > 0.
    Relu(&'a [f32]),
}

/// Gradients of one block. `dx` is `None` when the input needs none.
pub struct Grads {
    pub dx: Option<Vec<f32>>,
    pub dw: Vec<f32>,
    pub db: Vec<f32>,
}

/// Runs `f` compiled for the best SIMD level this CPU has (AVX-512 / AVX2+FMA / baseline),
/// detected at run time, so no `-C target-cpu` is needed. Everything `f` calls that should be
/// vectorised is `#[inline(always)]`. The GEMMs are dispatched by the gemm crate itself.
#[inline(always)]
fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `x` replaces the running maximum `m` under PyTorch's max-pool rule: strictly greater, or NaN
/// (so the first maximum in row-major window order wins, and NaN propagates).
#[inline(always)]
fn beats(x: f32, m: f32) -> bool {
    x > m || x.is_nan()
}

/// ReLU as PyTorch's (NaN passes through).
#[inline(always)]
fn relu(v: f32) -> f32 {
    if v > 0.0 || v.is_nan() { v } else { 0.0 }
}

/// Bias + ReLU + 2×2 max-pool of one conv-output plane (`hc`×`wc`, already even), writing the
/// pooled plane and, per output, the winning window element (0..4) or [`NO_GRAD`].
#[inline(always)]
fn pool_plane(g: &Geometry, plane: &[f32], bias: f32, out: &mut [f32], codes: &mut [u8]) {
    let (_, ow) = g.out_hw();
    let wc = g.wc();
    for (((rows, orow), crow), _) in plane
        .chunks_exact(2 * wc)
        .zip(out.chunks_exact_mut(ow))
        .zip(codes.chunks_exact_mut(ow))
        .zip(0..g.hc() / 2)
    {
        let (r0, r1) = rows.split_at(wc);
        for (((o, c), p0), p1) in orow
            .iter_mut()
            .zip(crow.iter_mut())
            .zip(r0.chunks_exact(2))
            .zip(r1.chunks_exact(2))
        {
            let (a, b, d, e) = (p0[0] + bias, p0[1] + bias, p1[0] + bias, p1[1] + bias);
            let (m, i) = if beats(b, a) { (b, 1u8) } else { (a, 0u8) };
            let (m, i) = if beats(d, m) { (d, 2u8) } else { (m, i) };
            let (m, i) = if beats(e, m) { (e, 3u8) } else { (m, i) };
            let y = relu(m);
            *o = y;
            // ReLU passes gradient only where its output is > 0 (PyTorch's threshold_backward).
            *c = if y == 0.0 { NO_GRAD } else { i };
        }
    }
}

/// Forward of one block of `yb.len() / out_image` images starting at image `i0`.
fn forward_block(
    g: &Geometry,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    i0: usize,
    yb: &mut [f32],
    cb: &mut [u8],
) {
    let (hw, ckk, cout, out_img, in_img) = (g.hw(), g.ckk(), g.cout, g.out_image(), g.in_image());
    let n = yb.len() / out_img;
    let j = n * hw;
    let oplane = out_img / cout;
    with_scratch(
        [ckk * j, cout * j, g.padded_image()],
        |[col, conv, xpad]| {
            simd(
                #[inline(always)]
                || {
                    for i in 0..n {
                        pad_image(g, &x[(i0 + i) * in_img..][..in_img], xpad);
                        im2col(g, xpad, col, j, i * hw);
                    }
                },
            );
            // conv[co][pix] = Σ_r W[co][r] · col[r][pix]; as (pix × co) = (pix × r)·(r × co), the
            // orientation the gemm crate's micro-kernels run fastest on for these shapes.
            sgemm(
                j,
                cout,
                ckk,
                conv,
                Strides::col_major(j),
                col,
                Strides::col_major(j),
                w,
                Strides::col_major(ckk),
                false,
            );
            simd(
                #[inline(always)]
                || {
                    for i in 0..n {
                        for (co, &bias) in b.iter().enumerate() {
                            let plane = &conv[co * j + i * hw..][..hw];
                            let at = (i * cout + co) * oplane;
                            let out = &mut yb[at..at + oplane];
                            if g.pool {
                                pool_plane(g, plane, bias, out, &mut cb[at..at + oplane]);
                            } else {
                                for (o, &p) in out.iter_mut().zip(plane) {
                                    *o = relu(p + bias);
                                }
                            }
                        }
                    }
                },
            );
        },
    );
}

/// Forward over the batch: the block's output, and for pooled blocks the per-output codes that
/// backward needs (empty without pool).
pub fn forward(g: &Geometry, x: &[f32], w: &[f32], b: &[f32]) -> (Vec<f32>, Vec<u8>) {
    let mut y = vec![0.0f32; g.batch * g.out_image()];
    let nb = g.block_images();
    let per_block = nb * g.out_image();
    if g.pool {
        let mut codes = vec![0u8; y.len()];
        y.par_chunks_mut(per_block)
            .zip(codes.par_chunks_mut(per_block))
            .enumerate()
            .for_each(|(bi, (yb, cb))| forward_block(g, x, w, b, bi * nb, yb, cb));
        (y, codes)
    } else {
        y.par_chunks_mut(per_block)
            .enumerate()
            .for_each(|(bi, yb)| forward_block(g, x, w, b, bi * nb, yb, &mut []));
        (y, Vec::new())
    }
}

/// Writes the conv-output gradient of image `img` into columns [off, off+hw) of `dconv`
/// (cout × ld) and adds its per-channel sums to `db`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn conv_grad(
    g: &Geometry,
    img: usize,
    mask: Mask,
    grad: &[f32],
    dconv: &mut [f32],
    ld: usize,
    off: usize,
    db: &mut [f32],
) {
    let (hw, oplane, wc) = (g.hw(), g.out_image() / g.cout, g.wc());
    let (_, ow) = g.out_hw();
    for (co, dbc) in db.iter_mut().enumerate() {
        let at = (img * g.cout + co) * oplane;
        let gp = &grad[at..at + oplane];
        let dst = &mut dconv[co * ld + off..co * ld + off + hw];
        match mask {
            Mask::Pool(codes) => {
                let cp = &codes[at..at + oplane];
                // Every computed position is written (the winner gets the gradient, the rest 0).
                for ((rows, grow), crow) in dst
                    .chunks_exact_mut(2 * wc)
                    .zip(gp.chunks_exact(ow))
                    .zip(cp.chunks_exact(ow))
                {
                    let (r0, r1) = rows.split_at_mut(wc);
                    for (((q0, q1), &gv), &c) in r0
                        .chunks_exact_mut(2)
                        .zip(r1.chunks_exact_mut(2))
                        .zip(grow)
                        .zip(crow)
                    {
                        q0[0] = if c == 0 { gv } else { 0.0 };
                        q0[1] = if c == 1 { gv } else { 0.0 };
                        q1[0] = if c == 2 { gv } else { 0.0 };
                        q1[1] = if c == 3 { gv } else { 0.0 };
                    }
                }
                *dbc += lane_sum(
                    gp.iter()
                        .zip(cp)
                        .map(|(&gv, &c)| if c != NO_GRAD { gv } else { 0.0 }),
                );
            }
            Mask::Relu(res) => {
                for ((d, &gv), &r) in dst.iter_mut().zip(gp).zip(&res[at..at + oplane]) {
                    // PyTorch's threshold_backward: gradient only where the output is > 0.
                    *d = if r <= 0.0 { 0.0 } else { gv };
                }
                *dbc += lane_sum(dst.iter().copied());
            }
        }
    }
}

/// Sum in 16 interleaved lanes, then the lanes in order: a fixed summation order (so results do
/// not depend on threads) that vectorises, unlike one serial chain of dependent adds.
#[inline(always)]
fn lane_sum(values: impl Iterator<Item = f32>) -> f32 {
    let mut lanes = [0.0f32; 16];
    for (i, v) in values.enumerate() {
        lanes[i % 16] += v;
    }
    lanes.iter().sum()
}

thread_local! {
    static INPUT_GRADS: Cell<usize> = const { Cell::new(0) };
}

/// How many input gradients (dX) [`backward`] has computed on this thread: lets tests prove that
/// the first layer's dX is never computed.
pub fn input_grads_computed() -> usize {
    INPUT_GRADS.with(Cell::get)
}

/// Backward of one chunk of `n` images from image `i0`: (dWᵀ [ckk][cout], db [cout]) partials.
#[allow(clippy::too_many_arguments)]
fn backward_chunk(
    g: &Geometry,
    i0: usize,
    n: usize,
    x: &[f32],
    w: &[f32],
    mask: Mask,
    grad: &[f32],
    mut dx: Option<&mut [f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let (hw, ckk, cout, in_img) = (g.hw(), g.ckk(), g.cout, g.in_image());
    let nb = g.block_images();
    let mut dwt = vec![0.0f32; ckk * cout];
    let mut db = vec![0.0f32; cout];
    for (bi, s) in (0..n).step_by(nb).enumerate() {
        let m = nb.min(n - s);
        let j = m * hw;
        with_scratch(
            [ckk * j, cout * j, g.padded_image()],
            |[col, dconv, pad]| {
                simd(
                    #[inline(always)]
                    || {
                        for i in 0..m {
                            conv_grad(g, i0 + s + i, mask, grad, dconv, j, i * hw, &mut db);
                            pad_image(g, &x[(i0 + s + i) * in_img..][..in_img], pad);
                            im2col(g, pad, col, j, i * hw);
                        }
                    },
                );
                // dWᵀ[r][co] (+)= Σ_pix dconv[co][pix] · col[r][pix], accumulated over the chunk.
                sgemm(
                    cout,
                    ckk,
                    j,
                    &mut dwt,
                    Strides::col_major(cout),
                    dconv,
                    Strides::row_major(j),
                    col,
                    Strides::col_major(j),
                    bi > 0,
                );
                if let Some(dx) = dx.as_deref_mut() {
                    // dcol[r][pix] = Σ_co W[co][r] · dconv[co][pix], into the (now free) col buffer.
                    sgemm(
                        j,
                        ckk,
                        cout,
                        col,
                        Strides::col_major(j),
                        dconv,
                        Strides::col_major(j),
                        w,
                        Strides::row_major(ckk),
                        false,
                    );
                    simd(
                        #[inline(always)]
                        || {
                            for i in 0..m {
                                col2im(g, col, j, i * hw, pad);
                                unpad(g, pad, &mut dx[(s + i) * in_img..][..in_img]);
                            }
                        },
                    );
                }
            },
        );
    }
    (dwt, db)
}

/// Backward over the batch: dW and db always, dX only when `need_dx`.
pub fn backward(
    g: &Geometry,
    x: &[f32],
    w: &[f32],
    mask: Mask,
    grad: &[f32],
    need_dx: bool,
) -> Grads {
    let (ckk, cout, in_img) = (g.ckk(), g.cout, g.in_image());
    let chunk = g.chunk_images();
    let nchunks = g.batch.div_ceil(chunk);
    let images = |c: usize| chunk.min(g.batch - c * chunk);
    let mut dx = need_dx.then(|| vec![0.0f32; g.batch * in_img]);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = match dx.as_mut() {
        Some(dx) => dx
            .par_chunks_mut(chunk * in_img)
            .enumerate()
            .map(|(c, dxc)| backward_chunk(g, c * chunk, images(c), x, w, mask, grad, Some(dxc)))
            .collect(),
        None => (0..nchunks)
            .into_par_iter()
            .map(|c| backward_chunk(g, c * chunk, images(c), x, w, mask, grad, None))
            .collect(),
    };
    if need_dx {
        INPUT_GRADS.with(|c| c.set(c.get() + 1));
    }
    // Fixed-order reduction of the chunk partials (never by thread), transposing dWᵀ to OIHW.
    let mut dw = vec![0.0f32; cout * ckk];
    let mut db = vec![0.0f32; cout];
    for (dwt, dbc) in &partials {
        for (r, row) in dwt.chunks_exact(cout).enumerate() {
            for (co, &v) in row.iter().enumerate() {
                dw[co * ckk + r] += v;
            }
        }
        for (d, &v) in db.iter_mut().zip(dbc) {
            *d += v;
        }
    }
    Grads { dx, dw, db }
}

/// The candle op. One instance per call: it holds what forward saved for backward.
pub struct ConvReluPool {
    pad: usize,
    pool: bool,
    /// Keep the pool codes (false for inference, where no backward will come).
    save: bool,
    codes: Mutex<Option<Vec<u8>>>,
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!("conv_relu_pool: {what} must be contiguous"),
    }
}

/// Runs `f` on the contiguous f32 CPU data of a tensor.
fn with_data<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(cpu) => f(f32_slice(cpu, l, what)?),
        _ => bail!("conv_relu_pool: {what} is not on the CPU"),
    }
}

impl CustomOp3 for ConvReluPool {
    fn name(&self) -> &'static str {
        "ballast-conv-relu-pool"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(l1.dims(), l2.dims(), l3.dims(), self.pad, self.pool)?;
        let (x, w, b) = (
            f32_slice(s1, l1, "x")?,
            f32_slice(s2, l2, "w")?,
            f32_slice(s3, l3, "b")?,
        );
        let (y, codes) = forward(&g, x, w, b);
        if self.save && self.pool {
            *self
                .codes
                .lock()
                .map_err(|_| candle_core::Error::Msg("poisoned".into()))? = Some(codes);
        }
        Ok((CpuStorage::F32(y), Shape::from(g.out_dims())))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = Geometry::new(x.dims(), w.dims(), b.dims(), self.pad, self.pool)?;
        // The data batch (first layer's input) is not a variable and has no op: no one needs its
        // gradient, and skipping it is most of the first layer's backward.
        let need_dx = x.track_op();
        let saved = self
            .codes
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
        let grads = with_data(x, "x", |xs| {
            with_data(w, "w", |ws| {
                with_data(grad, "grad", |gs| {
                    if self.pool {
                        let Some(codes) = saved.as_deref() else {
                            bail!("conv_relu_pool: backward without saved pooling state")
                        };
                        Ok(backward(&g, xs, ws, Mask::Pool(codes), gs, need_dx))
                    } else {
                        with_data(res, "res", |rs| {
                            Ok(backward(&g, xs, ws, Mask::Relu(rs), gs, need_dx))
                        })
                    }
                })
            })
        })?;
        let dev = x.device();
        let dx = match grads.dx {
            Some(dx) => Some(Tensor::from_vec(dx, x.shape(), dev)?),
            None => None,
        };
        let dw = Tensor::from_vec(grads.dw, w.shape(), dev)?;
        let db = Tensor::from_vec(grads.db, b.shape(), dev)?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// The fused block on CPU f32 tensors.
pub fn conv_relu_pool(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    pad: usize,
    pool: bool,
) -> Result<Tensor> {
    Geometry::new(x.dims(), w.dims(), b.dims(), pad, pool)?;
    let (x, w, b) = (x.contiguous()?, w.contiguous()?, b.contiguous()?);
    let train = x.track_op() || w.track_op() || b.track_op();
    let op = ConvReluPool {
        pad,
        pool,
        save: train,
        codes: Mutex::new(None),
    };
    if train {
        x.apply_op3(&w, &b, op)
    } else {
        x.apply_op3_no_bwd(&w, &b, &op)
    }
}
