//! The read stage: streams the source's evaluation split, then every target, cuts them into
//! parts and chunks of `batch_size` samples, and tells the sink what makes each part whole.
//! Only the parts in `todo` (this shard's unfinished ones) go downstream.

use std::collections::{BTreeSet, HashSet};

use crate::config::{Runtime, Source};
use crate::error::PipelineError;
use crate::source::{Sample, SampleStream};
use crate::stage::Out;
use crate::tables::ErrorRows;
use crate::targets::ResolvedTarget;

use super::{Chunk, SinkMsg};

/// What the read stage writes to and which parts it reads.
pub(super) struct ReadCtx<'a> {
    pub source: &'a Source,
    /// `batch_size` (samples per chunk) and `part_size`.
    pub runtime: &'a Runtime,
    /// Batches each source chunk yields (the number of shifts, clean included).
    pub shifts: usize,
    pub todo: &'a BTreeSet<u32>,
    pub out: &'a Out<Chunk>,
    pub sink: &'a Out<SinkMsg>,
}

/// The source's evaluation split (labels outside the probes' classes recorded and skipped).
pub(super) fn read_source(
    ctx: &ReadCtx<'_>,
    selected: Option<HashSet<String>>,
    num_classes: i64,
) -> Result<(), PipelineError> {
    let src = ctx.source;
    let stream = SampleStream::open(&src.dataset, &src.eval_split, selected, src.limit)?;
    let segment = Segment {
        first_part: 0,
        target: None,
        shifts: ctx.shifts as u32,
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
    read_segment(ctx, stream, &segment, label).map(|_| ())
}

/// Streams every target after the source: its labels mapped to the source's classes (unmapped
/// ones recorded and skipped), one batch per chunk (no on-the-fly shifts).
pub(super) fn read_targets(
    ctx: &ReadCtx<'_>,
    targets: &[(ResolvedTarget, u32)],
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
        if !read_segment(ctx, stream, &segment, label)? {
            break;
        }
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
/// classes, or the (item, reason) recorded in `errors` when it has none. Returns false when the
/// run was cancelled (the queues refused an item): the caller stops.
fn read_segment(
    ctx: &ReadCtx<'_>,
    stream: SampleStream,
    segment: &Segment,
    label: impl Fn(&Sample) -> Result<i64, (String, String)>,
) -> Result<bool, PipelineError> {
    let part_size = ctx.runtime.part_size as u64;
    let mut state = PartState::default();
    for sample in stream {
        if ctx.out.cancelled() {
            return Ok(false);
        }
        let mut sample = sample?;
        let part = segment.first_part + (sample.index / part_size) as u32;
        if state.part != Some(part) {
            if !state.finish(ctx) {
                return Ok(false);
            }
            state = PartState::new(part, segment.target, segment.shifts);
        }
        if !ctx.todo.contains(&part) {
            continue;
        }
        match label(&sample) {
            Ok(l) => {
                sample.label = l;
                if !state.push(sample, ctx.runtime.batch_size, ctx.out) {
                    return Ok(false);
                }
            }
            Err((item, reason)) => state.errors.push(part as i32, "source", item, reason),
        }
    }
    Ok(state.finish(ctx))
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

    /// Adds a sample to the open chunk; a full chunk goes downstream (false: cancelled).
    fn push(&mut self, sample: Sample, batch_size: usize, out: &Out<Chunk>) -> bool {
        let Some(part) = self.part else {
            return true;
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
            return self.flush(out);
        }
        true
    }

    fn flush(&mut self, out: &Out<Chunk>) -> bool {
        match self.current.take() {
            Some(c) => {
                self.chunks += 1;
                out.send(c)
            }
            None => true,
        }
    }

    /// Sends the last chunk, then tells the sink what makes the part whole; errors found by the
    /// source travel as one extra item. False: cancelled.
    fn finish(&mut self, ctx: &ReadCtx<'_>) -> bool {
        let Some(part) = self.part.filter(|p| ctx.todo.contains(p)) else {
            return true;
        };
        if !self.flush(ctx.out) {
            return false;
        }
        let mut extra = 0;
        if !self.errors.is_empty() {
            extra = 1;
            let errors = SinkMsg::Item {
                part,
                rows: Box::default(),
                embeddings: Vec::new(),
                errors: std::mem::take(&mut self.errors),
            };
            if !ctx.sink.send(errors) {
                return false;
            }
        }
        ctx.sink.send(SinkMsg::Declare {
            part,
            chunks: self.chunks,
            shifts: self.shifts,
            extra,
        })
    }
}
