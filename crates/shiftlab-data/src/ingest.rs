//! `shiftlab ingest`: any supported input -> the canonical dataset table.
//!
//! Entries are read sequentially in chunks of [`crate::writer::ROW_GROUP_ROWS`], validated and
//! encoded in parallel (rayon), then written in input order, so output is deterministic.
//! Bad items are recorded and skipped (or fatal with `strict`); the table and the rejects list
//! (`<output>.rejects.csv`, `path,reason`, always written, header only when clean) appear
//! atomically only when the whole run succeeds.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

use crate::error::{DataError, Rejected};
use crate::source::{process, Entry, Source};
use crate::writer::{write_atomic, DatasetWriter, ROW_GROUP_ROWS};
use crate::{cifar, folder, hf, idx};

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mnist,
    FashionMnist,
    ImageFolder,
    ImageNetC,
    Cifar10,
    Cifar10C,
    Parquet,
}

impl Format {
    /// All formats with their command-line names.
    pub const ALL: [(Format, &'static str); 7] = [
        (Format::Mnist, "mnist"),
        (Format::FashionMnist, "fashion-mnist"),
        (Format::ImageFolder, "imagefolder"),
        (Format::ImageNetC, "imagenet-c"),
        (Format::Cifar10, "cifar10"),
        (Format::Cifar10C, "cifar10-c"),
        (Format::Parquet, "parquet"),
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("?", |(_, n)| n)
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(f, _)| *f)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|(_, n)| *n).collect();
                format!("unknown format '{s}' (one of: {})", names.join(", "))
            })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub format: Format,
    pub input: PathBuf,
    pub output: PathBuf,
    /// Folder, CIFAR-10-C and Parquet formats: the split name (default `test`; Parquet guesses
    /// from the file name first). IDX and CIFAR-10: ingest only this split (`train`/`test`).
    pub split: Option<String>,
    /// Stop at the first bad input instead of recording and skipping it.
    pub strict: bool,
    /// Draw a progress bar on stderr (only shown when stderr is a terminal).
    pub progress: bool,
}

/// What an ingest did.
#[derive(Debug, Clone)]
pub struct IngestReport {
    pub output: PathBuf,
    pub rejects_path: PathBuf,
    pub split_rows: BTreeMap<String, u64>,
    pub class_names: Vec<String>,
    pub rejects: Vec<Rejected>,
    pub elapsed: Duration,
}

impl IngestReport {
    /// Rows written.
    pub fn rows(&self) -> u64 {
        self.split_rows.values().sum()
    }

    /// Rows written per second of wall time.
    pub fn images_per_sec(&self) -> f64 {
        self.rows() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "wrote {} rows to {}", self.rows(), self.output.display())?;
        for (split, n) in &self.split_rows {
            writeln!(f, "  split {split}: {n} rows")?;
        }
        writeln!(f, "  classes: {}", self.class_names.len())?;
        writeln!(
            f,
            "  rejected: {} (listed in {})",
            self.rejects.len(),
            self.rejects_path.display()
        )?;
        for r in self.rejects.iter().take(5) {
            writeln!(f, "    {r}")?;
        }
        write!(
            f,
            "  {:.1} s, {:.0} images/s",
            self.elapsed.as_secs_f64(),
            self.images_per_sec()
        )
    }
}

/// The rejects list's path for an output path: `<output>.rejects.csv`.
pub fn rejects_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".rejects.csv");
    PathBuf::from(s)
}

/// Opens the input of `opts` as a [`Source`].
pub fn open_source(opts: &IngestOptions) -> Result<Source, DataError> {
    let split = opts.split.as_deref();
    let named = split.unwrap_or("test");
    match opts.format {
        Format::Mnist => idx::open(&opts.input, idx::mnist_classes(), split),
        Format::FashionMnist => {
            let names = idx::FASHION_MNIST_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect();
            idx::open(&opts.input, names, split)
        }
        Format::ImageFolder => folder::open_imagefolder(&opts.input, named),
        Format::ImageNetC => folder::open_imagenet_c(&opts.input, named),
        Format::Cifar10 => cifar::open_cifar10(&opts.input, split),
        Format::Cifar10C => cifar::open_cifar10c(&opts.input, named),
        Format::Parquet => hf::open(&opts.input, split),
    }
}

/// Runs an ingest end to end.
pub fn ingest(opts: &IngestOptions) -> Result<IngestReport, DataError> {
    let start = Instant::now();
    let source = open_source(opts)?;
    let class_names = source.class_names.clone();
    let mut writer = DatasetWriter::create(&opts.output, &class_names, opts.format.name())?;
    let bar = progress_bar(opts.progress, source.total);
    let rejects = run(source, &mut writer, opts.strict, &bar)?;
    bar.finish_and_clear();
    let extra = json!({ "rejected": rejects.len(), "input": opts.input.display().to_string() });
    let split_rows = writer.finish(extra)?;
    // After the table, so a failed run never leaves a fresh rejects list behind.
    let rejects_path = rejects_path(&opts.output);
    write_atomic(&rejects_path, rejects_csv(&rejects).as_bytes())?;
    Ok(IngestReport {
        output: opts.output.clone(),
        rejects_path,
        split_rows,
        class_names,
        rejects,
        elapsed: start.elapsed(),
    })
}

/// The chunked parallel pipeline; returns the rejections in input order.
fn run(
    source: Source,
    writer: &mut DatasetWriter,
    strict: bool,
    bar: &ProgressBar,
) -> Result<Vec<Rejected>, DataError> {
    let classes = source.class_names.len();
    let mut rejects = Vec::new();
    let mut entries = source.entries;
    loop {
        let chunk: Vec<Entry> = entries
            .by_ref()
            .take(ROW_GROUP_ROWS)
            .collect::<Result<_, _>>()?;
        if chunk.is_empty() {
            return Ok(rejects);
        }
        let n = chunk.len() as u64;
        let results: Vec<_> = chunk
            .into_par_iter()
            .map(|e| match e {
                Entry::Item(item) => process(item, classes),
                Entry::Reject(r) => Err(r),
            })
            .collect();
        for r in results {
            match r {
                Ok(row) => writer.push(row)?,
                Err(rej) if strict => return Err(DataError::Rejected(rej)),
                Err(rej) => rejects.push(rej),
            }
        }
        bar.inc(n);
    }
}

fn progress_bar(enabled: bool, total: Option<u64>) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{spinner} ingest [{bar:30}] {pos}/{len} images, {elapsed} (eta {eta})"
    } else {
        "{spinner} ingest {pos} images, {elapsed}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `path,reason` CSV with RFC 4180 quoting.
pub fn rejects_csv(rejects: &[Rejected]) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::from("path,reason\n");
    for r in rejects {
        out.push_str(&format!(
            "{},{}\n",
            quote(&r.item),
            quote(&r.reason.to_string())
        ));
    }
    out
}
