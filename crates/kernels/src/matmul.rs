//! A bounds-checked, single-threaded f32 GEMM on slices, over the `gemm` crate candle uses.

/// A strided matrix view: element (i, j) is at `rs * i + cs * j`.
#[derive(Clone, Copy, Debug)]
pub struct Strides {
    pub rs: usize,
    pub cs: usize,
}

impl Strides {
    /// Row-major with `ld` floats per row.
    pub const fn row_major(ld: usize) -> Strides {
        Strides { rs: ld, cs: 1 }
    }

    /// Column-major with `ld` floats per column.
    pub const fn col_major(ld: usize) -> Strides {
        Strides { rs: 1, cs: ld }
    }

    /// One past the largest index touched by a `rows`×`cols` matrix (0 when empty).
    fn extent(&self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * self.rs + (cols - 1) * self.cs + 1
        }
    }
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` when `accumulate`), dst m×n, lhs m×k, rhs k×n.
///
/// Runs on the calling thread: the kernels parallelise over images with rayon, one GEMM per
/// task. (Letting the gemm crate split these small GEMMs across threads was measured slower, even
/// at batch 1–4 where there are fewer image blocks than threads.)
/// Panics if a view does not fit its slice (a bug in the caller, never a data condition).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    ds: Strides,
    lhs: &[f32],
    ls: Strides,
    rhs: &[f32],
    rs: Strides,
    accumulate: bool,
) {
    assert!(ds.extent(m, n) <= dst.len(), "gemm dst view out of bounds");
    assert!(ls.extent(m, k) <= lhs.len(), "gemm lhs view out of bounds");
    assert!(rs.extent(k, n) <= rhs.len(), "gemm rhs view out of bounds");
    // A write-only dst could overlap itself with these strides only if rs/cs are degenerate.
    assert!(m <= 1 || n <= 1 || (ds.rs != ds.cs && ds.rs > 0 && ds.cs > 0));
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * ds.rs + j * ds.cs] = 0.0;
                }
            }
        }
        return;
    }
    // SAFETY: the three asserts above prove that every element the gemm crate reads or writes,
    // (i, j) at rs·i + cs·j inside the given sizes, lies inside the borrowed slices; dst is
    // borrowed mutably so it aliases neither input. Strides are positive and fit in isize because
    // the extents fit in a slice.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            ds.cs as isize,
            ds.rs as isize,
            accumulate,
            lhs.as_ptr(),
            ls.cs as isize,
            ls.rs as isize,
            rhs.as_ptr(),
            rs.cs as isize,
            rs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_in_every_layout() {
        let (m, n, k) = (37, 6, 29);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32) - 5.0).collect();
        let want = naive(m, n, k, &a, &b);
        // lhs/rhs transposed copies, so each can be passed row- or column-major.
        let at: Vec<f32> = (0..m * k).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..k * n).map(|i| b[(i % k) * n + i / k]).collect();
        for (lhs, ls) in [(&a, Strides::row_major(k)), (&at, Strides::col_major(m))] {
            for (rhs, rs) in [(&b, Strides::row_major(n)), (&bt, Strides::col_major(k))] {
                for ds in [Strides::row_major(n), Strides::col_major(m)] {
                    let mut c = vec![1.0; m * n];
                    sgemm(m, n, k, &mut c, ds, lhs, ls, rhs, rs, false);
                    for i in 0..m {
                        for j in 0..n {
                            assert_eq!(c[i * ds.rs + j * ds.cs], want[i * n + j]);
                        }
                    }
                    sgemm(m, n, k, &mut c, ds, lhs, ls, rhs, rs, true);
                    assert_eq!(c[ds.rs + 2 * ds.cs], 2.0 * want[n + 2]);
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn refuses_views_outside_the_slice() {
        let mut c = vec![0.0; 5];
        sgemm(
            2,
            3,
            1,
            &mut c,
            Strides::row_major(3),
            &[1.0, 2.0],
            Strides::col_major(2),
            &[1.0, 2.0, 3.0],
            Strides::row_major(3),
            false,
        );
    }
}
