//! A model's validated ImageNet-C errors, built from rows that name their source line.

use std::collections::BTreeMap;
use std::fmt;

use crate::corruptions::{self, CorruptionSet, SEVERITIES};
use crate::error::{MetricsError, RowProblem};

/// Which severity a row gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// One level; valid levels are 1..=5 (kept wide so validation can name bad ones).
    Level(i64),
    /// The mean over levels 1..=5, as many papers publish. CE needs only the sum over
    /// severities (5 x mean), so CE and mCE stay exact.
    Mean,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Level(s) => write!(f, "{s}"),
            Self::Mean => f.write_str("mean"),
        }
    }
}

/// One measured error E(f, c, s), with its source row for error messages.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorEntry {
    /// Row (1-based line) it came from.
    pub row: usize,
    /// Corruption name.
    pub corruption: String,
    /// Severity level, or the mean over the 5 levels.
    pub severity: Severity,
    /// Top-1 error as a fraction in [0, 1].
    pub error: f64,
}

/// Errors of one corruption: all 5 severities, or only their mean.
#[derive(Clone, Debug, PartialEq)]
pub struct CorruptionErrors {
    /// Errors at severities 1..=5, when given per level.
    pub severities: Option<[f64; SEVERITIES]>,
    /// Mean error over the 5 severities.
    pub mean: f64,
}

impl CorruptionErrors {
    /// sum_s E(f,c,s): the numerator of CE.
    pub fn sum(&self) -> f64 {
        match &self.severities {
            Some(s) => s.iter().sum(),
            None => self.mean * SEVERITIES as f64,
        }
    }
}

/// A model's validated errors: each corruption present is complete.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelErrors {
    name: String,
    clean: Option<f64>,
    corruptions: BTreeMap<usize, (String, CorruptionErrors)>,
}

/// Rows seen for one corruption: per level, and a mean row.
#[derive(Default)]
struct Seen {
    name: String,
    levels: [Option<(f64, usize)>; SEVERITIES],
    mean: Option<(f64, usize)>,
}

