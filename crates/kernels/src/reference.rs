//! The layer block from plain candle ops: the portable path (CUDA) and the yardstick the fast
//! CPU kernels are checked against.

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
/// Built from reshape + max rather than candle's `max_pool2d`, whose backward goes through
/// `upsample_nearest2d` and misroutes gradients when the pooled map's size is odd.
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
