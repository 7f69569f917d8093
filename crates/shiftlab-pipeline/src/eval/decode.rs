//! The decode stage: a chunk's encoded images become pixels (a broken image is recorded and
//! skipped); the clean batch goes to collate first, then one shift job per shift.

use std::sync::Arc;
use std::time::Instant;

use crate::source::{decode, Geometry, PixelBatch};
use crate::stage::{In, Out, StageCounters};
use crate::tables::ErrorRows;

use super::{Chunk, Decoded, Job, Shifted};

pub(super) fn decode_stage(
    rx: In<Chunk>,
    jobs: Out<Job>,
    clean: Out<Shifted>,
    geometry: Geometry,
    shifts: usize,
    counters: &StageCounters,
) {
    while let Some(chunk) = rx.recv() {
        let t = Instant::now();
        let mut errors = ErrorRows::default();
        let mut decoded = Decoded {
            part: chunk.part,
            chunk: chunk.chunk,
            target: chunk.target,
            ids: Vec::new(),
            labels: Vec::new(),
            tags: Vec::new(),
            images: Vec::new(),
        };
        for s in chunk.samples {
            match decode(&s.bytes, geometry) {
                Ok(img) => {
                    decoded.ids.push(s.id);
                    decoded.labels.push(s.label);
                    decoded.tags.push((s.corruption, s.severity));
                    decoded.images.push(img);
                }
                Err(reason) => errors.push(chunk.part as i32, "decode", s.id, reason),
            }
        }
        let decoded = Arc::new(decoded);
        let positions: Vec<usize> = (0..decoded.images.len()).collect();
        let pixels = PixelBatch::from_images(decoded.images.iter());
        counters.add_busy(t);
        let sent = clean.send(Shifted {
            part: decoded.part,
            chunk: decoded.chunk,
            shift_index: 0,
            positions,
            decoded: decoded.clone(),
            pixels,
            tensors: Vec::new(),
            errors,
        });
        let sent = sent
            && (decoded.target.is_some() || (1..shifts).all(|s| jobs.send((decoded.clone(), s))));
        rx.done();
        if !sent {
            break;
        }
    }
}
