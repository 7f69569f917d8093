//! Errors and per-item rejections.
//!
//! A [`Rejected`] item is bad input that ingest records and skips (or, under `--strict`, turns
//! into the fatal [`DataError::Rejected`]); a [`DataError`] stops the run. Both name the item
//! (file path or array index) and the cause.

use std::fmt;
use std::path::{Path, PathBuf};

/// Largest accepted image side, in pixels, checked from the header before decoding.
pub const MAX_SIDE: u32 = 16_384;
/// Largest accepted image area, in pixels (100 Mpx), checked from the header before decoding.
pub const MAX_PIXELS: u64 = 100_000_000;

/// Why one input item was not ingested. The Display texts are part of the interface: the rejects
/// list and the tests match on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The file has no bytes at all.
    EmptyFile,
    /// The file ends early or its data cannot be decoded.
    Undecodable(String),
    /// The extension is not one torchvision's ImageFolder accepts.
    NotAnImage(String),
    /// The decoded pixel layout has no faithful 8-bit gray/RGB form.
    UnsupportedPixelFormat(String),
    /// The header declares dimensions beyond [`MAX_SIDE`] or [`MAX_PIXELS`].
    AbsurdDimensions { width: u64, height: u64 },
    /// An image with transparent pixels: flattening would invent a background.
    Transparent,
    /// A label outside `0..classes`.
    LabelOutOfRange { label: i64, classes: usize },
    /// The entry is not where the layout expects images (e.g. a file beside the class folders).
    Misplaced(String),
    /// The file could not be read.
    Unreadable(String),
    /// A required value is null or absent (e.g. image bytes in a Parquet row).
    Missing(String),
    /// A path-only image (Parquet row with null bytes) whose file does not exist.
    MissingFile(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::EmptyFile => write!(f, "zero-byte file"),
            Reason::Undecodable(e) => write!(f, "truncated or undecodable image: {e}"),
            Reason::NotAnImage(ext) => write!(f, "not an image file (extension {ext})"),
            Reason::UnsupportedPixelFormat(p) => write!(f, "unsupported pixel format: {p}"),
            Reason::AbsurdDimensions { width, height } => write!(
                f,
                "absurd declared dimensions {width}x{height} (limit {MAX_SIDE} px a side and \
                 {MAX_PIXELS} px in all)"
            ),
            Reason::Transparent => write!(
                f,
                "image has transparent pixels (alpha not fully opaque); flatten it first"
            ),
            Reason::LabelOutOfRange { label, classes } => write!(
                f,
                "label {label} out of range 0..{} ({classes} classes)",
                classes.saturating_sub(1)
            ),
            Reason::Misplaced(why) => write!(f, "not in the expected layout: {why}"),
            Reason::Unreadable(e) => write!(f, "unreadable: {e}"),
            Reason::Missing(what) => write!(f, "missing {what}"),
            Reason::MissingFile(path) => write!(
                f,
                "image file not found: {path} (the row has no image bytes: only this path)"
            ),
        }
    }
}

impl Reason {
    /// The reason without its particulars, for counting rejections by cause.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::EmptyFile => "zero-byte file",
            Reason::Undecodable(_) => "truncated or undecodable image",
            Reason::NotAnImage(_) => "not an image file",
            Reason::UnsupportedPixelFormat(_) => "unsupported pixel format",
            Reason::AbsurdDimensions { .. } => "absurd declared dimensions",
            Reason::Transparent => "transparent pixels",
            Reason::LabelOutOfRange { .. } => "label out of range",
            Reason::Misplaced(_) => "not in the expected layout",
            Reason::Unreadable(_) => "unreadable",
            Reason::Missing(_) => "missing value",
            Reason::MissingFile(_) => "image file not found",
        }
    }
}

/// One rejected input item with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// File path (relative to the input) or array index such as `train/00042`.
    pub item: String,
    /// Why it was rejected.
    pub reason: Reason,
}

