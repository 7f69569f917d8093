//! The evaluation phase: read -> decode -> shift -> collate -> embed -> probe -> sink, each stage
//! on its own threads, connected by bounded queues (a slow stage makes its producers wait).
//!
//! Ordering that the cosine-to-clean needs: a decode worker puts a chunk's clean batch on the
//! collate queue *before* it hands the chunk's shift jobs to the shift pool, and collate, embed and
//! probe are single FIFO workers, so the probe stage always sees a chunk's clean embeddings before
//! any shifted one of the same chunk.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::DynamicImage;
use shiftlab_corrupt::{FrostAssets, Transform};
use shiftlab_model::Encoder;
use tch::{Kind, Tensor};

use crate::config::{Pipeline, Shift};
use crate::error::PipelineError;
use crate::probes::{Probe, SampleOutput};
use crate::source::{decode, sample_key, Geometry, PixelBatch, Sample, SampleStream};
use crate::stage::{queue, In, Out, StageCounters, StageStats};
use crate::tables::{ErrorRows, PredictionRows};
use crate::targets::ResolvedTarget;

/// A run of consecutive samples inside one part.
struct Chunk {
    part: u32,
    chunk: u32,
    /// `Some(t)`: the samples come from target `t` (a dataset-level shift), not the source.
    target: Option<usize>,
    samples: Vec<Sample>,
}

/// A chunk after decoding: the images that decoded, with their position in the chunk.
struct Decoded {
    part: u32,
    chunk: u32,
    target: Option<usize>,
    ids: Vec<String>,
    /// In the source's classes (target labels are mapped when read).
    labels: Vec<i64>,
    /// The rows' own `corruption` / `severity` columns (used for targets).
    tags: Vec<(Option<String>, Option<i32>)>,
    images: Vec<DynamicImage>,
}

/// One shift of one chunk, as pixels (then as tensors after collate).
struct Shifted {
    part: u32,
    chunk: u32,
    shift_index: usize,
    /// Index into the decoded chunk of each image (some may have failed to shift).
    positions: Vec<usize>,
    decoded: Arc<Decoded>,
    pixels: PixelBatch,
    tensors: Vec<Tensor>,
    errors: ErrorRows,
}

/// Embeddings of one shifted batch for every model.
struct Embedded {
    batch: Shifted,
    features: Vec<Tensor>,
}

/// What the sink receives.
pub enum SinkMsg {
    /// A part has `chunks` chunks; it is whole after `chunks x shifts + extra` items (`shifts`:
    /// the batches each chunk yields, 1 for a target).
    Declare {
        part: u32,
        chunks: u32,
        shifts: u32,
        extra: u32,
    },
    Item {
        part: u32,
        rows: Box<PredictionRows>,
        errors: ErrorRows,
    },
}

/// Fixed inputs of the evaluation phase.
pub struct EvalInputs<'a> {
    pub pipeline: &'a Pipeline,
    pub encoders: Vec<Encoder>,
    /// Per model, its probes.
    pub probes: Vec<Vec<Box<dyn Probe>>>,
    pub frost: Arc<FrostAssets>,
    pub selected: Option<std::collections::HashSet<String>>,
    pub todo: BTreeSet<u32>,
    pub num_classes: i64,
    /// Dataset-level shifts, with the first part of each (after the source's parts).
    pub targets: Vec<(ResolvedTarget, u32)>,
}

/// Counters of every stage, in flow order.
pub struct Stages {
    pub read: Arc<StageCounters>,
    pub decode: Arc<StageCounters>,
    pub shift: Arc<StageCounters>,
    pub collate: Arc<StageCounters>,
    pub embed: Arc<StageCounters>,
    pub probe: Arc<StageCounters>,
    pub sink: Arc<StageCounters>,
}

impl Stages {
    pub fn new(cpu_workers: usize) -> Self {
        Stages {
            read: StageCounters::new("read", 1),
            decode: StageCounters::new("decode", cpu_workers),
            shift: StageCounters::new("shift", cpu_workers),
            collate: StageCounters::new("collate", 1),
            embed: StageCounters::new("embed", 1),
            probe: StageCounters::new("probe", 1),
            sink: StageCounters::new("sink", 1),
        }
    }

