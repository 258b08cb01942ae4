//! The threads of one rank, with the calling thread as one of them.
//!
//! A run is a sequence of rounds (one per min-delay interval) separated by work only the calling thread may do
//! (the spike exchange, through MPI funnelled to that thread). Handing every round to a thread pool
//! (`pool.install`) lets the calling thread sleep while the pool's workers run the round and wakes it to
//! exchange: two hand-offs per interval, each a wake-up that must wait for a core when the machine is loaded
//! (on the seed network, two threads then ran at 0.83 of one thread's speed where two ranks kept 0.93). Here
//! the calling thread runs its share of every round itself; the pool's workers (one less than the threads)
//! each take one long job for the whole run (`spawn_broadcast`) and wait for the next round at a barrier that
//! spins briefly and then sleeps. Nothing runs on a thread that is not the caller's or the network's own pool,
//! so `psolve` may be called from any thread.
//!
//! Each thread owns a contiguous range of items (so that an item's data stays in one core's caches from round
//! to round) and takes its items from the front; a thread done with its own range takes items from the back of
//! the others', so a thread the system deschedules holds up a round by one item at most. Which thread runs an
//! item never changes what the item computes.

use std::ops::ControlFlow;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a thread at the barrier spins before it sleeps: about the spread of the threads' round ends on a
/// quiet machine, and short against the time slice a busy machine's scheduler gives another process (on the
/// seed network with two threads, 0 to 100 us made no difference beyond the noise, quiet or loaded).
const SPIN: Duration = Duration::from_micros(50);

/// Run rounds over `items` on the calling thread and the workers of `pool`: `between(items)` on the calling
/// thread, then, if it continues with `p`, `work(i, &mut items[i], p)` once for every item, spread over the
/// threads; again until `between` breaks with the result.
///
/// `ranges` are the threads' own items (contiguous, covering `0..items.len()`), the calling thread's first:
/// one range more than `pool` has workers (no pool for one range). The pool must be idle (no other work of
/// its own, which would wait for the run's end). A panic in `work` or `between` stops every thread and is
/// raised again on the calling thread.
pub(crate) fn run_rounds<T, P, R>(
    pool: Option<&rayon::ThreadPool>,
    items: &mut [T],
    ranges: &[(usize, usize)],
    work: impl Fn(usize, &mut T, P) + Sync,
    mut between: impl FnMut(&mut [T]) -> ControlFlow<R, P>,
) -> R
where
    T: Send,
    P: Copy + Send,
{
    let threads = ranges.len();
    let pool = match pool {
        Some(pool) if threads > 1 => pool,
        _ => {
            assert!(threads <= 1, "{threads} ranges need a pool of {} workers", threads - 1);
            return run_alone(items, work, between);
        }
    };
    assert_eq!(pool.current_num_threads(), threads - 1, "a pool of one worker less than the ranges");
    debug_assert_eq!(ranges.first().map(|r| r.0), Some(0));
    debug_assert_eq!(ranges.last().map(|r| r.1), Some(items.len()));
    let queues: Vec<Queue> = ranges.iter().map(|_| Queue(AtomicU64::new(0))).collect();
    let shared = Items { ptr: items.as_mut_ptr(), len: items.len() };
    let barrier = Barrier::new(threads);
    // The round's parameter; `None` ends the run.
    let round: Mutex<Option<P>> = Mutex::new(None);
    // A worker's panic, raised again on the calling thread at the round's end.
    let failed: Mutex<Option<Box<dyn std::any::Any + Send>>> = Mutex::new(None);
    // Run this thread's items and then take others', catching a panic of `work` so that every thread still
    // meets the barrier.
    let run_share = |me: usize, p: P| -> Option<Box<dyn std::any::Any + Send>> {
        panic::catch_unwind(AssertUnwindSafe(|| {
            let take = |i: usize| {
                // SAFETY: a queue hands out each index of a round once (compare-and-swap), the queues' ranges
                // are disjoint, and `between` reaches the items only while every other thread waits at the
                // barrier.
                let it = unsafe { shared.get(i) };
                work(i, it, p);
            };
            while let Some(i) = queues[me].front() {
                take(i);
            }
            for k in 1..threads {
                let other = &queues[(me + k) % threads];
                while let Some(i) = other.back() {
                    take(i);
                }
            }
        }))
        .err()
    };
    pool.in_place_scope(|s| {
        s.spawn_broadcast(|_, ctx| {
            let me = ctx.index() + 1;
            loop {
                barrier.wait();
                let Some(p) = *round.lock().unwrap_or_else(|e| e.into_inner()) else { break };
                if let Some(e) = run_share(me, p) {
                    failed.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
                }
                barrier.wait();
            }
        });
        let stop = || {
            *round.lock().unwrap_or_else(|e| e.into_inner()) = None;
            barrier.wait();
        };
        loop {
            // SAFETY: the other threads wait at the barrier (before their first round or after a round's end).
            let all = unsafe { std::slice::from_raw_parts_mut(shared.ptr, shared.len) };
            let next = match panic::catch_unwind(AssertUnwindSafe(|| between(all))) {
                Ok(next) => next,
                Err(e) => {
                    stop();
                    panic::resume_unwind(e);
                }
            };
            match next {
                ControlFlow::Break(r) => {
                    stop();
                    return r;
                }
                ControlFlow::Continue(p) => {
                    for (q, r) in queues.iter().zip(ranges) {
                        q.reset(r.0, r.1);
                    }
                    *round.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
                    barrier.wait();
                    let mine = run_share(0, p);
                    barrier.wait();
                    if let Some(e) = mine.or_else(|| failed.lock().unwrap_or_else(|e| e.into_inner()).take()) {
                        stop();
                        panic::resume_unwind(e);
                    }
                }
            }
        }
    })
}

