//! `shiftlab inspect`: counts per split, class and corruption/severity of a dataset table.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::ResultsError;

/// One titled section of the report, with the SQL that produced it.
pub struct Section {
    pub title: String,
    pub sql: String,
    pub batches: Vec<RecordBatch>,
}

/// The whole report: file facts plus sections.
pub struct DatasetReport {
    pub path: String,
    pub rows: i64,
    pub row_groups: usize,
    pub class_names: Vec<String>,
    pub sections: Vec<Section>,
}

impl std::fmt::Display for DatasetReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} rows in {} row groups, {} classes",
            self.path,
            self.rows,
            self.row_groups,
            self.class_names.len()
        )?;
        for s in &self.sections {
            writeln!(f, "\n{}", s.title)?;
            match pretty_format_batches(&s.batches) {
                Ok(table) => writeln!(f, "{table}")?,
                Err(e) => writeln!(f, "(cannot format: {e})")?,
            }
        }
        Ok(())
    }
}

const PER_SPLIT: &str = "SELECT split, COUNT(*) AS rows FROM dataset GROUP BY split ORDER BY split";
const PER_CLASS: &str = "SELECT d.label, c.class_name, d.split, COUNT(*) AS rows \
     FROM dataset d LEFT JOIN classes c ON d.label = c.label \
     GROUP BY d.label, c.class_name, d.split ORDER BY d.label, d.split";
const PER_SHIFT: &str = "SELECT corruption, severity, COUNT(*) AS rows FROM dataset \
     WHERE corruption IS NOT NULL GROUP BY corruption, severity ORDER BY corruption, severity";

/// Runs the inspection queries over one dataset Parquet file.
pub async fn inspect_dataset(path: &Path) -> Result<DatasetReport, ResultsError> {
    let (rows, row_groups, class_names) = footer_facts(path)?;
    let ctx = SessionContext::new();
    let display = path.display().to_string();
    ctx.register_parquet("dataset", &display, ParquetReadOptions::default())
        .await?;
    ctx.register_batch("classes", classes_batch(&class_names)?)?;
    let mut sections = vec![
        section(&ctx, "Rows per split", PER_SPLIT).await?,
        section(&ctx, "Rows per class and split", PER_CLASS).await?,
    ];
    let shifts = section(&ctx, "Rows per corruption and severity", PER_SHIFT).await?;
    if shifts.batches.iter().any(|b| b.num_rows() > 0) {
        sections.push(shifts);
    }
    Ok(DatasetReport {
        path: display,
        rows,
        row_groups,
        class_names,
        sections,
    })
}

async fn section(ctx: &SessionContext, title: &str, sql: &str) -> Result<Section, ResultsError> {
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok(Section {
        title: title.to_string(),
        sql: sql.to_string(),
        batches,
    })
}

/// Row count, row groups and class names from the Parquet footer, with a clear error for
/// files that are missing or not Parquet.
fn footer_facts(path: &Path) -> Result<(i64, usize, Vec<String>), ResultsError> {
    let input = |cause: String| ResultsError::Input {
        path: path.display().to_string(),
        cause,
    };
    let file = std::fs::File::open(path).map_err(|e| input(format!("cannot open: {e}")))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| input(format!("not a readable Parquet file: {e}")))?;
    let meta = reader.metadata();
    let kv = meta.file_metadata().key_value_metadata();
    let lookup = |key: &str| {
        kv.and_then(|kvs| kvs.iter().find(|k| k.key == key))
            .and_then(|k| k.value.clone())
    };
    let class_names = lookup("shiftlab")
        .and_then(|v| class_names_from(&v, &["class_names"]))
        .or_else(|| {
            lookup("huggingface")
                .and_then(|v| class_names_from(&v, &["info", "features", "label", "names"]))
        })
        .unwrap_or_default();
    Ok((
        meta.file_metadata().num_rows(),
        meta.num_row_groups(),
        class_names,
    ))
}

fn class_names_from(json: &str, path: &[&str]) -> Option<Vec<String>> {
    let mut value: serde_json::Value = serde_json::from_str(json).ok()?;
    for key in path {
        value = value.get(key)?.clone();
    }
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn classes_batch(names: &[String]) -> Result<RecordBatch, ResultsError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("label", DataType::Int64, false),
        Field::new("class_name", DataType::Utf8, false),
    ]));
    let labels = Int64Array::from_iter_values(0..names.len() as i64);
    let names = StringArray::from_iter_values(names.iter());
    Ok(RecordBatch::try_new(
        schema,
        vec![Arc::new(labels), Arc::new(names)],
    )?)
}
