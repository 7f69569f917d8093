//! The shift stage: one corruption or synthetic shift of one decoded chunk, each image with its
//! own random stream keyed by (seed, sample id, shift, severity), so pixels never depend on
//! threads, batches or shards.

use std::time::Instant;

use shiftlab_corrupt::{FrostAssets, Transform};

use crate::config::{Shift, Shifts};
use crate::source::{sample_key, PixelBatch};
use crate::stage::{In, Out, StageCounters};
use crate::tables::ErrorRows;

use super::{Job, Shifted};

pub(super) fn shift_stage(
    rx: In<Job>,
    tx: Out<Shifted>,
    shifts: &Shifts,
    seed: u64,
    frost: &FrostAssets,
    counters: &StageCounters,
) {
    while let Some((decoded, shift_index)) = rx.recv() {
        let t = Instant::now();
        let mut errors = ErrorRows::default();
        let mut positions = Vec::new();
        let mut images = Vec::new();
        let shift = shifts.list[shift_index];
        for (i, img) in decoded.images.iter().enumerate() {
            let (transform, severity) = match shift {
                Shift::Clean => continue,
                Shift::Corruption(c, s) => (Transform::Corruption(c), s),
                Shift::Synthetic(c, s) => (Transform::Synthetic(c), s),
            };
            let key = sample_key(&decoded.ids[i]);
            match transform.apply(img, severity, shifts.preset, seed, key, frost) {
                Ok(out) => {
                    positions.push(i);
                    images.push(out);
                }
                Err(e) => errors.push(
                    decoded.part as i32,
                    "shift",
                    format!(
                        "{} ({} s{})",
                        decoded.ids[i],
                        shift.name(),
                        shift.severity()
                    ),
                    e.to_string(),
                ),
            }
        }
        let pixels = PixelBatch::from_images(images.iter());
        counters.add_busy(t);
        let sent = tx.send(Shifted {
            part: decoded.part,
            chunk: decoded.chunk,
            shift_index,
            positions,
            decoded,
            pixels,
            tensors: Vec::new(),
            errors,
        });
        rx.done();
        if !sent {
            break;
        }
    }
}
