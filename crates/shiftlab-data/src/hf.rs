//! Hugging Face `datasets` Parquet exports: column `image` (struct<bytes, path>) and an integer
//! `label`; class names from the `huggingface` schema-metadata key when present, else `0..=max`.
//! `split`, `id`, `corruption` and `severity` columns are carried over when present (so a
//! canonical table re-ingests to itself); otherwise ids are `<split>/<row>`.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray, BinaryArray, LargeBinaryArray, RecordBatch, StructArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::error::{DataError, Reason, Rejected};
use crate::source::{array_id, Entry, Item, Payload, Source};

/// Class names from a `huggingface` metadata value (`info.features.<label>.names`).
pub fn hf_class_names(meta: &str, label_column: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(meta).ok()?;
    let names = v
        .pointer(&format!("/info/features/{label_column}/names"))?
        .as_array()?;
    names.iter().map(|n| n.as_str().map(String::from)).collect()
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, DataError> {
    let f = File::open(path).map_err(|e| DataError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| DataError::parquet(path, e))
}

/// Largest label in the file, for exports without class names (one cheap column pass).
fn max_label(path: &Path) -> Result<i64, DataError> {
    let b = builder(path)?;
    let idx = b.schema().index_of("label")?;
    let mask = ProjectionMask::roots(b.parquet_schema(), [idx]);
    let reader = b
        .with_projection(mask)
        .build()
        .map_err(|e| DataError::parquet(path, e))?;
    let mut max = -1;
    for batch in reader {
        let labels = cast(batch?.column(0), &DataType::Int64)?;
        max = max.max(arrow::compute::max(labels.as_primitive::<Int64Type>()).unwrap_or(-1));
    }
    Ok(max)
}

/// Most classes assumed from labels alone (without class names in the metadata).
const MAX_UNNAMED_CLASSES: i64 = 100_000;

fn numbered_classes(path: &Path, max: i64) -> Result<Vec<String>, DataError> {
    if max >= MAX_UNNAMED_CLASSES {
        let msg = format!("no class names in the metadata and the largest label is {max}");
        return Err(DataError::layout(path, msg));
    }
    Ok((0..=max).map(|i| i.to_string()).collect())
}

/// Split name from an export's file name (`train-00000-of-00001.parquet` -> `train`).
pub fn split_from_file_name(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    let first = stem.split(['-', '_', '.']).next()?;
    ["train", "test", "validation", "val"]
        .contains(&first)
        .then(|| first.to_string())
}

/// Opens a Parquet export; `split` overrides a `split` column and the file-name guess.
pub fn open(path: &Path, split: Option<&str>) -> Result<Source, DataError> {
    let b = builder(path)?;
    let schema = b.schema().clone();
    for col in ["image", "label"] {
        if schema.column_with_name(col).is_none() {
            return Err(DataError::layout(path, format!("no '{col}' column")));
        }
    }
    let class_names = match schema
        .metadata()
        .get("huggingface")
        .and_then(|m| hf_class_names(m, "label"))
    {
        Some(names) => names,
        None => numbered_classes(path, max_label(path)?)?,
    };
    let total = b.metadata().file_metadata().num_rows() as u64;
    let reader = b
        .with_batch_size(256)
        .build()
        .map_err(|e| DataError::parquet(path, e))?;
    let fallback = split
        .map(String::from)
        .or_else(|| split_from_file_name(path))
        .unwrap_or_else(|| "test".into());
    let state = Rows {
        path: path.to_path_buf(),
        reader,
        row: 0,
        forced: split.is_some(),
        fallback,
    };
    let entries = state.flat_map(|r| match r {
        Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    });
    Ok(Source {
        class_names,
        total: Some(total),
        entries: Box::new(entries),
    })
}

/// Batch-wise conversion of the export's rows to entries.
struct Rows {
    path: std::path::PathBuf,
    reader: ParquetRecordBatchReader,
    row: usize,
    forced: bool,
    fallback: String,
}

impl Iterator for Rows {
    type Item = Result<Vec<Entry>, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.reader.next()? {
            Ok(b) => b,
            Err(e) => return Some(Err(DataError::Arrow(e))),
        };
        let out = self.entries(&batch);
        self.row += batch.num_rows();
        Some(out)
    }
}

