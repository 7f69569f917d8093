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
