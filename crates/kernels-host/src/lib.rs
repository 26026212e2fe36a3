//! The CUDA trainer's kernels (`crates/kernels/cuda/ops.cu`) compiled for the host, behind safe
//! wrappers, so that `cargo test` checks their arithmetic against the CPU path on machines
//! without a GPU (issue #14).
//!
//! `build.rs` compiles the very same source that nvcc compiles for the device, as C++17 with
//! `host_shim.h` standing in for the CUDA runtime: a launch runs every block and thread of the
//! grid in turn, which is a valid CUDA schedule for these kernels (no shared memory, no
//! barriers, grid-stride loops). Each wrapper checks slice lengths and sizes and returns an
//! [`Error`] instead of handing the kernel out-of-bounds pointers.
//!
//! The scalar preparation ([`SgdScalars`], [`AdamWScalars`]) is part of the contract: candle
//! rounds each f64 hyperparameter to f32 where it is used, and so must every launcher.

use std::ffi::c_int;
use std::fmt;

/// Winner code of a pooled output whose ReLU output is 0: no gradient flows through it
/// (the same value as `ballast_kernels::geometry::NO_GRAD`).
pub const NO_GRAD: u8 = 255;

/// A wrapper's arguments do not fit the kernel's contract (lengths, sizes, labels).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn bail<T>(msg: String) -> Result<T> {
    Err(Error(msg))
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        bail(format!("{what}: expected {want} elements, got {got}"))
    }
}

/// A size as the kernels' `int` parameter.
fn int(what: &str, v: usize) -> Result<c_int> {
    c_int::try_from(v).map_err(|_| Error(format!("{what} = {v} does not fit a C int")))
}

/// Product of sizes, or an error where it overflows.
fn product(what: &str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error(format!("{what}: size {dims:?} overflows")))
}

unsafe extern "C" {
    fn ballast_host_bias_relu_pool_fwd(
        pre: *const f32,
        bias: *const f32,
        out: *mut f32,
        code: *mut u8,
        b: c_int,
        c: c_int,
        ph: c_int,
        pw: c_int,
        sb: usize,
        sc: usize,
    );
    fn ballast_host_bias_relu_pool_bwd(
        gout: *const f32,
        code: *const u8,
        gpre: *mut f32,
        b: c_int,
        c: c_int,
        ph: c_int,
        pw: c_int,
        sb: usize,
        sc: usize,
    );
    fn ballast_host_bias_grad(
        gout: *const f32,
        code: *const u8,
        gbias: *mut f32,
        b: c_int,
        c: c_int,
        oh: c_int,
        ow: c_int,
    );
    fn ballast_host_im2col(
        x: *const f32,
        col: *mut f32,
        b: c_int,
        cin: c_int,
        h: c_int,
        w: c_int,
        k: c_int,
        pad: c_int,
        hc: c_int,
        wc: c_int,
        cb: usize,
        cr: usize,
    );
    fn ballast_host_col2im(
        col: *const f32,
        dx: *mut f32,
        b: c_int,
        cin: c_int,
        h: c_int,
        w: c_int,
        k: c_int,
        pad: c_int,
        hc: c_int,
        wc: c_int,
        cb: usize,
        cr: usize,
    );
    fn ballast_host_sgd_step(
        p: *mut f32,
        g: *const f32,
        buf: *mut f32,
        n: usize,
        lr: f32,
        weight_decay: f32,
        apply_weight_decay: c_int,
        momentum: f32,
        use_momentum: c_int,
        nesterov: c_int,
        first_step: c_int,
    );
    fn ballast_host_adamw_step(
        p: *mut f32,
        g: *const f32,
        m: *mut f32,
        v: *mut f32,
        n: usize,
        decay: f32,
        apply_decay: c_int,
        beta1: f32,
        one_minus_beta1: f32,
        beta2: f32,
        one_minus_beta2: f32,
        step_size: f32,
        inv_sqrt_bc2: f32,
        eps: f32,
        first_step: c_int,
    );
    fn ballast_host_nonfinite_count(x: *const f32, n: usize, count: *mut u32);
    fn ballast_host_loss_correct_accumulate(
        logits: *const f32,
        labels: *const u32,
        b: c_int,
        k: c_int,
        loss_sum: *mut f64,
        correct: *mut u32,
    );
}

