//! The ImageNet-C robustness metrics, without libtorch (the `shiftlab` program, the SQL views and
//! the probes all use these):
//!
//! * [`metrics`]: corruption error (CE), AlexNet-normalised mCE, relative mCE, plain mean
//!   error / accuracy over corruptions x severities, expected calibration error. Pure Rust.
//! * [`alexnet`]: the AlexNet reference errors that normalise CE, embedded from
//!   `data-ref/alexnet_errors.csv`.
//! * [`table`]: reading external error tables (published numbers) from CSV.
//! * [`report`]: the plain-text report printed by `shiftlab metrics`.

pub mod alexnet;
pub mod corruptions;
pub mod error;
pub mod metrics;
pub mod model_errors;
pub mod report;
pub mod table;

pub use alexnet::{AlexNetEntry, AlexNetTable};
pub use corruptions::CorruptionSet;
pub use error::{MetricsError, RowProblem};
pub use metrics::Summary;
pub use model_errors::{CorruptionErrors, ErrorEntry, ModelErrors, Severity};
pub use table::ErrorUnit;
