//! The event queue of a cell group, a calendar with one bucket per time step (a list threaded through one
//! slab of events, so a bucket costs no allocation and memory follows the events in flight). Events are delivered with step
//! granularity ([`DeliveryRule`]), so an event is filed under the step that will deliver it when it is queued
//! (O(1), no comparisons); when a step opens, its bucket is sorted once by (time, key, seq). The delivery
//! order is therefore a total order of the events themselves and does not depend on the order in which they
//! arrived. The ring of buckets grows (powers of two) to the longest delay seen, at most `RING` steps ahead, so
//! that a group with short delays holds few buckets; later events wait in a heap ordered by step and move into
//! the ring as it turns. Events queued for the step being delivered (self-events with a short
//! delay, events already in the past) go to a small heap that is merged with the sorted bucket.

use super::DeliveryRule;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Steps the ring of buckets reaches ahead at most (a power of two).
const RING: u64 = 1024;

/// A queued event. `item` identifies what to deliver (the group's encoding: a connection, or a self-event).
#[derive(Debug, Clone, Copy)]
pub(super) struct Queued {
    pub time: f64,
    pub key: u64,
    /// Creation counter of self-events (0 for connection events): orders self-events of equal time and key.
    pub seq: u64,
    pub item: u32,
}

impl Queued {
    /// The delivery order: time (IEEE total order), key, seq.
    #[inline]
    fn rank(&self) -> (u64, u64, u64) {
        let b = self.time.to_bits();
        let t = if b >> 63 == 1 { !b } else { b | 1 << 63 };
        (t, self.key, self.seq)
    }
}

/// Min-heap entry of the open step.
struct Late(Queued);

impl PartialEq for Late {
    fn eq(&self, o: &Late) -> bool {
        self.0.rank() == o.0.rank()
    }
}
impl Eq for Late {}
impl PartialOrd for Late {
    fn partial_cmp(&self, o: &Late) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Late {
    fn cmp(&self, o: &Late) -> Ordering {
        o.0.rank().cmp(&self.0.rank())
    }
}

/// Min-heap entry (by step) of an event beyond the ring.
struct Far {
    step: u64,
    q: Queued,
}

impl PartialEq for Far {
    fn eq(&self, o: &Far) -> bool {
        self.step == o.step
    }
}
impl Eq for Far {}
impl PartialOrd for Far {
    fn partial_cmp(&self, o: &Far) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Far {
    fn cmp(&self, o: &Far) -> Ordering {
        o.step.cmp(&self.step)
    }
}

pub(super) struct EventQueue {
    dt: f64,
    rule: DeliveryRule,
    /// The step being delivered (or about to be): its bucket is `current[pos..]`, sorted, plus `late`.
    open: u64,
    current: Vec<Queued>,
    pos: usize,
    late: BinaryHeap<Late>,
    /// First slab entry of the bucket of step s (open < s < open + ring.len()) at `s & (ring.len() - 1)`, or
    /// `NIL`; empty until the first event.
    ring: Vec<u32>,
    far: BinaryHeap<Far>,
    /// Events filed in buckets; `next[i]` links entry i to the next of its bucket, or of the free list.
    slab: Vec<Queued>,
    next: Vec<u32>,
    free: u32,
    len: usize,
}

const NIL: u32 = u32::MAX;

impl EventQueue {
    pub fn new(dt: f64, rule: DeliveryRule) -> EventQueue {
        EventQueue {
            dt,
            rule,
            open: 0,
            current: Vec::new(),
            pos: 0,
            late: BinaryHeap::new(),
            ring: Vec::new(),
            far: BinaryHeap::new(),
            slab: Vec::new(),
            next: Vec::new(),
            free: NIL,
            len: 0,
        }
    }

