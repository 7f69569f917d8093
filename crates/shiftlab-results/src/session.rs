//! A DataFusion session over one or more run folders: each run table is the union of the runs'
//! files (saved embeddings: one table `embeddings_MODEL` per model, as each model's embedding
//! column has its own fixed size), beside the embedded AlexNet reference, a `run_info` table from each `run.json`, the
//! `baseline` table (each run's in-run reference model, a session option), and the metric views
//! of [`crate::views`].

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use shiftlab_metrics::AlexNetTable;

use crate::run::{RunDir, RUN_TABLES};
use crate::{views, ResultsError};

/// Choices that shape the session's tables.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// The model every run's `baseline_*` views normalise by; `None`: each run's first model.
    pub baseline: Option<String>,
}

/// An open session and what the user should know about its runs.
pub struct RunSession {
    pub ctx: SessionContext,
    pub runs: Vec<RunDir>,
    /// Missing parts, absent tables: printed as warnings, and with any SQL error.
    pub notes: Vec<String>,
}

impl RunSession {
    /// Opens the run folders with the default options (each run's first model as baseline).
    pub async fn open(dirs: &[PathBuf]) -> Result<Self, ResultsError> {
        Self::open_with(dirs, &SessionOptions::default()).await
    }

    /// Opens the run folders and registers every table and view they allow.
    pub async fn open_with(
        dirs: &[PathBuf],
        options: &SessionOptions,
    ) -> Result<Self, ResultsError> {
        let runs = dirs
            .iter()
            .map(|d| RunDir::open(d))
            .collect::<Result<Vec<_>, _>>()?;
        let config = SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        ctx.register_batch("alexnet_errors", alexnet_batch()?)?;
        ctx.register_batch("run_info", run_info_batch(&runs)?)?;
        ctx.register_batch("baseline", baseline_batch(&runs, options)?)?;
        let mut notes: Vec<String> = runs.iter().flat_map(RunDir::notes).collect();
        notes.extend(duplicate_names(&runs));
        for table in RUN_TABLES {
            let files: Vec<PathBuf> = runs.iter().flat_map(|r| r.table_files(table)).collect();
            if files.is_empty() {
                if !runs.is_empty() {
                    notes.push(format!("table {table} is absent: no run has {table} files"));
                }
                continue;
            }
            register_files(&ctx, table, &files).await?;
        }
        notes.extend(register_embeddings(&ctx, &runs).await?);
        if ctx.table_exist("metrics")? && !has_column(&ctx, "metrics", "shift_family").await? {
            legacy_metrics(&ctx).await?;
            notes.push(LEGACY_NOTE.into());
        }
        if ctx.table_exist("metrics")? && !has_column(&ctx, "metrics", "paradigm").await? {
            unlabelled_metrics(&ctx).await?;
        }
        if ctx.table_exist("metrics")? {
            for (_, sql) in views::VIEWS {
                ctx.sql(sql).await?;
            }
        }
        Ok(Self { ctx, runs, notes })
    }

    /// Runs one SQL statement; a failure carries DataFusion's message, the notes and the
    /// tables with their columns, so the user can fix the query without another command.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, ResultsError> {
        let result = async { self.ctx.sql(sql).await?.collect().await }.await;
        match result {
            Ok(batches) => Ok(batches),
            Err(e) => Err(ResultsError::Query {
                message: e.to_string(),
                context: self.describe().await,
            }),
        }
    }

    /// "Tables:" then one line per table or view with its columns, then the notes.
    pub async fn describe(&self) -> String {
        let mut out = String::from("Available tables and views:\n");
        for name in self.table_names() {
            let columns = match self.ctx.table(name.as_str()).await {
                Ok(df) => df
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect::<Vec<_>>()
                    .join(", "),
                Err(e) => format!("(cannot read: {e})"),
            };
            out.push_str(&format!("  {name}({columns})\n"));
        }
        for n in &self.notes {
            out.push_str(&format!("Note: {n}\n"));
        }
        out
    }

    /// Tables and views of the default schema, sorted.
    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Registers `files` (Parquet, possibly from several runs) as one table.
