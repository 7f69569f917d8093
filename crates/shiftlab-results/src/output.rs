//! Query results as text or files, and atomic writes (temporary file beside, then rename) so a
//! reader never sees half a file.
//!
//! Numbers for people (the `table` format, the report, the end-of-run summary) go through
//! [`decimal`] / [`readable`] and [`percent`] at one precision, so they agree digit for digit; files meant for
//! programs (CSV, JSON, Parquet) keep every bit of the value.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;

use crate::ResultsError;

/// Decimals of a fraction (error, accuracy, cosine) shown to people: 4, i.e. a percentage
/// with 2 decimals (0.1985 = 19.85 %).
pub const DEFAULT_PRECISION: usize = 4;

/// How `shiftlab query` writes its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned text; floating-point columns with `precision` decimals (see [`readable`]).
    Table {
        precision: usize,
    },
    Csv,
    Json,
    Parquet,
}

/// `v` with `decimals` decimals (`-0.00` prints as `0.00`).
pub fn decimal(v: f64, decimals: usize) -> String {
    let text = format!("{v:.decimals$}");
    match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => text,
    }
}

/// [`decimal`], except that a non-zero value that would print as zero keeps `decimals`
/// significant digits in exponent form (`1.235e-7`): a query's small values (a tiny ECE, a
/// p-value) must not vanish.
pub fn readable(v: f64, decimals: usize) -> String {
    let smallest = 0.5 * 10f64.powi(-(decimals.min(300) as i32));
    if v.is_finite() && v != 0.0 && v.abs() < smallest {
        return format!("{v:.*e}", decimals.saturating_sub(1));
    }
    decimal(v, decimals)
}

/// A fraction as a percentage with `precision - 2` decimals (the same digits [`decimal`] shows
/// of the fraction at `precision`); `n/a` for NULL.
pub fn percent(v: Option<f64>, precision: usize) -> String {
    v.map_or_else(
        || "n/a".into(),
        |v| decimal(100.0 * v, precision.saturating_sub(2)),
    )
}

/// The batches with every floating-point column as text at `precision` decimals.
fn rounded(batches: &[RecordBatch], precision: usize) -> Result<Vec<RecordBatch>, ResultsError> {
    batches
        .iter()
        .map(|b| {
            let schema = b.schema();
            let mut fields = Vec::with_capacity(b.num_columns());
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(b.num_columns());
            for (field, col) in schema.fields().iter().zip(b.columns()) {
                if !field.data_type().is_floating() {
                    fields.push(field.as_ref().clone());
                    columns.push(col.clone());
                    continue;
                }
                let wide = cast(col, &DataType::Float64)?;
                let v = wide.as_primitive::<Float64Type>();
                let text: StringArray = (0..v.len())
                    .map(|i| v.is_valid(i).then(|| readable(v.value(i), precision)))
                    .collect();
                fields.push(Field::new(field.name(), DataType::Utf8, true));
                columns.push(Arc::new(text));
            }
            Ok(RecordBatch::try_new(
                Arc::new(Schema::new(fields)),
                columns,
            )?)
        })
        .collect()
}

/// The batches in `format` as bytes (Parquet is binary; the others are UTF-8 text).
pub fn format_batches(
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<Vec<u8>, ResultsError> {
    match format {
        OutputFormat::Table { precision } => {
            let text = pretty_format_batches(&rounded(batches, precision)?)?;
            Ok(format!("{text}\n").into_bytes())
        }
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

/// Writes `bytes` to `path` atomically (the workspace's one writer, `shiftlab_common`), with the
/// results crate's error type.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    shiftlab_common::write_atomic(path, bytes).map_err(|e| ResultsError::Write {
        path: path.display().to_string(),
        cause: e.to_string(),
    })
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
        let table = String::from_utf8(format_batches(
            &[batch()],
            OutputFormat::Table { precision: 4 },
        )?)
        .unwrap_or_default();
        assert!(table.contains("| a    | 0.5000 |"), "{table}");
        Ok(())
    }

    #[test]
    fn tables_round_files_keep_every_digit() -> Result<(), ResultsError> {
        let v = 0.198_473_684_210_526_33;
        let schema = Schema::new(vec![Field::new("e", DataType::Float64, true)]);
        let col = datafusion::arrow::array::Float64Array::from(vec![Some(v), Some(-1e-9), None]);
        let b = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(col)])?;
        let table = |precision| {
            let bytes = format_batches(std::slice::from_ref(&b), OutputFormat::Table { precision });
            String::from_utf8(bytes.unwrap_or_default()).unwrap_or_default()
        };
        assert!(table(4).contains("| 0.1985    |"), "{}", table(4));
        assert!(table(4).contains("| -1.000e-9 |"), "{}", table(4));
        assert!(table(2).contains("| 0.20    |"), "{}", table(2));
        let csv = String::from_utf8(format_batches(&[b], OutputFormat::Csv)?).unwrap_or_default();
        assert_eq!(csv.lines().nth(1), Some("0.19847368421052633"), "{csv}");
        Ok(())
    }

    #[test]
    fn decimals_and_percent_agree() {
        assert_eq!(decimal(0.19847, 4), "0.1985");
        assert_eq!(percent(Some(0.19847), 4), "19.85");
        assert_eq!(readable(-0.00001, 2), "-1.0e-5");
        assert_eq!(readable(0.004, 2), "4.0e-3");
        assert_eq!(readable(0.005, 2), "0.01");
        assert_eq!(decimal(-0.004, 2), "0.00");
        assert_eq!(readable(76.654_321, 4), "76.6543");
        assert_eq!(readable(0.0, 3), "0.000");
        assert_eq!(readable(f64::NAN, 3), "NaN");
        assert_eq!(percent(None, 4), "n/a");
        assert_eq!(percent(Some(-0.000_01), 4), "0.00");
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