/// How a batch of per-channel planes (or im2col rows) is laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Image by image: pre-activations NCHW `[B][C][H][W]`; im2col `[B][Cin·K·K][hc·wc]`
    /// (one GEMM per image, or a strided batched GEMM, gives NCHW).
    ImageMajor,
    /// Channel by channel, as fused.rs: pre-activations `[C][B][H][W]`; im2col
    /// `[Cin·K·K][B·hc·wc]` (patches.rs's layout; one GEMM `W · col` gives `[Cout][B·hc·wc]`).
    ChannelMajor,
}

/// The conv pre-activation of a pooled block: `batch` × `channels` planes of `h` × `w`
/// (the full conv output, or its even part: pooling floors an odd last row / column away).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planes {
    pub batch: usize,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub layout: Layout,
}

impl Planes {
    /// Pre-activation elements.
    pub fn len(&self) -> Result<usize> {
        product("planes", &[self.batch, self.channels, self.h, self.w])
    }

    pub fn is_empty(&self) -> bool {
        self.len().map(|n| n == 0).unwrap_or(false)
    }

    /// Pooled size per channel (floor).
    pub fn pooled_hw(&self) -> (usize, usize) {
        (self.h / 2, self.w / 2)
    }

    /// Pooled elements, `[B][C][h/2][w/2]`.
    pub fn pooled_len(&self) -> Result<usize> {
        let (oh, ow) = self.pooled_hw();
        product("pooled planes", &[self.batch, self.channels, oh, ow])
    }

    /// Strides (batch, channel) of a plane, in floats.
    fn strides(&self) -> (usize, usize) {
        let plane = self.h * self.w;
        match self.layout {
            Layout::ImageMajor => (self.channels * plane, plane),
            Layout::ChannelMajor => (plane, self.batch * plane),
        }
    }

    fn ints(&self) -> Result<[c_int; 4]> {
        self.len()?;
        Ok([
            int("batch", self.batch)?,
            int("channels", self.channels)?,
            int("h", self.h)?,
            int("w", self.w)?,
        ])
    }
}

/// Bias + ReLU + 2×2 max-pool: `out` and `codes` are `[B][C][h/2][w/2]`; a code is the window
/// element that won (0..4, row-major, first maximum; a NaN wins and propagates) or [`NO_GRAD`].
pub fn bias_relu_pool_fwd(
    planes: Planes,
    pre: &[f32],
    bias: &[f32],
    out: &mut [f32],
    codes: &mut [u8],
) -> Result<()> {
    let [b, c, ph, pw] = planes.ints()?;
    check_len("bias_relu_pool_fwd pre", pre.len(), planes.len()?)?;
    check_len("bias_relu_pool_fwd bias", bias.len(), planes.channels)?;
    check_len("bias_relu_pool_fwd out", out.len(), planes.pooled_len()?)?;
    check_len(
        "bias_relu_pool_fwd codes",
        codes.len(),
        planes.pooled_len()?,
    )?;
    let (sb, sc) = planes.strides();
    // SAFETY: lengths checked above; the kernel touches exactly these ranges.
    unsafe {
        ballast_host_bias_relu_pool_fwd(
            pre.as_ptr(),
            bias.as_ptr(),
            out.as_mut_ptr(),
            codes.as_mut_ptr(),
            b,
            c,
            ph,
            pw,
            sb,
            sc,
        )
    };
    Ok(())
}

