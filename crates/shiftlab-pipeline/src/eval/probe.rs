//! The probe stage: every model's probes score every embedded batch; source batches also get
//! each sample's cosine to its clean twin (the chunk's clean batch always arrives first). With
//! `runtime.save_embeddings` the features themselves go to the sink too.

use std::collections::HashMap;
use std::time::Instant;

use tch::{Device, Kind, Tensor};

use crate::config::Shift;
use crate::error::PipelineError;
use crate::probes::{Probe, SampleOutput};
use crate::stage::{In, Out, StageCounters};
use crate::tables::{EmbeddingRows, PredictionRows};
use crate::targets::ResolvedTarget;

use super::{Decoded, Embedded, Shifted, SinkMsg};

/// What the probe stage needs besides its queues.
pub(super) struct ProbeCtx<'a> {
    /// The `run` column.
    pub run: &'a str,
    /// The pipeline's shifts, indexed by a batch's `shift_index`.
    pub shifts: &'a [Shift],
    pub model_names: &'a [String],
    pub probes: &'a [Vec<Box<dyn Probe>>],
    pub targets: &'a [(ResolvedTarget, u32)],
    /// `runtime.save_embeddings`: the features go to the sink too.
    pub save_embeddings: bool,
}

pub(super) fn probe_stage(
    rx: In<Embedded>,
    tx: Out<SinkMsg>,
    ctx: &ProbeCtx<'_>,
    counters: &StageCounters,
) -> Result<(), PipelineError> {
    // Clean embeddings per (part, chunk) and model, kept until every shift of the chunk is done.
    let mut clean: HashMap<(u32, u32), (Vec<Tensor>, usize)> = HashMap::new();
    let shifts = ctx.shifts.len();
    while let Some(Embedded { batch, features }) = rx.recv() {
        let t = Instant::now();
        let key = (batch.part, batch.chunk);
        let rows = match batch.decoded.target {
            Some(target) => probe_target(ctx, &batch, &features, target)?,
            None => {
                if batch.shift_index == 0 {
                    let twins = features.iter().map(|f| f.shallow_clone()).collect();
                    clean.insert(key, (twins, shifts));
                }
                let Some((clean_feats, remaining)) = clean.get_mut(&key) else {
                    return Err(PipelineError::Stage(format!(
                        "shifted batch of part {} chunk {} arrived before its clean batch",
                        batch.part, batch.chunk
                    )));
                };
                let rows = probe_source(ctx, &batch, &features, clean_feats)?;
                *remaining -= 1;
                if *remaining == 0 {
                    clean.remove(&key);
                }
                rows
            }
        };
        let embeddings = embedding_rows(ctx, &batch, &features)?;
        counters.add_busy(t);
        let sent = tx.send(SinkMsg::Item {
            part: batch.part,
            rows: Box::new(rows),
            embeddings,
            errors: batch.errors,
        });
        rx.done();
        if !sent {
            break;
        }
    }
    Ok(())
}

/// Every model's features of a batch, one row per image (none unless `save_embeddings`).
fn embedding_rows(
    ctx: &ProbeCtx<'_>,
    batch: &Shifted,
    features: &[Tensor],
) -> Result<Vec<EmbeddingRows>, PipelineError> {
    if !ctx.save_embeddings || batch.positions.is_empty() {
        return Ok(Vec::new());
    }
    let tag = match batch.decoded.target {
        Some(t) => RowTag::Target(&ctx.targets[t].0.target.name),
        None => RowTag::Shift(ctx.shifts[batch.shift_index]),
    };
    let mut meta = EmbeddingRows::default();
    for &pos in &batch.positions {
        let (shift, group, family, severity) = tag.columns(&batch.decoded, pos);
        meta.part.push(batch.part as i32);
        meta.sample_id.push(batch.decoded.ids[pos].clone());
        meta.label.push(batch.decoded.labels[pos]);
        meta.shift.push(shift);
        meta.shift_group.push(group);
        meta.shift_family.push(family);
        meta.severity.push(severity);
    }
    let mut out = Vec::with_capacity(features.len());
    for (m, feats) in features.iter().enumerate() {
        let name = &ctx.model_names[m];
        let size = feats.size();
        let &[n, dim] = size.as_slice() else {
            return Err(PipelineError::Stage(format!(
                "model {name}: features of shape {size:?}, expected [images, dim]"
            )));
        };
        let flat = feats
            .to_kind(Kind::Float)
            .to_device(Device::Cpu)
            .contiguous()
            .reshape([-1]);
        let values = Vec::<f32>::try_from(flat)
            .map_err(|e| PipelineError::Stage(format!("model {name}: features: {e}")))?;
        if n as usize != meta.len() {
            return Err(PipelineError::Stage(format!(
                "model {name}: {n} feature rows for {} images",
                meta.len()
            )));
        }
        out.push(EmbeddingRows {
            model: name.clone(),
            dim: dim as usize,
            values,
            ..meta.clone()
        });
    }
    Ok(out)
}

/// Positions in the decoded chunk of the images a batch holds.
fn positions(batch: &Shifted) -> Tensor {
    let idx: Vec<i64> = batch.positions.iter().map(|&i| i as i64).collect();
    Tensor::from_slice(&idx)
}

