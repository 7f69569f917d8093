//! Dataset ingest: image data sets in their published layouts -> the canonical Parquet dataset
//! table (`schemas/dataset.json`), and streaming reads of that table.
//!
//! See the crate README for the table layout and the bad-input policy. Entry points:
//! [`ingest::ingest`] (what `shiftlab ingest` runs), [`reader::DatasetReader`] and
//! [`reader::read_info`] (what the pipeline reads), [`schema::load`] (shared table schemas).

pub mod cifar;
pub mod decode;
pub mod error;
pub mod folder;
pub mod hf;
pub mod idx;
pub mod imaging;
pub mod ingest;
pub mod npy;
pub mod pickle;
pub mod reader;
pub mod schema;
pub mod source;
pub mod writer;

/// Hand-crafted image fixtures for tests (here and in other crates); not part of the API.
#[doc(hidden)]
pub mod testutil;

pub use error::{DataError, Reason, RejectSummary, Rejected};
pub use ingest::{ingest, Format, IngestOptions, IngestReport};
pub use reader::{read_info, DatasetInfo, DatasetReader, ImageBatch};
pub use source::Input;