    pub fn all(&self) -> Vec<StageStats> {
        [
            &self.read,
            &self.decode,
            &self.shift,
            &self.collate,
            &self.embed,
            &self.probe,
            &self.sink,
        ]
        .iter()
        .map(|s| s.snapshot())
        .collect()
    }
}

/// Runs the whole evaluation phase; `sink` consumes [`SinkMsg`]s on the calling thread.
pub fn run_eval(
    inputs: EvalInputs<'_>,
    stages: &Stages,
    mut sink: impl FnMut(SinkMsg) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    let p = inputs.pipeline;
    let cap = p.queue_batches;
    let geometry = Geometry {
        resize: p.resize,
        crop: p.crop,
    };
    let (chunk_tx, chunk_rx) = queue::<Chunk>(cap, &stages.read, &stages.decode);
    let (job_tx, job_rx) =
        queue::<(Arc<Decoded>, usize)>(cap * p.shifts.len().max(1), &stages.decode, &stages.shift);
    let (collate_tx, collate_rx) = queue::<Shifted>(cap, &stages.shift, &stages.collate);
    let (embed_tx, embed_rx) = queue::<Shifted>(2, &stages.collate, &stages.embed);
    let (probe_tx, probe_rx) = queue::<Embedded>(cap, &stages.embed, &stages.probe);
    let (sink_tx, sink_rx) = queue::<SinkMsg>(cap, &stages.probe, &stages.sink);
    let EvalInputs {
        pipeline,
        encoders,
        probes,
        frost,
        selected,
        todo,
        num_classes,
        targets,
    } = inputs;
    let targets = &targets;
    std::thread::scope(|scope| -> Result<(), PipelineError> {
        let mut handles = Vec::new();
        {
            let sink_tx = sink_tx.clone();
            let counters = stages.read.clone();
            handles.push(scope.spawn(move || {
                let t = Instant::now();
                let r = read_stage(pipeline, selected, &todo, num_classes, &chunk_tx, &sink_tx)
                    .and_then(|()| read_targets(pipeline, targets, &todo, &chunk_tx, &sink_tx));
                counters.set_busy_from_wall(t);
                r
            }));
        }
        for _ in 0..p.cpu_workers {
            let (rx, jobs, clean) = (chunk_rx.clone(), job_tx.clone(), collate_tx.clone());
            let counters = stages.decode.clone();
            handles.push(scope.spawn(move || {
                decode_stage(rx, jobs, clean, geometry, pipeline.shifts.len(), &counters);
                Ok(())
            }));
        }
        drop((chunk_rx, job_tx));
        for _ in 0..p.cpu_workers {
            let (rx, tx, frost) = (job_rx.clone(), collate_tx.clone(), frost.clone());
            let counters = stages.shift.clone();
            handles.push(scope.spawn(move || {
                shift_stage(rx, tx, pipeline, &frost, &counters);
                Ok(())
            }));
        }
        drop((job_rx, collate_tx));
        let counters = stages.collate.clone();
        handles.push(scope.spawn(move || {
            collate_stage(collate_rx, embed_tx, &counters);
            Ok(())
        }));
        let counters = stages.embed.clone();
        handles.push(
            scope.spawn(move || {
                embed_stage(embed_rx, probe_tx, &encoders, p.embed_block, &counters)
            }),
        );
        let counters = stages.probe.clone();
        let names: Vec<String> = pipeline.models.iter().map(|m| m.name.clone()).collect();
        handles.push(scope.spawn(move || {
            let ctx = ProbeCtx {
                p: pipeline,
                model_names: &names,
                probes: &probes,
                targets,
            };
            probe_stage(probe_rx, sink_tx, &ctx, &counters)
        }));
        let mut result = Ok(());
        while let Some(msg) = sink_rx.recv() {
            let t = Instant::now();
            if result.is_ok() {
                result = sink(msg);
            }
            stages.sink.add_busy(t);
            sink_rx.done();
        }
        for h in handles {
            match h.join() {
                Ok(Err(e)) if result.is_ok() => result = Err(e),
                Err(_) if result.is_ok() => {
                    result = Err(PipelineError::Stage("a stage thread panicked".into()))
                }
                _ => {}
            }
        }
        result
    })
}

