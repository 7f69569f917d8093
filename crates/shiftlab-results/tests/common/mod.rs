//! Synthetic run folders for the view and report tests: `run.json`, manifests and a
//! hand-made `metrics.parquet` (schema version 2, with `shift_family`).

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use shiftlab_results::RunSession;

/// One row of `metrics`: model, shift, shift_group, shift_family, severity, error, cosine.
#[derive(Clone, Debug)]
pub struct Row {
    pub model: String,
    pub shift: String,
    pub group: String,
    pub family: String,
    pub severity: i32,
    pub error: f64,
    pub cosine: Option<f64>,
}

impl Row {
    /// A row whose cosine follows the family: 1 clean, 1 - 0.1 x severity for corruptions,
    /// 0.3 for synthetic families (so a view mixing them shows), NULL for datasets.
    pub fn new(model: &str, shift: &str, group: &str, family: &str, sev: i32, err: f64) -> Self {
        let cosine = match family {
            "clean" => Some(1.0),
            "corruption" => Some(1.0 - 0.1 * sev as f64),
            "dataset" => None,
            _ => Some(0.3),
        };
        Self {
            model: model.into(),
            shift: shift.into(),
            group: group.into(),
            family: family.into(),
            severity: sev,
            error: err,
            cosine,
        }
    }

    /// The clean baseline row of `model`.
    pub fn clean(model: &str, error: f64) -> Self {
        Self::new(model, "clean", "clean", "clean", 0, error)
    }
}

/// `rows` as a `metrics` batch of run `run`, probe `knn`, in the order of the schema.
pub fn metrics_batch(run: &str, rows: &[Row]) -> RecordBatch {
    let n = rows.len();
    let text = |f: &dyn Fn(&Row) -> String| {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as Arc<dyn Array>
    };
    let schema = Schema::new(vec![
        Field::new("run", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("probe", DataType::Utf8, false),
        Field::new("shift", DataType::Utf8, false),
        Field::new("shift_group", DataType::Utf8, false),
        Field::new("shift_family", DataType::Utf8, false),
        Field::new("severity", DataType::Int32, false),
        Field::new("n", DataType::Int64, false),
        Field::new("errors", DataType::Int64, false),
        Field::new("error", DataType::Float64, false),
        Field::new("top5_error", DataType::Float64, false),
        Field::new("mean_cosine_to_clean", DataType::Float64, true),
        Field::new("ece", DataType::Float64, false),
    ]);
    let columns: Vec<Arc<dyn Array>> = vec![
        text(&|_| run.to_string()),
        text(&|r| r.model.clone()),
        text(&|_| "knn".to_string()),
        text(&|r| r.shift.clone()),
        text(&|r| r.group.clone()),
        text(&|r| r.family.clone()),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| r.severity),
        )),
        Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(1000, n))),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| (r.error * 1000.0).round() as i64),
        )),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.error))),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.error / 2.0),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.cosine))),
        Arc::new(Float64Array::from_iter_values(std::iter::repeat_n(0.05, n))),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).expect("valid batch")
}

/// Writes run.json, manifests for `finished` of `parts` parts, and `batch` as
/// metrics.parquet when all are finished.
pub fn write_run_batch(
    dir: &Path,
    name: &str,
    preset: &str,
    batch: &RecordBatch,
    parts: u64,
    finished: u64,
) {
    std::fs::create_dir_all(dir.join("manifest")).expect("manifest folder");
    // The models in first-seen order, as `run.json` lists a pipeline's models.
    let mut models: Vec<String> = Vec::new();
    for m in texts(batch, "model") {
        if !models.contains(&m) {
            models.push(m);
        }
    }
    let models = serde_json::to_string(&models).expect("json");
    let json = format!(
        r#"{{"fingerprint":"f","models":{models},"name":"{name}","part_size":10,"parts_total":{parts},"preset":"{preset}","shifts":96}}"#
    );
    std::fs::write(dir.join("run.json"), json).expect("run.json");
    for p in 0..finished {
        std::fs::write(dir.join(format!("manifest/part-{p:05}.json")), "{}").expect("manifest");
    }
    if finished == parts {
        let file = std::fs::File::create(dir.join("metrics.parquet")).expect("metrics file");
        let mut w = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
        w.write(batch).expect("write");
        w.close().expect("close");
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().expect("runtime").block_on(f)
}

/// The result of `sql` over the runs in `dirs`, as one batch (empty results keep their
/// columns).
pub fn query(dirs: &[&Path], sql: &str) -> RecordBatch {
    let dirs: Vec<_> = dirs.iter().map(|d| d.to_path_buf()).collect();
    let (schema, batches) = block_on(async {
        let s = RunSession::open(&dirs).await.expect("session");
        let df = s.ctx.sql(sql).await.expect("plan");
        let schema = df.schema().inner().clone();
        (schema, s.query(sql).await.expect("query"))
    });
    concat_batches(&schema, &batches).expect("one batch")
}

/// Column `name` of `batch` as text (NULL as "").
pub fn texts(batch: &RecordBatch, name: &str) -> Vec<String> {
    let col = cast(batch.column_by_name(name).expect("column"), &DataType::Utf8).expect("cast");
    let s = col.as_string::<i32>();
    (0..s.len())
        .map(|i| {
            if s.is_valid(i) {
                s.value(i).into()
            } else {
                String::new()
            }
        })
        .collect()
}

/// Column `name` of `batch` as numbers.
pub fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let col = cast(
        batch.column_by_name(name).expect("column"),
        &DataType::Float64,
    )
    .expect("cast");
    let v = col.as_primitive::<Float64Type>();
    (0..v.len())
        .map(|i| v.is_valid(i).then(|| v.value(i)))
        .collect()
}

pub fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}