/// Labels of the images a batch holds.
fn labels(batch: &Shifted) -> Tensor {
    let labels: Vec<i64> = batch
        .positions
        .iter()
        .map(|&i| batch.decoded.labels[i])
        .collect();
    Tensor::from_slice(&labels)
}

/// Rows of one on-the-fly shift of the source, with the cosine to each sample's clean twin.
fn probe_source(
    ctx: &ProbeCtx<'_>,
    batch: &Shifted,
    features: &[Tensor],
    clean_feats: &[Tensor],
) -> Result<PredictionRows, PipelineError> {
    let shift = ctx.shifts[batch.shift_index];
    let idx = positions(batch);
    let cosine = |m: usize, feats: &Tensor| {
        if shift == Shift::Clean {
            return Ok(vec![Some(1.0); batch.positions.len()]);
        }
        let twin = clean_feats[m].index_select(0, &idx);
        let cos = shiftlab_probe::probe::cosine_to_clean(feats, &twin)
            .map_err(|e| PipelineError::probe(&ctx.model_names[m], "cosine_to_clean", e))?;
        Ok(cos.iter().map(|&c| Some(c as f32)).collect())
    };
    score_batch(ctx, batch, features, &RowTag::Shift(shift), None, cosine)
}

/// Rows of a target's batch: restricted to the classes it covers, no cosine.
fn probe_target(
    ctx: &ProbeCtx<'_>,
    batch: &Shifted,
    features: &[Tensor],
    target: usize,
) -> Result<PredictionRows, PipelineError> {
    let (resolved, _) = &ctx.targets[target];
    let tag = RowTag::Target(&resolved.target.name);
    let none = |_: usize, _: &Tensor| Ok(vec![None; batch.positions.len()]);
    score_batch(
        ctx,
        batch,
        features,
        &tag,
        resolved.allowed.as_deref(),
        none,
    )
}

/// Every model's probes on one batch: prediction rows, with `cosine(model, features)`.
fn score_batch(
    ctx: &ProbeCtx<'_>,
    batch: &Shifted,
    features: &[Tensor],
    tag: &RowTag<'_>,
    allowed: Option<&[i64]>,
    cosine: impl Fn(usize, &Tensor) -> Result<Vec<Option<f32>>, PipelineError>,
) -> Result<PredictionRows, PipelineError> {
    let mut rows = PredictionRows::default();
    if batch.positions.is_empty() {
        return Ok(rows);
    }
    let labels = labels(batch);
    for (m, feats) in features.iter().enumerate() {
        let name = &ctx.model_names[m];
        let cos = cosine(m, feats)?;
        for probe in &ctx.probes[m] {
            let out = predict(probe.as_ref(), name, feats, &labels, allowed)?;
            let scored = Scored {
                model: name,
                probe: probe.name(),
                out: &out,
                cosine: &cos,
            };
            push_rows(&mut rows, ctx.run, batch, tag, &scored);
        }
    }
    Ok(rows)
}

fn predict(
    probe: &dyn Probe,
    model: &str,
    features: &Tensor,
    labels: &Tensor,
    allowed: Option<&[i64]>,
) -> Result<Vec<SampleOutput>, PipelineError> {
    probe
        .predict(features, labels, allowed)
        .map_err(|e| PipelineError::probe(model, probe.name(), e))
}

/// What produced a batch: an on-the-fly shift of the source, or a target dataset.
enum RowTag<'a> {
    Shift(Shift),
    Target(&'a str),
}

impl RowTag<'_> {
    /// (shift, shift_group, shift_family, severity) of the sample at `pos`; a target row keeps
    /// its own corruption and severity columns when set (a pre-corrupted dataset).
    fn columns(&self, decoded: &Decoded, pos: usize) -> (String, String, &'static str, i32) {
        match self {
            RowTag::Shift(s) => (
                s.name().to_string(),
                s.group().to_string(),
                s.family(),
                s.severity(),
            ),
            RowTag::Target(name) => {
                let (corruption, severity) = &decoded.tags[pos];
                crate::targets::row_columns(name, corruption.as_deref(), *severity)
            }
        }
    }
}

/// One model's and probe's outputs on a batch.
struct Scored<'a> {
    model: &'a str,
    probe: &'static str,
    out: &'a [SampleOutput],
    cosine: &'a [Option<f32>],
}

fn push_rows(
    rows: &mut PredictionRows,
    run: &str,
    batch: &Shifted,
    tag: &RowTag<'_>,
    scored: &Scored<'_>,
) {
    let Scored {
        model,
        probe,
        out,
        cosine,
    } = *scored;
    for (j, &pos) in batch.positions.iter().enumerate() {
        let label = batch.decoded.labels[pos];
        let (shift, group, family, severity) = tag.columns(&batch.decoded, pos);
        rows.run.push(run.to_string());
        rows.part.push(batch.part as i32);
        rows.sample_id.push(batch.decoded.ids[pos].clone());
        rows.label.push(label);
        rows.model.push(model.to_string());
        rows.probe.push(probe.to_string());
        rows.shift.push(shift);
        rows.shift_group.push(group);
        rows.shift_family.push(family);
        rows.severity.push(severity);
        let o = &out[j];
        rows.prediction.push(o.prediction);
        rows.correct.push(o.correct);
        rows.top5_correct.push(o.top5_correct);
        rows.top5.push(o.top5.clone());
        rows.confidence.push(o.confidence as f32);
        rows.cosine_to_clean.push(cosine[j]);
    }
}