impl Rows {
    fn entries(&self, batch: &RecordBatch) -> Result<Vec<Entry>, DataError> {
        let cols = Columns::of(batch).map_err(|m| DataError::layout(&self.path, m))?;
        Ok((0..batch.num_rows())
            .map(|i| self.entry(&cols, i))
            .collect())
    }

    fn entry(&self, c: &Columns, i: usize) -> Entry {
        let n = self.row + i;
        let split = match (&c.split, self.forced) {
            (Some(s), false) if s.is_valid(i) => s.value(i).to_string(),
            _ => self.fallback.clone(),
        };
        let id = match &c.id {
            Some(a) if a.is_valid(i) => a.value(i).to_string(),
            _ => array_id(&split, n),
        };
        let bytes = c.image_bytes(i);
        let (label, bytes) = match (c.label.is_valid(i), bytes) {
            (false, _) => {
                return Entry::Reject(Rejected::new(id, Reason::Missing("label (null)".into())))
            }
            (_, None) => {
                return Entry::Reject(Rejected::new(
                    id,
                    Reason::Missing(
                        "image bytes (null; path-only images are not supported)".into(),
                    ),
                ))
            }
            (true, Some(b)) => (c.label.value(i), b),
        };
        let opt = |a: &Option<arrow::array::StringArray>| {
            a.as_ref()
                .filter(|a| a.is_valid(i))
                .map(|a| a.value(i).to_string())
        };
        Entry::Item(Item {
            path: c
                .paths
                .as_ref()
                .filter(|p| p.is_valid(i))
                .map(|p| p.value(i).to_string()),
            payload: Payload::Encoded(bytes),
            id,
            split,
            label,
            corruption: opt(&c.corruption),
            severity: c
                .severity
                .as_ref()
                .filter(|a| a.is_valid(i))
                .map(|a| a.value(i)),
        })
    }
}

/// The typed columns of one batch.
struct Columns {
    image: StructArray,
    label: arrow::array::Int64Array,
    paths: Option<arrow::array::StringArray>,
    split: Option<arrow::array::StringArray>,
    id: Option<arrow::array::StringArray>,
    corruption: Option<arrow::array::StringArray>,
    severity: Option<arrow::array::Int32Array>,
}

impl Columns {
    fn of(batch: &RecordBatch) -> Result<Self, String> {
        let image = batch.column_by_name("image").ok_or("no 'image' column")?;
        let image = image
            .as_struct_opt()
            .ok_or("'image' is not a struct<bytes, path>")?
            .clone();
        if image.column_by_name("bytes").is_none() {
            return Err("'image' struct has no 'bytes' field".into());
        }
        let label = cast(
            batch.column_by_name("label").ok_or("no 'label' column")?,
            &DataType::Int64,
        )
        .map_err(|e| format!("'label' is not an integer column: {e}"))?;
        let utf8 = |a: Option<&arrow::array::ArrayRef>| {
            a.and_then(|a| cast(a, &DataType::Utf8).ok())
                .map(|a| a.as_string::<i32>().clone())
        };
        Ok(Self {
            paths: utf8(image.column_by_name("path")),
            label: label.as_primitive::<Int64Type>().clone(),
            split: utf8(batch.column_by_name("split")),
            id: utf8(batch.column_by_name("id")),
            corruption: utf8(batch.column_by_name("corruption")),
            severity: batch
                .column_by_name("severity")
                .and_then(|a| cast(a, &DataType::Int32).ok())
                .map(|a| a.as_primitive::<Int32Type>().clone()),
            image,
        })
    }

    fn image_bytes(&self, i: usize) -> Option<Vec<u8>> {
        let col = self.image.column_by_name("bytes")?;
        if !self.image.is_valid(i) || !col.is_valid(i) {
            return None;
        }
        if let Some(a) = col.as_any().downcast_ref::<BinaryArray>() {
            return Some(a.value(i).to_vec());
        }
        col.as_any()
            .downcast_ref::<LargeBinaryArray>()
            .map(|a| a.value(i).to_vec())
    }
}