/// Pre-activation gradient from the pooled gradient and the forward's codes: the winner gets
/// the gradient, every other element of `gpre` (layout of `planes`) is set to 0.
pub fn bias_relu_pool_bwd(
    planes: Planes,
    gout: &[f32],
    codes: &[u8],
    gpre: &mut [f32],
) -> Result<()> {
    let [b, c, ph, pw] = planes.ints()?;
    check_len("bias_relu_pool_bwd gout", gout.len(), planes.pooled_len()?)?;
    check_len(
        "bias_relu_pool_bwd codes",
        codes.len(),
        planes.pooled_len()?,
    )?;
    check_len("bias_relu_pool_bwd gpre", gpre.len(), planes.len()?)?;
    let (sb, sc) = planes.strides();
    // SAFETY: lengths checked above.
    unsafe {
        ballast_host_bias_relu_pool_bwd(
            gout.as_ptr(),
            codes.as_ptr(),
            gpre.as_mut_ptr(),
            b,
            c,
            ph,
            pw,
            sb,
            sc,
        )
    };
    Ok(())
}

/// Bias gradient `[C]`: the sum of the pooled gradient over batch and positions where the
/// window passed gradient.
pub fn bias_grad(planes: Planes, gout: &[f32], codes: &[u8], gbias: &mut [f32]) -> Result<()> {
    let [b, c, _, _] = planes.ints()?;
    let (oh, ow) = planes.pooled_hw();
    check_len("bias_grad gout", gout.len(), planes.pooled_len()?)?;
    check_len("bias_grad codes", codes.len(), planes.pooled_len()?)?;
    check_len("bias_grad gbias", gbias.len(), planes.channels)?;
    // SAFETY: lengths checked above.
    unsafe {
        ballast_host_bias_grad(
            gout.as_ptr(),
            codes.as_ptr(),
            gbias.as_mut_ptr(),
            b,
            c,
            int("oh", oh)?,
            int("ow", ow)?,
        )
    };
    Ok(())
}

/// im2col of a batch `x` `[B][Cin][H][W]` for a K×K conv (stride 1, zero padding `pad`),
/// producing the `hc` × `wc` output pixels (at most the conv output size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patches {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub pad: usize,
    pub hc: usize,
    pub wc: usize,
    pub layout: Layout,
}

impl Patches {
    /// Input elements.
    pub fn input_len(&self) -> Result<usize> {
        product("patches input", &[self.batch, self.cin, self.h, self.w])
    }

    /// Patch matrix elements.
    pub fn col_len(&self) -> Result<usize> {
        product(
            "patch matrix",
            &[self.batch, self.cin, self.k, self.k, self.hc, self.wc],
        )
    }

    /// Strides (image, row) of the patch matrix, in floats.
    fn strides(&self) -> (usize, usize) {
        let hw = self.hc * self.wc;
        match self.layout {
            Layout::ImageMajor => (self.cin * self.k * self.k * hw, hw),
            Layout::ChannelMajor => (hw, self.batch * hw),
        }
    }

    fn ints(&self) -> Result<[c_int; 8]> {
        self.input_len()?;
        self.col_len()?;
        let conv = |n: usize| (n + 2 * self.pad + 1).checked_sub(self.k);
        let fits = |c: usize, n: usize| conv(n).is_some_and(|o| c <= o);
        if self.k == 0 || !fits(self.hc, self.h) || !fits(self.wc, self.w) {
            return bail(format!(
                "patches: {}×{} outputs do not fit a {k}×{k} conv of {}×{} padded by {}",
                self.hc,
                self.wc,
                self.h,
                self.w,
                self.pad,
                k = self.k
            ));
        }
        Ok([
            int("batch", self.batch)?,
            int("cin", self.cin)?,
            int("h", self.h)?,
            int("w", self.w)?,
            int("k", self.k)?,
            int("pad", self.pad)?,
            int("hc", self.hc)?,
            int("wc", self.wc)?,
        ])
    }
}

/// The signature im2col and col2im share: source, destination, geometry, strides.
type PatchKernel = unsafe extern "C" fn(
    *const f32,
    *mut f32,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    usize,
    usize,
);

