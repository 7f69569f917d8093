//! Per-sample outputs of a classifier, and embedding drift under a shift.

use tch::{Device, Kind, Tensor};

use super::error::{check_labels, matrix_dims, ProbeError};
use crate::error::MetricsError;
use crate::metrics::{expected_calibration_error, ECE_BINS};

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
    let (_, classes) = matrix_dims(scores, "scores")?;
    outputs_top(scores, labels, classes.min(5))
}

/// [`outputs_from_scores`] among the `allowed` classes only (a dataset-level shift that covers a
/// subset of the classes): scores are renormalised over them ([`restrict_scores`]), and
/// prediction and top-5 never name another class.
pub fn outputs_from_scores_within(
    scores: &Tensor,
    labels: &Tensor,
    allowed: Option<&[i64]>,
) -> Result<Vec<SampleOutput>, ProbeError> {
    let Some(allowed) = allowed else {
        return outputs_from_scores(scores, labels);
    };
    let (restricted, mask) = restrict(scores, allowed)?;
    // Excluded classes rank below every allowed one, even allowed classes with score 0.
    let rank = &restricted + (mask - 1.0);
    outputs_top(&rank, labels, (allowed.len() as i64).min(5))
}

/// Scores `[N, C]` renormalised over the `allowed` columns, the others 0; a row with no mass on
/// them (a kNN query without allowed neighbours) becomes uniform over them.
pub fn restrict_scores(scores: &Tensor, allowed: &[i64]) -> Result<Tensor, ProbeError> {
    Ok(restrict(scores, allowed)?.0)
}

fn restrict(scores: &Tensor, allowed: &[i64]) -> Result<(Tensor, Tensor), ProbeError> {
    let (_, classes) = matrix_dims(scores, "scores")?;
    if allowed.is_empty() || allowed.iter().any(|&c| !(0..classes).contains(&c)) {
        return Err(ProbeError::Shape(format!(
            "allowed classes {allowed:?} must be a non-empty subset of 0..{classes}"
        )));
    }
    let s = scores.to_kind(Kind::Double);
    let idx = Tensor::from_slice(allowed).to_device(s.device());
    let mask = Tensor::zeros([classes], (Kind::Double, s.device())).f_index_fill(0, &idx, 1.0)?;
    let kept = &s * &mask;
    let total = kept.sum_dim_intlist(1, true, Kind::Double);
    let has = total.gt(0.0).to_kind(Kind::Double);
    let uniform = &mask / allowed.len() as f64;
    let out = kept / (&total + (1.0 - &has)) + uniform * (1.0 - &has);
    Ok((out, mask))
}

