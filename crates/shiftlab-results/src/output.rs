//! Query results as text or files, and atomic writes (temporary file beside, then rename) so a
//! reader never sees half a file.

use std::io::Write;
use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;

use crate::ResultsError;

/// How `shiftlab query` writes its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Parquet,
}

/// The batches in `format` as bytes (Parquet is binary; the others are UTF-8 text).
pub fn format_batches(
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<Vec<u8>, ResultsError> {
    match format {
        OutputFormat::Table => Ok(format!("{}\n", pretty_format_batches(batches)?).into_bytes()),
        OutputFormat::Csv => csv_bytes(batches),
        OutputFormat::Json => json_bytes(batches),
        OutputFormat::Parquet => parquet_bytes(batches),
    }
}

fn csv_bytes(batches: &[RecordBatch]) -> Result<Vec<u8>, ResultsError> {
    let mut buf = Vec::new();
    {
        let mut writer = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut buf);
        for b in batches {
            writer.write(b)?;
        }
    }
    Ok(buf)
}

/// A JSON array of objects, one per row (NULLs are written as `null`).
fn json_bytes(batches: &[RecordBatch]) -> Result<Vec<u8>, ResultsError> {
    use datafusion::arrow::json::writer::{JsonArray, WriterBuilder};
    let mut buf = Vec::new();
    {
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, JsonArray>(&mut buf);
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        writer.write_batches(&refs)?;
        writer.finish()?;
    }
    if buf.is_empty() {
        buf.extend_from_slice(b"[]");
    }
    buf.push(b'\n');
    Ok(buf)
}

fn parquet_bytes(batches: &[RecordBatch]) -> Result<Vec<u8>, ResultsError> {
    let Some(first) = batches.first() else {
        return Err(ResultsError::Input {
            path: "query".into(),
            cause: "the query returned no batches, so there is no schema to write as Parquet"
                .into(),
        });
    };
    let mut buf = Vec::new();
    let sql = |e: datafusion::parquet::errors::ParquetError| {
        ResultsError::Sql(datafusion::error::DataFusionError::ParquetError(Box::new(
            e,
        )))
    };
    let mut writer = ArrowWriter::try_new(&mut buf, first.schema(), None).map_err(sql)?;
    for b in batches {
        writer.write(b).map_err(sql)?;
    }
    writer.close().map_err(sql)?;
    Ok(buf)
}

/// Writes `bytes` to `path` through a hidden temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    let fail = |e: std::io::Error| ResultsError::Write {
        path: path.display().to_string(),
        cause: e.to_string(),
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("value", DataType::Float64, true),
        ]);
        let columns: Vec<Arc<dyn datafusion::arrow::array::Array>> = vec![
            Arc::new(StringArray::from(vec!["a", "b"])),
            Arc::new(Float64Array::from(vec![Some(0.5), None])),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).expect("batch")
    }

    #[test]
    fn text_formats() -> Result<(), ResultsError> {
        let csv =
            String::from_utf8(format_batches(&[batch()], OutputFormat::Csv)?).unwrap_or_default();
        assert_eq!(csv, "name,value\na,0.5\nb,\n");
        let json =
            String::from_utf8(format_batches(&[batch()], OutputFormat::Json)?).unwrap_or_default();
        assert_eq!(
            json,
            "[{\"name\":\"a\",\"value\":0.5},{\"name\":\"b\",\"value\":null}]\n"
        );
        let table =
            String::from_utf8(format_batches(&[batch()], OutputFormat::Table)?).unwrap_or_default();
        assert!(table.contains("| a    | 0.5   |"), "{table}");
        Ok(())
    }

    #[test]
    fn parquet_round_trips_and_writes_leave_no_temporaries() -> Result<(), ResultsError> {
        let dir = tempfile::tempdir().map_err(|e| ResultsError::Write {
            path: "tmp".into(),
            cause: e.to_string(),
        })?;
        let path = dir.path().join("out.parquet");
        write_atomic(&path, &format_batches(&[batch()], OutputFormat::Parquet)?)?;
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.parquet")]);
        let file = std::fs::File::open(&path).map_err(|e| ResultsError::Write {
            path: "out".into(),
            cause: e.to_string(),
        })?;
        let reader =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                file,
            )
            .and_then(|b| b.build())
            .map_err(|e| {
                ResultsError::Sql(datafusion::error::DataFusionError::ParquetError(Box::new(
                    e,
                )))
            })?;
        let rows: usize = reader.flatten().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 2);
        assert!(format_batches(&[], OutputFormat::Parquet).is_err());
        Ok(())
    }
}
