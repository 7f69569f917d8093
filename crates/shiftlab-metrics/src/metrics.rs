//! Robustness metrics of Hendrycks & Dietterich (2019) and calibration error.
//!
//! E(f,c,s) is the top-1 error (a fraction) of model f on corruption c at severity s.
//! * CE(f,c) = sum_s E(f,c,s) / sum_s E(AlexNet,c,s); mCE = mean CE over the 15 benchmark
//!   corruptions, x100 (AlexNet scores 100).
//! * Relative CE(f,c) = sum_s (E(f,c,s) - E_clean(f)) / sum_s (E(AlexNet,c,s) - E_clean(AlexNet));
//!   relative mCE = its mean over the 15, x100.
//! * Mean error: the plain, unnormalised mean over corruptions x severities, for the 15 or all
//!   19. It is *not* mCE (several tools misname it so); CIFAR-10-C and Tiny-ImageNet-C have no
//!   AlexNet normaliser and report this (or mean accuracy) instead.
//!
//! The AlexNet errors of the 4 extra corruptions are unverified (see [`crate::alexnet`]), so
//! mCE and relative mCE use only the 15 benchmark corruptions.

use crate::alexnet::{AlexNetEntry, AlexNetTable};
use crate::corruptions::{CorruptionSet, SEVERITIES};
use crate::error::MetricsError;
pub use crate::model_errors::{CorruptionErrors, ErrorEntry, ModelErrors, Severity};

/// Number of equal-width confidence bins of the usual ECE.
pub const ECE_BINS: usize = 15;

/// CE(f,c) = sum_s E(f,c,s) / sum_s E(AlexNet,c,s), as a ratio (AlexNet = 1).
pub fn corruption_error(errors: &CorruptionErrors, alexnet: &AlexNetEntry) -> f64 {
    errors.sum() / alexnet.error_sum()
}

/// Relative CE: the degradation from clean, normalised by AlexNet's degradation (ratio).
pub fn relative_corruption_error(
    errors: &CorruptionErrors,
    clean: f64,
    alexnet: &AlexNetEntry,
    alexnet_clean: f64,
) -> f64 {
    let n = SEVERITIES as f64;
    (errors.sum() - n * clean) / (alexnet.error_sum() - n * alexnet_clean)
}

/// mCE x100 over the 15 benchmark corruptions (AlexNet = 100).
pub fn mce(model: &ModelErrors, alexnet: &AlexNetTable) -> Result<f64, MetricsError> {
    let pairs = with_alexnet(model, alexnet, "mCE")?;
    Ok(100.0 * mean(pairs.iter().map(|(e, a)| corruption_error(e, a))))
}

/// Relative mCE x100 over the 15 benchmark corruptions; needs the model's clean error.
pub fn relative_mce(model: &ModelErrors, alexnet: &AlexNetTable) -> Result<f64, MetricsError> {
    let metric = "relative mCE";
    let pairs = with_alexnet(model, alexnet, metric)?;
    let clean = model
        .clean_error()
        .ok_or_else(|| MetricsError::MissingClean {
            metric,
            model: model.name().to_string(),
        })?;
    let a_clean = alexnet.clean_error();
    let rel = pairs
        .iter()
        .map(|(e, a)| relative_corruption_error(e, clean, a, a_clean));
    Ok(100.0 * mean(rel))
}

/// The model's and AlexNet's errors for each of the 15 benchmark corruptions.
fn with_alexnet<'a>(
    model: &'a ModelErrors,
    alexnet: &'a AlexNetTable,
    metric: &'static str,
) -> Result<Vec<(&'a CorruptionErrors, &'a AlexNetEntry)>, MetricsError> {
    model
        .require(CorruptionSet::Benchmark15, metric)?
        .into_iter()
        .map(|(c, e)| {
            let a = alexnet.get(c).ok_or_else(|| {
                MetricsError::InvalidInput(format!("AlexNet reference lacks {c}"))
            })?;
            Ok((e, a))
        })
        .collect()
}

