//! The run's output tables: rows gathered in Rust, turned into Arrow batches with the schemas in
//! `schemas/`, written to Parquet beside their final name and renamed when whole.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, Float64Array, Int32Array, Int64Array,
    Int64Builder, ListBuilder, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use shiftlab_common::AtomicFile;

use crate::error::PipelineError;

macro_rules! schema_fn {
    ($fn_name:ident, $file:literal) => {
        /// The table's Arrow schema, from its JSON in `schemas/`.
        pub fn $fn_name() -> Arc<Schema> {
            static S: OnceLock<Arc<Schema>> = OnceLock::new();
            S.get_or_init(|| {
                let def =
                    shiftlab_data::schema::parse(include_str!(concat!("../../../schemas/", $file)))
                        .and_then(|d| d.to_arrow())
                        .unwrap_or_else(|e| panic!("schemas/{} is invalid: {e}", $file));
                Arc::new(def)
            })
            .clone()
        }
    };
}

schema_fn!(predictions_schema, "predictions.json");
schema_fn!(metrics_schema, "metrics.json");
schema_fn!(runs_schema, "runs.json");
schema_fn!(errors_schema, "errors.json");
schema_fn!(stages_schema, "stages.json");

/// The embeddings table's Arrow schema for a model of dimension `dim` (`schemas/embeddings.json`
/// leaves the fixed-size list's size as the parameter `dim`).
pub fn embeddings_schema(dim: usize) -> Result<Arc<Schema>, arrow::error::ArrowError> {
    static DEF: OnceLock<shiftlab_data::schema::SchemaDef> = OnceLock::new();
    let def = DEF.get_or_init(|| {
        shiftlab_data::schema::parse(include_str!("../../../schemas/embeddings.json"))
            .unwrap_or_else(|e| panic!("schemas/embeddings.json is invalid: {e}"))
    });
    let dim = i32::try_from(dim)
        .map_err(|_| arrow::error::ArrowError::SchemaError(format!("dimension {dim} too large")))?;
    def.to_arrow_with(&[("dim", dim)])
        .map(Arc::new)
        .map_err(|e| arrow::error::ArrowError::SchemaError(e.to_string()))
}

/// Per-sample predictions, column by column.
#[derive(Debug, Default, Clone)]
pub struct PredictionRows {
    pub run: Vec<String>,
    pub part: Vec<i32>,
    pub sample_id: Vec<String>,
    pub label: Vec<i64>,
    pub model: Vec<String>,
    pub probe: Vec<String>,
    pub shift: Vec<String>,
    pub shift_group: Vec<String>,
    pub shift_family: Vec<&'static str>,
    pub severity: Vec<i32>,
    pub prediction: Vec<i64>,
    pub top5: Vec<Vec<i64>>,
    pub correct: Vec<bool>,
    pub top5_correct: Vec<bool>,
    pub confidence: Vec<f32>,
    /// `None` for dataset-level shifts (no clean twin).
    pub cosine_to_clean: Vec<Option<f32>>,
}

impl PredictionRows {
    pub fn len(&self) -> usize {
        self.sample_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sample_id.is_empty()
    }

    pub fn to_batch(&self) -> Result<RecordBatch, arrow::error::ArrowError> {
        let schema = predictions_schema();
        let item = match schema.field_with_name("top5")?.data_type() {
            DataType::List(f) => f.clone(),
            _ => Arc::new(Field::new("item", DataType::Int64, true)),
        };
        let mut top5 = ListBuilder::new(Int64Builder::new()).with_field(item);
        for t in &self.top5 {
            top5.values().append_slice(t);
            top5.append(true);
        }
        let cols: Vec<ArrayRef> = vec![
            strings(&self.run),
            Arc::new(Int32Array::from(self.part.clone())),
            strings(&self.sample_id),
            Arc::new(Int64Array::from(self.label.clone())),
            strings(&self.model),
            strings(&self.probe),
            strings(&self.shift),
            strings(&self.shift_group),
            strings(&self.shift_family),
            Arc::new(Int32Array::from(self.severity.clone())),
            Arc::new(Int64Array::from(self.prediction.clone())),
            Arc::new(top5.finish()),
            Arc::new(BooleanArray::from(self.correct.clone())),
            Arc::new(BooleanArray::from(self.top5_correct.clone())),
            Arc::new(Float32Array::from(self.confidence.clone())),
            Arc::new(Float32Array::from(self.cosine_to_clean.clone())),
        ];
        RecordBatch::try_new(schema, cols)
    }
}