/// Outputs from the top `k` of `scores` (values of `scores` are the confidences).
fn outputs_top(scores: &Tensor, labels: &Tensor, k: i64) -> Result<Vec<SampleOutput>, ProbeError> {
    let (n, classes) = matrix_dims(scores, "scores")?;
    let labels = check_labels(labels, n, classes)?;
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

/// Expected calibration error (15 equal-width bins) of a probe's per-sample outputs.
pub fn ece(outputs: &[SampleOutput]) -> Result<f64, MetricsError> {
    let samples: Vec<(f64, bool)> = outputs.iter().map(|o| (o.confidence, o.correct)).collect();
    expected_calibration_error(&samples, ECE_BINS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(v: &[f64], cols: i64) -> Tensor {
        Tensor::from_slice(v).reshape([-1, cols])
    }

    #[test]
    fn restricted_outputs_by_hand() -> Result<(), ProbeError> {
        // Row 0: [0.5, 0.3, 0.2] within {1, 2} -> [0, 0.6, 0.4]: predicts 1 at 0.6 although 0
        // scored highest. Row 1: [1, 0, 0] has no mass on {1, 2} -> uniform [0, 0.5, 0.5].
        let scores = Tensor::from_slice(&[0.5f64, 0.3, 0.2, 1.0, 0.0, 0.0]).reshape([2, 3]);
        let labels = Tensor::from_slice(&[2i64, 1]);
        let r = restrict_scores(&scores, &[1, 2])?;
        let r = Vec::<f64>::try_from(r.reshape([-1]))?;
        let want = [0.0, 0.6, 0.4, 0.0, 0.5, 0.5];
        for (a, b) in r.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{r:?}");
        }
        let out = outputs_from_scores_within(&scores, &labels, Some(&[1, 2]))?;
        assert_eq!(out[0].prediction, 1);
        assert!((out[0].confidence - 0.6).abs() < 1e-12);
        assert_eq!(out[0].top5, vec![1, 2]);
        assert!(!out[0].correct && out[0].top5_correct);
        assert!(out[1].top5.iter().all(|c| [1, 2].contains(c)));
        assert!((out[1].confidence - 0.5).abs() < 1e-12);
        // Without restriction the same scores predict class 0.
        assert_eq!(
            outputs_from_scores_within(&scores, &labels, None)?[0].prediction,
            0
        );
        assert!(restrict_scores(&scores, &[3]).is_err());
        Ok(())
    }

    #[test]
    fn outputs_from_scores_by_hand() -> Result<(), ProbeError> {
        let scores = matrix(&[0.1, 0.6, 0.3, 0.5, 0.2, 0.3], 3);
        let outs = outputs_from_scores(&scores, &Tensor::from_slice(&[2i64, 0]))?;
        assert_eq!(outs[0].top5, [1, 2, 0]);
        assert_eq!(outs[1].top5, [0, 2, 1]);
        assert_eq!((outs[0].prediction, outs[0].confidence), (1, 0.6));
        assert_eq!((outs[0].correct, outs[0].top5_correct), (false, true));
        assert_eq!((outs[1].correct, outs[1].top5_correct), (true, true));
        // ECE: bin of 0.6 holds a wrong answer (|0 - 0.6| / 2), bin of 0.5 a right one
        // (|1 - 0.5| / 2): 0.3 + 0.25 = 0.55.
        assert!((ece(&outs).unwrap_or(0.0) - 0.55).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn ece_of_outputs_uses_15_bins() {
        // Same case as the metric's own test: 0.46 with 15 bins, 0.15 with 10.
        let out = |confidence: f64, correct: bool| SampleOutput {
            prediction: 0,
            top5: vec![0],
            confidence,
            correct,
            top5_correct: correct,
        };
        let e = ece(&[out(0.61, false), out(0.69, true)]).unwrap_or(f64::NAN);
        assert!((e - 0.46).abs() < 1e-12, "{e}");
    }

    #[test]
    fn restriction_ranks_excluded_classes_below_allowed_zeros() -> Result<(), ProbeError> {
        // Within {0, 3} the rows become [0, 0, 0, 1] and [1, 0, 0, 0]: the allowed class that
        // scores 0 must come second, ahead of the excluded classes 1 and 2 that also score 0
        // after renormalising. It sits at the lowest index in one row and at the highest in
        // the other, so no order of ties among equal scores can hide a missing penalty.
        let scores = matrix(&[0.0, 0.3, 0.3, 0.4, 0.4, 0.3, 0.3, 0.0], 4);
        let labels = Tensor::from_slice(&[0i64, 3]);
        let out = outputs_from_scores_within(&scores, &labels, Some(&[0, 3]))?;
        assert_eq!(out[0].top5, [3, 0]);
        assert_eq!(out[1].top5, [0, 3]);
        assert!(out
            .iter()
            .all(|o| !o.correct && o.top5_correct && o.confidence == 1.0));
        Ok(())
    }

    #[test]
    fn top5_keeps_five_of_many_classes_and_softmax_confidence() -> Result<(), ProbeError> {
        let logits = matrix(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 7);
        let outs = outputs_from_logits(&logits, &Tensor::from_slice(&[1i64]))?;
        assert_eq!(outs[0].top5, [6, 5, 4, 3, 2]);
        assert!(!outs[0].top5_correct);
        // softmax max = e^6 / sum_{i=0..6} e^i = 403.429 / 637.633 = 0.632698.
        assert!((outs[0].confidence - 0.632698).abs() < 1e-6);
        let two = outputs_from_logits(&matrix(&[0.0, 0.0], 2), &Tensor::from_slice(&[0i64]))?;
        assert!((two[0].confidence - 0.5).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn cosine_to_clean_by_hand() -> Result<(), ProbeError> {
        let shifted = matrix(&[1.0, 1.0, 1.0, 0.0, 1.0, 0.0], 2);
        let clean = matrix(&[2.0, 2.0, 0.0, 1.0, -3.0, 0.0], 2);
        let sim = cosine_to_clean(&shifted, &clean)?;
        let want = [1.0, 0.0, -1.0];
        assert!(
            sim.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{sim:?}"
        );
        assert!(cosine_to_clean(&shifted, &matrix(&[1.0, 2.0], 2)).is_err());
        Ok(())
    }

    #[test]
    fn labels_are_checked() {
        let scores = matrix(&[0.5, 0.5], 2);
        assert!(outputs_from_scores(&scores, &Tensor::from_slice(&[2i64])).is_err());
        assert!(outputs_from_scores(&scores, &Tensor::from_slice(&[0i64, 1])).is_err());
        assert!(
            outputs_from_scores(&Tensor::from_slice(&[0.5]), &Tensor::from_slice(&[0i64])).is_err()
        );
    }
}
