//! Shapes of one conv + bias + ReLU (+ pool) block and how its batch is cut into work units.
//!
//! Everything here depends on the shapes only, never on the thread count: that is what makes the
//! kernels' results bit-identical whatever the rayon pool size.

use candle_core::{Result, bail};

/// Target size of one block's im2col buffer, in f32s. Blocks of whole images are made about this
/// big so the buffer stays in a core's L2 (1 MiB on the machines measured) while the GEMM sweeps
/// it, yet is long enough along the pixel axis for the micro-kernels to run at full speed.
const BLOCK_COL_FLOATS: usize = 96 * 1024;

/// Minimum pixel columns per GEMM, so tiny late-layer maps (8×8) still make reasonably long GEMMs.
const MIN_BLOCK_COLS: usize = 256;

/// Backward chunks: each accumulates its own partial dW/db, and the partials are summed in chunk
/// order. A chunk holds up to this many images, fewer for small batches so that they still spread
/// over the threads; the size depends on the batch only, never on the thread count.
const MAX_CHUNK_IMAGES: usize = 8;
/// Small batches are cut into about this many chunks.
const SMALL_BATCH_CHUNKS: usize = 8;

/// Code stored per pooled output when the window's maximum is not positive: ReLU's gradient is
/// zero there (PyTorch's `threshold_backward` passes gradient only where the output is > 0).
pub const NO_GRAD: u8 = u8::MAX;

/// The geometry of one conv + bias + ReLU (+ 2×2 max-pool) block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub pad: usize,
    pub pool: bool,
    /// Conv output size (stride 1).
    pub ho: usize,
    pub wo: usize,
}

impl Geometry {
    /// Checks the shapes of x `[B,Cin,H,W]`, w `[Cout,Cin,K,K]`, b `[Cout]`.
    pub fn new(x: &[usize], w: &[usize], b: &[usize], pad: usize, pool: bool) -> Result<Geometry> {
        let (&[batch, cin, h, wd], &[cout, wcin, k, k2], &[bc]) = (x, w, b) else {
            bail!(
                "conv_relu_pool: expected x [B,Cin,H,W], w [Cout,Cin,K,K], b [Cout]; \
                 got x {x:?}, w {w:?}, b {b:?}"
            )
        };
        if k != k2 || k == 0 {
            bail!("conv_relu_pool: kernel must be square and non-empty, got w {w:?}")
        }
        if wcin != cin || bc != cout {
            bail!("conv_relu_pool: shapes disagree: x {x:?}, w {w:?}, b {b:?}")
        }
        if cin == 0 || cout == 0 || h == 0 || wd == 0 {
            bail!("conv_relu_pool: empty channels or image: x {x:?}, w {w:?}")
        }
        if h + 2 * pad < k || wd + 2 * pad < k {
            bail!("conv_relu_pool: input {h}×{wd} with padding {pad} is smaller than kernel {k}")
        }
        let (ho, wo) = (h + 2 * pad - k + 1, wd + 2 * pad - k + 1);
        if pool && (ho < 2 || wo < 2) {
            bail!("conv_relu_pool: conv output {ho}×{wo} is too small for a 2×2 max-pool")
        }
        Ok(Geometry {
            batch,
            cin,
            h,
            w: wd,
            cout,
            k,
            pad,
            pool,
            ho,
            wo,
        })
    }

    /// Rows of the im2col matrix: Cin·K·K.
    pub fn ckk(&self) -> usize {
        self.cin * self.k * self.k
    }

    /// Conv output rows and columns actually computed: with pooling, an odd last row or column
    /// is dropped by the pool (floor mode), so it is never computed and gets no gradient.
    pub fn hc(&self) -> usize {
        if self.pool { self.ho & !1 } else { self.ho }
    }

    pub fn wc(&self) -> usize {
        if self.pool { self.wo & !1 } else { self.wo }
    }

    /// Computed conv output pixels per channel: the GEMM columns of one image.
    pub fn hw(&self) -> usize {
        self.hc() * self.wc()
    }

    /// Zero-padded input size.
    pub fn hp(&self) -> usize {
        self.h + 2 * self.pad
    }

    pub fn wp(&self) -> usize {
        self.w + 2 * self.pad
    }

    /// Floats of one zero-padded input image.
    pub fn padded_image(&self) -> usize {
        self.cin * self.hp() * self.wp()
    }

    /// Input floats per image.
    pub fn in_image(&self) -> usize {
        self.cin * self.h * self.w
    }

