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
use shiftlab_corrupt::FrostAssets;
use shiftlab_model::Encoder;
use tch::{Kind, Tensor};

use crate::config::{Pipeline, Shift};
use crate::error::PipelineError;
use crate::probes::{Probe, SampleOutput};
use crate::source::{decode, sample_key, Geometry, PixelBatch, Sample, SampleStream};
use crate::stage::{queue, In, Out, StageCounters, StageStats};
use crate::tables::{ErrorRows, PredictionRows};

/// A run of consecutive samples inside one part.
struct Chunk {
    part: u32,
    chunk: u32,
    samples: Vec<Sample>,
}

/// A chunk after decoding: the images that decoded, with their position in the chunk.
struct Decoded {
    part: u32,
    chunk: u32,
    ids: Vec<String>,
    labels: Vec<i64>,
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
    /// A part has `chunks` chunks; it is whole after `chunks x shifts + extra` items.
    Declare { part: u32, chunks: u32, extra: u32 },
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
    } = inputs;
    std::thread::scope(|scope| -> Result<(), PipelineError> {
        let mut handles = Vec::new();
        {
            let sink_tx = sink_tx.clone();
            let counters = stages.read.clone();
            handles.push(scope.spawn(move || {
                let t = Instant::now();
                let r = read_stage(pipeline, selected, &todo, num_classes, chunk_tx, sink_tx);
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
        handles.push(
            scope.spawn(move || {
                probe_stage(probe_rx, sink_tx, pipeline, &names, &probes, &counters)
            }),
        );
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
    out: Out<Chunk>,
    sink: Out<SinkMsg>,
) -> Result<(), PipelineError> {
    let stream = SampleStream::open(&p.dataset, &p.eval_split, selected, p.limit)?;
    let part_size = p.part_size as u64;
    let mut state = PartState::default();
    for sample in stream {
        let sample = sample?;
        let part = (sample.index / part_size) as u32;
        if state.part != Some(part) {
            state.finish(todo, &out, &sink);
            state = PartState {
                part: Some(part),
                ..PartState::default()
            };
        }
        if !todo.contains(&part) {
            continue;
        }
        if !(0..num_classes).contains(&sample.label) {
            let reason = format!(
                "label {} outside the probe's {num_classes} classes (0..={})",
                sample.label,
                num_classes - 1
            );
            state
                .errors
                .push(part as i32, "source", sample.id.clone(), reason);
            continue;
        }
        let chunk_index = state.chunks;
        let chunk = state.current.get_or_insert_with(|| Chunk {
            part,
            chunk: chunk_index,
            samples: Vec::new(),
        });
        chunk.samples.push(sample);
        if chunk.samples.len() >= p.batch_size {
            state.flush(&out);
        }
    }
    state.finish(todo, &out, &sink);
    Ok(())
}

/// The part the read stage is filling.
#[derive(Default)]
struct PartState {
    part: Option<u32>,
    chunks: u32,
    current: Option<Chunk>,
    errors: ErrorRows,
}

impl PartState {
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
            ids: Vec::new(),
            labels: Vec::new(),
            images: Vec::new(),
        };
        for s in chunk.samples {
            match decode(&s.bytes, geometry) {
                Ok(img) => {
                    decoded.ids.push(s.id);
                    decoded.labels.push(s.label);
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
        for s in 1..shifts {
            jobs.send((decoded.clone(), s));
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
        if let Shift::Corruption(c, s) = p.shifts[shift_index] {
            for (i, img) in decoded.images.iter().enumerate() {
                let key = sample_key(&decoded.ids[i]);
                match shiftlab_corrupt::corrupt_dynamic(img, c, s, p.preset, p.seed, key, frost) {
                    Ok(out) => {
                        positions.push(i);
                        images.push(out);
                    }
                    Err(e) => errors.push(
                        decoded.part as i32,
                        "shift",
                        format!("{} ({} s{})", decoded.ids[i], c.name(), s.get()),
                        e.to_string(),
                    ),
                }
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

fn probe_stage(
    rx: In<Embedded>,
    tx: Out<SinkMsg>,
    p: &Pipeline,
    model_names: &[String],
    probes: &[Vec<Box<dyn Probe>>],
    counters: &StageCounters,
) -> Result<(), PipelineError> {
    // Clean embeddings per (part, chunk) and model, kept until every shift of the chunk is done.
    let mut clean: HashMap<(u32, u32), (Vec<Tensor>, usize)> = HashMap::new();
    let shifts = p.shifts.len();
    while let Some(Embedded { batch, features }) = rx.recv() {
        let t = Instant::now();
        let key = (batch.part, batch.chunk);
        if batch.shift_index == 0 {
            clean.insert(
                key,
                (features.iter().map(|f| f.shallow_clone()).collect(), shifts),
            );
        }
        let Some((clean_feats, remaining)) = clean.get_mut(&key) else {
            return Err(PipelineError::Stage(format!(
                "shifted batch of part {} chunk {} arrived before its clean batch",
                batch.part, batch.chunk
            )));
        };
        let mut rows = PredictionRows::default();
        let shift = p.shifts[batch.shift_index];
        let idx = Tensor::from_slice(
            &batch
                .positions
                .iter()
                .map(|&i| i as i64)
                .collect::<Vec<_>>(),
        );
        let labels = Tensor::from_slice(
            &batch
                .positions
                .iter()
                .map(|&i| batch.decoded.labels[i])
                .collect::<Vec<_>>(),
        );
        for (m, feats) in features.iter().enumerate() {
            if batch.positions.is_empty() {
                break;
            }
            let twin = clean_feats[m].index_select(0, &idx);
            let cosine = shiftlab_probe::probe::cosine_to_clean(feats, &twin)
                .map_err(|e| PipelineError::model(&model_names[m], e))?;
            for probe in &probes[m] {
                let out =
                    probe
                        .predict(feats, &labels)
                        .map_err(|message| PipelineError::Probe {
                            model: model_names[m].clone(),
                            probe: probe.name().to_string(),
                            message,
                        })?;
                push_rows(
                    &mut rows,
                    p,
                    &batch,
                    shift,
                    &model_names[m],
                    probe.name(),
                    &out,
                    &cosine,
                );
            }
        }
        *remaining -= 1;
        if *remaining == 0 {
            clean.remove(&key);
        }
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

#[allow(clippy::too_many_arguments)]
fn push_rows(
    rows: &mut PredictionRows,
    p: &Pipeline,
    batch: &Shifted,
    shift: Shift,
    model: &str,
    probe: &'static str,
    out: &[SampleOutput],
    cosine: &[f64],
) {
    let group = match shift {
        Shift::Clean => "clean",
        Shift::Corruption(c, _) => c.group().name(),
    };
    for (j, &pos) in batch.positions.iter().enumerate() {
        let label = batch.decoded.labels[pos];
        rows.run.push(p.name.clone());
        rows.part.push(batch.part as i32);
        rows.sample_id.push(batch.decoded.ids[pos].clone());
        rows.label.push(label);
        rows.model.push(model.to_string());
        rows.probe.push(probe.to_string());
        rows.shift.push(shift.name());
        rows.shift_group.push(group);
        rows.severity.push(shift.severity());
        let o = &out[j];
        rows.prediction.push(o.prediction);
        rows.correct.push(o.correct);
        rows.top5_correct.push(o.top5_correct);
        rows.top5.push(o.top5.clone());
        rows.confidence.push(o.confidence as f32);
        rows.cosine_to_clean.push(if shift == Shift::Clean {
            1.0
        } else {
            cosine[j] as f32
        });
    }
}

/// A pause per sink item, for tests of backpressure.
pub fn slow(delay: Option<Duration>) {
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
}
