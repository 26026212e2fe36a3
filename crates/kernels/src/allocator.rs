//! glibc malloc settings for training loops.
//!
//! A candle training step allocates and frees the same few-megabyte tensors every step (layer
//! outputs, gradients, optimiser temporaries). Under glibc's defaults each of them is a fresh
//! `mmap` and `munmap`: page faults on first touch, and with a second thread running, a TLB
//! shoot-down on every free. On the report CNN (64×64, batch 64) that was 13 % of a 1-thread step
//! and 30–50 % of a 2-thread step. Serving such blocks from the heap and not trimming it back to
//! the OS after every step removes that cost; peak RSS barely moves (it is the high-water mark
//! either way).

/// Largest block served from the heap instead of its own `mmap` (glibc's ceiling on 64-bit).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory kept at the top of the heap before it is returned to the OS.
const TRIM_THRESHOLD: i32 = 128 << 20;

/// Makes glibc malloc keep freed tensor memory for reuse (see the module docs). Call once at the
/// start of a training or scoring binary. Returns whether the settings were applied (false off
/// glibc, where this does nothing). Process-wide: a library should leave this to its binary.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() -> bool {
    // SAFETY: mallopt only changes malloc's tuning parameters; it takes malloc's own lock and has
    // no memory-safety preconditions. Both parameters are documented glibc options.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

/// Makes glibc malloc keep freed tensor memory for reuse; a no-op off glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings() {
        assert!(super::keep_freed_memory());
        // Allocations still work, large and small.
        let v = vec![1.0f32; 4 << 20];
        assert_eq!(v.iter().sum::<f32>(), (4 << 20) as f32);
    }
}
