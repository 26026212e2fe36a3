// CUDA kernels for ballast's CUDA trainer, with exactly the contract of the CPU path:
// crates/kernels/src/fused.rs (bias + ReLU + 2x2 max-pool epilogue and its backward),
// crates/kernels/src/patches.rs (im2col / col2im layout and summation order),
// crates/trainer/src/optim.rs (SGD and AdamW, PyTorch's rules as candle evaluates them), and
// candle's cross-entropy / argmax for the evaluation sums (crates/trainer/src/train.rs).
//
// Contract details that the CPU path fixes and these kernels mirror:
// - Pool window scan order a=(0,0), b=(0,1), d=(1,0), e=(1,1); x replaces the running maximum
//   when x > max or x is NaN, so the FIRST maximum wins ties and the LAST NaN in the window wins
//   (NaN propagates). ReLU passes NaN. The winner code is 0..3, or 255 (NO_GRAD) when the ReLU
//   output is exactly 0 (PyTorch's threshold_backward: no gradient where the output is <= 0).
// - Floor pooling: an odd last row / column of the conv output gets no output and zero gradient.
// - im2col row r = (ci*K + kh)*K + kw (OIHW weight order); col2im adds a pixel's patch entries
//   in the order kw outer, kh inner, from 0, as patches.rs does, so its sums are bit-identical.
// - Optimisers: each candle op of optim.rs is one rounded f32 operation here (__fmul_rn /
//   __fadd_rn stop nvcc contracting them into FMAs); the f64 scalars (bias corrections, 1-beta)
//   are computed on the host in f64 and rounded to f32, as candle's affine does.
// - argmax: candle's fold (replace when best < x): ties -> first index; a NaN never replaces
//   the best, and a NaN at index 0 is never replaced.
//
// Every kernel is one thread per output element with a grid-stride loop, no shared memory and
// no __syncthreads(), so any grid is correct and results do not depend on the grid or on thread
// order. The atomics add integer counts (exact) and per-row loss terms into a double, whose
// order-dependent rounding (~1e-16 relative) is far below the f32 terms' own.
//
// Two builds of this one file:
// - nvcc (the CUDA trainer; PTX for cudarc): kernels are extern "C" __global__ functions. Keep
//   nvcc's IEEE defaults: no --use_fast_math, no -ftz=true, no -prec-div/-prec-sqrt=false.
// - The host build (BALLAST_HOST_SHIM, crates/kernels-host): host_shim.h turns the kernels into
//   plain functions and LAUNCH into loops over blocks and threads, and the extern "C"
//   ballast_host_* launchers at the end (host build only) pick grids as a CUDA launcher would.
//
// Layouts (see `Layout` in crates/kernels-host/src/lib.rs): the pre-activation planes and the
// im2col matrix are addressed through (batch, channel/row) strides, so both the per-image NCHW
// layout (batched GEMM) and the channel-major layout of fused.rs (one GEMM W * col over the
// whole batch, giving [Cout][B][H][W]) work. Each plane is H x W contiguous.

#ifdef BALLAST_HOST_SHIM
#include "host_shim.h"
#else
#define BALLAST_KERNEL extern "C" __global__
#endif
// Helpers are file-local in both builds.
#define BALLAST_DEVICE static __device__ __forceinline__

// Winner code when the ReLU output is 0: no gradient (ballast_kernels::geometry::NO_GRAD).
#define BALLAST_NO_GRAD 255

BALLAST_DEVICE size_t thread_index() {
    return (size_t)blockIdx.x * blockDim.x + threadIdx.x;
}

BALLAST_DEVICE size_t thread_count() {
    return (size_t)gridDim.x * blockDim.x;
}

// Written out rather than isnan/isfinite, whose overloads differ between CUDA and host libm.
BALLAST_DEVICE bool is_nan(float x) { return x != x; }
BALLAST_DEVICE bool is_finite(float x) { return fabsf(x) <= 3.40282347e+38f; }

// fused.rs `beats`: strictly greater, or NaN.
BALLAST_DEVICE bool beats(float x, float m) { return x > m || is_nan(x); }