/// One model's embeddings of some images, row by row (`runtime.save_embeddings`).
#[derive(Debug, Default, Clone)]
pub struct EmbeddingRows {
    pub model: String,
    pub dim: usize,
    pub part: Vec<i32>,
    pub sample_id: Vec<String>,
    pub label: Vec<i64>,
    pub shift: Vec<String>,
    pub shift_group: Vec<String>,
    pub shift_family: Vec<&'static str>,
    pub severity: Vec<i32>,
    /// `dim` values per row, row after row.
    pub values: Vec<f32>,
}

impl EmbeddingRows {
    pub fn len(&self) -> usize {
        self.sample_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sample_id.is_empty()
    }

    pub fn to_batch(&self, run: &str) -> Result<RecordBatch, arrow::error::ArrowError> {
        let schema = embeddings_schema(self.dim)?;
        let DataType::FixedSizeList(item, size) = schema.field_with_name("embedding")?.data_type()
        else {
            return Err(arrow::error::ArrowError::SchemaError(
                "schemas/embeddings.json: embedding is not a fixed_size_list".into(),
            ));
        };
        let values = Arc::new(Float32Array::from(self.values.clone()));
        let embedding = FixedSizeListArray::try_new(item.clone(), *size, values, None)?;
        let n = self.len();
        let cols: Vec<ArrayRef> = vec![
            repeat(run, n),
            Arc::new(Int32Array::from(self.part.clone())),
            strings(&self.sample_id),
            Arc::new(Int64Array::from(self.label.clone())),
            repeat(&self.model, n),
            strings(&self.shift),
            strings(&self.shift_group),
            strings(&self.shift_family),
            Arc::new(Int32Array::from(self.severity.clone())),
            Arc::new(embedding),
        ];
        RecordBatch::try_new(schema, cols)
    }
}

/// Inputs that could not be used.
#[derive(Debug, Default, Clone)]
pub struct ErrorRows {
    pub part: Vec<i32>,
    pub stage: Vec<&'static str>,
    pub item: Vec<String>,
    pub reason: Vec<String>,
}

impl ErrorRows {
    pub fn push(
        &mut self,
        part: i32,
        stage: &'static str,
        item: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.part.push(part);
        self.stage.push(stage);
        self.item.push(item.into());
        self.reason.push(reason.into());
    }

    pub fn extend(&mut self, other: ErrorRows) {
        self.part.extend(other.part);
        self.stage.extend(other.stage);
        self.item.extend(other.item);
        self.reason.extend(other.reason);
    }

    pub fn len(&self) -> usize {
        self.item.len()
    }

    pub fn is_empty(&self) -> bool {
        self.item.is_empty()
    }

    pub fn to_batch(&self, run: &str) -> Result<RecordBatch, arrow::error::ArrowError> {
        RecordBatch::try_new(
            errors_schema(),
            vec![
                repeat(run, self.len()),
                Arc::new(Int32Array::from(self.part.clone())),
                strings(&self.stage),
                strings(&self.item),
                strings(&self.reason),
            ],
        )
    }
}

/// One metrics row.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub model: String,
    pub probe: String,
    pub shift: String,
    pub shift_group: String,
    pub shift_family: String,
    pub severity: i32,
    pub n: i64,
    pub errors: i64,
    pub error: f64,
    pub top5_error: f64,
    /// `None` for dataset-level shifts.
    pub mean_cosine_to_clean: Option<f64>,
    pub ece: f64,
    /// The model's `paradigm` label, if its entry has one.
    pub paradigm: Option<String>,
}

pub fn metrics_batch(
    run: &str,
    rows: &[MetricRow],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let col_s = |f: fn(&MetricRow) -> &str| strings(&rows.iter().map(f).collect::<Vec<_>>());
    let col_f = |f: fn(&MetricRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    RecordBatch::try_new(
        metrics_schema(),
        vec![
            repeat(run, rows.len()),
            col_s(|r| &r.model),
            col_s(|r| &r.probe),
            col_s(|r| &r.shift),
            col_s(|r| &r.shift_group),
            col_s(|r| &r.shift_family),
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.severity),
            )),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.n))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.errors))),
            col_f(|r| r.error),
            col_f(|r| r.top5_error),
            Arc::new(Float64Array::from(
                rows.iter()
                    .map(|r| r.mean_cosine_to_clean)
                    .collect::<Vec<_>>(),
            )),
            col_f(|r| r.ece),
            Arc::new(StringArray::from(
                rows.iter()
                    .map(|r| r.paradigm.as_deref())
                    .collect::<Vec<_>>(),
            )),
        ],
    )
}

