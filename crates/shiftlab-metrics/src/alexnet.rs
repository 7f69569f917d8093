//! AlexNet's ImageNet-C errors, the normaliser of CE and mCE.
//!
//! Embedded from `data-ref/alexnet_errors.csv` (per-severity top-1 errors of the 15 benchmark
//! corruptions, as in Hendrycks & Dietterich's evaluation code). The 4 extra corruptions only
//! have a mean error from third-party code and are marked unverified: mCE uses only the 15
//! verified benchmark corruptions; CE of the extra ones is reported but flagged.

use std::sync::OnceLock;

use crate::corruptions::{self, SEVERITIES};
use crate::error::{MetricsError, RowProblem};

/// The embedded reference table (CSV text).
pub const ALEXNET_CSV: &str = include_str!("../../../data-ref/alexnet_errors.csv");

/// AlexNet's clean top-1 error on ImageNet, the baseline of relative CE.
pub const ALEXNET_CLEAN_ERROR: f64 = 0.4345;

/// AlexNet's errors on one corruption.
#[derive(Clone, Debug, PartialEq)]
pub struct AlexNetEntry {
    /// Corruption name.
    pub corruption: String,
    /// Whether it is one of the 15 benchmark corruptions.
    pub benchmark: bool,
    /// Errors at severities 1..=5 (fractions), where known.
    pub severities: Option<[f64; SEVERITIES]>,
    /// Mean error over the 5 severities.
    pub mean: f64,
    /// Whether the numbers are verified against the original evaluation.
    pub verified: bool,
}

impl AlexNetEntry {
    /// sum_s E(AlexNet, c, s); from the mean (x5) where per-severity errors are not known.
    pub fn error_sum(&self) -> f64 {
        match &self.severities {
            Some(s) => s.iter().sum(),
            None => self.mean * SEVERITIES as f64,
        }
    }
}

/// The whole AlexNet reference: 19 corruptions and the clean error.
#[derive(Clone, Debug, PartialEq)]
pub struct AlexNetTable {
    entries: Vec<AlexNetEntry>,
    clean: f64,
}

impl AlexNetTable {
    /// The embedded table, parsed once.
    pub fn embedded() -> &'static AlexNetTable {
        static TABLE: OnceLock<AlexNetTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The text is a compile-time constant checked by the tests, not user input.
            AlexNetTable::parse(ALEXNET_CSV).expect("embedded data-ref/alexnet_errors.csv is valid")
        })
    }

    /// Parses the reference CSV (`corruption,benchmark_15,s1..s5,mean,verified`).
    pub fn parse(text: &str) -> Result<Self, MetricsError> {
        let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let mut entries = Vec::new();
        let mut clean = None;
        let mut problems = Vec::new();
        for record in reader.records() {
            match record {
                Err(e) => problems.push(RowProblem::general(e.to_string())),
                Ok(rec) => match parse_row(&rec) {
                    Ok(Row::Clean(c)) => clean = Some(c),
                    Ok(Row::Entry(e)) => entries.push(e),
                    Err(p) => problems.push(p),
                },
            }
        }
        problems.extend(completeness_problems(&entries, clean));
        if !problems.is_empty() {
            return Err(MetricsError::InvalidRows {
                source_name: "AlexNet reference table".into(),
                problems,
            });
        }
        Ok(Self {
            entries,
            clean: clean.unwrap_or(ALEXNET_CLEAN_ERROR),
        })
    }

    /// The entry of one corruption.
    pub fn get(&self, corruption: &str) -> Option<&AlexNetEntry> {
        self.entries.iter().find(|e| e.corruption == corruption)
    }

    /// All 19 entries, in file order.
    pub fn entries(&self) -> &[AlexNetEntry] {
        &self.entries
    }

    /// AlexNet's clean error (0.4345).
    pub fn clean_error(&self) -> f64 {
        self.clean
    }
}

enum Row {
    Clean(f64),
    Entry(AlexNetEntry),
}

fn parse_row(rec: &csv::StringRecord) -> Result<Row, RowProblem> {
    let line = rec.position().map_or(0, |p| p.line() as usize);
    let field = |i: usize| rec.get(i).unwrap_or("").trim();
    let num = |i: usize| -> Result<f64, RowProblem> {
        field(i)
            .parse::<f64>()
            .map_err(|_| RowProblem::at(line, format!("column {} is not a number", i + 1)))
    };
    let name = field(0).to_string();
    let mean = num(7)?;
    if name == "clean" {
        return Ok(Row::Clean(mean));
    }
    if !corruptions::is_known(&name) {
        return Err(RowProblem::at(line, format!("unknown corruption {name:?}")));
    }
    let severities = if field(2).is_empty() {
        None
    } else {
        let mut s = [0.0; SEVERITIES];
        for (k, v) in s.iter_mut().enumerate() {
            *v = num(2 + k)?;
        }
        check_mean(line, &s, mean)?;
        Some(s)
    };
    Ok(Row::Entry(AlexNetEntry {
        benchmark: field(1) == "true",
        verified: field(8) == "true",
        corruption: name,
        severities,
        mean,
    }))
}