fn read_stage(
    p: &Pipeline,
    selected: Option<std::collections::HashSet<String>>,
    todo: &BTreeSet<u32>,
    num_classes: i64,
    out: &Out<Chunk>,
    sink: &Out<SinkMsg>,
) -> Result<(), PipelineError> {
    let stream = SampleStream::open(&p.dataset, &p.eval_split, selected, p.limit)?;
    let segment = Segment {
        first_part: 0,
        target: None,
        shifts: p.shifts.len() as u32,
    };
    let label = |s: &Sample| {
        if (0..num_classes).contains(&s.label) {
            return Ok(s.label);
        }
        let reason = format!(
            "label {} outside the probe's {num_classes} classes (0..={})",
            s.label,
            num_classes - 1
        );
        Err((s.id.clone(), reason))
    };
    read_segment(p, stream, &segment, todo, out, sink, label)
}

/// Streams every target after the source: its labels mapped to the source's classes (unmapped
/// ones recorded and skipped), one batch per chunk (no on-the-fly shifts).
fn read_targets(
    p: &Pipeline,
    targets: &[(ResolvedTarget, u32)],
    todo: &BTreeSet<u32>,
    out: &Out<Chunk>,
    sink: &Out<SinkMsg>,
) -> Result<(), PipelineError> {
    for (t, (target, first_part)) in targets.iter().enumerate() {
        let spec = &target.target;
        let stream = SampleStream::open(&spec.dataset, &spec.split, None, spec.limit)?;
        let segment = Segment {
            first_part: *first_part,
            target: Some(t),
            shifts: 1,
        };
        let label = |s: &Sample| {
            target
                .source_label(s.label)
                .map_err(|reason| (format!("{} ({})", s.id, spec.name), reason))
        };
        read_segment(p, stream, &segment, todo, out, sink, label)?;
    }
    Ok(())
}

/// Where a stream's samples go: its first part, its target, the batches each chunk yields.
struct Segment {
    first_part: u32,
    target: Option<usize>,
    shifts: u32,
}

/// Cuts one stream into parts and chunks; `label` gives a sample's label in the source's
/// classes, or the (item, reason) recorded in `errors` when it has none.
fn read_segment(
    p: &Pipeline,
    stream: SampleStream,
    segment: &Segment,
    todo: &BTreeSet<u32>,
    out: &Out<Chunk>,
    sink: &Out<SinkMsg>,
    label: impl Fn(&Sample) -> Result<i64, (String, String)>,
) -> Result<(), PipelineError> {
    let part_size = p.part_size as u64;
    let mut state = PartState::default();
    for sample in stream {
        let mut sample = sample?;
        let part = segment.first_part + (sample.index / part_size) as u32;
        if state.part != Some(part) {
            state.finish(todo, out, sink);
            state = PartState::new(part, segment.target, segment.shifts);
        }
        if !todo.contains(&part) {
            continue;
        }
        match label(&sample) {
            Ok(l) => {
                sample.label = l;
                state.push(sample, p.batch_size, out);
            }
            Err((item, reason)) => state.errors.push(part as i32, "source", item, reason),
        }
    }
    state.finish(todo, out, sink);
    Ok(())
}

/// The part the read stage is filling.
#[derive(Default)]
struct PartState {
    part: Option<u32>,
    target: Option<usize>,
    /// Batches each chunk yields downstream (shifts for the source, 1 for a target).
    shifts: u32,
    chunks: u32,
    current: Option<Chunk>,
    errors: ErrorRows,
}

impl PartState {
    fn new(part: u32, target: Option<usize>, shifts: u32) -> Self {
        PartState {
            part: Some(part),
            target,
            shifts,
            ..PartState::default()
        }
    }

    /// Adds a sample to the open chunk; a full chunk goes downstream.
    fn push(&mut self, sample: Sample, batch_size: usize, out: &Out<Chunk>) {
        let Some(part) = self.part else {
            return;
        };
        let (chunk_index, target) = (self.chunks, self.target);
        let chunk = self.current.get_or_insert_with(|| Chunk {
            part,
            chunk: chunk_index,
            target,
            samples: Vec::new(),
        });
        chunk.samples.push(sample);
        if chunk.samples.len() >= batch_size {
            self.flush(out);
        }
    }

    fn flush(&mut self, out: &Out<Chunk>) {
        if let Some(c) = self.current.take() {
            self.chunks += 1;
            out.send(c);
        }
    }

