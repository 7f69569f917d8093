//! `shiftlab metrics`: ImageNet-C metrics from an external table of errors (e.g. published
//! numbers), so they can be put beside a run's own. The logic lives in `shiftlab_probe`.

use std::path::PathBuf;

use anyhow::Context;
use shiftlab_probe::metrics::summarize;
use shiftlab_probe::report::format_summary;
use shiftlab_probe::table::read_error_files;
use shiftlab_probe::{AlexNetTable, ErrorUnit};

/// How the error values in the input files are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnitArg {
    /// Errors as fractions, 0..1 (0.239).
    #[default]
    Fraction,
    /// Errors as percentages, 0..100 (23.9).
    Percent,
}

/// ImageNet-C metrics (mCE, relative mCE, mean error, per-corruption CE) from a table of errors.
#[derive(clap::Args, Debug)]
pub struct MetricsArgs {
    /// CSV with columns model,corruption,severity,error (severities 1..5; `#` lines are
    /// comments). Rows with corruption `clean` and severity 0 (or empty) give clean errors.
    #[arg(long, value_name = "FILE.csv")]
    pub errors: PathBuf,
    /// Optional CSV with columns model,error holding clean errors (instead of `clean` rows).
    #[arg(long, value_name = "FILE.csv")]
    pub clean: Option<PathBuf>,
    /// Unit of the error values in both files.
    #[arg(long, value_enum, default_value_t = UnitArg::Fraction)]
    pub unit: UnitArg,
}

/// Reads the tables and prints, per model: clean error, AlexNet-normalised mCE, relative mCE,
/// unnormalised mean error over the 15 and 19 corruptions, and per-corruption CE.
pub fn run_metrics(args: &MetricsArgs) -> anyhow::Result<()> {
    let unit = match args.unit {
        UnitArg::Fraction => ErrorUnit::Fraction,
        UnitArg::Percent => ErrorUnit::Percent,
    };
    let models = read_error_files(&args.errors, args.clean.as_deref(), unit)
        .with_context(|| format!("reading {}", args.errors.display()))?;
    anyhow::ensure!(!models.is_empty(), "{} has no rows", args.errors.display());
    let alexnet = AlexNetTable::embedded();
    let blocks: Vec<String> = models
        .iter()
        .map(|m| format_summary(&summarize(m, alexnet)))
        .collect();
    print!("{}", blocks.join("\n"));
    Ok(())
}