impl ModelErrors {
    /// Validates entries: known names, severities 1..=5 (or `mean`), errors in 0..=1, no
    /// duplicates, no corruption with only some severities. Every problem names its row.
    pub fn from_entries(
        name: &str,
        clean: Option<f64>,
        entries: &[ErrorEntry],
    ) -> Result<Self, MetricsError> {
        let (model, problems) = Self::collect(name, clean, entries);
        if problems.is_empty() {
            return Ok(model);
        }
        Err(MetricsError::InvalidRows {
            source_name: format!("errors of model {name:?}"),
            problems,
        })
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
                    severity: Severity::Level(s as i64 + 1),
                    error: e,
                })
            })
            .collect();
        Self::from_entries(name, clean, &entries)
    }

    /// Like [`Self::from_entries`] but hands the problems back for the caller to merge.
    pub(crate) fn collect(
        name: &str,
        clean: Option<f64>,
        entries: &[ErrorEntry],
    ) -> (Self, Vec<RowProblem>) {
        let mut problems = Vec::new();
        let mut seen: BTreeMap<usize, Seen> = BTreeMap::new();
        for e in entries {
            if let Err(p) = place(&mut seen, e) {
                problems.push(p);
            }
        }
        if let Some(c) = clean.filter(|c| !(0.0..=1.0).contains(c)) {
            let m = format!("model {name:?}: clean error {c} outside [0, 1]");
            problems.push(RowProblem::general(m));
        }
        let corruptions = seen
            .into_iter()
            .filter_map(|(idx, s)| match complete(name, &s) {
                Ok(errs) => Some((idx, (s.name, errs))),
                Err(p) => {
                    problems.push(p);
                    None
                }
            })
            .collect();
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

    /// Errors of one corruption.
    pub fn get(&self, corruption: &str) -> Option<&CorruptionErrors> {
        let idx = corruptions::canonical_index(corruption)?;
        self.corruptions.get(&idx).map(|(_, e)| e)
    }

    /// All corruptions present, in canonical order (benchmark 15, then extra 4).
    pub fn corruptions(&self) -> impl Iterator<Item = (&str, &CorruptionErrors)> {
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

    /// Errors for every corruption of `set`, or which ones are missing.
    pub(crate) fn require(
        &self,
        set: CorruptionSet,
        metric: &'static str,
    ) -> Result<Vec<(&'static str, &CorruptionErrors)>, MetricsError> {
        let missing = self.missing(set);
        if !missing.is_empty() {
            return Err(MetricsError::MissingCorruptions {
                metric,
                model: self.name.clone(),
                set: set.label(),
                missing,
            });
        }
        Ok(set
            .names()
            .into_iter()
            .filter_map(|c| self.get(c).map(|e| (c, e)))
            .collect())
    }
}

/// Checks one entry and stores it in its slot.
fn place(seen: &mut BTreeMap<usize, Seen>, e: &ErrorEntry) -> Result<(), RowProblem> {
    let bad = |m: String| Err(RowProblem::at(e.row, m));
    let Some(idx) = corruptions::canonical_index(&e.corruption) else {
        return bad(format!("unknown corruption {:?}", e.corruption));
    };
    if let Severity::Level(s) = e.severity {
        if !(1..=SEVERITIES as i64).contains(&s) {
            return bad(format!("severity {s} outside 1..5"));
        }
    }
    if !e.error.is_finite() || !(0.0..=1.0).contains(&e.error) {
        return bad(format!("error {} outside [0, 1]", e.error));
    }
    let s = seen.entry(idx).or_insert_with(|| Seen {
        name: e.corruption.clone(),
        ..Seen::default()
    });
    let slot = match e.severity {
        Severity::Level(l) => &mut s.levels[(l - 1) as usize],
        Severity::Mean => &mut s.mean,
    };
    if let Some((_, first)) = slot {
        let (c, sev) = (&e.corruption, e.severity);
        return bad(format!(
            "duplicate {c} severity {sev} (first given in row {first})"
        ));
    }
    *slot = Some((e.error, e.row));
    Ok(())
}

/// The complete errors of one corruption, or a problem naming its rows.
fn complete(model: &str, s: &Seen) -> Result<CorruptionErrors, RowProblem> {
    let rows: Vec<String> = s
        .levels
        .iter()
        .flatten()
        .map(|(_, r)| r.to_string())
        .collect();
    let levels: Vec<f64> = s.levels.iter().flatten().map(|(e, _)| *e).collect();
    match (s.mean, levels.len()) {
        (Some((mean, _)), 0) => Ok(CorruptionErrors {
            severities: None,
            mean,
        }),
        (Some((_, mean_row)), _) => Err(RowProblem::at(
            mean_row,
            format!(
                "model {model:?}: {} has a mean row and per-severity rows ({}); give one or the other",
                s.name,
                rows.join(", ")
            ),
        )),
        (None, SEVERITIES) => {
            let mut arr = [0.0; SEVERITIES];
            arr.copy_from_slice(&levels);
            Ok(CorruptionErrors {
                severities: Some(arr),
                mean: levels.iter().sum::<f64>() / SEVERITIES as f64,
            })
        }
        (None, _) => Err(lacking(model, s, &rows)),
    }
}

/// The problem of a corruption given at only some severities.
fn lacking(model: &str, s: &Seen, rows: &[String]) -> RowProblem {
    let missing: Vec<String> = (0..SEVERITIES)
        .filter(|&k| s.levels[k].is_none())
        .map(|k| (k + 1).to_string())
        .collect();
    RowProblem::general(format!(
        "model {model:?}: {} lacks severities {} (has rows {})",
        s.name,
        missing.join(", "),
        rows.join(", ")
    ))
}
