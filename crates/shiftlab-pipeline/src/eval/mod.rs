//! The evaluation phase: read -> decode -> shift -> collate -> embed -> probe -> sink, each stage
//! on its own named threads (see `stage::spawn_stage`), connected by bounded queues (a slow stage
//! makes its producers wait). Each stage lives in its own module; this one holds the messages
//! that travel between them and the wiring.
//!
//! Ordering that the cosine-to-clean needs: a decode worker puts a chunk's clean batch on the
//! collate queue *before* it hands the chunk's shift jobs to the shift pool, and collate, embed and
//! probe are single FIFO workers, so the probe stage always sees a chunk's clean embeddings before
//! any shifted one of the same chunk.
//!
//! Failure: the first fatal error of any stage (or of the sink, or an interrupt) cancels every
//! stage (`stage::Cancel`); the phase returns that error. Parts finished before it stay.

mod collate;
mod decode;
mod embed;
mod probe;
mod read;
mod shift;
pub mod sink;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::DynamicImage;
use shiftlab_corrupt::FrostAssets;
use shiftlab_model::Encoder;
use tch::Tensor;

use crate::config::Pipeline;
use crate::error::PipelineError;
use crate::probes::Probe;
use crate::source::{PixelBatch, Sample};
use crate::stage::{queue, spawn_stage, Cancel, StageCounters, StageStats};
use crate::tables::{EmbeddingRows, ErrorRows, PredictionRows};
use crate::targets::ResolvedTarget;

pub use embed::embed_blocked;

/// A run of consecutive samples inside one part.
pub(crate) struct Chunk {
    pub(crate) part: u32,
    pub(crate) chunk: u32,
    /// `Some(t)`: the samples come from target `t` (a dataset-level shift), not the source.
    pub(crate) target: Option<usize>,
    pub(crate) samples: Vec<Sample>,
}

/// A chunk after decoding: the images that decoded, with their position in the chunk.
pub(crate) struct Decoded {
    pub(crate) part: u32,
    pub(crate) chunk: u32,
    pub(crate) target: Option<usize>,
    pub(crate) ids: Vec<String>,
    /// In the source's classes (target labels are mapped when read).
    pub(crate) labels: Vec<i64>,
    /// The rows' own `corruption` / `severity` columns (used for targets).
    pub(crate) tags: Vec<(Option<String>, Option<i32>)>,
    pub(crate) images: Vec<DynamicImage>,
}

/// One shift of one chunk, as pixels (then as tensors after collate).
pub(crate) struct Shifted {
    pub(crate) part: u32,
    pub(crate) chunk: u32,
    pub(crate) shift_index: usize,
    /// Index into the decoded chunk of each image (some may have failed to shift).
    pub(crate) positions: Vec<usize>,
    pub(crate) decoded: Arc<Decoded>,
    pub(crate) pixels: PixelBatch,
    pub(crate) tensors: Vec<Tensor>,
    pub(crate) errors: ErrorRows,
}