// PyTorch's ReLU (NaN passes through; -0 and +0 both give +0).
BALLAST_DEVICE float relu(float v) { return (v > 0.0f || is_nan(v)) ? v : 0.0f; }

// candle's affine: v * mul + add, two roundings.
BALLAST_DEVICE float affine(float v, float mul, float add) {
    return __fadd_rn(__fmul_rn(v, mul), add);
}

// Bias + ReLU + 2x2 max-pool (stride 2, floor) of the conv pre-activation.
// pre: plane (b, c) of ph x pw floats starts at pre[b*sb + c*sc]. out: [B][C][ph/2][pw/2].
// code: one byte per output, the winning window element 0..3 or BALLAST_NO_GRAD.
BALLAST_KERNEL void bias_relu_pool_fwd(const float* __restrict__ pre, const float* __restrict__ bias,
                                       float* __restrict__ out, unsigned char* __restrict__ code,
                                       int B, int C, int ph, int pw, size_t sb, size_t sc) {
    const size_t oh = (size_t)(ph / 2), ow = (size_t)(pw / 2);
    const size_t n = (size_t)B * C * oh * ow;
    for (size_t o = thread_index(); o < n; o += thread_count()) {
        const size_t ox = o % ow, oy = (o / ow) % oh, bc = o / (ow * oh);
        const size_t c = bc % (size_t)C, b = bc / (size_t)C;
        const float* p = pre + b * sb + c * sc + (2 * oy) * (size_t)pw + 2 * ox;
        const float bv = bias[c];
        const float a = __fadd_rn(p[0], bv), bb = __fadd_rn(p[1], bv);
        const float d = __fadd_rn(p[pw], bv), e = __fadd_rn(p[pw + 1], bv);
        float m = a;
        unsigned char i = 0;
        if (beats(bb, m)) { m = bb; i = 1; }
        if (beats(d, m)) { m = d; i = 2; }
        if (beats(e, m)) { m = e; i = 3; }
        const float y = relu(m);
        out[o] = y;
        code[o] = (y == 0.0f) ? (unsigned char)BALLAST_NO_GRAD : i;
    }
}

// Backward of bias_relu_pool_fwd to the pre-activation: every element of every plane is
// written, the pooled gradient at the window's winner and 0 elsewhere (non-winners, windows
// whose ReLU output was 0, and the row / column that floor pooling drops).
// gout, code: [B][C][ph/2][pw/2]; gpre: planes addressed as `pre` in the forward.
BALLAST_KERNEL void bias_relu_pool_bwd(const float* __restrict__ gout,
                                       const unsigned char* __restrict__ code,
                                       float* __restrict__ gpre, int B, int C, int ph, int pw,
                                       size_t sb, size_t sc) {
    const size_t oh = (size_t)(ph / 2), ow = (size_t)(pw / 2);
    const size_t plane = (size_t)ph * pw;
    const size_t n = (size_t)B * C * plane;
    for (size_t t = thread_index(); t < n; t += thread_count()) {
        const size_t x = t % pw, y = (t / pw) % ph, bc = t / plane;
        const size_t c = bc % (size_t)C, b = bc / (size_t)C;
        const size_t oy = y / 2, ox = x / 2;
        float gv = 0.0f;
        if (oy < oh && ox < ow) {
            const size_t o = (bc * oh + oy) * ow + ox;
            if (code[o] == (unsigned char)((y & 1) * 2 + (x & 1))) gv = gout[o];
        }
        gpre[b * sb + c * sc + y * (size_t)pw + x] = gv;
    }
}

// Bias gradient of the block: gbias[c] = sum over b, oy, ox of gout where the window passed
// gradient (code != NO_GRAD). One thread per channel, summed in double in a fixed order.
BALLAST_KERNEL void bias_grad(const float* __restrict__ gout, const unsigned char* __restrict__ code,
                              float* __restrict__ gbias, int B, int C, int oh, int ow) {
    const size_t plane = (size_t)oh * ow;
    for (size_t c = thread_index(); c < (size_t)C; c += thread_count()) {
        double acc = 0.0;
        for (size_t b = 0; b < (size_t)B; ++b) {
            const size_t at = (b * C + c) * plane;
            for (size_t q = 0; q < plane; ++q)
                if (code[at + q] != BALLAST_NO_GRAD) acc += (double)gout[at + q];
        }
        gbias[c] = (float)acc;
    }
}

