//! `shiftlab query`: SQL over one or more run folders (and the AlexNet reference), with the
//! metric views of `shiftlab_results::views`. The logic lives in `shiftlab_results`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use shiftlab_results::output::DEFAULT_PRECISION;
use shiftlab_results::{format_batches, write_atomic, OutputFormat, RunSession, SessionOptions};

/// How the result is written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FormatArg {
    /// An aligned text table.
    #[default]
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of objects.
    Json,
    /// A Parquet file (needs --output).
    Parquet,
}

/// SQL over run folders: tables predictions, metrics, runs, errors, stages, run_info,
/// alexnet_errors, baseline; views corruption_errors, corruption_summary, robustness, drift,
/// group_errors, family_robustness, effective_robustness, ranking, baseline_corruptions,
/// baseline_robustness.
#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// A run folder (repeat for several: each table is the union of the runs' rows).
    #[arg(long = "run", value_name = "DIR")]
    pub runs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Decimals of floating-point values in the table format (CSV, JSON and Parquet keep every
    /// digit).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PRECISION)]
    pub precision: usize,
    /// The model of each run that views baseline_corruptions / baseline_robustness normalise by
    /// (CE and mCE relative to it, = 100; not the AlexNet-normalised ImageNet-C mCE). Default:
    /// each run's first model.
    #[arg(long, value_name = "MODEL")]
    pub baseline: Option<String>,
    /// Write the result to FILE (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The SQL statement, e.g. "SELECT * FROM robustness".
    pub sql: String,
}

/// Opens the runs, prints their notes (missing parts, absent tables) to standard error, runs
/// the statement and writes the result.
pub fn run_query(args: &QueryArgs) -> anyhow::Result<()> {
    let format = match args.format {
        FormatArg::Table => OutputFormat::Table {
            precision: args.precision,
        },
        FormatArg::Csv => OutputFormat::Csv,
        FormatArg::Json => OutputFormat::Json,
        FormatArg::Parquet => OutputFormat::Parquet,
    };
    anyhow::ensure!(
        format != OutputFormat::Parquet || args.output.is_some(),
        "--format parquet writes a binary file: give it with --output FILE"
    );
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let bytes = runtime.block_on(async {
        let options = SessionOptions {
            baseline: args.baseline.clone(),
        };
        let session = RunSession::open_with(&args.runs, &options).await?;
        // A failed query carries the notes already.
        let batches = session.query(&args.sql).await?;
        for note in &session.notes {
            eprintln!("note: {note}");
        }
        format_batches(&batches, format)
    })?;
    match &args.output {
        Some(path) => write_atomic(path, &bytes)?,
        None => std::io::stdout()
            .write_all(&bytes)
            .context("cannot write to standard output")?,
    }
    Ok(())
}
