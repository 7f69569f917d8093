//! The commands of the `shiftlab` program that need no model (no libtorch).

pub mod corrupt;
pub mod ingest;
pub mod metrics;
pub mod query;
pub mod report;
pub mod shift_dataset;
