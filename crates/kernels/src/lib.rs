//! The CNN's layer blocks for ballast's trainer and scorer.
//!
//! [`conv_relu_pool`] is the one entry point the model uses: 2-D convolution (stride 1, zero
//! padding), bias, ReLU, then an optional 2×2 max-pool (floor, as PyTorch's `MaxPool2d(2)`).
//! [`reference`] builds it from plain candle ops and runs on any device.

pub mod reference;

use candle_core::{Result, Tensor};

/// conv2d(x, w, padding = `pad`) + b, ReLU, then 2×2 max-pool when `pool`.
///
/// Shapes: `x` [B, Cin, H, W], `w` [Cout, Cin, K, K], `b` [Cout]; f32.
/// Differentiable with respect to all three inputs through candle's autograd.
pub fn conv_relu_pool(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    pad: usize,
    pool: bool,
) -> Result<Tensor> {
    reference::conv_relu_pool(x, w, b, pad, pool)
}