// im2col of a batch: x [B][Cin][H][W] -> col, entry (b, r, oy*wc + ox) at col[b*cb + r*cr + ...],
// r = (ci*K + kh)*K + kw, value x[b][ci][oy+kh-pad][ox+kw-pad] or 0 outside the image.
// hc x wc are the conv output rows/columns computed (fused.rs drops the odd edge when pooling).
BALLAST_KERNEL void im2col(const float* __restrict__ x, float* __restrict__ col, int B, int Cin,
                           int H, int W, int K, int pad, int hc, int wc, size_t cb, size_t cr) {
    const size_t hw = (size_t)hc * wc, kk = (size_t)K * K;
    const size_t rows = (size_t)Cin * kk;
    const size_t n = (size_t)B * rows * hw;
    for (size_t t = thread_index(); t < n; t += thread_count()) {
        const size_t pix = t % hw, r = (t / hw) % rows, b = t / (hw * rows);
        const int ox = (int)(pix % wc), oy = (int)(pix / wc);
        const int kw = (int)(r % K), kh = (int)((r / K) % K), ci = (int)(r / kk);
        const int iy = oy + kh - pad, ix = ox + kw - pad;
        float v = 0.0f;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W)
            v = x[(((size_t)b * Cin + ci) * H + iy) * W + ix];
        col[b * cb + r * cr + pix] = v;
    }
}

// Adjoint of im2col: dx[b][ci][iy][ix] = sum of the col entries that read that pixel, added in
// patches.rs's order (kw outer, kh inner). Overwrites dx (a gather: no atomics, deterministic).
BALLAST_KERNEL void col2im(const float* __restrict__ col, float* __restrict__ dx, int B, int Cin,
                           int H, int W, int K, int pad, int hc, int wc, size_t cb, size_t cr) {
    const size_t n = (size_t)B * Cin * H * W;
    for (size_t t = thread_index(); t < n; t += thread_count()) {
        const int ix = (int)(t % W), iy = (int)((t / W) % H);
        const size_t bci = t / ((size_t)W * H);
        const int ci = (int)(bci % Cin);
        const size_t b = bci / Cin;
        const float* cbase = col + b * cb;
        float acc = 0.0f;
        for (int kw = 0; kw < K; ++kw) {
            const int ox = ix + pad - kw;
            if (ox < 0 || ox >= wc) continue;
            for (int kh = 0; kh < K; ++kh) {
                const int oy = iy + pad - kh;
                if (oy < 0 || oy >= hc) continue;
                const size_t r = ((size_t)ci * K + kh) * K + kw;
                acc = __fadd_rn(acc, cbase[r * cr + (size_t)oy * wc + ox]);
            }
        }
        dx[t] = acc;
    }
}

// torch.optim.SGD as optim.rs: g += wd*p (if apply_weight_decay); with momentum
// (use_momentum), buf = g on the first step, else buf = momentum*buf + g, then
// g = g + momentum*buf (nesterov) or g = buf; p -= lr*g. In place on p and buf (buf is not
// touched, and may be null, without momentum). The flags are optim.rs's tests on the f64 values.
BALLAST_KERNEL void sgd_step(float* __restrict__ p, const float* __restrict__ g,
                             float* __restrict__ buf, size_t n, float lr, float weight_decay,
                             int apply_weight_decay, float momentum, int use_momentum,
                             int nesterov, int first_step) {
    for (size_t i = thread_index(); i < n; i += thread_count()) {
        const float pv = p[i];
        float gv = g[i];
        if (apply_weight_decay) gv = __fadd_rn(gv, affine(pv, weight_decay, 0.0f));
        if (use_momentum) {
            const float bv = first_step ? gv : __fadd_rn(affine(buf[i], momentum, 0.0f), gv);
            buf[i] = bv;
            gv = nesterov ? __fadd_rn(gv, affine(bv, momentum, 0.0f)) : bv;
        }
        p[i] = __fsub_rn(pv, affine(gv, lr, 0.0f));
    }
}

