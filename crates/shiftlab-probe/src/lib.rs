//! Probes on frozen image features: weighted kNN and linear probes, and a checkpoint's linear
//! head, on `tch`, with the per-sample outputs (prediction, top-5, confidence, cosine to the
//! clean twin).
//!
//! The metric math lives in `shiftlab-metrics` (no libtorch, so the `shiftlab` program and the
//! SQL views build without it); it is re-exported here under its old paths.

pub use shiftlab_metrics::{
    alexnet, corruptions, error, metrics, model_errors, report, table, AlexNetEntry, AlexNetTable,
    CorruptionErrors, CorruptionSet, ErrorEntry, ErrorUnit, MetricsError, ModelErrors, RowProblem,
    Severity, Summary,
};

pub mod probe;