/// Runs a patch kernel after checking both buffers against the geometry.
fn patch_call(
    p: Patches,
    kernel: PatchKernel,
    src: (&str, &[f32], usize),
    dst: (&str, &mut [f32], usize),
) -> Result<()> {
    let [b, cin, h, w, k, pad, hc, wc] = p.ints()?;
    check_len(src.0, src.1.len(), src.2)?;
    check_len(dst.0, dst.1.len(), dst.2)?;
    let (cb, cr) = p.strides();
    // SAFETY: lengths and geometry checked above.
    unsafe {
        kernel(
            src.1.as_ptr(),
            dst.1.as_mut_ptr(),
            b,
            cin,
            h,
            w,
            k,
            pad,
            hc,
            wc,
            cb,
            cr,
        )
    };
    Ok(())
}

/// Writes the patch matrix of `x` into `col` (every element).
pub fn im2col(p: Patches, x: &[f32], col: &mut [f32]) -> Result<()> {
    let (n_x, n_col) = (p.input_len()?, p.col_len()?);
    patch_call(
        p,
        ballast_host_im2col,
        ("im2col x", x, n_x),
        ("im2col col", col, n_col),
    )
}

/// The adjoint of [`im2col`]: `dx` (overwritten) gets, per pixel, the sum of the patch entries
/// that read it, in patches.rs's order.
pub fn col2im(p: Patches, col: &[f32], dx: &mut [f32]) -> Result<()> {
    let (n_x, n_col) = (p.input_len()?, p.col_len()?);
    patch_call(
        p,
        ballast_host_col2im,
        ("col2im col", col, n_col),
        ("col2im dx", dx, n_x),
    )
}

/// SGD hyperparameters as `OptimSpec` holds them (f64).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

/// What `sgd_step` is launched with: the f64 settings rounded to f32 as candle's `affine` rounds
/// them, and the branches optim.rs takes on the f64 values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdScalars {
    pub lr: f32,
    pub weight_decay: f32,
    pub apply_weight_decay: bool,
    pub momentum: f32,
    pub use_momentum: bool,
    pub nesterov: bool,
}

impl SgdScalars {
    pub fn new(s: &Sgd) -> SgdScalars {
        SgdScalars {
            lr: s.lr as f32,
            weight_decay: s.weight_decay as f32,
            apply_weight_decay: s.weight_decay != 0.0,
            momentum: s.momentum as f32,
            use_momentum: s.momentum != 0.0,
            nesterov: s.nesterov,
        }
    }
}

/// One SGD step in place on `p` (and on the momentum buffer `buf`, which must be as long as `p`
/// when momentum is on and is ignored otherwise). `first_step`: the buffer does not exist yet
/// (optim.rs then starts it at the gradient; its contents are not read).
pub fn sgd_step(
    s: &Sgd,
    p: &mut [f32],
    g: &[f32],
    buf: &mut [f32],
    first_step: bool,
) -> Result<()> {
    let k = SgdScalars::new(s);
    check_len("sgd_step g", g.len(), p.len())?;
    let buf_ptr = if k.use_momentum {
        check_len("sgd_step momentum buffer", buf.len(), p.len())?;
        buf.as_mut_ptr()
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: lengths checked; the kernel reads buf only when use_momentum.
    unsafe {
        ballast_host_sgd_step(
            p.as_mut_ptr(),
            g.as_ptr(),
            buf_ptr,
            p.len(),
            k.lr,
            k.weight_decay,
            k.apply_weight_decay.into(),
            k.momentum,
            k.use_momentum.into(),
            k.nesterov.into(),
            first_step.into(),
        )
    };
    Ok(())
}

/// AdamW hyperparameters as `OptimSpec` holds them (f64).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamW {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// What `adamw_step` is launched with at step `t`: the f64 expressions of optim.rs evaluated in
/// f64 and rounded to f32 where candle's `affine` takes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWScalars {
    pub decay: f32,
    pub apply_decay: bool,
    pub beta1: f32,
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    pub step_size: f32,
    pub inv_sqrt_bc2: f32,
    pub eps: f32,
}

