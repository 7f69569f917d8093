//! SQL over shiftlab's Parquet tables with DataFusion.
//!
//! Everything a person asks of a dataset or a run goes through SQL here, so the numbers printed
//! by the command line are the numbers anyone can re-derive with `shiftlab query`.

pub mod inspect;

pub use inspect::{inspect_dataset, DatasetReport};

/// Errors of the results layer.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{path}: {cause}")]
    Input { path: String, cause: String },
    #[error("SQL failed: {0}")]
    Sql(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

pub mod select;
pub use select::select_ids;
