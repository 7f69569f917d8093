//! Errors of a pipeline run; each names the item (file, key, model, probe, sample) in its own
//! fields, and keeps the error that caused it as its `source()` (printed as a chain by the CLI),
//! so no message is ever rebuilt from another error's text.

use shiftlab_model::ModelError;
use shiftlab_probe::probe::ProbeError;

/// An error from below (I/O, Arrow, Parquet, libtorch, ...), kept as the source.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

/// What stopped a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{file}{}: {}{message}", line.map(|l| format!(":{l}")).unwrap_or_default(), if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Config {
        file: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
    #[error("{file}: source.filter")]
    Filter {
        file: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("dataset {path}: {message}")]
    Dataset { path: String, message: String },
    #[error("target {name}: {message}")]
    Target { name: String, message: String },
    #[error("model {model}")]
    Model {
        model: String,
        #[source]
        source: Box<ModelError>,
    },
    #[error("probe {probe} of model {model}")]
    Probe {
        model: String,
        probe: &'static str,
        #[source]
        source: Box<ProbeError>,
    },
    #[error("run folder {path}: {message}")]
    RunFolder { path: String, message: String },
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: Source,
    },
    #[error("interrupted: the finished parts are kept; run again to resume")]
    Interrupted,
    #[error("a pipeline stage failed: {0}")]
    Stage(String),
    #[error("the {stage} stage panicked: {message}")]
    StagePanicked {
        stage: &'static str,
        message: String,
    },
    #[error("run folder {path}: {count} of {total} parts are not finished: {missing}")]
    Incomplete {
        path: String,
        missing: String,
        count: usize,
        total: u32,
    },
}

impl PipelineError {
    /// An I/O-like failure on `path`, with its cause.
    pub fn io(path: &std::path::Path, e: impl Into<Source>) -> Self {
        PipelineError::Io {
            path: path.display().to_string(),
            source: e.into(),
        }
    }

    pub fn model(model: &str, source: ModelError) -> Self {
        PipelineError::Model {
            model: model.to_string(),
            source: Box::new(source),
        }
    }

    pub fn probe(model: &str, probe: &'static str, source: ProbeError) -> Self {
        PipelineError::Probe {
            model: model.to_string(),
            probe,
            source: Box::new(source),
        }
    }

    /// The error and its causes, `a: b: c` (what the CLI prints; the `runs` table's outcome).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            text.push_str(": ");
            text.push_str(&e.to_string());
            next = e.source();
        }
        text
    }
}