/// Embeddings of one shifted batch for every model.
pub(crate) struct Embedded {
    pub(crate) batch: Shifted,
    pub(crate) features: Vec<Tensor>,
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
        /// One entry per model with `runtime.save_embeddings`, else empty.
        embeddings: Vec<EmbeddingRows>,
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

/// Runs the whole evaluation phase; `sink` consumes [`SinkMsg`]s on the calling thread. Returns
/// the first error of any stage or of the sink.
pub fn run_eval(
    inputs: EvalInputs<'_>,
    stages: &Stages,
    mut sink: impl FnMut(SinkMsg) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    let p = inputs.pipeline;
    let cap = p.runtime.queue_batches;
    let cancel = Cancel::new();
    let c = &cancel;
    let geometry = p.shifts.geometry();
    let shift_jobs = cap * p.shifts.list.len().max(1);
    let (chunk_tx, chunk_rx) = queue::<Chunk>(cap, &stages.read, &stages.decode, c);
    let (job_tx, job_rx) = queue::<Job>(shift_jobs, &stages.decode, &stages.shift, c);
    let (collate_tx, collate_rx) = queue::<Shifted>(cap, &stages.shift, &stages.collate, c);
    let (embed_tx, embed_rx) = queue::<Shifted>(2, &stages.collate, &stages.embed, c);
    let (probe_tx, probe_rx) = queue::<Embedded>(cap, &stages.embed, &stages.probe, c);
    let (sink_tx, sink_rx) = queue::<SinkMsg>(cap, &stages.probe, &stages.sink, c);
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
    let cancel_ref: &Cancel = &cancel;
    std::thread::scope(|scope| -> Result<(), PipelineError> {
        let spawned = (|| -> Result<(), PipelineError> {
            let read_sink = sink_tx.clone();
            let counters = stages.read.clone();
            spawn_stage(scope, "read", cancel_ref, move || {
                let t = Instant::now();
                let ctx = read::ReadCtx {
                    source: &pipeline.source,
                    runtime: &pipeline.runtime,
                    shifts: pipeline.shifts.list.len(),
                    todo: &todo,
                    out: &chunk_tx,
                    sink: &read_sink,
                };
                let r = read::read_source(&ctx, selected, num_classes)
                    .and_then(|()| read::read_targets(&ctx, targets));
                counters.set_busy_from_wall(t);
                r
            })?;
            for _ in 0..p.runtime.cpu_workers {
                let (rx, jobs, clean) = (chunk_rx.clone(), job_tx.clone(), collate_tx.clone());
                let counters = stages.decode.clone();
                spawn_stage(scope, "decode", cancel_ref, move || {
                    decode::decode_stage(
                        rx,
                        jobs,
                        clean,
                        geometry,
                        pipeline.shifts.list.len(),
                        &counters,
                    );
                    Ok(())
                })?;
            }
            for _ in 0..p.runtime.cpu_workers {
                let (rx, tx, frost) = (job_rx.clone(), collate_tx.clone(), frost.clone());
                let counters = stages.shift.clone();
                spawn_stage(scope, "shift", cancel_ref, move || {
                    shift::shift_stage(rx, tx, &pipeline.shifts, pipeline.seed, &frost, &counters);
                    Ok(())
                })?;
            }
            let counters = stages.collate.clone();
            spawn_stage(scope, "collate", cancel_ref, move || {
                collate::collate_stage(collate_rx, embed_tx, &counters);
                Ok(())
            })?;
            let counters = stages.embed.clone();
            spawn_stage(scope, "embed", cancel_ref, move || {
                let block = p.runtime.embed_block;
                embed::embed_stage(embed_rx, probe_tx, &encoders, block, &counters)
            })?;
            let counters = stages.probe.clone();
            spawn_stage(scope, "probe", cancel_ref, move || {
                let names: Vec<String> = pipeline.models.iter().map(|m| m.name.clone()).collect();
                let ctx = probe::ProbeCtx {
                    run: &pipeline.name,
                    shifts: &pipeline.shifts.list,
                    model_names: &names,
                    probes: &probes,
                    targets,
                    save_embeddings: pipeline.runtime.save_embeddings,
                };
                probe::probe_stage(probe_rx, sink_tx, &ctx, &counters)
            })?;
            Ok(())
        })();
        if let Err(e) = spawned {
            cancel_ref.fail(e);
        }
        drop((chunk_rx, job_tx, job_rx, collate_tx));
        while let Some(msg) = sink_rx.recv() {
            let t = Instant::now();
            let r = sink(msg);
            stages.sink.add_busy(t);
            sink_rx.done();
            if let Err(e) = r {
                cancel_ref.fail(e);
                break;
            }
        }
        drop(sink_rx);
        Ok(())
    })?;
    match cancel.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One shift of a decoded chunk, for the shift pool.
pub(crate) type Job = (Arc<Decoded>, usize);

/// A pause per sink item, for tests of backpressure.
pub fn slow(delay: Option<Duration>) {
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
}
