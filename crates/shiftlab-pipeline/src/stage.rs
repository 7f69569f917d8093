//! Bounded queues between stages, and the counters every stage keeps.
//!
//! A stage's time is split into busy (working), blocked (waiting for room in its output queue:
//! a slower stage downstream) and starved (waiting for input: a slower stage upstream). The stage
//! with the largest busy share per worker is the bottleneck.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

/// Counters of one stage, shared by its workers.
#[derive(Debug, Default)]
pub struct StageCounters {
    pub name: &'static str,
    pub workers: AtomicU64,
    pub items: AtomicU64,
    busy_ns: AtomicU64,
    blocked_ns: AtomicU64,
    starved_ns: AtomicU64,
    /// Items now inside this stage's input queue or being worked on (for the backpressure test).
    pub in_flight: AtomicI64,
    pub max_in_flight: AtomicI64,
}

/// A snapshot of [`StageCounters`], in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct StageStats {
    pub name: &'static str,
    pub workers: u64,
    pub items: u64,
    pub busy_s: f64,
    pub blocked_s: f64,
    pub starved_s: f64,
    pub max_in_flight: u64,
}

impl StageCounters {
    pub fn new(name: &'static str, workers: usize) -> Arc<Self> {
        let c = StageCounters {
            name,
            ..Default::default()
        };
        c.workers.store(workers as u64, Ordering::Relaxed);
        Arc::new(c)
    }

    pub fn add_busy(&self, since: Instant) {
        self.busy_ns.fetch_add(nanos(since), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StageStats {
        let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
        StageStats {
            name: self.name,
            workers: self.workers.load(Ordering::Relaxed),
            items: self.items.load(Ordering::Relaxed),
            busy_s: s(&self.busy_ns),
            blocked_s: s(&self.blocked_ns),
            starved_s: s(&self.starved_ns),
            max_in_flight: self.max_in_flight.load(Ordering::Relaxed).max(0) as u64,
        }
    }
}

fn nanos(since: Instant) -> u64 {
    since.elapsed().as_nanos().min(u64::MAX as u128) as u64
}

/// Sending end of a bounded queue that charges waiting time to the producing stage and counts
/// items in flight for the consuming stage.
pub struct Out<T> {
    tx: Sender<T>,
    producer: Arc<StageCounters>,
    consumer: Arc<StageCounters>,
}

/// Receiving end matching [`Out`].
pub struct In<T> {
    rx: Receiver<T>,
    consumer: Arc<StageCounters>,
}

impl<T> Clone for Out<T> {
    fn clone(&self) -> Self {
        Out {
            tx: self.tx.clone(),
            producer: self.producer.clone(),
            consumer: self.consumer.clone(),
        }
    }
}

impl<T> Clone for In<T> {
    fn clone(&self) -> Self {
        In {
            rx: self.rx.clone(),
            consumer: self.consumer.clone(),
        }
    }
}

/// A queue holding at most `capacity` items between `producer` and `consumer`.
pub fn queue<T>(
    capacity: usize,
    producer: &Arc<StageCounters>,
    consumer: &Arc<StageCounters>,
) -> (Out<T>, In<T>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (
        Out {
            tx,
            producer: producer.clone(),
            consumer: consumer.clone(),
        },
        In {
            rx,
            consumer: consumer.clone(),
        },
    )
}

impl<T> Out<T> {
    /// Sends, waiting while the queue is full; false when the consumer is gone.
    /// An item counts as in flight from the moment it is queued until the consumer calls
    /// [`In::done`], so the maximum is at most the queue capacity plus the consumer's workers.
    pub fn send(&self, item: T) -> bool {
        let t = Instant::now();
        let ok = self.tx.send(item).is_ok();
        self.producer
            .blocked_ns
            .fetch_add(nanos(t), Ordering::Relaxed);
        if ok {
            let n = self.consumer.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.consumer.max_in_flight.fetch_max(n, Ordering::SeqCst);
        }
        ok
    }
}

impl<T> In<T> {
    /// Receives, waiting while the queue is empty; `None` when all producers are done.
    pub fn recv(&self) -> Option<T> {
        let t = Instant::now();
        let item = self.rx.recv().ok();
        self.consumer
            .starved_ns
            .fetch_add(nanos(t), Ordering::Relaxed);
        item
    }

    /// Marks one received item as finished by the consumer.
    pub fn done(&self) {
        self.consumer.items.fetch_add(1, Ordering::Relaxed);
        self.consumer.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The stage with the highest busy time per worker: where to look first for speed.
pub fn bottleneck(stats: &[StageStats]) -> Option<&StageStats> {
    stats
        .iter()
        .filter(|s| s.workers > 0)
        .max_by(|a, b| (a.busy_s / a.workers as f64).total_cmp(&(b.busy_s / b.workers as f64)))
}

impl StageCounters {
    /// For a stage whose work is interleaved with its sends: busy = wall - blocked - starved.
    pub fn set_busy_from_wall(&self, since: Instant) {
        let wall = nanos(since);
        let idle =
            self.blocked_ns.load(Ordering::Relaxed) + self.starved_ns.load(Ordering::Relaxed);
        self.busy_ns
            .store(wall.saturating_sub(idle), Ordering::Relaxed);
    }
}