    /// Drop every event; step 0 becomes the open step.
    pub fn clear(&mut self) {
        self.open = 0;
        self.current.clear();
        self.pos = 0;
        self.late.clear();
        self.ring.fill(NIL);
        self.slab.clear();
        self.next.clear();
        self.free = NIL;
        self.far.clear();
        self.len = 0;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Heap memory held (bytes).
    pub fn heap_bytes(&self) -> usize {
        let q = std::mem::size_of::<Queued>();
        (self.current.capacity() + self.late.capacity() + self.slab.capacity()) * q
            + (self.ring.capacity() + self.next.capacity()) * 4
            + self.far.capacity() * std::mem::size_of::<Far>()
    }

    /// Whether step `s` delivers an event due at `te` (the group's rule, with the step's time computed as the
    /// group computes it).
    #[inline]
    fn delivers(&self, s: u64, te: f64) -> bool {
        let t = s as f64 * self.dt;
        match self.rule {
            DeliveryRule::Nearest => te <= t + 0.5 * self.dt,
            DeliveryRule::Floor => te < t + self.dt,
        }
    }

    /// The first step from the open one on that delivers an event due at `te`; `u64::MAX` for times no run
    /// reaches (and NaN), which stay queued and are never delivered.
    #[inline]
    fn step_of(&self, te: f64) -> u64 {
        if self.delivers(self.open, te) {
            return self.open;
        }
        let x = te / self.dt;
        if !(x < 1e15) {
            return u64::MAX;
        }
        // The step limits grow monotonically with s, so walk from an estimate to the first that delivers.
        let mut s = (x.max(0.0) as u64).max(self.open);
        while s > self.open && self.delivers(s - 1, te) {
            s -= 1;
        }
        while !self.delivers(s, te) {
            s += 1;
        }
        s
    }

    #[inline]
    pub fn push(&mut self, q: Queued) {
        let s = self.step_of(q.time);
        self.len += 1;
        if s == self.open {
            self.late.push(Late(q));
        } else {
            self.file(s, q);
        }
    }

    /// File an event of step `s` (after the open step) in the ring, growing it if needed, or beyond it.
    #[inline]
    fn file(&mut self, s: u64, q: Queued) {
        let ahead = s - self.open;
        if ahead >= RING {
            self.far.push(Far { step: s, q });
            return;
        }
        if ahead >= self.ring.len() as u64 {
            self.grow(ahead);
        }
        let mask = self.ring.len() - 1;
        let head = &mut self.ring[s as usize & mask];
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.next[i as usize];
            self.slab[i as usize] = q;
            self.next[i as usize] = *head;
            i
        } else {
            self.slab.push(q);
            self.next.push(*head);
            self.slab.len() as u32 - 1
        };
        *head = i;
    }

    /// Make the ring reach at least `ahead` steps past the open one, moving every bucket to its new place.
    #[cold]
    fn grow(&mut self, ahead: u64) {
        let len = (ahead + 1).next_power_of_two().clamp(16, RING) as usize;
        let old = std::mem::replace(&mut self.ring, vec![NIL; len]);
        let old_mask = (old.len() as u64).wrapping_sub(1);
        for (i, head) in old.into_iter().enumerate().filter(|&(_, h)| h != NIL) {
            // Bucket i holds the step s with open < s < open + old length and s = i modulo that length.
            let s = self.open + ((i as u64).wrapping_sub(self.open) & old_mask);
            self.ring[s as usize & (len - 1)] = head;
        }
    }

    /// Open `step` (not before the open step): its bucket is sorted for delivery. Events of earlier steps
    /// not yet taken stay due.
    pub fn open_step(&mut self, step: u64) {
        while self.open < step {
            self.open += 1;
            for k in self.pos..self.current.len() {
                self.late.push(Late(self.current[k]));
            }
            self.current.clear();
            self.pos = 0;
            if !self.ring.is_empty() {
                let mask = self.ring.len() - 1;
                let mut i = std::mem::replace(&mut self.ring[self.open as usize & mask], NIL);
                while i != NIL {
                    self.current.push(self.slab[i as usize]);
                    let n = self.next[i as usize];
                    self.next[i as usize] = self.free;
                    self.free = i;
                    i = n;
                }
            }
            while self.far.peek().is_some_and(|f| f.step < self.open + RING) {
                let Far { step, q } = self.far.pop().unwrap();
                if step <= self.open {
                    self.current.push(q);
                } else {
                    self.file(step, q);
                }
            }
            self.current.sort_unstable_by_key(Queued::rank);
        }
    }

