//! Errors of a pipeline run; each names the item (file, key, model, sample) and the cause.

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
    #[error("dataset {path}: {message}")]
    Dataset { path: String, message: String },
    #[error("target {name}: {message}")]
    Target { name: String, message: String },
    #[error("model {model}: {message}")]
    Model { model: String, message: String },
    #[error("probe {probe} of model {model}: {message}")]
    Probe {
        model: String,
        probe: String,
        message: String,
    },
    #[error("run folder {path}: {message}")]
    RunFolder { path: String, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("interrupted: the finished parts are kept; run again to resume")]
    Interrupted,
    #[error("a pipeline stage failed: {0}")]
    Stage(String),
}

impl PipelineError {
    pub fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        PipelineError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }

    pub fn model(model: &str, e: impl std::fmt::Display) -> Self {
        PipelineError::Model {
            model: model.to_string(),
            message: e.to_string(),
        }
    }
}
