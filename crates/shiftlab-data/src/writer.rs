//! Writing the canonical dataset table atomically (the workspace's one atomic writer,
//! `shiftlab_common::AtomicFile`: temporary beside the output, fsync, rename).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Int32Array, Int64Array, StringArray, StructArray};
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{encode_arrow_schema, ArrowWriter, ARROW_SCHEMA_META_KEY};
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde_json::{json, Value};
use shiftlab_common::AtomicFile;

use crate::error::DataError;
use crate::imaging::StoredImage;
use crate::schema;

/// Rows per Parquet row group (and per Arrow batch): small enough to stream image batches.
pub const ROW_GROUP_ROWS: usize = 1024;

/// Version of the ingest logic, recorded in the `shiftlab` metadata key.
pub const INGEST_VERSION: u32 = 1;

/// One row of the dataset table.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub split: String,
    pub label: i64,
    pub image: StoredImage,
    /// Source-relative path for folder formats, `None` for array formats.
    pub path: Option<String>,
    pub corruption: Option<String>,
    pub severity: Option<i32>,
}

/// Streams rows into a Parquet file that appears at `output` only on [`DatasetWriter::finish`].
pub struct DatasetWriter {
    output: PathBuf,
    writer: ArrowWriter<AtomicFile>,
    schema: Arc<Schema>,
    pending: Vec<Row>,
    split_rows: BTreeMap<String, u64>,
    class_names: Vec<String>,
    source_format: String,
}

impl DatasetWriter {
    /// Opens a temp file in the output's directory (created if missing).
    pub fn create(
        output: &Path,
        class_names: &[String],
        source_format: &str,
    ) -> Result<Self, DataError> {
        let file = AtomicFile::create(output).map_err(|e| DataError::io(output, e))?;
        let schema = schema::dataset();
        // The Arrow schema hint is written at the end, when its metadata (split counts) is known.
        let options = ArrowWriterOptions::new()
            .with_properties(writer_props())
            .with_skip_arrow_metadata(true);
        let writer = ArrowWriter::try_new_with_options(file, schema.clone(), options)
            .map_err(|e| DataError::parquet(output, e))?;
        Ok(Self {
            output: output.to_path_buf(),
            writer,
            schema,
            pending: Vec::with_capacity(ROW_GROUP_ROWS),
            split_rows: BTreeMap::new(),
            class_names: class_names.to_vec(),
            source_format: source_format.to_string(),
        })
    }

    /// Buffers one row, writing a row group every [`ROW_GROUP_ROWS`].
    pub fn push(&mut self, row: Row) -> Result<(), DataError> {
        *self.split_rows.entry(row.split.clone()).or_default() += 1;
        self.pending.push(row);
        if self.pending.len() >= ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Rows written so far, per split.
    pub fn split_rows(&self) -> &BTreeMap<String, u64> {
        &self.split_rows
    }

    fn flush(&mut self) -> Result<(), DataError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = rows_to_batch(&self.schema, &self.pending)?;
        self.pending.clear();
        self.writer
            .write(&batch)
            .map_err(|e| DataError::parquet(&self.output, e))?;
        self.writer
            .flush()
            .map_err(|e| DataError::parquet(&self.output, e))
    }

    /// Writes the metadata, closes the file and renames it onto the output path.
    /// Dropping the writer instead removes the temp file.
    pub fn finish(mut self, extra: Value) -> Result<BTreeMap<String, u64>, DataError> {
        self.flush()?;
        let hf = hf_metadata(&self.schema, &self.class_names);
        let mut ours = json!({
            "schema": "dataset",
            "class_names": self.class_names,
            "source_format": self.source_format,
            "ingest_version": INGEST_VERSION,
            "splits": self.split_rows,
        });
        merge(&mut ours, extra);
        // Plain key-value entries for Parquet readers, and the same inside the Arrow schema
        // hint, which is where pyarrow (and so `datasets`) looks for schema metadata.
        let meta = HashMap::from([
            ("huggingface".to_string(), hf),
            ("shiftlab".to_string(), ours.to_string()),
        ]);
        let hint = Schema::new_with_metadata(self.schema.fields().clone(), meta.clone());
        for (key, value) in meta {
            self.writer
                .append_key_value_metadata(KeyValue::new(key, value));
        }
        let hint = KeyValue::new(
            ARROW_SCHEMA_META_KEY.to_string(),
            encode_arrow_schema(&hint),
        );
        self.writer.append_key_value_metadata(hint);
        let file = self
            .writer
            .into_inner()
            .map_err(|e| DataError::parquet(&self.output, e))?;
        file.commit().map_err(|e| DataError::io(&self.output, e))?;
        Ok(self.split_rows)
    }
}

