//! A parallel map on plain threads, for tasks that call polars.
//!
//! Rayon is the wrong tool there. Polars runs its work on its own rayon pool; a rayon worker of
//! another pool that waits for it keeps busy meanwhile by taking more tasks of its own loop,
//! inside the waiting call. An ingest that wrote one file's rows this way could end up holding
//! the frames of every file at once (measured: 2.2 GB instead of 0.8 GB for 9 M rows). A plain
//! thread just blocks while polars works, so at most one task per thread is ever in flight.
//! Pure Rust loops (no polars inside) keep using rayon.

use std::sync::Mutex;

/// The number of threads: as many as rayon would use (so `RAYON_NUM_THREADS` still applies).
pub fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Apply `f` to every item on up to [`threads`] threads; results come back in item order.
/// A panic in `f` is carried to the caller.
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    let threads = threads().min(n);
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let queue = Mutex::new(items.into_iter().enumerate());
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        // The lock is held only to take the next item, never while working.
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                        let Some((i, item)) = next else { break };
                        out.push((i, f(item)));
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_item_order() {
        let items: Vec<u64> = (0..1000).collect();
        let out = map(items, |x| {
            // Uneven work, so threads finish out of order.
            if x % 7 == 0 {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            x * 2
        });
        assert_eq!(out, (0..1000).map(|x| x * 2).collect::<Vec<_>>());
        assert!(map(Vec::<u8>::new(), |x| x).is_empty());
    }

    #[test]
    #[should_panic(expected = "task 3 failed")]
    fn a_panic_reaches_the_caller() {
        map((0..8).collect(), |x: i32| if x == 3 { panic!("task 3 failed") } else { x });
    }
}