impl Rejected {
    /// Builds a rejection.
    pub fn new(item: impl Into<String>, reason: Reason) -> Self {
        Self {
            item: item.into(),
            reason,
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.item, self.reason)
    }
}

/// Rejections counted by cause, for the error that ends an ingest with too few rows.
#[derive(Debug, Clone)]
pub struct RejectSummary {
    /// Rows written plus rejections.
    pub inputs: u64,
    /// Per cause ([`Reason::kind`]), most frequent first: count and the first such rejection.
    pub causes: Vec<(usize, Rejected)>,
    /// The rejects list, naming every rejected input (written even though the ingest failed).
    pub list: PathBuf,
}

impl RejectSummary {
    /// Counts `rejects` by cause, keeping the first of each as the example.
    pub fn new(inputs: u64, rejects: &[Rejected], list: &Path) -> Self {
        let mut causes: Vec<(usize, Rejected)> = Vec::new();
        for r in rejects {
            match causes
                .iter_mut()
                .find(|(_, e)| e.reason.kind() == r.reason.kind())
            {
                Some((n, _)) => *n += 1,
                None => causes.push((1, r.clone())),
            }
        }
        // Stable: equal counts keep their first-seen order.
        causes.sort_by_key(|c| std::cmp::Reverse(c.0));
        Self {
            inputs,
            causes,
            list: list.to_path_buf(),
        }
    }

    /// Rejections in all.
    pub fn rejected(&self) -> usize {
        self.causes.iter().map(|c| c.0).sum()
    }
}

impl fmt::Display for RejectSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rejected = self.rejected();
        if self.inputs == 0 {
            return write!(f, "the input holds no images");
        }
        let pct = 100.0 * rejected as f64 / self.inputs as f64;
        write!(
            f,
            "{rejected} of {} inputs rejected ({pct:.1} %), no table written",
            self.inputs
        )?;
        for (n, first) in &self.causes {
            write!(f, "\n  {n} x {} (first: {first})", first.reason.kind())?;
        }
        write!(
            f,
            "\nevery rejected input is listed in {}",
            self.list.display()
        )
    }
}

/// Fatal ingest and read errors.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A bad item under `--strict`.
    #[error("rejected {0} (--strict stops at the first bad input)")]
    Rejected(Rejected),
    /// No row was written: every input was rejected, or there was none.
    #[error("nothing ingested: {0}")]
    NothingIngested(RejectSummary),
    /// More of the inputs were rejected than `--max-rejected` allows.
    #[error("too many rejected (more than --max-rejected {limit}): {summary}")]
    TooManyRejected { limit: f64, summary: RejectSummary },
    /// The inputs as given cannot be combined (e.g. a repeated split name).
    #[error("{0}")]
    Usage(String),
    /// An IDX file whose magic number is not the expected one.
    #[error("{}: bad IDX magic 0x{found:08x}, expected 0x{expected:08x} ({what})", path.display())]
    BadIdxMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    /// IDX image and label files that disagree on the item count.
    #[error("IDX count mismatch for split '{split}': {images} images but {labels} labels")]
    IdxCountMismatch {
        split: String,
        images: usize,
        labels: usize,
    },
    /// The input does not have the layout the format requires.
    #[error("{}: {msg}", path.display())]
    Layout { path: PathBuf, msg: String },
    /// A schema JSON file or type expression is invalid.
    #[error("schema: {0}")]
    Schema(String),
    /// Arrow failed while building a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Parquet failed while reading or writing.
    #[error("{}: parquet: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A layout error naming the offending path.
    pub fn layout(path: &Path, msg: impl Into<String>) -> Self {
        DataError::Layout {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    /// Wraps a Parquet error with the file it concerns.
    pub fn parquet(path: &Path, source: parquet::errors::ParquetError) -> Self {
        DataError::Parquet {
            path: path.to_path_buf(),
            source,
        }
    }
}
