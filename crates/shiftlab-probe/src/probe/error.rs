//! Errors of the probes.

/// Why a probe could not be built or applied.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Tensor shapes or values do not fit (e.g. features `[N, D]` vs labels `[N]`).
    #[error("{0}")]
    Shape(String),
    /// A configuration value is out of range.
    #[error("invalid probe configuration: {0}")]
    Config(String),
    /// libtorch reported an error.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// Loading a head failed.
    #[error(transparent)]
    Model(#[from] shiftlab_model::ModelError),
}

/// Checks `features` is `[N, D]` with N, D > 0; returns (N, D).
pub(crate) fn matrix_dims(t: &tch::Tensor, what: &str) -> Result<(i64, i64), ProbeError> {
    match t.size()[..] {
        [n, d] if n > 0 && d > 0 => Ok((n, d)),
        ref other => Err(ProbeError::Shape(format!(
            "{what} must be a non-empty [N, D] matrix, got shape {other:?}"
        ))),
    }
}

/// Checks `labels` is `[n]` with values in 0..classes; returns them as i64 on the CPU.
pub(crate) fn check_labels(
    labels: &tch::Tensor,
    n: i64,
    classes: i64,
) -> Result<Vec<i64>, ProbeError> {
    if labels.size() != [n] {
        return Err(ProbeError::Shape(format!(
            "labels must have shape [{n}], got {:?}",
            labels.size()
        )));
    }
    let values =
        Vec::<i64>::try_from(labels.to_kind(tch::Kind::Int64).to_device(tch::Device::Cpu))?;
    if let Some((i, bad)) = values
        .iter()
        .enumerate()
        .find(|(_, &v)| !(0..classes).contains(&v))
    {
        return Err(ProbeError::Shape(format!(
            "label {bad} of sample {i} outside 0..{classes}"
        )));
    }
    Ok(values)
}
