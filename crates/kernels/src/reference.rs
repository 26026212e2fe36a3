//! The layer block from plain candle ops: the portable path (CUDA, and any dtype other than f32)
//! and the yardstick the fast CPU kernels are checked against.
//!
//! It agrees with PyTorch except at exact ties, where candle's autograd differs: candle's ReLU
//! passes the gradient at exactly 0 (its mask is `x >= 0`; PyTorch's is `x > 0`), and candle's
//! `max` gives the full gradient to every tied element of a pooling window (PyTorch gives it to
//! the first maximum only). Ties are not rare: wherever a conv's whole receptive field is exactly
//! constant (saturated image regions, or all-zero ReLU outputs feeding a deeper layer), its
//! outputs equal the bias exactly and a pooling window ties four ways; the reference then sends
//! four times PyTorch's gradient into the bias. tests/semantics.rs pins both behaviours down.

use candle_core::{D, Result, Tensor};

/// conv2d + bias + ReLU (+ 2×2 max-pool), from candle's own ops.
pub fn conv_relu_pool(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    pad: usize,
    pool: bool,
) -> Result<Tensor> {
    let y = x.conv2d(w, pad, 1, 1, 1)?;
    let y = y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?;
    let y = y.relu()?;
    if pool { max_pool2(&y) } else { Ok(y) }
}

/// 2×2 max-pool with stride 2, dropping an odd last row/column (PyTorch's floor mode).
///
/// Built from reshape + max rather than candle's `max_pool2d`, whose backward in candle 0.11 is
/// wrong: it scales every gradient by 1/4 (it multiplies by the window average of the max mask
/// instead of dividing by the tie count), and when the pre-pool map has an odd size its
/// `upsample_nearest2d` from the pooled size also sends gradients to the wrong elements or drops
/// them (tests/semantics.rs shows both).
pub fn max_pool2(y: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = y.dims4()?;
    let (h2, w2) = (h / 2, w / 2);
    let y = if h % 2 == 1 || w % 2 == 1 {
        y.narrow(2, 0, h2 * 2)?.narrow(3, 0, w2 * 2)?.contiguous()?
    } else {
        y.contiguous()?
    };
    y.reshape((b, c, h2, 2, w2, 2))?.max(D::Minus1)?.max(3)
}