    /// Sends the last chunk, then tells the sink what makes the part whole; errors found by the
    /// source travel as one extra item.
    fn finish(&mut self, todo: &BTreeSet<u32>, out: &Out<Chunk>, sink: &Out<SinkMsg>) {
        let Some(part) = self.part.filter(|p| todo.contains(p)) else {
            return;
        };
        self.flush(out);
        let mut extra = 0;
        if !self.errors.is_empty() {
            extra = 1;
            sink.send(SinkMsg::Item {
                part,
                rows: Box::default(),
                errors: std::mem::take(&mut self.errors),
            });
        }
        sink.send(SinkMsg::Declare {
            part,
            chunks: self.chunks,
            shifts: self.shifts,
            extra,
        });
    }
}

fn decode_stage(
    rx: In<Chunk>,
    jobs: Out<(Arc<Decoded>, usize)>,
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
        clean.send(Shifted {
            part: decoded.part,
            chunk: decoded.chunk,
            shift_index: 0,
            positions,
            decoded: decoded.clone(),
            pixels,
            tensors: Vec::new(),
            errors,
        });
        if decoded.target.is_none() {
            for s in 1..shifts {
                jobs.send((decoded.clone(), s));
            }
        }
        rx.done();
    }
}

fn shift_stage(
    rx: In<(Arc<Decoded>, usize)>,
    tx: Out<Shifted>,
    p: &Pipeline,
    frost: &FrostAssets,
    counters: &StageCounters,
) {
    while let Some((decoded, shift_index)) = rx.recv() {
        let t = Instant::now();
        let mut errors = ErrorRows::default();
        let mut positions = Vec::new();
        let mut images = Vec::new();
        let shift = p.shifts[shift_index];
        for (i, img) in decoded.images.iter().enumerate() {
            let (transform, severity) = match shift {
                Shift::Clean => continue,
                Shift::Corruption(c, s) => (Transform::Corruption(c), s),
                Shift::Synthetic(c, s) => (Transform::Synthetic(c), s),
            };
            let key = sample_key(&decoded.ids[i]);
            match transform.apply(img, severity, p.preset, p.seed, key, frost) {
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
        tx.send(Shifted {
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
    }
}

fn collate_stage(rx: In<Shifted>, tx: Out<Shifted>, counters: &StageCounters) {
    while let Some(mut b) = rx.recv() {
        let t = Instant::now();
        b.tensors = b.pixels.tensors();
        b.pixels = PixelBatch::default();
        counters.add_busy(t);
        tx.send(b);
        rx.done();
    }
}

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

fn embed_stage(
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
        tx.send(Embedded { batch, features });
        rx.done();
    }
    Ok(())
}

/// What the probe stage needs besides its queues.
struct ProbeCtx<'a> {
    p: &'a Pipeline,
    model_names: &'a [String],
    probes: &'a [Vec<Box<dyn Probe>>],
    targets: &'a [(ResolvedTarget, u32)],
}

fn probe_stage(
    rx: In<Embedded>,
    tx: Out<SinkMsg>,
    ctx: &ProbeCtx<'_>,
    counters: &StageCounters,
) -> Result<(), PipelineError> {
    // Clean embeddings per (part, chunk) and model, kept until every shift of the chunk is done.
    let mut clean: HashMap<(u32, u32), (Vec<Tensor>, usize)> = HashMap::new();
    let shifts = ctx.p.shifts.len();
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
        counters.add_busy(t);
        tx.send(SinkMsg::Item {
            part: batch.part,
            rows: Box::new(rows),
            errors: batch.errors,
        });
        rx.done();
    }
    Ok(())
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
    let shift = ctx.p.shifts[batch.shift_index];
    let idx = positions(batch);
    let cosine = |m: usize, feats: &Tensor| {
        if shift == Shift::Clean {
            return Ok(vec![Some(1.0); batch.positions.len()]);
        }
        let twin = clean_feats[m].index_select(0, &idx);
        let cos = shiftlab_probe::probe::cosine_to_clean(feats, &twin)
            .map_err(|e| PipelineError::model(&ctx.model_names[m], e))?;
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
            push_rows(&mut rows, ctx.p, batch, tag, &scored);
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
        .map_err(|message| PipelineError::Probe {
            model: model.to_string(),
            probe: probe.name().to_string(),
            message,
        })
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
    p: &Pipeline,
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
        rows.run.push(p.name.clone());
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

/// A pause per sink item, for tests of backpressure.
pub fn slow(delay: Option<Duration>) {
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
}
