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

use std::collections::BTreeMap;

use crate::alexnet::{AlexNetEntry, AlexNetTable};
use crate::corruptions::{self, CorruptionSet, SEVERITIES};
use crate::error::{MetricsError, RowProblem};

/// Number of equal-width confidence bins of the usual ECE.
pub const ECE_BINS: usize = 15;

/// One measured error E(f, c, s), with its source row for error messages.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorEntry {
    /// Row (1-based line) it came from.
    pub row: usize,
    /// Corruption name.
    pub corruption: String,
    /// Severity; valid values are 1..=5 (kept wide so validation can name bad ones).
    pub severity: i64,
    /// Top-1 error as a fraction in [0, 1].
    pub error: f64,
}

/// A model's validated errors: every corruption present has all 5 severities.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelErrors {
    name: String,
    clean: Option<f64>,
    corruptions: BTreeMap<usize, (String, [f64; SEVERITIES])>,
}

type Slots = [Option<(f64, usize)>; SEVERITIES];

impl ModelErrors {
    /// Validates entries: known names, severities 1..=5, errors in [0,1], no duplicates, and
    /// no corruption with only some severities. Every problem is reported, naming its row.
    pub fn from_entries(
        name: &str,
        clean: Option<f64>,
        entries: &[ErrorEntry],
    ) -> Result<Self, MetricsError> {
        let (model, problems) = Self::collect(name, clean, entries);
        if problems.is_empty() {
            Ok(model)
        } else {
            Err(MetricsError::InvalidRows {
                source_name: format!("errors of model {name:?}"),
                problems,
            })
        }
    }

    /// Builds from complete per-corruption arrays (errors at severities 1..=5).
    pub fn from_arrays<'a>(
        name: &str,
        clean: Option<f64>,
        arrays: impl IntoIterator<Item = (&'a str, [f64; SEVERITIES])>,
    ) -> Result<Self, MetricsError> {
        let entries: Vec<ErrorEntry> = arrays
            .into_iter()
            .enumerate()
            .flat_map(|(i, (c, errs))| {
                errs.into_iter().enumerate().map(move |(s, e)| ErrorEntry {
                    row: i * SEVERITIES + s + 1,
                    corruption: c.to_string(),
                    severity: s as i64 + 1,
                    error: e,
                })
            })
            .collect();
        Self::from_entries(name, clean, &entries)
    }

    /// Like [`Self::from_entries`] but returns the problems for the caller to merge.
    pub(crate) fn collect(
        name: &str,
        clean: Option<f64>,
        entries: &[ErrorEntry],
    ) -> (Self, Vec<RowProblem>) {
        let mut problems = Vec::new();
        let mut slots: BTreeMap<usize, (String, Slots)> = BTreeMap::new();
        for e in entries {
            if let Err(p) = place(&mut slots, e) {
                problems.push(p);
            }
        }
        if let Some(c) = clean {
            if !(0.0..=1.0).contains(&c) {
                problems.push(RowProblem::general(format!(
                    "model {name:?}: clean error {c} outside [0, 1]"
                )));
            }
        }
        let corruptions = complete(name, slots, &mut problems);
        let model = Self {
            name: name.to_string(),
            clean,
            corruptions,
        };
        (model, problems)
    }

    /// Model name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Clean top-1 error, when known.
    pub fn clean_error(&self) -> Option<f64> {
        self.clean
    }

    /// Errors at severities 1..=5 of one corruption.
    pub fn get(&self, corruption: &str) -> Option<&[f64; SEVERITIES]> {
        let idx = corruptions::canonical_index(corruption)?;
        self.corruptions.get(&idx).map(|(_, e)| e)
    }

    /// All corruptions present, in canonical order (benchmark 15, then extra 4).
    pub fn corruptions(&self) -> impl Iterator<Item = (&str, &[f64; SEVERITIES])> {
        self.corruptions.values().map(|(n, e)| (n.as_str(), e))
    }

    /// Corruptions of `set` the model has no errors for.
    pub fn missing(&self, set: CorruptionSet) -> Vec<String> {
        set.names()
            .into_iter()
            .filter(|c| self.get(c).is_none())
            .map(String::from)
            .collect()
    }

    fn require(&self, set: CorruptionSet, metric: &'static str) -> Result<(), MetricsError> {
        let missing = self.missing(set);
        if missing.is_empty() {
            return Ok(());
        }
        Err(MetricsError::MissingCorruptions {
            metric,
            model: self.name.clone(),
            set: set.label(),
            missing,
        })
    }
}

/// Checks one entry and stores it in its severity slot.
fn place(slots: &mut BTreeMap<usize, (String, Slots)>, e: &ErrorEntry) -> Result<(), RowProblem> {
    let Some(idx) = corruptions::canonical_index(&e.corruption) else {
        return Err(RowProblem::at(
            e.row,
            format!("unknown corruption {:?}", e.corruption),
        ));
    };
    if !(1..=SEVERITIES as i64).contains(&e.severity) {
        return Err(RowProblem::at(
            e.row,
            format!("severity {} outside 1..5", e.severity),
        ));
    }
    if !e.error.is_finite() || !(0.0..=1.0).contains(&e.error) {
        return Err(RowProblem::at(
            e.row,
            format!("error {} outside [0, 1]", e.error),
        ));
    }
    let entry = slots
        .entry(idx)
        .or_insert_with(|| (e.corruption.clone(), [None; SEVERITIES]));
    let slot = &mut entry.1[(e.severity - 1) as usize];
    if let Some((_, first)) = slot {
        return Err(RowProblem::at(
            e.row,
            format!(
                "duplicate {} severity {} (first given in row {first})",
                e.corruption, e.severity
            ),
        ));
    }
    *slot = Some((e.error, e.row));
    Ok(())
}

