//! The embed stage: every model embeds every batch (one worker, the models in file order), in
//! fixed-size blocks so features never depend on how the batch was cut.

use std::time::Instant;

use shiftlab_model::Encoder;
use tch::{Kind, Tensor};

use crate::error::PipelineError;
use crate::stage::{In, Out, StageCounters};

use super::{Embedded, Shifted};

/// Embeds `x` in calls of exactly `block` images, the last one padded by repeating its final
/// image: libtorch picks its kernels by shape, so a fixed shape makes each image's features
/// independent of how many images the batch had (and of its neighbours).
pub fn embed_blocked(enc: &Encoder, x: &Tensor, block: usize) -> shiftlab_model::Result<Tensor> {
    let n = x.size().first().copied().unwrap_or(0);
    let block = block.max(1) as i64;
    let mut out = Vec::new();
    for start in (0..n).step_by(block as usize) {
        let len = block.min(n - start);
        let mut part = x.narrow(0, start, len);
        if len < block {
            let mut reps = vec![1i64; x.dim()];
            reps[0] = block - len;
            part = Tensor::cat(
                &[
                    part.shallow_clone(),
                    x.narrow(0, n - 1, 1).repeat(reps.as_slice()),
                ],
                0,
            );
        }
        out.push(enc.embed(&part)?.narrow(0, 0, len));
    }
    if out.is_empty() {
        return enc.embed(x);
    }
    Ok(Tensor::cat(&out, 0))
}

pub(super) fn embed_stage(
    rx: In<Shifted>,
    tx: Out<Embedded>,
    encoders: &[Encoder],
    block: usize,
    counters: &StageCounters,
) -> Result<(), PipelineError> {
    let _guard = tch::no_grad_guard();
    while let Some(batch) = rx.recv() {
        let t = Instant::now();
        let mut features = Vec::with_capacity(encoders.len());
        for enc in encoders {
            let parts: Result<Vec<Tensor>, _> = batch
                .tensors
                .iter()
                .map(|x| embed_blocked(enc, x, block))
                .collect();
            let parts = parts.map_err(|e| PipelineError::model(enc.name(), e))?;
            features.push(if parts.is_empty() {
                Tensor::zeros([0, enc.dim()], (Kind::Float, tch::Device::Cpu))
            } else {
                Tensor::cat(&parts, 0)
            });
        }
        counters.add_busy(t);
        let sent = tx.send(Embedded { batch, features });
        rx.done();
        if !sent {
            break;
        }
    }
    Ok(())
}