fn check_mean(line: usize, s: &[f64; SEVERITIES], mean: f64) -> Result<(), RowProblem> {
    let m = s.iter().sum::<f64>() / SEVERITIES as f64;
    if (m - mean).abs() > 1e-6 {
        return Err(RowProblem::at(
            line,
            format!("mean {mean} differs from the mean of s1..s5 ({m})"),
        ));
    }
    Ok(())
}

fn completeness_problems(entries: &[AlexNetEntry], clean: Option<f64>) -> Vec<RowProblem> {
    let mut problems = Vec::new();
    for name in corruptions::CorruptionSet::All19.names() {
        match entries.iter().find(|e| e.corruption == name) {
            None => problems.push(RowProblem::general(format!("no row for {name}"))),
            Some(e) if corruptions::is_benchmark(name) && e.severities.is_none() => {
                problems.push(RowProblem::general(format!(
                    "benchmark corruption {name} lacks per-severity errors"
                )))
            }
            Some(_) => {}
        }
    }
    if clean.is_none() {
        problems.push(RowProblem::general("no row for clean"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_parses_with_19_corruptions_and_clean() {
        let t = AlexNetTable::embedded();
        assert_eq!(t.entries().len(), 19);
        assert_eq!(t.clean_error(), ALEXNET_CLEAN_ERROR);
        let benchmark: Vec<_> = t.entries().iter().filter(|e| e.benchmark).collect();
        assert_eq!(benchmark.len(), 15);
        assert!(benchmark
            .iter()
            .all(|e| e.verified && e.severities.is_some()));
        let extra: Vec<_> = t.entries().iter().filter(|e| !e.benchmark).collect();
        assert!(extra.iter().all(|e| !e.verified && e.severities.is_none()));
    }

    #[test]
    fn error_sum_uses_severities_or_five_means() {
        let t = AlexNetTable::embedded();
        // gaussian_noise: .69528 + .82542 + .93554 + .98138 + .99452 = 4.43214
        let g = t.get("gaussian_noise").map(AlexNetEntry::error_sum);
        assert!((g.unwrap_or(0.0) - 4.43214).abs() < 1e-12);
        // spatter has only a mean: 5 x 0.717512 = 3.58756
        let s = t.get("spatter").map(AlexNetEntry::error_sum);
        assert!((s.unwrap_or(0.0) - 3.58756).abs() < 1e-12);
    }

    #[test]
    fn bad_reference_rows_are_named() {
        let text = "corruption,benchmark_15,s1,s2,s3,s4,s5,mean,verified\n\
                    fake_noise,true,0.1,0.1,0.1,0.1,0.1,0.1,true\n\
                    gaussian_noise,true,0.1,0.2,0.3,0.4,0.5,0.9,true\n";
        let err = AlexNetTable::parse(text).err().map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(
            msg.contains("row 2: unknown corruption \"fake_noise\""),
            "{msg}"
        );
        assert!(msg.contains("row 3: mean 0.9 differs"), "{msg}");
        assert!(msg.contains("no row for clean"), "{msg}");
    }

    #[test]
    fn a_benchmark_row_without_severities_is_refused() {
        // CE of a benchmark corruption needs its 5 severities; a mean alone is not enough.
        let row = "gaussian_noise,true,0.69528,0.82542,0.93554,0.98138,0.99452,0.886428,true";
        assert!(ALEXNET_CSV.contains(row));
        let text = ALEXNET_CSV.replace(row, "gaussian_noise,true,,,,,,0.886428,true");
        let msg = AlexNetTable::parse(&text).err().map(|e| e.to_string());
        let msg = msg.unwrap_or_default();
        assert!(
            msg.contains("benchmark corruption gaussian_noise lacks per-severity errors"),
            "{msg}"
        );
        // An extra corruption with only a mean (as embedded) is fine.
        assert!(AlexNetTable::parse(ALEXNET_CSV).is_ok());
    }

    #[test]
    fn a_missing_corruption_row_is_named() {
        let row = ALEXNET_CSV
            .lines()
            .find(|l| l.starts_with("fog,"))
            .unwrap_or_default();
        assert!(!row.is_empty());
        let text = ALEXNET_CSV.replace(&format!("{row}\n"), "");
        let msg = AlexNetTable::parse(&text).err().map(|e| e.to_string());
        let msg = msg.unwrap_or_default();
        assert!(msg.contains("no row for fog"), "{msg}");
        assert!(!msg.contains("no row for snow"), "{msg}");
    }
}
