//! The CNN's layer blocks for ballast's trainer and scorer.
//!
//! [`conv_relu_pool`] is the one entry point the model uses: 2-D convolution (stride 1, zero
//! padding), bias, ReLU, then an optional 2×2 max-pool (floor, as PyTorch's `MaxPool2d(2)`).
//! On the CPU with f32 it runs the fused custom op in [`fused`] (im2col + GEMM, parallel over
//! images, gradients with PyTorch's semantics, no input gradient where none is needed); on any
//! other device or dtype it runs [`mod@reference`], built from plain candle ops, so CUDA behaviour is
//! candle's own. [`allocator::keep_freed_memory`] is for training binaries (see its docs).
//! README.md in this crate describes the design, the checks and the benchmark.

pub mod allocator;
pub mod fused;
pub mod geometry;
mod matmul;
mod patches;
pub mod reference;
mod scratch;

use candle_core::{DType, Result, Tensor};

/// conv2d(x, w, padding = `pad`) + b, ReLU, then 2×2 max-pool when `pool`.
///
/// Shapes: `x` `[B, Cin, H, W]`, `w` `[Cout, Cin, K, K]` (PyTorch OIHW), `b` `[Cout]`; f32.
/// Differentiable with respect to all three inputs through candle's autograd; the gradient of
/// `x` is computed only when `x` itself takes part in autograd (`x.track_op()`).
pub fn conv_relu_pool(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    pad: usize,
    pool: bool,
) -> Result<Tensor> {
    let on_cpu_f32 = [x, w, b]
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    if on_cpu_f32 {
        fused::conv_relu_pool(x, w, b, pad, pool)
    } else {
        reference::conv_relu_pool(x, w, b, pad, pool)
    }
}