async fn register_files(
    ctx: &SessionContext,
    table: &str,
    files: &[PathBuf],
) -> Result<(), ResultsError> {
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(f.to_string_lossy()))
        .collect::<Result<Vec<_>, _>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    // DataFusion infers a multi-path table's schema from its first path alone: merge every
    // file's, so runs written by different schema versions read together (older files get
    // NULL in the newer columns).
    let mut schemas = Vec::with_capacity(urls.len());
    for url in &urls {
        schemas.push(
            options
                .infer_schema(&ctx.state(), url)
                .await?
                .as_ref()
                .clone(),
        );
    }
    let schema = Schema::try_merge(schemas)?;
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(Arc::new(schema));
    ctx.register_table(table, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// `embeddings_MODEL` for every model with saved embeddings in any run. Files that do not share
/// one schema (the same model name with another dimension in another run) leave the table out
/// with a note rather than failing the whole session.
async fn register_embeddings(
    ctx: &SessionContext,
    runs: &[RunDir],
) -> Result<Vec<String>, ResultsError> {
    let mut models: Vec<String> = runs.iter().flat_map(RunDir::embedding_models).collect();
    models.sort();
    models.dedup();
    let mut notes = Vec::new();
    for model in models {
        let files: Vec<PathBuf> = runs
            .iter()
            .flat_map(|r| r.table_files(&format!("embeddings/{model}")))
            .collect();
        if files.is_empty() {
            continue;
        }
        let table = format!("embeddings_{model}");
        if let Err(e) = register_files(ctx, &table, &files).await {
            notes.push(format!(
                "table {table} is absent: its files do not agree ({e})"
            ));
        }
    }
    Ok(notes)
}

const LEGACY_NOTE: &str = "metrics has no shift_family column (written before schema version 2): \
     it is derived as 'clean' for the clean rows and 'corruption' for every other row";

/// Whether `table` has a column `column`.
async fn has_column(ctx: &SessionContext, table: &str, column: &str) -> Result<bool, ResultsError> {
    let df = ctx.table(table).await?;
    Ok(df.schema().fields().iter().any(|f| f.name() == column))
}

/// Runs written before `shift_family` existed held only the clean baseline and ImageNet-C
/// corruptions: the raw table becomes `metrics_v1` and `metrics` a view that adds the column,
/// so the views (and users' queries) read both kinds of run alike.
async fn legacy_metrics(ctx: &SessionContext) -> Result<(), ResultsError> {
    if let Some(raw) = ctx.deregister_table("metrics")? {
        ctx.register_table("metrics_v1", raw)?;
        ctx.sql(
            "CREATE VIEW metrics AS SELECT *, \
             CASE WHEN shift = 'clean' THEN 'clean' ELSE 'corruption' END AS shift_family \
             FROM metrics_v1",
        )
        .await?;
    }
    Ok(())
}

/// Runs written before `paradigm` existed (metrics version 2 and older) label no model: the
/// table (or the view above) becomes `metrics_v2` and `metrics` a view with a NULL `paradigm`.
async fn unlabelled_metrics(ctx: &SessionContext) -> Result<(), ResultsError> {
    if let Some(raw) = ctx.deregister_table("metrics")? {
        ctx.register_table("metrics_v2", raw)?;
        ctx.sql(
            "CREATE VIEW metrics AS SELECT *, CAST(NULL AS VARCHAR) AS paradigm FROM metrics_v2",
        )
        .await?;
    }
    Ok(())
}

/// Two runs with the same pipeline name cannot be told apart by the `run` column.
fn duplicate_names(runs: &[RunDir]) -> Vec<String> {
    let mut notes = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        if runs[..i].iter().any(|o| o.info.name == r.info.name) {
            notes.push(format!(
                "two runs are named {:?}: their rows share the same `run` value",
                r.info.name
            ));
        }
    }
    notes
}

