//! Per-sample outputs of a classifier, and embedding drift under a shift.

use tch::{Device, Kind, Tensor};

use super::error::{check_labels, matrix_dims, ProbeError};

/// What a probe says about one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleOutput {
    /// Predicted class (the highest score).
    pub prediction: i64,
    /// Up to 5 classes, best first.
    pub top5: Vec<i64>,
    /// Score of the prediction: softmax max for logits, vote share for kNN.
    pub confidence: f64,
    /// Prediction equals the label.
    pub correct: bool,
    /// The label is among `top5`.
    pub top5_correct: bool,
}

/// Outputs from per-class scores `[N, C]` that sum to 1 per row (probabilities, vote shares).
///
/// Ties between equal scores are ordered as libtorch's `topk` orders them (unspecified).
pub fn outputs_from_scores(
    scores: &Tensor,
    labels: &Tensor,
) -> Result<Vec<SampleOutput>, ProbeError> {
    let (n, classes) = matrix_dims(scores, "scores")?;
    let labels = check_labels(labels, n, classes)?;
    let k = classes.min(5);
    let (values, indices) = scores.to_kind(Kind::Double).f_topk(k, 1, true, true)?;
    let values = Vec::<f64>::try_from(values.to_device(Device::Cpu).reshape([-1]))?;
    let indices = Vec::<i64>::try_from(indices.to_device(Device::Cpu).reshape([-1]))?;
    let k = k as usize;
    Ok(labels
        .iter()
        .enumerate()
        .map(|(i, &label)| {
            let top5 = indices[i * k..(i + 1) * k].to_vec();
            SampleOutput {
                prediction: top5[0],
                confidence: values[i * k],
                correct: top5[0] == label,
                top5_correct: top5.contains(&label),
                top5,
            }
        })
        .collect())
}

/// Outputs from logits `[N, C]`: confidence is the softmax maximum.
pub fn outputs_from_logits(
    logits: &Tensor,
    labels: &Tensor,
) -> Result<Vec<SampleOutput>, ProbeError> {
    matrix_dims(logits, "logits")?;
    outputs_from_scores(
        &logits.to_kind(Kind::Double).softmax(1, Kind::Double),
        labels,
    )
}

/// Cosine similarity of each shifted embedding to its clean twin (row i to row i), `[N, D]` each.
///
/// Near 1: the shift barely moves the representation; a cheap, label-free drift measure.
pub fn cosine_to_clean(shifted: &Tensor, clean: &Tensor) -> Result<Vec<f64>, ProbeError> {
    let dims = matrix_dims(shifted, "shifted embeddings")?;
    if matrix_dims(clean, "clean embeddings")? != dims {
        return Err(ProbeError::Shape(format!(
            "shifted {:?} and clean {:?} embeddings differ in shape",
            shifted.size(),
            clean.size()
        )));
    }
    let a = shifted.to_kind(Kind::Double);
    let b = clean.to_kind(Kind::Double).to_device(a.device());
    let sim = Tensor::f_cosine_similarity(&a, &b, 1, 1e-12)?;
    Ok(Vec::<f64>::try_from(sim.to_device(Device::Cpu))?)
}
