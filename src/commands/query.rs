//! `shiftlab query`: SQL over one or more run folders (and the AlexNet reference), with the
//! metric views of `shiftlab_results::views`. The logic lives in `shiftlab_results`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use shiftlab_results::{format_batches, write_atomic, OutputFormat, RunSession};

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
/// alexnet_errors; views corruption_errors, corruption_summary, robustness, drift, group_errors,
/// family_robustness, effective_robustness.
#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// A run folder (repeat for several: each table is the union of the runs' rows).
    #[arg(long = "run", value_name = "DIR")]
    pub runs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
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
        FormatArg::Table => OutputFormat::Table,
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
        let session = RunSession::open(&args.runs).await?;
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
