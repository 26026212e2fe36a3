//! Per-thread scratch buffers, reused across blocks and calls.
//!
//! Each rayon worker keeps one growable buffer, so the kernels' working memory is
//! threads × (one block's im2col + GEMM output + one padded image), whatever the batch size.
//! Contents are stale on entry: every user overwrites what it reads.

use std::cell::Cell;

thread_local! {
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with `N` disjoint scratch slices of the given lengths.
///
/// The buffer is taken out of the thread-local for the duration, so a re-entrant call (rayon
/// running another task on this thread while `f` waits) gets a fresh buffer instead of a panic.
pub fn with_scratch<const N: usize, R>(
    lens: [usize; N],
    f: impl FnOnce([&mut [f32]; N]) -> R,
) -> R {
    let mut buf = SCRATCH.with(Cell::take);
    let total: usize = lens.iter().sum();
    if buf.len() < total {
        buf.resize(total, 0.0);
    }
    let r = {
        let mut rest: &mut [f32] = &mut buf;
        let slices = lens.map(|n| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
            rest = tail;
            head
        });
        f(slices)
    };
    SCRATCH.with(|c| {
        // Keep the larger of the two if a re-entrant call left one behind.
        let other = c.take();
        c.set(if other.len() > buf.len() { other } else { buf });
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_disjoint_and_sized_and_reused() {
        with_scratch([3, 5], |[a, b]| {
            assert_eq!((a.len(), b.len()), (3, 5));
            a.fill(1.0);
            b.fill(2.0);
        });
        with_scratch([2, 2, 4], |[a, b, c]| {
            // Stale contents from the previous call are visible: users must overwrite.
            assert_eq!((a[0], b[1], c[0]), (1.0, 2.0, 2.0));
            assert_eq!(c.len(), 4);
            with_scratch([1], |[d]| assert_eq!(d.len(), 1));
        });
    }
}
