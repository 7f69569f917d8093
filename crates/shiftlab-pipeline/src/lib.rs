//! shiftlab pipelines: a TOML file describes a dataset, shifts, models and probes; the runtime
//! streams the data through bounded stages (decode -> shift -> embed -> probe -> sink) and writes
//! Parquet tables that a run can be resumed from and queried with SQL.

pub mod config;
pub mod error;
pub mod eval;
pub mod fit;
pub mod folder;
pub mod interrupt;
pub mod metrics;
pub mod probes;
pub mod run;
pub mod source;
pub mod stage;
pub mod tables;
pub mod targets;

pub use config::{load, parse, Pipeline, Shift};
pub use error::PipelineError;
pub use folder::RunFolder;
pub use run::{run, RowFilter, RunOptions, RunSummary};
