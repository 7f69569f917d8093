//! Dataset ingest (placeholder).
