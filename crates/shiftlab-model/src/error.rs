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

    /// Tensors the architecture needs are absent from the weights file: all of them, with
    /// the file's tensors the architecture does not use.
    #[error("weights {}: {}", path.display(), missing_list(*needed, missing, unused))]
    MissingTensors {
        path: PathBuf,
        /// Tensors the architecture has.
        needed: usize,
        /// Name and expected shape, in name order.
        missing: Vec<(String, Vec<i64>)>,
        unused: Vec<String>,
    },

    /// Loading a model's weights failed; names the model, its architecture and the cause.
    #[error("model '{model}' ({architecture}): {error}")]
    Weights {
        model: String,
        architecture: String,
        error: Box<ModelError>,
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

/// At most this many names of a list go into a message.
const LISTED: usize = 8;

fn missing_list(needed: usize, missing: &[(String, Vec<i64>)], unused: &[String]) -> String {
    let names: Vec<String> = missing
        .iter()
        .take(LISTED)
        .map(|(n, s)| format!("'{n}' {s:?}"))
        .collect();
    let mut text = format!(
        "{} of the {needed} tensors the architecture needs are missing: {}{}",
        missing.len(),
        names.join(", "),
        more(missing.len())
    );
    if !unused.is_empty() {
        let names: Vec<String> = unused
            .iter()
            .take(LISTED)
            .map(|n| format!("'{n}'"))
            .collect();
        text += &format!(
            "; the file has {} tensors the architecture does not use: {}{} (another layout? \
             tools/convert_checkpoint.py renames them)",
            unused.len(),
            names.join(", "),
            more(unused.len())
        );
    }
    text
}

fn more(n: usize) -> String {
    if n > LISTED {
        format!(" and {} more", n - LISTED)
    } else {
        String::new()
    }
}

impl ModelError {
    pub(crate) fn config(model: &str, problem: impl Into<String>) -> Self {
        ModelError::Config {
            model: model.to_string(),
            problem: problem.into(),
        }
    }
}