/// Keeps corruptions with all severities; reports the others, naming their rows.
fn complete(
    model: &str,
    slots: BTreeMap<usize, (String, Slots)>,
    problems: &mut Vec<RowProblem>,
) -> BTreeMap<usize, (String, [f64; SEVERITIES])> {
    let mut out = BTreeMap::new();
    for (idx, (name, s)) in slots {
        let missing: Vec<String> = (0..SEVERITIES)
            .filter(|&k| s[k].is_none())
            .map(|k| (k + 1).to_string())
            .collect();
        if missing.is_empty() {
            out.insert(idx, (name, s.map(|x| x.map_or(0.0, |(e, _)| e))));
            continue;
        }
        let rows: Vec<String> = s.iter().flatten().map(|(_, r)| r.to_string()).collect();
        problems.push(RowProblem::general(format!(
            "model {model:?}: {name} lacks severities {} (has rows {})",
            missing.join(", "),
            rows.join(", ")
        )));
    }
    out
}

/// CE(f,c) = sum_s E(f,c,s) / sum_s E(AlexNet,c,s), as a ratio (AlexNet = 1).
pub fn corruption_error(errors: &[f64; SEVERITIES], alexnet: &AlexNetEntry) -> f64 {
    errors.iter().sum::<f64>() / alexnet.error_sum()
}

/// Relative CE: the degradation from clean, normalised by AlexNet's degradation (ratio).
pub fn relative_corruption_error(
    errors: &[f64; SEVERITIES],
    clean: f64,
    alexnet: &AlexNetEntry,
    alexnet_clean: f64,
) -> f64 {
    let n = SEVERITIES as f64;
    let own = errors.iter().sum::<f64>() - n * clean;
    own / (alexnet.error_sum() - n * alexnet_clean)
}

/// mCE x100 over the 15 benchmark corruptions (AlexNet = 100).
pub fn mce(model: &ModelErrors, alexnet: &AlexNetTable) -> Result<f64, MetricsError> {
    model.require(CorruptionSet::Benchmark15, "mCE")?;
    let ces = benchmark_entries(model, alexnet)?
        .into_iter()
        .map(|(errs, a)| corruption_error(errs, a));
    Ok(100.0 * mean(ces))
}

/// Relative mCE x100 over the 15 benchmark corruptions; needs the model's clean error.
pub fn relative_mce(model: &ModelErrors, alexnet: &AlexNetTable) -> Result<f64, MetricsError> {
    model.require(CorruptionSet::Benchmark15, "relative mCE")?;
    let clean = model
        .clean_error()
        .ok_or_else(|| MetricsError::MissingClean {
            metric: "relative mCE",
            model: model.name().to_string(),
        })?;
    let ces = benchmark_entries(model, alexnet)?
        .into_iter()
        .map(|(errs, a)| relative_corruption_error(errs, clean, a, alexnet.clean_error()));
    Ok(100.0 * mean(ces))
}

fn benchmark_entries<'a>(
    model: &'a ModelErrors,
    alexnet: &'a AlexNetTable,
) -> Result<Vec<(&'a [f64; SEVERITIES], &'a AlexNetEntry)>, MetricsError> {
    CorruptionSet::Benchmark15
        .names()
        .into_iter()
        .map(|c| {
            let a = alexnet.get(c).ok_or_else(|| {
                MetricsError::InvalidInput(format!("AlexNet reference lacks {c}"))
            })?;
            let e = model.get(c).ok_or_else(|| {
                MetricsError::InvalidInput(format!("model {:?} lacks {c}", model.name()))
            })?;
            Ok((e, a))
        })
        .collect()
}

/// Unnormalised mean error (fraction) over the corruptions of `set` x 5 severities.
pub fn mean_error(model: &ModelErrors, set: CorruptionSet) -> Result<f64, MetricsError> {
    model.require(set, "mean error")?;
    let all = set
        .names()
        .into_iter()
        .filter_map(|c| model.get(c))
        .flat_map(|e| e.iter().copied());
    Ok(mean(all))
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
    /// CE x100 (AlexNet = 100).
    pub ce: f64,
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

/// Computes every metric the model's errors allow.
pub fn summarize(model: &ModelErrors, alexnet: &AlexNetTable) -> Summary {
    let per_corruption = model
        .corruptions()
        .filter_map(|(c, errs)| {
            let a = alexnet.get(c)?;
            Some(CorruptionSummary {
                corruption: c.to_string(),
                mean_error: errs.iter().sum::<f64>() / SEVERITIES as f64,
                ce: 100.0 * corruption_error(errs, a),
                relative_ce: model.clean_error().map(|clean| {
                    100.0 * relative_corruption_error(errs, clean, a, alexnet.clean_error())
                }),
                normaliser_verified: a.verified,
            })
        })
        .collect();
    Summary {
        model: model.name().to_string(),
        clean_error: model.clean_error(),
        mce: mce(model, alexnet).ok(),
        relative_mce: relative_mce(model, alexnet).ok(),
        mean_error_15: mean_error(model, CorruptionSet::Benchmark15).ok(),
        mean_error_19: mean_error(model, CorruptionSet::All19).ok(),
        missing_benchmark: model.missing(CorruptionSet::Benchmark15),
        per_corruption,
    }
}

#[cfg(test)]
mod tests;
