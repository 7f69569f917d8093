//! Bounded queues between stages, and the counters every stage keeps.
//!
//! A stage's time is split into busy (working), blocked (waiting for room in its output queue:
//! a slower stage downstream) and starved (waiting for input: a slower stage upstream). The stage
//! with the largest busy share per worker is the bottleneck.
//!
//! Cancellation: every queue end shares one [`Cancel`]. The first fatal error of any stage (an
//! I/O error, a failing model or probe, a panic, an interrupt) is recorded there; from then on
//! every `send` returns false and every `recv` returns `None` within [`POLL`], so each stage stops
//! after at most the item in its hands, and that first error is what the run reports.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender};

use crate::error::PipelineError;
use crate::interrupt;

/// How often a waiting queue end looks at the cancel flag.
pub const POLL: Duration = Duration::from_millis(50);

/// The first failure of an evaluation, shared by its stages.
#[derive(Debug, Default)]
pub struct Cancel {
    stopped: AtomicBool,
    first: Mutex<Option<PipelineError>>,
}

impl Cancel {
    pub fn new() -> Arc<Cancel> {
        Arc::new(Cancel::default())
    }

    /// Records `e` unless an earlier error is recorded, and tells every stage to stop.
    pub fn fail(&self, e: PipelineError) {
        if let Ok(mut first) = self.first.lock() {
            if first.is_none() {
                *first = Some(e);
            }
        }
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// True once a stage failed or the user interrupted the run (recorded as the error then).
    pub fn stopped(&self) -> bool {
        if self.stopped.load(Ordering::SeqCst) {
            return true;
        }
        if interrupt::requested() {
            self.fail(PipelineError::Interrupted);
            return true;
        }
        false
    }

    /// The first recorded error, if any.
    pub fn take(&self) -> Option<PipelineError> {
        self.first.lock().ok().and_then(|mut f| f.take())
    }
}

/// Starts one stage worker on a named thread (`shiftlab-NAME`). Its error, or its panic with the
/// panic's message, is recorded in `cancel` as the stage's failure.
pub fn spawn_stage<'scope, 'env, F>(
    scope: &'scope Scope<'scope, 'env>,
    name: &'static str,
    cancel: &'env Cancel,
    work: F,
) -> Result<ScopedJoinHandle<'scope, ()>, PipelineError>
where
    F: FnOnce() -> Result<(), PipelineError> + Send + 'scope,
{
    std::thread::Builder::new()
        .name(format!("shiftlab-{name}"))
        .spawn_scoped(scope, move || {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => cancel.fail(e),
                Err(payload) => cancel.fail(PipelineError::StagePanicked {
                    stage: name,
                    message: panic_message(payload.as_ref()),
                }),
            }
        })
        .map_err(|e| PipelineError::Stage(format!("cannot start the {name} stage: {e}")))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        return (*s).to_string();
    }
    if let Some(s) = payload.downcast_ref::<String>() {
        return s.clone();
    }
    "a panic without a message".into()
}

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
    cancel: Arc<Cancel>,
}

/// Receiving end matching [`Out`].
pub struct In<T> {
    rx: Receiver<T>,
    consumer: Arc<StageCounters>,
    cancel: Arc<Cancel>,
}

impl<T> Clone for Out<T> {
    fn clone(&self) -> Self {
        Out {
            tx: self.tx.clone(),
            producer: self.producer.clone(),
            consumer: self.consumer.clone(),
            cancel: self.cancel.clone(),
        }
    }
}

impl<T> Clone for In<T> {
    fn clone(&self) -> Self {
        In {
            rx: self.rx.clone(),
            consumer: self.consumer.clone(),
            cancel: self.cancel.clone(),
        }
    }
}

/// A queue holding at most `capacity` items between `producer` and `consumer`.
pub fn queue<T>(
    capacity: usize,
    producer: &Arc<StageCounters>,
    consumer: &Arc<StageCounters>,
    cancel: &Arc<Cancel>,
) -> (Out<T>, In<T>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (
        Out {
            tx,
            producer: producer.clone(),
            consumer: consumer.clone(),
            cancel: cancel.clone(),
        },
        In {
            rx,
            consumer: consumer.clone(),
            cancel: cancel.clone(),
        },
    )
}

impl<T> Out<T> {
    /// True once the run is cancelled (a stage failed, or an interrupt).
    pub fn cancelled(&self) -> bool {
        self.cancel.stopped()
    }

    /// Sends, waiting while the queue is full; false (the item dropped) when the consumer is gone
    /// or the run is cancelled: the caller stops.
    /// An item counts as in flight from the moment it is queued until the consumer calls
    /// [`In::done`], so the maximum is at most the queue capacity plus the consumer's workers.
    pub fn send(&self, item: T) -> bool {
        let t = Instant::now();
        let mut item = item;
        let ok = loop {
            if self.cancel.stopped() {
                break false;
            }
            match self.tx.send_timeout(item, POLL) {
                Ok(()) => break true,
                Err(SendTimeoutError::Timeout(back)) => item = back,
                Err(SendTimeoutError::Disconnected(_)) => break false,
            }
        };
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
    /// Receives, waiting while the queue is empty; `None` when all producers are done or the run
    /// is cancelled.
    pub fn recv(&self) -> Option<T> {
        let t = Instant::now();
        let item = loop {
            if self.cancel.stopped() {
                break None;
            }
            match self.rx.recv_timeout(POLL) {
                Ok(item) => break Some(item),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break None,
            }
        };
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
