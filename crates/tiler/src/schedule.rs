//! Parallel work over photos and, within each photo, over its windows, with a hard bound on
//! how many decoded photos exist at once.
//!
//! Each photo is one task: it loads (reads, hashes, decodes) and then spawns one task per
//! window. The photo's pixels are shared by its window tasks and freed when the last one ends,
//! which also starts the next photo. At most `in_flight` photos are loaded at any time, so
//! memory stays at about `in_flight` decoded photos whatever the photo count, while one large
//! photo's windows still spread over every thread. There are no blocking joins, so no thread
//! ever waits with a decoded photo on its stack while it runs unrelated work.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a photo's load step decided.
pub enum Loaded<L, D> {
    /// Finished without windows (reused, skipped, or nothing to cut).
    Done(D),
    /// Pixels ready: cut `windows` windows from them.
    Windows { photo: L, windows: usize },
}

/// The three steps of a photo's work. `item` is the photo's index in the caller's list.
pub trait PhotoWork: Sync {
    type Photo: Send + Sync;
    type Window: Send;
    type Done: Send;

    fn load(&self, item: usize) -> Loaded<Self::Photo, Self::Done>;
    fn window(&self, item: usize, photo: &Self::Photo, window: usize) -> Self::Window;
    fn finish(&self, item: usize, photo: &Self::Photo, windows: Vec<Self::Window>) -> Self::Done;
    /// True when a result means the whole run must stop (an output error).
    fn is_fatal(&self, _done: &Self::Done) -> bool {
        false
    }
}

struct Shared<'a, W: PhotoWork> {
    work: &'a W,
    items: &'a [usize],
    next: AtomicUsize,
    stop: AtomicBool,
    results: Mutex<Vec<Option<W::Done>>>,
    on_done: &'a (dyn Fn(usize, &W::Done) + Sync),
}

struct InFlight<W: PhotoWork> {
    item: usize,
    slot: usize,
    photo: W::Photo,
    outputs: Mutex<Vec<Option<W::Window>>>,
    remaining: AtomicUsize,
}

/// Runs `work` over `items` (photo indexes) on the current rayon pool with at most
/// `in_flight` photos loaded at once. Returns each item's result in `items` order (`None` for
/// items not started because a fatal result stopped the run). `on_done` sees each result as
/// it completes (progress, logs).
pub fn run<W: PhotoWork>(
    work: &W,
    items: &[usize],
    in_flight: usize,
    on_done: &(dyn Fn(usize, &W::Done) + Sync),
) -> Vec<Option<W::Done>> {
    let shared = Shared {
        work,
        items,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        results: Mutex::new((0..items.len()).map(|_| None).collect()),
        on_done,
    };
    rayon::scope(|s| {
        for _ in 0..in_flight.max(1) {
            start_next(s, &shared);
        }
    });
    shared
        .results
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner())
}

fn start_next<'s, W: PhotoWork>(s: &rayon::Scope<'s>, sh: &'s Shared<'s, W>) {
    if sh.stop.load(Ordering::Acquire) {
        return;
    }
    let slot = sh.next.fetch_add(1, Ordering::AcqRel);
    if slot >= sh.items.len() {
        return;
    }
    s.spawn(move |s| run_photo(s, sh, slot));
}

fn complete<'s, W: PhotoWork>(
    s: &rayon::Scope<'s>,
    sh: &'s Shared<'s, W>,
    slot: usize,
    done: W::Done,
) {
    if sh.work.is_fatal(&done) {
        sh.stop.store(true, Ordering::Release);
    }
    (sh.on_done)(sh.items[slot], &done);
    if let Ok(mut r) = sh.results.lock() {
        r[slot] = Some(done);
    }
    start_next(s, sh);
}

fn run_photo<'s, W: PhotoWork>(s: &rayon::Scope<'s>, sh: &'s Shared<'s, W>, slot: usize) {
    let item = sh.items[slot];
    match sh.work.load(item) {
        Loaded::Done(done) => complete(s, sh, slot, done),
        Loaded::Windows { photo, windows: 0 } => {
            let done = sh.work.finish(item, &photo, Vec::new());
            drop(photo);
            complete(s, sh, slot, done);
        }
        Loaded::Windows { photo, windows } => {
            let flight = Arc::new(InFlight::<W> {
                item,
                slot,
                photo,
                outputs: Mutex::new((0..windows).map(|_| None).collect()),
                remaining: AtomicUsize::new(windows),
            });
            for w in 0..windows {
                let f = Arc::clone(&flight);
                s.spawn(move |s| run_window(s, sh, f, w));
            }
        }
    }
}

fn run_window<'s, W: PhotoWork>(
    s: &rayon::Scope<'s>,
    sh: &'s Shared<'s, W>,
    f: Arc<InFlight<W>>,
    w: usize,
) {
    let out = sh.work.window(f.item, &f.photo, w);
    if let Ok(mut o) = f.outputs.lock() {
        o[w] = Some(out);
    }
    if f.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    // Last window of this photo: every other task has stored its output.
    let outputs: Vec<W::Window> = match f.outputs.lock() {
        Ok(mut o) => o.drain(..).flatten().collect(),
        Err(_) => Vec::new(),
    };
    let done = sh.work.finish(f.item, &f.photo, outputs);
    let slot = f.slot;
    // Free the pixels before the next photo loads (other clones are already dropped or about
    // to be: their tasks have finished their window).
    drop(f);
    complete(s, sh, slot, done);
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count {
        loaded: AtomicUsize,
        peak: AtomicUsize,
        limit_hit: AtomicBool,
        limit: usize,
    }

    struct Buf(Vec<u8>, usize);

    impl PhotoWork for Count {
        type Photo = Buf;
        type Window = usize;
        type Done = (usize, Vec<usize>);

        fn load(&self, item: usize) -> Loaded<Buf, Self::Done> {
            if item % 5 == 4 {
                return Loaded::Done((item, vec![]));
            }
            let now = self.loaded.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            if now > self.limit {
                self.limit_hit.store(true, Ordering::SeqCst);
            }
            Loaded::Windows {
                photo: Buf(vec![item as u8; 1000], item),
                windows: item % 7,
            }
        }

        fn window(&self, item: usize, photo: &Buf, window: usize) -> usize {
            std::thread::yield_now();
            assert_eq!(photo.0[0], item as u8);
            item * 100 + window
        }

        fn finish(&self, item: usize, photo: &Buf, windows: Vec<usize>) -> Self::Done {
            assert_eq!(photo.1, item);
            self.loaded.fetch_sub(1, Ordering::SeqCst);
            (item, windows)
        }
    }

    #[test]
    fn results_in_order_and_loads_bounded() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let work = Count {
            loaded: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limit_hit: AtomicBool::new(false),
            limit: 3,
        };
        let items: Vec<usize> = (0..60).collect();
        let seen = AtomicUsize::new(0);
        let results = pool.install(|| {
            run(&work, &items, 3, &|_, _| {
                seen.fetch_add(1, Ordering::SeqCst);
            })
        });
        assert_eq!(seen.load(Ordering::SeqCst), 60);
        for (i, r) in results.into_iter().enumerate() {
            let (item, windows) = r.unwrap();
            assert_eq!(item, i);
            if i % 5 != 4 {
                let want: Vec<usize> = (0..i % 7).map(|w| i * 100 + w).collect();
                assert_eq!(windows, want);
            }
        }
        assert!(
            !work.limit_hit.load(Ordering::SeqCst),
            "more than 3 photos loaded"
        );
    }
}