    /// The next event of the open step in delivery order if it is due by `limit` (inclusive or not).
    #[inline]
    pub fn pop(&mut self, limit: f64, inclusive: bool) -> Option<Queued> {
        let late = match (self.current.get(self.pos), self.late.peek()) {
            (None, None) => return None,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => b.0.rank() < a.rank(),
        };
        let q = if late { self.late.peek().unwrap().0 } else { self.current[self.pos] };
        if !(if inclusive { q.time <= limit } else { q.time < limit }) {
            return None;
        }
        if late {
            self.late.pop();
        } else {
            self.pos += 1;
        }
        self.len -= 1;
        Some(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(time: f64, key: u64, seq: u64, item: u32) -> Queued {
        Queued { time, key, seq, item }
    }

    /// Every event comes out at the step the rule gives, in (time, key, seq) order, whatever the push order,
    /// with far events (beyond the ring) and events pushed into the open step included.
    #[test]
    fn delivers_by_step_in_total_order_whatever_the_push_order() {
        let dt = 0.025;
        for rule in [DeliveryRule::Nearest, DeliveryRule::Floor] {
            let mut events = Vec::new();
            let mut x: u64 = 12345;
            for i in 0..5000u32 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let step = (x >> 33) % 3000;
                let frac = [0.0, 0.5, 0.25, 0.999, 0.5000001, 0.4999999][(x >> 20) as usize % 6];
                let key = (x >> 8) % 7;
                events.push(q((step as f64 + frac) * dt, key, (i % 3) as u64 * 10_000 + i as u64, i));
            }
            let expected = |s: u64| -> Vec<u32> {
                let t = s as f64 * dt;
                let mut due: Vec<&Queued> = events
                    .iter()
                    .filter(|e| {
                        let d = |t: f64| match rule {
                            DeliveryRule::Nearest => e.time <= t + 0.5 * dt,
                            DeliveryRule::Floor => e.time < t + dt,
                        };
                        d(t) && (s == 0 || !d((s - 1) as f64 * dt))
                    })
                    .collect();
                due.sort_by_key(|e| e.rank());
                due.iter().map(|e| e.item).collect()
            };
            let mut orders = Vec::new();
            for reverse in [false, true] {
                let mut queue = EventQueue::new(dt, rule);
                let mut order: Vec<usize> = (0..events.len()).collect();
                if reverse {
                    order.reverse();
                }
                // Half the events before the run, the rest pushed just before their step opens.
                let (early, later): (Vec<usize>, Vec<usize>) = order.iter().partition(|&&i| i % 2 == 0);
                for &i in &early {
                    queue.push(events[i]);
                }
                let mut got = Vec::new();
                for s in 0..3100u64 {
                    for &i in &later {
                        let e = events[i];
                        let f = (e.time / dt).floor() as u64;
                        if f == s + 1 || (s == 0 && f == 0) {
                            queue.push(e);
                        }
                    }
                    queue.open_step(s);
                    let limit = match rule {
                        DeliveryRule::Nearest => s as f64 * dt + 0.5 * dt,
                        DeliveryRule::Floor => s as f64 * dt + dt,
                    };
                    let mut step_items = Vec::new();
                    while let Some(e) = queue.pop(limit, rule == DeliveryRule::Nearest) {
                        step_items.push(e.item);
                    }
                    if s <= 3000 {
                        assert_eq!(step_items, expected(s), "{rule:?} step {s}");
                    }
                    got.push(step_items);
                }
                assert_eq!(queue.len(), 0);
                orders.push(got);
            }
            assert_eq!(orders[0], orders[1]);
        }
    }

    /// Events pushed into the open step during its delivery come out in order among the rest.
    #[test]
    fn events_pushed_while_a_step_is_delivered_merge_in_order() {
        let dt = 0.1;
        let mut queue = EventQueue::new(dt, DeliveryRule::Nearest);
        for (k, t) in [1.0, 1.01, 1.03].iter().enumerate() {
            queue.push(q(*t, k as u64, 0, k as u32));
        }
        queue.push(q(20000.0, 0, 0, 9));
        queue.open_step(10);
        let limit = 1.0 + 0.05;
        assert_eq!(queue.pop(limit, true).unwrap().item, 0);
        queue.push(q(1.02, u64::MAX, 1, 5));
        queue.push(q(1.0, u64::MAX, 2, 6));
        let rest: Vec<u32> = std::iter::from_fn(|| queue.pop(limit, true)).map(|e| e.item).collect();
        assert_eq!(rest, vec![6, 1, 5, 2]);
        queue.open_step(199_999);
        assert!(queue.pop(199_999.0 * dt + 0.05, true).is_none());
        queue.open_step(200_000);
        assert_eq!(queue.pop(200_000.0 * dt + 0.05, true).unwrap().item, 9);
        queue.push(q(f64::NAN, 0, 0, 1));
        queue.push(q(f64::INFINITY, 0, 0, 1));
        queue.open_step(300_000);
        assert!(queue.pop(f64::MAX, true).is_none());
        assert_eq!(queue.len(), 2);
    }
}
