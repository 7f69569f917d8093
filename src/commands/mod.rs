pub mod corrupt;
pub mod ingest;