// torch.optim.AdamW as optim.rs: p *= decay (= 1 - lr*wd, when apply_decay);
// m = beta1*m + (1-beta1)*g; v = beta2*v + (1-beta2)*g^2 (m = (1-beta1)*g, v = (1-beta2)*g^2 on
// the first step); p -= (step_size*m) / (sqrt(v)*inv_sqrt_bc2 + eps), with
// step_size = lr/(1-beta1^t) and inv_sqrt_bc2 = 1/sqrt(1-beta2^t) computed in f64 by the caller.
BALLAST_KERNEL void adamw_step(float* __restrict__ p, const float* __restrict__ g,
                               float* __restrict__ m, float* __restrict__ v, size_t n,
                               float decay, int apply_decay, float beta1, float one_minus_beta1,
                               float beta2, float one_minus_beta2, float step_size,
                               float inv_sqrt_bc2, float eps, int first_step) {
    for (size_t i = thread_index(); i < n; i += thread_count()) {
        float pv = p[i];
        const float gv = g[i];
        if (apply_decay) pv = affine(pv, decay, 0.0f);
        const float gm = affine(gv, one_minus_beta1, 0.0f);
        const float mv = first_step ? gm : __fadd_rn(affine(m[i], beta1, 0.0f), gm);
        const float g2 = affine(__fmul_rn(gv, gv), one_minus_beta2, 0.0f);
        const float vv = first_step ? g2 : __fadd_rn(affine(v[i], beta2, 0.0f), g2);
        const float denom = affine(__fsqrt_rn(vv), inv_sqrt_bc2, eps);
        const float update = __fdiv_rn(affine(mv, step_size, 0.0f), denom);
        p[i] = __fsub_rn(pv, update);
        m[i] = mv;
        v[i] = vv;
    }
}

// Adds the number of non-finite values (NaN, +-inf) of x[0..n) to *count.
BALLAST_KERNEL void nonfinite_count(const float* __restrict__ x, size_t n,
                                    unsigned int* __restrict__ count) {
    unsigned int local = 0;
    for (size_t i = thread_index(); i < n; i += thread_count())
        if (!is_finite(x[i])) ++local;
    if (local != 0) atomicAdd(count, local);
}

// For logits [B][K] and labels [B]: adds sum over rows of the cross-entropy
// log(sum_k exp(z_k - max)) - (z_label - max) to *loss_sum (candle's log_softmax + nll, per row),
// and the number of rows whose argmax (candle's: first index on ties) equals the label to
// *correct. A label >= K adds NaN (the safe wrappers reject such labels before launching).
BALLAST_KERNEL void loss_correct_accumulate(const float* __restrict__ logits,
                                            const unsigned int* __restrict__ labels, int B, int K,
                                            double* __restrict__ loss_sum,
                                            unsigned int* __restrict__ correct) {
    for (size_t row = thread_index(); row < (size_t)B; row += thread_count()) {
        const float* z = logits + row * (size_t)K;
        float best = z[0];
        unsigned int arg = 0;
        for (int k = 1; k < K; ++k)
            if (best < z[k]) { best = z[k]; arg = (unsigned int)k; }
        float s = 0.0f;
        for (int k = 0; k < K; ++k) s = __fadd_rn(s, expf(__fsub_rn(z[k], best)));
        const unsigned int label = labels[row];
        float loss;
        if (label < (unsigned int)K)
            loss = -__fsub_rn(__fsub_rn(z[label], best), logf(s));
        else
            loss = nanf("");
        atomicAdd(loss_sum, (double)loss);
        if (arg == label) atomicAdd(correct, 1u);
    }
}

