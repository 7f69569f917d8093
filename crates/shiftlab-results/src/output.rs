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
