//! The collate stage: a batch's pixels become the tensors the models take.

use std::time::Instant;

use crate::source::PixelBatch;
use crate::stage::{In, Out, StageCounters};

use super::Shifted;

pub(super) fn collate_stage(rx: In<Shifted>, tx: Out<Shifted>, counters: &StageCounters) {
    while let Some(mut b) = rx.recv() {
        let t = Instant::now();
        b.tensors = b.pixels.tensors();
        b.pixels = PixelBatch::default();
        counters.add_busy(t);
        let sent = tx.send(b);
        rx.done();
        if !sent {
            break;
        }
    }
}
