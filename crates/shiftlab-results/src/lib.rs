//! SQL over shiftlab's Parquet tables with DataFusion.
//!
//! Everything a person asks of a dataset or a run goes through SQL here, so the numbers printed
//! by the command line are the numbers anyone can re-derive with `shiftlab query`.

pub mod inspect;
pub mod output;
pub mod report;
pub mod run;
pub mod select;
pub mod session;
pub mod svg;
pub mod views;

pub use inspect::{inspect_dataset, DatasetReport};
pub use output::{format_batches, write_atomic, OutputFormat};
pub use report::{write_report, write_report_with, ReportFiles};
pub use run::{RunDir, RunInfo};
pub use select::select_ids;
pub use session::{RunSession, SessionOptions};

/// Errors of the results layer.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{path}: {cause}")]
    Input { path: String, cause: String },
    #[error("SQL failed: {0}")]
    Sql(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("SQL failed: {message}\n\n{context}")]
    Query { message: String, context: String },
    #[error("{path}: cannot write: {cause}")]
    Write { path: String, cause: String },
}