/// One row of the `runs` table.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub run: String,
    pub invocation: String,
    pub fingerprint: String,
    pub config: String,
    pub seed: u64,
    pub shard: String,
    pub parts_done: i64,
    pub started_us: i64,
    pub finished_us: i64,
    pub host: String,
    pub device: String,
    pub libtorch_version: String,
    pub models_json: String,
    /// `computed`, `reused` or `none`: see `schemas/runs.json`.
    pub fit_embeddings: String,
    /// `ok` or the error that ended the invocation.
    pub outcome: String,
}

pub fn runs_batch(r: &RunRow) -> Result<RecordBatch, arrow::error::ArrowError> {
    let schema = runs_schema();
    let ts_type = schema.field_with_name("started")?.data_type().clone();
    let ts = |v: i64| -> Result<ArrayRef, arrow::error::ArrowError> {
        arrow::compute::cast(&TimestampMicrosecondArray::from(vec![v]), &ts_type)
    };
    RecordBatch::try_new(
        schema.clone(),
        vec![
            strings(&[&r.run]),
            strings(&[&r.invocation]),
            strings(&[&r.fingerprint]),
            strings(&[&r.config]),
            Arc::new(UInt64Array::from(vec![r.seed])),
            strings(&[&r.shard]),
            Arc::new(Int64Array::from(vec![r.parts_done])),
            ts(r.started_us)?,
            ts(r.finished_us)?,
            strings(&[&r.host]),
            strings(&[&r.device]),
            strings(&[env!("CARGO_PKG_VERSION")]),
            strings(&[&r.libtorch_version]),
            strings(&[&r.models_json]),
            strings(&[&r.fit_embeddings]),
            strings(&[&r.outcome]),
        ],
    )
}

pub fn stages_batch(
    run: &str,
    invocation: &str,
    stats: &[crate::stage::StageStats],
    wall_s: f64,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = stats.len();
    RecordBatch::try_new(
        stages_schema(),
        vec![
            repeat(run, n),
            repeat(invocation, n),
            strings(&stats.iter().map(|s| s.name).collect::<Vec<_>>()),
            Arc::new(Int32Array::from_iter_values(
                stats.iter().map(|s| s.workers as i32),
            )),
            Arc::new(Int64Array::from_iter_values(
                stats.iter().map(|s| s.items as i64),
            )),
            Arc::new(Float64Array::from_iter_values(
                stats.iter().map(|s| s.busy_s),
            )),
            Arc::new(Float64Array::from_iter_values(
                stats.iter().map(|s| s.blocked_s),
            )),
            Arc::new(Float64Array::from_iter_values(
                stats.iter().map(|s| s.starved_s),
            )),
            Arc::new(Int64Array::from_iter_values(
                stats.iter().map(|s| s.max_in_flight as i64),
            )),
            Arc::new(Float64Array::from(vec![wall_s; n])),
        ],
    )
}

fn strings<S: AsRef<str>>(v: &[S]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v.iter().map(|s| s.as_ref())))
}

fn repeat(s: &str, n: usize) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(s, n)))
}

/// A Parquet file being written under a temporary name beside its final path (the workspace's
/// one atomic writer, `shiftlab_common::AtomicFile`, underneath). Errors name the final path.
pub struct AtomicParquet {
    final_path: PathBuf,
    writer: Option<ArrowWriter<AtomicFile>>,
}

impl AtomicParquet {
    pub fn create(final_path: &Path, schema: Arc<Schema>) -> Result<Self, PipelineError> {
        let err = |e: &dyn std::fmt::Display| PipelineError::io(final_path, e.to_string());
        let file = AtomicFile::create(final_path).map_err(|e| PipelineError::io(final_path, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| err(&e))?;
        Ok(AtomicParquet {
            final_path: final_path.to_path_buf(),
            writer: Some(writer),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), PipelineError> {
        if let Some(w) = self.writer.as_mut() {
            w.write(batch)
                .map_err(|e| PipelineError::io(&self.final_path, e))?;
        }
        Ok(())
    }

    /// Closes the file, syncs it and renames it to its final name.
    pub fn commit(mut self) -> Result<PathBuf, PipelineError> {
        let Some(w) = self.writer.take() else {
            return Ok(self.final_path.clone());
        };
        let file = w
            .into_inner()
            .map_err(|e| PipelineError::io(&self.final_path, e))?;
        file.commit()
            .map_err(|e| PipelineError::io(&self.final_path, e))
    }
}

/// Writes one batch to `path` atomically.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), PipelineError> {
    let mut w = AtomicParquet::create(path, batch.schema())?;
    w.write(batch)?;
    w.commit()?;
    Ok(())
}

/// Writes bytes to `path` atomically, with the pipeline's error type.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PipelineError> {
    shiftlab_common::write_atomic(path, bytes).map_err(|e| PipelineError::io(path, e))
}
