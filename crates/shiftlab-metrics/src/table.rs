//! Reading external error tables, so published numbers can sit beside a run's own.
//!
//! Errors file: CSV with header columns `model,corruption,severity,error` (any order, extra
//! columns ignored, `#` lines are comments). Clean errors come either from rows whose
//! corruption is `clean` (severity `0` or empty) in that file, or from a separate CSV with
//! columns `model,error`; giving one model's clean error in both is an error. Values are
//! fractions or percentages ([`ErrorUnit`]). Every bad row is reported with its line number
//! (the header is line 1).
//!
//! Severity is 1..=5, or `mean` for a corruption's mean error over the five levels (what most
//! papers publish); a corruption takes either all five levels or one `mean` row. CE needs only
//! the sum over severities, so mCE from `mean` rows is exact.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use crate::corruptions::SEVERITIES;
use crate::error::{MetricsError, RowProblem};
use crate::model_errors::{ErrorEntry, ModelErrors, Severity};

/// How error values are written in the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorUnit {
    /// 0..=1 (0.239).
    #[default]
    Fraction,
    /// 0..=100 (23.9).
    Percent,
}

impl ErrorUnit {
    fn max(self) -> f64 {
        match self {
            Self::Fraction => 1.0,
            Self::Percent => 100.0,
        }
    }

    /// Checks the range and converts to a fraction.
    fn to_fraction(self, v: f64) -> Result<f64, String> {
        if !v.is_finite() || v < 0.0 || v > self.max() {
            let hint = if self == Self::Fraction && v > 1.0 && v <= 100.0 {
                " (percentages? use unit percent)"
            } else {
                ""
            };
            return Err(format!("error {v} outside [0, {}]{hint}", self.max()));
        }
        Ok(v / self.max())
    }
}

impl FromStr for ErrorUnit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fraction" => Ok(Self::Fraction),
            "percent" => Ok(Self::Percent),
            other => Err(format!("unknown unit {other:?} (fraction or percent)")),
        }
    }
}

/// Reads an errors file and an optional clean-errors file; models in order of first appearance.
pub fn read_error_files(
    errors: &Path,
    clean: Option<&Path>,
    unit: ErrorUnit,
) -> Result<Vec<ModelErrors>, MetricsError> {
    let open = |p: &Path| {
        std::fs::File::open(p).map_err(|error| MetricsError::Io {
            path: p.display().to_string(),
            error,
        })
    };
    let clean_rows = match clean {
        Some(p) => Some(read_clean(open(p)?, &p.display().to_string(), unit)?),
        None => None,
    };
    read_errors(
        open(errors)?,
        &errors.display().to_string(),
        clean_rows,
        unit,
    )
}

/// Clean errors from a `model,error` CSV: model -> (fraction, line).
pub fn read_clean(
    input: impl Read,
    source_name: &str,
    unit: ErrorUnit,
) -> Result<HashMap<String, (f64, usize)>, MetricsError> {
    let mut reader = csv_reader(input);
    let mut problems = Vec::new();
    let cols = columns(&mut reader, &["model", "error"], &mut problems);
    let mut out: HashMap<String, (f64, usize)> = HashMap::new();
    for (line, rec) in records(&mut reader, &mut problems) {
        let Some(cols) = &cols else { break };
        let model = rec.get(cols[0]).unwrap_or("").to_string();
        let parsed = nonempty(&model, "model").and_then(|_| value(&rec, cols[1], unit));
        match parsed {
            Err(m) => problems.push(RowProblem::at(line, m)),
            Ok(v) => {
                if let Some((_, first)) = out.get(&model) {
                    let m = format!("duplicate clean error for {model:?} (first in row {first})");
                    problems.push(RowProblem::at(line, m));
                } else {
                    out.insert(model, (v, line));
                }
            }
        }
    }
    finish(source_name, problems).map(|_| out)
}

/// Per-model rows gathered from the errors file.
#[derive(Default)]
struct Gathered {
    order: Vec<String>,
    entries: HashMap<String, Vec<ErrorEntry>>,
    clean: HashMap<String, (f64, usize)>,
}

/// Reads the errors CSV, merging clean errors from a separate file when given.
pub fn read_errors(
    input: impl Read,
    source_name: &str,
    clean_file: Option<HashMap<String, (f64, usize)>>,
    unit: ErrorUnit,
) -> Result<Vec<ModelErrors>, MetricsError> {
    let mut reader = csv_reader(input);
    let mut problems = Vec::new();
    let names = ["model", "corruption", "severity", "error"];
    let cols = columns(&mut reader, &names, &mut problems);
    let mut g = Gathered::default();
    for (line, rec) in records(&mut reader, &mut problems) {
        let Some(cols) = &cols else { break };
        if let Err(m) = gather_row(&mut g, &rec, line, cols, unit) {
            problems.push(RowProblem::at(line, m));
        }
    }
    merge_clean_file(&mut g, clean_file, &mut problems);
    problems.extend(unit_mismatch(&g, unit));
    let models = g
        .order
        .iter()
        .map(|name| {
            let entries = g.entries.get(name).map_or(&[][..], Vec::as_slice);
            let clean = g.clean.get(name).map(|(v, _)| *v);
            let (m, p) = ModelErrors::collect(name, clean, entries);
            problems.extend(p);
            m
        })
        .collect();
    finish(source_name, problems).map(|_| models)
}