#ifdef BALLAST_HOST_SHIM
// Host launchers: one per kernel, plain pointers and sizes, grids chosen as the CUDA launcher
// would (256 threads a block, enough blocks to cover n, capped: the loops stride over the rest).
namespace {
const unsigned int kThreads = 256;
const size_t kMaxBlocks = 1024;

dim3 blocks_for(size_t n) {
    size_t blocks = (n + kThreads - 1) / kThreads;
    if (blocks < 1) blocks = 1;
    if (blocks > kMaxBlocks) blocks = kMaxBlocks;
    return dim3((unsigned int)blocks);
}
}  // namespace

extern "C" {
void ballast_host_bias_relu_pool_fwd(const float* pre, const float* bias, float* out,
                                     unsigned char* code, int B, int C, int ph, int pw, size_t sb,
                                     size_t sc) {
    const size_t n = (size_t)B * C * (ph / 2) * (pw / 2);
    LAUNCH(bias_relu_pool_fwd, blocks_for(n), dim3(kThreads), pre, bias, out, code, B, C, ph, pw,
           sb, sc);
}

void ballast_host_bias_relu_pool_bwd(const float* gout, const unsigned char* code, float* gpre,
                                     int B, int C, int ph, int pw, size_t sb, size_t sc) {
    const size_t n = (size_t)B * C * ph * pw;
    LAUNCH(bias_relu_pool_bwd, blocks_for(n), dim3(kThreads), gout, code, gpre, B, C, ph, pw, sb,
           sc);
}

void ballast_host_bias_grad(const float* gout, const unsigned char* code, float* gbias, int B,
                            int C, int oh, int ow) {
    LAUNCH(bias_grad, blocks_for((size_t)C), dim3(kThreads), gout, code, gbias, B, C, oh, ow);
}

void ballast_host_im2col(const float* x, float* col, int B, int Cin, int H, int W, int K, int pad,
                         int hc, int wc, size_t cb, size_t cr) {
    const size_t n = (size_t)B * Cin * K * K * hc * wc;
    LAUNCH(im2col, blocks_for(n), dim3(kThreads), x, col, B, Cin, H, W, K, pad, hc, wc, cb, cr);
}

void ballast_host_col2im(const float* col, float* dx, int B, int Cin, int H, int W, int K, int pad,
                         int hc, int wc, size_t cb, size_t cr) {
    const size_t n = (size_t)B * Cin * H * W;
    LAUNCH(col2im, blocks_for(n), dim3(kThreads), col, dx, B, Cin, H, W, K, pad, hc, wc, cb, cr);
}

void ballast_host_sgd_step(float* p, const float* g, float* buf, size_t n, float lr,
                           float weight_decay, int apply_weight_decay, float momentum,
                           int use_momentum, int nesterov, int first_step) {
    LAUNCH(sgd_step, blocks_for(n), dim3(kThreads), p, g, buf, n, lr, weight_decay,
           apply_weight_decay, momentum, use_momentum, nesterov, first_step);
}

void ballast_host_adamw_step(float* p, const float* g, float* m, float* v, size_t n, float decay,
                             int apply_decay, float beta1, float one_minus_beta1, float beta2,
                             float one_minus_beta2, float step_size, float inv_sqrt_bc2, float eps,
                             int first_step) {
    LAUNCH(adamw_step, blocks_for(n), dim3(kThreads), p, g, m, v, n, decay, apply_decay, beta1,
           one_minus_beta1, beta2, one_minus_beta2, step_size, inv_sqrt_bc2, eps, first_step);
}

void ballast_host_nonfinite_count(const float* x, size_t n, unsigned int* count) {
    LAUNCH(nonfinite_count, blocks_for(n), dim3(kThreads), x, n, count);
}

void ballast_host_loss_correct_accumulate(const float* logits, const unsigned int* labels, int B,
                                          int K, double* loss_sum, unsigned int* correct) {
    LAUNCH(loss_correct_accumulate, blocks_for((size_t)B), dim3(kThreads), logits, labels, B, K,
           loss_sum, correct);
}
}  // extern "C"
#endif  // BALLAST_HOST_SHIM
