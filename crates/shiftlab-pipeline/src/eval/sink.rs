//! The sink: prediction rows (and with `runtime.save_embeddings` each model's embedding rows) go
//! into per-part files, and a part is finished (files committed, then its manifest entry) as soon
//! as every item it was declared to have arrived. A part that
//! never completes (a cancelled run) leaves no file: its temporaries are removed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use crate::config::Pipeline;
use crate::error::PipelineError;
use crate::folder::RunFolder;
use crate::stage::bottleneck;
use crate::tables::{self, AtomicParquet, ErrorRows};

use super::{SinkMsg, Stages};

/// An open part: its predictions file being written and what makes it whole.
struct OpenPart {
    /// Created with the part's first rows (a part's declaration can arrive long before them).
    writer: Option<AtomicParquet>,
    /// Per model (file order), its embeddings file, likewise created with the first rows.
    embeddings: Vec<Option<AtomicParquet>>,
    errors: ErrorRows,
    received: u64,
    expected: Option<u64>,
    rows: u64,
}

/// Writes prediction rows into per-part files and finishes parts as they become whole.
pub struct PartSink<'a> {
    p: &'a Pipeline,
    folder: &'a RunFolder,
    open: HashMap<u32, OpenPart>,
    bar: ProgressBar,
    delay: Option<Duration>,
    stages: &'a Stages,
    /// Per model (file order), its embedding dimension; empty unless `save_embeddings`.
    embedding_dims: Vec<usize>,
    /// Parts this invocation finished.
    pub finished: usize,
    pub error_count: usize,
    pub images: u64,
    last_message: Instant,
}

impl<'a> PartSink<'a> {
    pub fn new(
        p: &'a Pipeline,
        folder: &'a RunFolder,
        bar: ProgressBar,
        delay: Option<Duration>,
        stages: &'a Stages,
        embedding_dims: Vec<usize>,
    ) -> Self {
        PartSink {
            p,
            folder,
            open: HashMap::new(),
            bar,
            delay,
            stages,
            embedding_dims,
            finished: 0,
            error_count: 0,
            images: 0,
            last_message: Instant::now(),
        }
    }

    pub fn accept(&mut self, msg: SinkMsg) -> Result<(), PipelineError> {
        super::slow(self.delay);
        let part = match &msg {
            SinkMsg::Declare { part, .. } | SinkMsg::Item { part, .. } => *part,
        };
        let open = self.open.entry(part).or_insert_with(|| OpenPart {
            writer: None,
            embeddings: Vec::new(),
            errors: ErrorRows::default(),
            received: 0,
            expected: None,
            rows: 0,
        });
        match msg {
            SinkMsg::Declare {
                chunks,
                shifts,
                extra,
                ..
            } => open.expected = Some(chunks as u64 * shifts as u64 + extra as u64),
            SinkMsg::Item {
                rows,
                embeddings,
                errors,
                ..
            } => {
                open.received += 1;
                open.rows += rows.len() as u64;
                self.error_count += errors.len();
                open.errors.extend(errors);
                if !rows.is_empty() {
                    let batch = rows
                        .to_batch()
                        .map_err(|e| PipelineError::io(&self.folder.root, e))?;
                    let path = self.folder.part_path("predictions", part);
                    let writer = match open.writer.as_mut() {
                        Some(w) => w,
                        None => open
                            .writer
                            .insert(AtomicParquet::create(&path, tables::predictions_schema())?),
                    };
                    writer.write(&batch)?;
                }
                for (m, e) in embeddings.iter().enumerate() {
                    if e.is_empty() {
                        continue;
                    }
                    let batch = e
                        .to_batch(&self.p.name)
                        .map_err(|err| PipelineError::io(&self.folder.root, err))?;
                    if open.embeddings.len() <= m {
                        open.embeddings.resize_with(m + 1, || None);
                    }
                    let writer = match open.embeddings[m].as_mut() {
                        Some(w) => w,
                        None => open.embeddings[m].insert(AtomicParquet::create(
                            &self.folder.embeddings_path(&e.model, part),
                            batch.schema(),
                        )?),
                    };
                    writer.write(&batch)?;
                }
                let per_image = (self.p.models.len() * self.p.probes_count()).max(1) as u64;
                let images = rows.len() as u64 / per_image;
                self.images += images;
                self.bar.inc(images);
            }
        }
        if open.expected == Some(open.received) {
            self.finish(part)?;
        }
        if self.last_message.elapsed() > Duration::from_millis(500) {
            self.last_message = Instant::now();
            if let Some(b) = bottleneck(&self.stages.all()) {
                self.bar.set_message(format!("bottleneck: {}", b.name));
            }
        }
        Ok(())
    }

    /// Commits the part's files, then its manifest entry (the part counts only after that).
    fn finish(&mut self, part: u32) -> Result<(), PipelineError> {
        let Some(open) = self.open.remove(&part) else {
            return Ok(());
        };
        let writer = match open.writer {
            Some(w) => w,
            // A part whose every sample was rejected: an empty predictions file.
            None => AtomicParquet::create(
                &self.folder.part_path("predictions", part),
                tables::predictions_schema(),
            )?,
        };
        writer.commit()?;
        let mut embeddings = open.embeddings;
        for (m, &dim) in self.embedding_dims.iter().enumerate() {
            let writer = match embeddings.get_mut(m).and_then(Option::take) {
                Some(w) => w,
                // No image of the part reached the models: an empty file, as for predictions.
                None => {
                    let schema = tables::embeddings_schema(dim)
                        .map_err(|e| PipelineError::io(&self.folder.root, e))?;
                    let path = self.folder.embeddings_path(&self.p.models[m].name, part);
                    AtomicParquet::create(&path, schema)?
                }
            };
            writer.commit()?;
        }
        self.folder
            .write_manifest(&self.p.name, part, open.rows, open.errors)?;
        self.finished += 1;
        Ok(())
    }
}