/// Unnormalised mean error (fraction) over the corruptions of `set` x 5 severities.
///
/// Every corruption has 5 severities, so this is also the mean of per-corruption means.
pub fn mean_error(model: &ModelErrors, set: CorruptionSet) -> Result<f64, MetricsError> {
    let errs = model.require(set, "mean error")?;
    Ok(mean(errs.iter().map(|(_, e)| e.mean)))
}

/// Unnormalised mean accuracy (fraction) over `set` x 5 severities: 1 - mean error.
pub fn mean_accuracy(model: &ModelErrors, set: CorruptionSet) -> Result<f64, MetricsError> {
    mean_error(model, set).map(|e| 1.0 - e)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// Expected calibration error with `bins` equal-width confidence bins.
///
/// ECE = sum_b |B_b|/N * |accuracy(B_b) - mean confidence(B_b)|. Bin b holds confidences in
/// (b/n, (b+1)/n]; confidence 0 goes to the first bin. Samples are (confidence, correct).
pub fn expected_calibration_error(
    samples: &[(f64, bool)],
    bins: usize,
) -> Result<f64, MetricsError> {
    if samples.is_empty() || bins == 0 {
        return Err(MetricsError::InvalidInput(
            "ECE needs at least one sample and one bin".into(),
        ));
    }
    let mut acc = vec![(0usize, 0.0f64, 0usize); bins]; // (count, sum confidence, correct)
    for (i, &(conf, correct)) in samples.iter().enumerate() {
        if !conf.is_finite() || !(0.0..=1.0).contains(&conf) {
            return Err(MetricsError::InvalidInput(format!(
                "sample {i}: confidence {conf} outside [0, 1]"
            )));
        }
        let b = ((conf * bins as f64).ceil() as usize).clamp(1, bins) - 1;
        acc[b].0 += 1;
        acc[b].1 += conf;
        acc[b].2 += usize::from(correct);
    }
    let n = samples.len() as f64;
    Ok(acc
        .iter()
        .filter(|(count, _, _)| *count > 0)
        .map(|&(count, conf, correct)| {
            let c = count as f64;
            (c / n) * (correct as f64 / c - conf / c).abs()
        })
        .sum())
}

/// Per-corruption figures of a [`Summary`].
#[derive(Clone, Debug, PartialEq)]
pub struct CorruptionSummary {
    /// Corruption name.
    pub corruption: String,
    /// Mean error over the 5 severities (fraction).
    pub mean_error: f64,
    /// CE x100 (AlexNet = 100); `None` without a normaliser.
    pub ce: Option<f64>,
    /// Relative CE x100, when the clean error is known.
    pub relative_ce: Option<f64>,
    /// False for the 4 extra corruptions, whose AlexNet normaliser is unverified.
    pub normaliser_verified: bool,
}

/// Everything `shiftlab metrics` prints for one model; absent values are `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Model name.
    pub model: String,
    /// Whether CE / mCE were computed (AlexNet normaliser); false for CIFAR-10-C and
    /// Tiny-ImageNet-C, which have none.
    pub normalised: bool,
    /// Clean error (fraction), when known.
    pub clean_error: Option<f64>,
    /// mCE x100, when all 15 benchmark corruptions are present.
    pub mce: Option<f64>,
    /// Relative mCE x100, when the 15 and the clean error are present.
    pub relative_mce: Option<f64>,
    /// Unnormalised mean error over the 15 x 5 (fraction).
    pub mean_error_15: Option<f64>,
    /// Unnormalised mean error over all 19 x 5 (fraction).
    pub mean_error_19: Option<f64>,
    /// Benchmark corruptions without errors (why mCE may be absent).
    pub missing_benchmark: Vec<String>,
    /// Per-corruption figures, canonical order.
    pub per_corruption: Vec<CorruptionSummary>,
}

