//! Streaming reads of a dataset table: batches of (id, label, image bytes, ...) without loading
//! the file, plus the file-level facts (class names, split counts) from its metadata.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::error::DataError;

/// File-level facts of a dataset table.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    pub class_names: Vec<String>,
    pub source_format: String,
    pub num_rows: u64,
    /// Rows per split as recorded at ingest.
    pub splits: BTreeMap<String, u64>,
    /// What ingest noted about the input (e.g. a class folder in only one split).
    pub notes: Vec<String>,
}

/// One batch of rows, in file order.
#[derive(Debug, Clone, Default)]
pub struct ImageBatch {
    pub ids: Vec<String>,
    pub splits: Vec<String>,
    pub labels: Vec<i64>,
    /// Encoded PNG/JPEG bytes.
    pub images: Vec<Vec<u8>>,
    pub corruptions: Vec<Option<String>>,
    pub severities: Vec<Option<i32>>,
}

impl ImageBatch {
    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, DataError> {
    let f = File::open(path).map_err(|e| DataError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| DataError::parquet(path, e))
}

/// Reads the `shiftlab` metadata key of a dataset table.
pub fn read_info(path: &Path) -> Result<DatasetInfo, DataError> {
    let b = builder(path)?;
    let num_rows = b.metadata().file_metadata().num_rows() as u64;
    let meta = b.schema().metadata().get("shiftlab").cloned();
    let meta = meta.ok_or_else(|| {
        DataError::layout(
            path,
            "no 'shiftlab' metadata: not written by shiftlab ingest",
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&meta)
        .map_err(|e| DataError::layout(path, format!("bad 'shiftlab' metadata: {e}")))?;
    let strings = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let splits = v["splits"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    Ok(DatasetInfo {
        class_names: strings("class_names"),
        source_format: v["source_format"].as_str().unwrap_or_default().to_string(),
        num_rows,
        splits,
        notes: strings("notes"),
    })
}

/// Streams [`ImageBatch`]es of at most `batch_size` rows, optionally of one split only.
pub struct DatasetReader {
    path: PathBuf,
    inner: ParquetRecordBatchReader,
    split: Option<String>,
}

impl DatasetReader {
    /// Opens `path`; reads only the columns an [`ImageBatch`] needs.
    pub fn open(path: &Path, batch_size: usize, split: Option<&str>) -> Result<Self, DataError> {
        let b = builder(path)?;
        let wanted = ["id", "split", "label", "image", "corruption", "severity"];
        let schema = b.schema().clone();
        let expected = crate::schema::dataset();
        let mut idx = Vec::new();
        for name in wanted {
            let (i, field) = schema.column_with_name(name).ok_or_else(|| {
                DataError::layout(path, format!("no '{name}' column: not a dataset table"))
            })?;
            let want = expected.field_with_name(name)?.data_type();
            if !field.data_type().equals_datatype(want) {
                let msg = format!("column '{name}' is {}, expected {want}", field.data_type());
                return Err(DataError::layout(path, msg));
            }
            idx.push(i);
        }
        let mask = ProjectionMask::roots(b.parquet_schema(), idx);
        let inner = b
            .with_projection(mask)
            .with_batch_size(batch_size.max(1))
            .build()
            .map_err(|e| DataError::parquet(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            inner,
            split: split.map(String::from),
        })
    }

    fn convert(&self, b: &RecordBatch) -> Result<ImageBatch, DataError> {
        let col = |name: &str| {
            b.column_by_name(name)
                .ok_or_else(|| DataError::layout(&self.path, format!("no '{name}' column")))
        };
        let ids = col("id")?.as_string::<i32>();
        let splits = col("split")?.as_string::<i32>();
        let labels = col("label")?.as_primitive::<Int64Type>();
        let image = col("image")?.as_struct();
        let bytes = image.column(0).as_binary::<i32>();
        let corr = col("corruption")?.as_string::<i32>();
        let sev = col("severity")?.as_primitive::<Int32Type>();
        let mut out = ImageBatch::default();
        for i in 0..b.num_rows() {
            if self.split.as_deref().is_some_and(|s| s != splits.value(i)) {
                continue;
            }
            out.ids.push(ids.value(i).to_string());
            out.splits.push(splits.value(i).to_string());
            out.labels.push(labels.value(i));
            out.images.push(bytes.value(i).to_vec());
            out.corruptions
                .push(corr.is_valid(i).then(|| corr.value(i).to_string()));
            out.severities.push(sev.is_valid(i).then(|| sev.value(i)));
        }
        Ok(out)
    }
}

impl Iterator for DatasetReader {
    type Item = Result<ImageBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let batch = match self.inner.next()? {
                Ok(b) => b,
                Err(e) => return Some(Err(DataError::Arrow(e))),
            };
            match self.convert(&batch) {
                Ok(b) if b.is_empty() => continue, // a batch of other splits only
                other => return Some(other),
            }
        }
    }
}
