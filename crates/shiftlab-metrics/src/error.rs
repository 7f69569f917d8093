//! Errors of the metric math and of reading error tables.

use std::fmt;

/// One problem with one input row (or with a group of rows when `row` is `None`).
#[derive(Clone, Debug, PartialEq)]
pub struct RowProblem {
    /// 1-based line number in the source file (the header is line 1), when known.
    pub row: Option<usize>,
    /// What is wrong, in words.
    pub message: String,
}

impl RowProblem {
    /// A problem tied to one row.
    pub fn at(row: usize, message: impl Into<String>) -> Self {
        Self {
            row: Some(row),
            message: message.into(),
        }
    }

    /// A problem of a group of rows (e.g. a corruption lacking severities).
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            row: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row {
            Some(row) => write!(f, "row {row}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Why a metric could not be computed or a table not read.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Rows of an input table are invalid; every problem found is listed.
    #[error("{source_name}: {} problem(s):\n{}", .problems.len(), join_problems(.problems))]
    InvalidRows {
        /// The file (or other source) the rows came from.
        source_name: String,
        /// All problems found, in row order.
        problems: Vec<RowProblem>,
    },
    /// A metric needs corruptions the model has no errors for.
    #[error("{metric} for model {model:?} needs all of the {set}; missing: {}", .missing.join(", "))]
    MissingCorruptions {
        /// Metric name.
        metric: &'static str,
        /// Model name.
        model: String,
        /// The set the metric averages over.
        set: &'static str,
        /// Corruptions with no errors.
        missing: Vec<String>,
    },
    /// A metric needs the clean error, which is not known for this model.
    #[error("{metric} for model {model:?} needs its clean error, which was not given")]
    MissingClean {
        /// Metric name.
        metric: &'static str,
        /// Model name.
        model: String,
    },
    /// Invalid argument to a metric function (e.g. empty or out-of-range samples).
    #[error("{0}")]
    InvalidInput(String),
    /// Reading a file failed.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error (not a `source`, so chains do not print it twice).
        error: std::io::Error,
    },
}

fn join_problems(problems: &[RowProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