/// Computes every metric the model's errors allow, AlexNet-normalised (ImageNet-C).
pub fn summarize(model: &ModelErrors, alexnet: &AlexNetTable) -> Summary {
    let per_corruption = model
        .corruptions()
        .filter_map(|(c, errs)| {
            let a = alexnet.get(c)?;
            Some(CorruptionSummary {
                corruption: c.to_string(),
                mean_error: errs.mean,
                ce: Some(100.0 * corruption_error(errs, a)),
                relative_ce: model.clean_error().map(|clean| {
                    100.0 * relative_corruption_error(errs, clean, a, alexnet.clean_error())
                }),
                normaliser_verified: a.verified,
            })
        })
        .collect();
    Summary {
        normalised: true,
        mce: mce(model, alexnet).ok(),
        relative_mce: relative_mce(model, alexnet).ok(),
        per_corruption,
        ..summarize_unnormalised(model)
    }
}

/// The metrics that need no normaliser: clean error, mean errors, per-corruption mean error.
///
/// For datasets without an AlexNet reference (CIFAR-10-C, Tiny-ImageNet-C: presets `cifar32`,
/// `tiny64`), whose convention is mean error or accuracy over corruptions x severities.
pub fn summarize_unnormalised(model: &ModelErrors) -> Summary {
    let per_corruption = model
        .corruptions()
        .map(|(c, errs)| CorruptionSummary {
            corruption: c.to_string(),
            mean_error: errs.mean,
            ce: None,
            relative_ce: None,
            normaliser_verified: true,
        })
        .collect();
    Summary {
        model: model.name().to_string(),
        normalised: false,
        clean_error: model.clean_error(),
        mce: None,
        relative_mce: None,
        mean_error_15: mean_error(model, CorruptionSet::Benchmark15).ok(),
        mean_error_19: mean_error(model, CorruptionSet::All19).ok(),
        missing_benchmark: model.missing(CorruptionSet::Benchmark15),
        per_corruption,
    }
}

/// An ordinary least-squares line y = intercept + slope x.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearFit {
    /// dy / dx.
    pub slope: f64,
    /// y at x = 0.
    pub intercept: f64,
}

impl LinearFit {
    /// The fitted y at `x`.
    pub fn predict(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// Least-squares fit of `y` on `x`: slope = sum (x - mx)(y - my) / sum (x - mx)^2, intercept
/// = my - slope mx (two passes, as the `effective_robustness` view, so both round alike).
///
/// `None` when the lengths differ, fewer than 2 points are given, a value is not finite, or
/// every x is equal (no line is determined).
pub fn linear_fit(x: &[f64], y: &[f64]) -> Option<LinearFit> {
    let finite = x.iter().chain(y).all(|v| v.is_finite());
    if x.len() != y.len() || x.len() < 2 || !finite {
        return None;
    }
    let (lo, hi) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if hi <= lo {
        return None;
    }
    let (mx, my) = (mean(x.iter().copied()), mean(y.iter().copied()));
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let slope = sxy / sxx;
    Some(LinearFit {
        slope,
        intercept: my - slope * mx,
    })
}

/// Effective robustness (Taori et al. 2020) of each model, in plain accuracy: its shifted
/// accuracy minus the accuracy the least-squares line through all models (shifted on clean
/// accuracy) predicts from its clean accuracy. Taori et al. fit in logit space; this is the
/// linear variant the `effective_robustness` view reports as `effective_robustness`.
///
/// `clean[i]` and `shifted[i]` are model i's accuracies (fractions). `None` as [`linear_fit`].
pub fn effective_robustness(clean: &[f64], shifted: &[f64]) -> Option<(LinearFit, Vec<f64>)> {
    let fit = linear_fit(clean, shifted)?;
    let residuals = clean
        .iter()
        .zip(shifted)
        .map(|(&c, &s)| s - fit.predict(c))
        .collect();
    Some((fit, residuals))
}

#[cfg(test)]
mod tests;