    /// Pooled (or, without pool, conv) output size per channel.
    pub fn out_hw(&self) -> (usize, usize) {
        if self.pool {
            (self.ho / 2, self.wo / 2)
        } else {
            (self.ho, self.wo)
        }
    }

    /// Output floats per image.
    pub fn out_image(&self) -> usize {
        let (oh, ow) = self.out_hw();
        self.cout * oh * ow
    }

    pub fn out_dims(&self) -> (usize, usize, usize, usize) {
        let (oh, ow) = self.out_hw();
        (self.batch, self.cout, oh, ow)
    }

    /// Images per GEMM block.
    pub fn block_images(&self) -> usize {
        let per_image = self.ckk() * self.hw();
        let by_cache = BLOCK_COL_FLOATS / per_image.max(1);
        let by_cols = MIN_BLOCK_COLS.div_ceil(self.hw());
        by_cache.max(by_cols).clamp(1, self.batch.max(1))
    }

    /// Images per backward chunk (a whole number of blocks).
    pub fn chunk_images(&self) -> usize {
        let nb = self.block_images();
        let images = self
            .batch
            .div_ceil(SMALL_BATCH_CHUNKS)
            .clamp(1, MAX_CHUNK_IMAGES);
        images.div_ceil(nb) * nb
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_follow_pytorch() {
        // valid 5×5 on 64: 64→60→30, and on an odd map 13→9→4 (floor).
        let g = Geometry::new(&[2, 1, 64, 64], &[6, 1, 5, 5], &[6], 0, true).unwrap();
        assert_eq!((g.ho, g.wo, g.out_hw()), (60, 60, (30, 30)));
        let g = Geometry::new(&[2, 16, 13, 13], &[32, 16, 5, 5], &[32], 0, true).unwrap();
        assert_eq!((g.ho, g.out_hw()), (9, (4, 4)));
        assert_eq!((g.hc(), g.wc(), g.hw()), (8, 8, 64));
        let g = Geometry::new(&[1, 3, 7, 5], &[4, 3, 3, 3], &[4], 1, false).unwrap();
        assert_eq!((g.ho, g.wo, g.out_image()), (7, 5, 4 * 35));
        assert_eq!((g.hw(), g.hp(), g.wp()), (35, 9, 7));
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(Geometry::new(&[1, 2, 8, 8], &[4, 3, 3, 3], &[4], 0, false).is_err());
        assert!(Geometry::new(&[1, 3, 8, 8], &[4, 3, 3, 3], &[5], 0, false).is_err());
        assert!(Geometry::new(&[1, 3, 8, 8], &[4, 3, 3, 2], &[4], 0, false).is_err());
        assert!(Geometry::new(&[1, 3, 2, 8], &[4, 3, 3, 3], &[4], 0, false).is_err());
        assert!(Geometry::new(&[1, 3, 3, 8], &[4, 3, 3, 3], &[4], 0, true).is_err());
        assert!(Geometry::new(&[3, 8, 8], &[4, 3, 3, 3], &[4], 0, true).is_err());
        assert!(Geometry::new(&[1, 3, 0, 8], &[4, 3, 3, 3], &[4], 2, false).is_err());
    }

    #[test]
    fn blocks_depend_on_shapes_only() {
        let g = Geometry::new(&[256, 1, 64, 64], &[6, 1, 5, 5], &[6], 2, true).unwrap();
        assert!(g.block_images() >= 1);
        assert_eq!(g.chunk_images() % g.block_images(), 0);
        let small = Geometry::new(&[256, 16, 8, 8], &[32, 16, 5, 5], &[32], 2, true).unwrap();
        assert!(small.block_images() * small.hw() >= MIN_BLOCK_COLS);
        let one = Geometry::new(&[1, 16, 8, 8], &[32, 16, 5, 5], &[32], 2, true).unwrap();
        assert_eq!((one.block_images(), one.chunk_images()), (1, 1));
        // Small batches still make several chunks; large ones chunks of 8 images.
        let four = Geometry::new(&[4, 16, 16, 16], &[32, 16, 5, 5], &[32], 2, true).unwrap();
        assert_eq!((four.block_images(), four.chunk_images()), (1, 1));
        let big = Geometry::new(&[256, 16, 16, 16], &[32, 16, 5, 5], &[32], 2, true).unwrap();
        assert_eq!(big.chunk_images(), 8);
    }
}