/// `run_rounds` on the calling thread alone.
fn run_alone<T, P: Copy, R>(
    items: &mut [T],
    work: impl Fn(usize, &mut T, P),
    mut between: impl FnMut(&mut [T]) -> ControlFlow<R, P>,
) -> R {
    loop {
        match between(items) {
            ControlFlow::Break(r) => return r,
            ControlFlow::Continue(p) => items.iter_mut().enumerate().for_each(|(i, it)| work(i, it, p)),
        }
    }
}

/// The items of a run, reached by index from several threads.
struct Items<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: the items are `Send`; `run_rounds` gives each index of a round to one thread only.
unsafe impl<T: Send> Sync for Items<T> {}

impl<T> Items<T> {
    /// # Safety
    /// No other reference to item `i` may be live.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self, i: usize) -> &mut T {
        assert!(i < self.len);
        unsafe { &mut *self.ptr.add(i) }
    }
}

/// A thread's items of the round, `next..end` packed in one word: the owner takes from the front, the other
/// threads from the back, each by compare-and-swap.
struct Queue(AtomicU64);

impl Queue {
    fn reset(&self, start: usize, end: usize) {
        self.0.store(((start as u64) << 32) | end as u64, Ordering::Relaxed);
    }

    fn take(&self, front: bool) -> Option<usize> {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let (next, end) = (cur >> 32, cur & 0xffff_ffff);
            if next >= end {
                return None;
            }
            let (new, got) = if front { (((next + 1) << 32) | end, next) } else { ((next << 32) | (end - 1), end - 1) };
            match self.0.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(got as usize),
                Err(now) => cur = now,
            }
        }
    }

    fn front(&self) -> Option<usize> {
        self.take(true)
    }

    fn back(&self) -> Option<usize> {
        self.take(false)
    }
}

/// A reusable barrier that spins for [`SPIN`] and then sleeps. Its release orders everything a thread did
/// before arriving before everything any thread does after leaving.
struct Barrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Barrier {
    fn new(threads: usize) -> Barrier {
        Barrier {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
            // Taking the lock after the release means a sleeper either saw the new generation or is already
            // waiting on the condition variable when it is notified.
            drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
            self.wake.notify_all();
            return;
        }
        let start = Instant::now();
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 && start.elapsed() > SPIN {
                let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                while self.generation.load(Ordering::Acquire) == generation {
                    guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                return;
            }
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` items in `threads` contiguous ranges of about equal length.
    fn ranges(n: usize, threads: usize) -> Vec<(usize, usize)> {
        (0..threads).map(|t| (t * n / threads, (t + 1) * n / threads)).collect()
    }

    fn workers(threads: usize) -> Option<rayon::ThreadPool> {
        (threads > 1).then(|| rayon::ThreadPoolBuilder::new().num_threads(threads - 1).build().unwrap())
    }

    /// Every item runs once per round whatever the threads' speeds, and `between` sees every round's results.
    #[test]
    fn every_item_runs_once_per_round() {
        for threads in 1..=4 {
            let mut items = vec![0u64; 37];
            let ranges = ranges(items.len(), threads);
            let pool = workers(threads);
            let mut rounds = 0u64;
            let sum = run_rounds(
                pool.as_ref(),
                &mut items,
                &ranges,
                |i, it, r: u64| {
                    // Uneven work, so that threads take items from each other.
                    if i % 7 == 0 {
                        std::thread::sleep(Duration::from_micros(50 * (r % 3)));
                    }
                    *it += r;
                },
                |items| {
                    let want: u64 = (1..=rounds).sum();
                    assert!(items.iter().all(|&x| x == want), "round {rounds}, {threads} threads: {items:?}");
                    rounds += 1;
                    if rounds > 200 {
                        ControlFlow::Break(items.iter().sum::<u64>())
                    } else {
                        ControlFlow::Continue(rounds)
                    }
                },
            );
            assert_eq!(sum, 37 * (1..=200u64).sum::<u64>());
        }
    }

    /// A queue hands out each index once, to its owner from the front and to the others from the back.
    #[test]
    fn a_queue_hands_out_each_index_once() {
        let q = Queue(AtomicU64::new(0));
        q.reset(3, 7);
        assert_eq!((q.front(), q.back(), q.front(), q.back(), q.front()), (Some(3), Some(6), Some(4), Some(5), None));
        q.reset(0, 100_000);
        let taken: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3)
                .map(|k| {
                    let q = &q;
                    s.spawn(move || {
                        std::iter::from_fn(|| if k == 0 { q.front() } else { q.back() }).collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = taken.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100_000).collect::<Vec<_>>());
    }

    /// A panic in a worker's item stops the run (no thread left waiting) and reaches the caller.
    #[test]
    fn a_panicking_item_stops_every_thread() {
        let mut items = vec![0u32; 8];
        let ranges = ranges(8, 2);
        let pool = workers(2);
        let mut rounds = 0;
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            run_rounds(
                pool.as_ref(),
                &mut items,
                &ranges,
                |i, _, r: u32| assert!(!(r == 3 && i == 6), "item 6 fails"),
                |_| {
                    rounds += 1;
                    ControlFlow::<(), u32>::Continue(rounds)
                },
            )
        }));
        assert!(r.is_err());
        assert_eq!(rounds, 3);
    }
}
