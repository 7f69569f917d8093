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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn matrices_must_be_two_dimensional_and_non_empty() {
        let m = |shape: &[i64]| Tensor::zeros(shape, (Kind::Float, tch::Device::Cpu));
        assert_eq!(matrix_dims(&m(&[3, 2]), "x").expect("3 x 2"), (3, 2));
        assert_eq!(matrix_dims(&m(&[1, 1]), "x").expect("1 x 1"), (1, 1));
        for shape in [&[0, 2][..], &[3, 0], &[0, 0], &[6], &[1, 2, 3]] {
            let err = matrix_dims(&m(shape), "query features").expect_err("refused");
            let text = err.to_string();
            assert!(
                text.contains("query features must be a non-empty [N, D] matrix")
                    && text.contains(&format!("{shape:?}")),
                "{text}"
            );
        }
    }

    #[test]
    fn labels_must_be_one_per_sample_and_within_the_classes() {
        let l = |v: &[i64]| Tensor::from_slice(v);
        assert_eq!(
            check_labels(&l(&[0, 2, 1]), 3, 3).expect("valid"),
            vec![0, 2, 1]
        );
        // Labels of another integer kind are read as i64.
        let i32s = Tensor::from_slice(&[1i32, 0]);
        assert_eq!(check_labels(&i32s, 2, 2).expect("valid"), vec![1, 0]);
        let err = check_labels(&l(&[0, 1]), 3, 2).expect_err("2 for 3 samples");
        assert!(
            err.to_string()
                .contains("labels must have shape [3], got [2]"),
            "{err}"
        );
        for (bad, at) in [(-1, 1), (3, 1)] {
            let err = check_labels(&l(&[0, bad, 2]), 3, 3).expect_err("outside");
            let want = format!("label {bad} of sample {at} outside 0..3");
            assert!(err.to_string().contains(&want), "{err}");
        }
    }
}