fn merge(into: &mut Value, extra: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, extra) {
        a.extend(b);
    }
}

fn writer_props() -> WriterProperties {
    let bytes = ColumnPath::from(vec!["image".to_string(), "bytes".to_string()]);
    WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_compression(Compression::SNAPPY)
        // Image bytes are PNG/JPEG already: compressing, dictionary-encoding or min/max
        // statistics would only cost time and space.
        .set_column_compression(bytes.clone(), Compression::UNCOMPRESSED)
        .set_column_dictionary_enabled(bytes.clone(), false)
        .set_column_statistics_enabled(bytes, EnabledStatistics::None)
        .build()
}

/// The `huggingface` metadata value (JSON text) that makes `datasets` see an Image and a ClassLabel column.
pub fn hf_metadata(schema: &Schema, class_names: &[String]) -> String {
    // Built by hand to keep the features in column order (`datasets` orders columns by them).
    let features: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let feature = match (f.name().as_str(), f.data_type()) {
                ("image", _) => json!({"_type": "Image"}),
                ("label", _) => json!({"names": class_names, "_type": "ClassLabel"}),
                (_, DataType::Utf8) => json!({"dtype": "string", "_type": "Value"}),
                (_, DataType::Int32) => json!({"dtype": "int32", "_type": "Value"}),
                (_, DataType::Int64) => json!({"dtype": "int64", "_type": "Value"}),
                (_, other) => json!({"dtype": other.to_string().to_lowercase(), "_type": "Value"}),
            };
            format!("{}: {feature}", Value::from(f.name().as_str()))
        })
        .collect();
    format!(
        "{{\"info\": {{\"features\": {{{}}}}}}}",
        features.join(", ")
    )
}

fn rows_to_batch(schema: &Arc<Schema>, rows: &[Row]) -> Result<RecordBatch, DataError> {
    let DataType::Struct(image_fields) = schema.field_with_name("image")?.data_type() else {
        return Err(DataError::Schema("dataset.image is not a struct".into()));
    };
    let bytes = BinaryArray::from_iter_values(rows.iter().map(|r| r.image.bytes.as_slice()));
    let paths = StringArray::from_iter(rows.iter().map(|r| r.path.as_deref()));
    let image = StructArray::try_new(
        image_fields.clone(),
        vec![Arc::new(bytes) as ArrayRef, Arc::new(paths)],
        None,
    )?;
    let int32 = |f: fn(&Row) -> i32| Arc::new(Int32Array::from_iter_values(rows.iter().map(f)));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.id.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.split.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.label))),
        Arc::new(image),
        int32(|r| r.image.width as i32),
        int32(|r| r.image.height as i32),
        int32(|r| r.image.channels as i32),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.corruption.as_deref()),
        )),
        Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.severity))),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Writes `bytes` to `path` atomically, with the data crate's error type.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    shiftlab_common::write_atomic(path, bytes).map_err(|e| DataError::io(path, e))
}