/// `data-ref/alexnet_errors.csv` as a table, with the same columns as the file.
fn alexnet_batch() -> Result<RecordBatch, ResultsError> {
    let table = AlexNetTable::embedded();
    let entries = table.entries();
    let level = |s: usize| -> ArrayRef {
        let values = entries.iter().map(|e| e.severities.map(|v| v[s]));
        Arc::new(Float64Array::from_iter(values.chain([None])))
    };
    let names = entries
        .iter()
        .map(|e| e.corruption.as_str())
        .chain(["clean"]);
    let bench = entries
        .iter()
        .map(|e| Some(e.benchmark))
        .chain([Some(false)]);
    let means = entries.iter().map(|e| e.mean).chain([table.clean_error()]);
    let verified = entries.iter().map(|e| Some(e.verified)).chain([Some(true)]);
    let mut fields = vec![
        Field::new("corruption", DataType::Utf8, false),
        Field::new("benchmark_15", DataType::Boolean, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(names)),
        Arc::new(BooleanArray::from_iter(bench)),
    ];
    for s in 0..5 {
        fields.push(Field::new(format!("s{}", s + 1), DataType::Float64, true));
        columns.push(level(s));
    }
    fields.push(Field::new("mean", DataType::Float64, false));
    columns.push(Arc::new(Float64Array::from_iter_values(means)));
    fields.push(Field::new("verified", DataType::Boolean, false));
    columns.push(Arc::new(BooleanArray::from_iter(verified)));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// One row per run: `run`, `baseline` (the model its `baseline_*` views normalise by). A
/// baseline the run does not have is an error naming the run and its models.
fn baseline_batch(runs: &[RunDir], options: &SessionOptions) -> Result<RecordBatch, ResultsError> {
    let mut chosen = Vec::with_capacity(runs.len());
    for r in runs {
        let model = match &options.baseline {
            Some(m) if r.info.models.contains(m) => Some(m.clone()),
            Some(m) => {
                return Err(ResultsError::Input {
                    path: r.path.display().to_string(),
                    cause: format!(
                        "--baseline {m:?}: run {:?} has no such model (its models: {})",
                        r.info.name,
                        r.info.models.join(", ")
                    ),
                })
            }
            None => r.info.models.first().cloned(),
        };
        chosen.push(model);
    }
    let schema = Schema::new(vec![
        Field::new("run", DataType::Utf8, false),
        Field::new("baseline", DataType::Utf8, true),
    ]);
    let names = runs.iter().map(|r| r.info.name.as_str());
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(names)),
        Arc::new(StringArray::from(chosen)),
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// One row per run folder, from its `run.json` and manifest.
fn run_info_batch(runs: &[RunDir]) -> Result<RecordBatch, ResultsError> {
    let text = |f: fn(&RunDir) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(runs.iter().map(f)))
    };
    let number = |f: fn(&RunDir) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(runs.iter().map(f)))
    };
    let schema = Schema::new(vec![
        Field::new("run", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("preset", DataType::Utf8, false),
        Field::new("fingerprint", DataType::Utf8, false),
        Field::new("models", DataType::Utf8, false),
        Field::new("shifts", DataType::UInt64, false),
        Field::new("parts_total", DataType::UInt64, false),
        Field::new("parts_missing", DataType::UInt64, false),
        Field::new("complete", DataType::Boolean, false),
    ]);
    let columns = vec![
        text(|r| r.info.name.clone()),
        text(|r| r.path.display().to_string()),
        text(|r| r.info.preset.clone()),
        text(|r| r.info.fingerprint.clone()),
        text(|r| r.info.models.join(",")),
        number(|r| r.info.shifts),
        number(|r| r.info.parts_total),
        number(|r| r.missing_parts.len() as u64),
        Arc::new(BooleanArray::from_iter(
            runs.iter().map(|r| Some(r.is_complete())),
        )),
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}
