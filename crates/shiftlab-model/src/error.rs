//! One error type for everything that can go wrong between a model config and an embedding.

use std::path::PathBuf;

/// Why a model could not be configured, loaded or run. Messages name the model, file or tensor.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The `[[models]]` entry is inconsistent (unknown architecture, bad normalisation...).
    #[error("model '{model}': {problem}")]
    Config { model: String, problem: String },

    /// A weights or TorchScript file is missing or unreadable.
    #[error("cannot load {what} {}: {reason}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// A tensor the architecture needs is absent from the weights file.
    #[error("weights {}: tensor '{tensor}' is missing (expected shape {expected:?})", path.display())]
    MissingTensor {
        path: PathBuf,
        tensor: String,
        expected: Vec<i64>,
    },

    /// A tensor exists but its shape does not fit the architecture.
    #[error("weights {}: tensor '{tensor}' has shape {found:?}, expected {expected:?}", path.display())]
    ShapeMismatch {
        path: PathBuf,
        tensor: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },

    /// The device string is malformed or the device is not usable here.
    #[error("device: {0}")]
    Device(String),

    /// The precision is unknown or unsupported on the chosen device.
    #[error("precision: {0}")]
    Precision(String),

    /// The image batch does not fit the preprocessing (rank, dtype, channels, size).
    #[error("input batch: {0}")]
    Input(String),

    /// libtorch reported an error while running the model.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub(crate) fn config(model: &str, problem: impl Into<String>) -> Self {
        ModelError::Config {
            model: model.to_string(),
            problem: problem.into(),
        }
    }
}
