pub mod corrupt;
pub mod ingest;
pub mod metrics;
pub mod pipeline;
pub mod query;
pub mod report;
pub mod shift_dataset;
pub mod train;
