//! A fixed linear classification head (e.g. torchvision's `fc.weight` `[C, D]`, `fc.bias` `[C]`)
//! read from safetensors, applied to features to get per-sample outputs.
//!
//! The loader is `shiftlab_model::LinearHead` (shared with the model crate, which reads the same
//! tensors from full checkpoints), so both agree on names, shapes and dtype (float32).

use std::path::Path;

use tch::Tensor;

pub use shiftlab_model::LinearHead;

use super::error::{matrix_dims, ProbeError};
use super::outputs::{outputs_from_logits, SampleOutput};

/// Reads `<prefix>.weight` and `<prefix>.bias` (prefix `fc` for torchvision ResNets).
pub fn load_head(path: &Path, prefix: &str) -> Result<LinearHead, ProbeError> {
    Ok(LinearHead::from_safetensors(path, prefix)?)
}

/// Logits of `head` for features `[N, D]` (moved to the head's device).
pub fn head_logits(head: &LinearHead, features: &Tensor) -> Result<Tensor, ProbeError> {
    let (_, d) = matrix_dims(features, "features")?;
    let want = head.weight.size()[1];
    if d != want {
        return Err(ProbeError::Shape(format!(
            "features have {d} dimensions, the head expects {want}"
        )));
    }
    let x = features
        .to_kind(tch::Kind::Float)
        .to_device(head.weight.device());
    Ok(tch::no_grad(|| head.logits(&x))?)
}

/// Per-sample outputs of `head` (confidence = softmax maximum).
pub fn head_outputs(
    head: &LinearHead,
    features: &Tensor,
    labels: &Tensor,
) -> Result<Vec<SampleOutput>, ProbeError> {
    outputs_from_logits(&head_logits(head, features)?, labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn head_from_safetensors_gives_hand_computed_logits() -> Result<(), Box<dyn std::error::Error>>
    {
        // W = [[1, 0], [0, 2], [-1, -1]], b = [0, 0.5, 3]; x = [1, 1]:
        // logits = [1, 2.5, 1] -> class 1; x = [2, 0]: [2, 0.5, 1] -> class 0.
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("head.safetensors");
        let w = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 2.0, -1.0, -1.0]).reshape([3, 2]);
        let b = Tensor::from_slice(&[0.0f32, 0.5, 3.0]);
        Tensor::write_safetensors(&[("fc.weight", &w), ("fc.bias", &b)], &path)?;
        let head = load_head(&path, "fc")?;
        let x = Tensor::from_slice(&[1.0f32, 1.0, 2.0, 0.0]).reshape([2, 2]);
        let logits =
            Vec::<f64>::try_from(head_logits(&head, &x)?.to_kind(Kind::Double).reshape([-1]))?;
        assert_eq!(logits, [1.0, 2.5, 1.0, 2.0, 0.5, 1.0]);
        let outs = head_outputs(&head, &x, &Tensor::from_slice(&[1i64, 2]))?;
        assert_eq!((outs[0].prediction, outs[0].correct), (1, true));
        assert_eq!((outs[1].prediction, outs[1].correct), (0, false));
        // softmax max of [1, 2.5, 1]: e^2.5 / (2e + e^2.5) = 12.18249 / 17.61905 = 0.691438.
        assert!((outs[0].confidence - 0.691438).abs() < 1e-6);
        assert!(head_logits(
            &head,
            &Tensor::zeros([1, 3], (Kind::Float, tch::Device::Cpu))
        )
        .is_err());
        assert!(load_head(&path, "head").is_err());
        Ok(())
    }
}
