//! Process-wide CPU settings for the binaries that run the model (trainer, scorer). Call
//! [`init`] once, first thing in `main`, before any other thread exists.

use crate::error::{ModelError, Result};

/// Sizes every thread pool the model uses and tunes the allocator; returns the thread count.
///
/// - rayon's global pool (our kernels, preprocessing): `threads`, else `RAYON_NUM_THREADS`, else
///   all cores.
/// - candle's own pool (matmul, element-wise ops) reads `RAYON_NUM_THREADS` itself, else counts
///   physical cores: it is set to the same number so `--threads` means one thing everywhere.
/// - candle's pool workers spin after every op, which on a 2-core machine steals a core from
///   the kernels: `CANDLE_BARRIER_POOL_SPIN_LIMIT=0` unless the user set it.
/// - glibc keeps freed tensor memory for reuse instead of an mmap/munmap per tensor per step
///   (`ballast_kernels::allocator`).
pub fn init(threads: Option<usize>) -> Result<usize> {
    let wanted = threads
        .or_else(|| {
            std::env::var("RAYON_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
        })
        .filter(|&n: &usize| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()));
    if threads == Some(0) {
        return Err(ModelError::config("--threads must be at least 1"));
    }
    // SAFETY: called at the start of main, before any other thread exists (see the module docs),
    // so nothing can read the environment concurrently.
    unsafe {
        if let Some(n) = wanted {
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        }
        if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
            std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
        }
    }
    ballast_kernels::allocator::keep_freed_memory();
    ballast_cli::init_threads(wanted).map_err(|e| ModelError::config(format!("{e:#}")))
}
