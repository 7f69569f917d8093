//! `shiftlab report`: an HTML page, SVG figures and a Markdown summary of one or more runs.
//! The logic lives in `shiftlab_results::report`.

use std::path::PathBuf;

use anyhow::Context;

/// A report of run folders: robustness and ranking tables, CE relative to an in-run baseline,
/// error, drift and clean-vs-shifted figures, throughput, config.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Run folders written by `shiftlab run` (finished: the report needs metrics.parquet).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Folder for report.html, report.md and figures/ (created; files are replaced atomically).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The model of each run that the section "Relative to an in-run baseline" normalises by
    /// (its CE = 100; not the AlexNet-normalised ImageNet-C mCE). Default: each run's first model.
    #[arg(long, value_name = "MODEL")]
    pub baseline: Option<String>,
}

/// Writes the report and prints where it went.
pub fn run_report(args: &ReportArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let options = shiftlab_results::SessionOptions {
        baseline: args.baseline.clone(),
    };
    let files = runtime.block_on(shiftlab_results::write_report_with(
        &args.runs, &args.out, &options,
    ))?;
    println!("{}", files.html.display());
    println!("{}", files.markdown.display());
    println!(
        "{} figures in {}",
        files.figures.len(),
        args.out.join("figures").display()
    );
    Ok(())
}