fn gather_row(
    g: &mut Gathered,
    rec: &csv::StringRecord,
    line: usize,
    cols: &[usize],
    unit: ErrorUnit,
) -> Result<(), String> {
    let field = |i: usize| rec.get(cols[i]).unwrap_or("");
    let model = field(0).to_string();
    nonempty(&model, "model")?;
    let corruption = field(1).to_string();
    nonempty(&corruption, "corruption")?;
    let error = value(rec, cols[3], unit)?;
    if !g.entries.contains_key(&model) && !g.clean.contains_key(&model) {
        g.order.push(model.clone());
    }
    if corruption == "clean" {
        return gather_clean(g, model, field(2), error, line);
    }
    let severity = parse_severity(field(2))?;
    g.entries.entry(model).or_default().push(ErrorEntry {
        row: line,
        corruption,
        severity,
        error,
    });
    Ok(())
}

fn gather_clean(
    g: &mut Gathered,
    model: String,
    severity: &str,
    error: f64,
    line: usize,
) -> Result<(), String> {
    if !(severity.is_empty() || severity == "0") {
        return Err(format!(
            "clean row has severity {severity:?}; use 0 or leave it empty"
        ));
    }
    if let Some((_, first)) = g.clean.get(&model) {
        return Err(format!(
            "duplicate clean error for {model:?} (first in row {first})"
        ));
    }
    g.entries.entry(model.clone()).or_default();
    g.clean.insert(model, (error, line));
    Ok(())
}

fn merge_clean_file(
    g: &mut Gathered,
    clean_file: Option<HashMap<String, (f64, usize)>>,
    problems: &mut Vec<RowProblem>,
) {
    let mut rows: Vec<_> = clean_file.unwrap_or_default().into_iter().collect();
    rows.sort_by_key(|(_, (_, line))| *line);
    for (model, (v, line)) in rows {
        if let Some((_, row)) = g.clean.get(&model) {
            let m =
                format!("clean error of {model:?} given here and in row {line} of the clean file");
            problems.push(RowProblem::at(*row, m));
        } else if !g.entries.contains_key(&model) {
            problems.push(RowProblem::general(format!(
                "clean file row {line}: model {model:?} has no rows in the errors file"
            )));
        } else {
            g.clean.insert(model, (v, line));
        }
    }
}

/// Percent selected but every error is at most 1: almost surely fractions.
fn unit_mismatch(g: &Gathered, unit: ErrorUnit) -> Option<RowProblem> {
    let mut values = g.entries.values().flatten().map(|e| e.error);
    let all_tiny = values.all(|v| v <= 0.01);
    let rows = g.entries.values().map(Vec::len).sum::<usize>();
    (unit == ErrorUnit::Percent && rows >= SEVERITIES && all_tiny).then(|| {
        RowProblem::general(
            "every error is at most 1 with unit percent; fractions? use unit fraction",
        )
    })
}

fn csv_reader(input: impl Read) -> csv::Reader<impl Read> {
    csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input)
}

/// Indices of the wanted header columns, or a problem naming the missing ones.
fn columns(
    reader: &mut csv::Reader<impl Read>,
    wanted: &[&str],
    problems: &mut Vec<RowProblem>,
) -> Option<Vec<usize>> {
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            problems.push(RowProblem::at(1, format!("unreadable header: {e}")));
            return None;
        }
    };
    let find = |w: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(w));
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| find(w).is_none())
        .collect();
    if !missing.is_empty() {
        let m = format!("header lacks column(s) {}", missing.join(", "));
        problems.push(RowProblem::at(1, m));
        return None;
    }
    Some(wanted.iter().filter_map(|w| find(w)).collect())
}

/// Records with their line numbers; unreadable ones become problems.
fn records(
    reader: &mut csv::Reader<impl Read>,
    problems: &mut Vec<RowProblem>,
) -> Vec<(usize, csv::StringRecord)> {
    let mut out = Vec::new();
    for rec in reader.records() {
        match rec {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line() as usize);
                out.push((line, r));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                problems.push(RowProblem::at(line, format!("unreadable row: {e}")));
            }
        }
    }
    out
}

/// An integer level, or `mean` for the mean over levels 1..=5.
fn parse_severity(raw: &str) -> Result<Severity, String> {
    if raw.eq_ignore_ascii_case("mean") {
        return Ok(Severity::Mean);
    }
    raw.parse::<i64>()
        .map(Severity::Level)
        .map_err(|_| format!("severity {raw:?} is neither an integer nor `mean`"))
}

fn nonempty(v: &str, what: &str) -> Result<(), String> {
    if v.is_empty() {
        Err(format!("empty {what}"))
    } else {
        Ok(())
    }
}

fn value(rec: &csv::StringRecord, col: usize, unit: ErrorUnit) -> Result<f64, String> {
    let raw = rec.get(col).unwrap_or("");
    let v = raw
        .parse::<f64>()
        .map_err(|_| format!("error {raw:?} is not a number"))?;
    unit.to_fraction(v)
}

fn finish(source_name: &str, mut problems: Vec<RowProblem>) -> Result<(), MetricsError> {
    if problems.is_empty() {
        return Ok(());
    }
    problems.sort_by_key(|p| p.row.unwrap_or(usize::MAX));
    Err(MetricsError::InvalidRows {
        source_name: source_name.to_string(),
        problems,
    })
}

#[cfg(test)]
mod tests;