/// Extra `shiftlab` metadata for [`DatasetWriter::finish`] from string pairs, so callers that
/// record provenance (e.g. `shiftlab shift-dataset`) need not depend on serde_json.
pub fn string_metadata(pairs: &[(&str, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::encode_png;
    use crate::reader::{read_info, DatasetReader};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn row(id: &str, split: &str, label: i64) -> Row {
        let bytes = encode_png(2, 1, 1, &[label as u8, 9]).expect("png");
        Row {
            id: id.into(),
            split: split.into(),
            label,
            image: StoredImage {
                bytes,
                width: 2,
                height: 1,
                channels: 1,
            },
            path: None,
            corruption: (split == "test").then(|| "fog".to_string()),
            severity: (split == "test").then_some(3),
        }
    }

    /// Four train rows, then two test rows, with provenance `shift = "hue"`.
    fn write_table(path: &Path) -> BTreeMap<String, u64> {
        let classes = ["coat".to_string(), "bag".to_string()];
        let mut w = DatasetWriter::create(path, &classes, "unit").expect("create");
        for (id, split, label) in [
            ("t0", "train", 0),
            ("t1", "train", 1),
            ("t2", "train", 1),
            ("t3", "train", 0),
            ("s0", "test", 1),
            ("s1", "test", 0),
        ] {
            w.push(row(id, split, label)).expect("push");
        }
        w.finish(string_metadata(&[("shift", "hue".to_string())]))
            .expect("finish")
    }

    #[test]
    fn metadata_carries_splits_classes_provenance_and_the_hf_features() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.parquet");
        let splits = write_table(&path);
        let want = BTreeMap::from([("test".to_string(), 2), ("train".to_string(), 4)]);
        assert_eq!(splits, want);
        let info = read_info(&path).expect("info");
        assert_eq!((info.num_rows, &info.splits), (6, &want));
        assert_eq!(
            (info.class_names, info.source_format),
            (vec!["coat".into(), "bag".into()], "unit".into())
        );
        let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .expect("parquet");
        // Six rows are one row group: a group is written every ROW_GROUP_ROWS, not every row.
        assert_eq!(b.metadata().num_row_groups(), 1);
        let meta = b.schema().metadata();
        let ours: Value = serde_json::from_str(&meta["shiftlab"]).expect("json");
        assert_eq!(
            (ours["shift"].as_str(), ours["schema"].as_str()),
            (Some("hue"), Some("dataset"))
        );
        assert_eq!(ours["ingest_version"], INGEST_VERSION);
        let hf: Value = serde_json::from_str(&meta["huggingface"]).expect("json");
        let features = hf["info"]["features"].as_object().expect("features");
        assert_eq!(features["image"]["_type"], "Image");
        assert_eq!(
            features["label"],
            json!({"names": ["coat", "bag"], "_type": "ClassLabel"})
        );
        assert_eq!(
            features["severity"],
            json!({"dtype": "int32", "_type": "Value"})
        );
        // Plain Parquet key-value entries carry the same two keys (for non-Arrow readers).
        let kv = b
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .expect("kv");
        for key in ["shiftlab", "huggingface"] {
            assert!(kv
                .iter()
                .any(|e| e.key == key && e.value.as_deref() == Some(&meta[key][..])));
        }
    }

    #[test]
    fn hf_features_keep_the_column_order() {
        let text = hf_metadata(&schema::dataset(), &["a".to_string()]);
        let names: Vec<String> = schema::dataset()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut at = 0;
        for name in &names {
            let found = text[at..].find(&format!("\"{name}\": ")).expect(name);
            at += found;
        }
        assert!(
            text.starts_with("{\"info\": {\"features\": {\"id\": "),
            "{text}"
        );
    }

    #[test]
    fn a_split_is_read_in_batches_that_skip_the_other_splits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.parquet");
        write_table(&path);
        // Batches of two rows: the first two hold train rows only and must not come back empty.
        let batches: Vec<_> = DatasetReader::open(&path, 2, Some("test"))
            .expect("open")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(
            (b.len(), b.ids.clone()),
            (2, vec!["s0".to_string(), "s1".to_string()])
        );
        assert_eq!(
            (b.labels.clone(), b.severities.clone()),
            (vec![1, 0], vec![Some(3), Some(3)])
        );
        assert_eq!(b.corruptions[0].as_deref(), Some("fog"));
        let all: Vec<usize> = DatasetReader::open(&path, 4, None)
            .expect("open")
            .map(|b| b.expect("read").len())
            .collect();
        assert_eq!(all, vec![4, 2]);
    }

    #[test]
    fn rows_beyond_a_group_start_the_next_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.parquet");
        let mut w = DatasetWriter::create(&path, &[], "unit").expect("create");
        for i in 0..=ROW_GROUP_ROWS {
            w.push(row(&i.to_string(), "train", 0)).expect("push");
        }
        w.finish(Value::Null).expect("finish");
        let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .expect("parquet");
        let groups: Vec<i64> = b
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(groups, vec![ROW_GROUP_ROWS as i64, 1]);
    }
}