impl AdamWScalars {
    /// `t`: the optimiser's step count after incrementing it (1 on the first step).
    pub fn new(a: &AdamW, t: u64) -> Result<AdamWScalars> {
        let t = i32::try_from(t)
            .ok()
            .filter(|&t| t >= 1)
            .ok_or_else(|| Error(format!("adamw step {t} is not in 1..=i32::MAX")))?;
        let bc1 = 1.0 - a.beta1.powi(t);
        let bc2 = 1.0 - a.beta2.powi(t);
        Ok(AdamWScalars {
            decay: (1.0 - a.lr * a.weight_decay) as f32,
            apply_decay: a.weight_decay != 0.0,
            beta1: a.beta1 as f32,
            one_minus_beta1: (1.0 - a.beta1) as f32,
            beta2: a.beta2 as f32,
            one_minus_beta2: (1.0 - a.beta2) as f32,
            step_size: (a.lr / bc1) as f32,
            inv_sqrt_bc2: (1.0 / bc2.sqrt()) as f32,
            eps: a.eps as f32,
        })
    }
}

/// One AdamW step `t` (1-based) in place on `p`, `m` and `v` (all as long as `g`). `first_step`:
/// the moment buffers do not exist yet (their contents are not read).
pub fn adamw_step(
    a: &AdamW,
    t: u64,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    first_step: bool,
) -> Result<()> {
    let k = AdamWScalars::new(a, t)?;
    check_len("adamw_step g", g.len(), p.len())?;
    check_len("adamw_step m", m.len(), p.len())?;
    check_len("adamw_step v", v.len(), p.len())?;
    // SAFETY: lengths checked above.
    unsafe {
        ballast_host_adamw_step(
            p.as_mut_ptr(),
            g.as_ptr(),
            m.as_mut_ptr(),
            v.as_mut_ptr(),
            p.len(),
            k.decay,
            k.apply_decay.into(),
            k.beta1,
            k.one_minus_beta1,
            k.beta2,
            k.one_minus_beta2,
            k.step_size,
            k.inv_sqrt_bc2,
            k.eps,
            first_step.into(),
        )
    };
    Ok(())
}

/// Adds the number of NaN and ±inf values in `x` to `count`.
pub fn nonfinite_count(x: &[f32], count: &mut u32) -> Result<()> {
    if u32::try_from(x.len()).is_err() {
        return bail(format!(
            "nonfinite_count: {} values could overflow the u32 count",
            x.len()
        ));
    }
    // SAFETY: the kernel reads x[0..len) and adds to *count.
    unsafe { ballast_host_nonfinite_count(x.as_ptr(), x.len(), count) };
    Ok(())
}

/// For `logits` `[B][classes]` and `labels` `[B]`: adds the summed cross-entropy to `loss_sum`
/// and the number of rows whose argmax (first index on ties) is the label to `correct`.
pub fn loss_correct_accumulate(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    loss_sum: &mut f64,
    correct: &mut u32,
) -> Result<()> {
    if classes == 0 {
        return bail("loss_correct_accumulate: no classes".into());
    }
    check_len(
        "loss_correct_accumulate logits",
        logits.len(),
        product("logits", &[labels.len(), classes])?,
    )?;
    if let Some(l) = labels.iter().find(|&&l| l as usize >= classes) {
        return bail(format!(
            "loss_correct_accumulate: label {l} is not below {classes} classes"
        ));
    }
    let (b, k) = (int("batch", labels.len())?, int("classes", classes)?);
    // SAFETY: lengths and labels checked above.
    unsafe {
        ballast_host_loss_correct_accumulate(
            logits.as_ptr(),
            labels.as_ptr(),
            b,
            k,
            loss_sum,
            correct,
        )
    };
    Ok(())
}
