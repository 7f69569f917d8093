//! `shiftlab ingest`: any supported input -> the canonical dataset table.
//!
//! Entries are read sequentially in chunks of [`crate::writer::ROW_GROUP_ROWS`], validated and
//! encoded in parallel (rayon), then written in input order, so output is deterministic.
//! Bad items are recorded and skipped (or fatal with `strict`); the table and the rejects list
//! (`<output>.rejects.csv`, `path,reason`, always written, header only when clean) appear
//! atomically only when the whole run succeeds. An ingest that writes no row, or rejects more
//! than `max_rejected` of its inputs, fails: no table, but the rejects list is written, so
//! every rejected input is still named with its reason.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

use crate::error::{DataError, RejectSummary, Rejected};
use crate::source::{process, Entry, Input, Source};
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
    /// One input, or several for `imagefolder` (each `NAME=DIR`) and `parquet` (files or
    /// folders of shards); see [`check_inputs`].
    pub inputs: Vec<Input>,
    pub output: PathBuf,
    /// Folder, CIFAR-10-C and Parquet formats: the split name (default `test`; Parquet guesses
    /// from the file name first, an ImageFolder root of split folders gives their splits).
    /// IDX and CIFAR-10: ingest only this split (`train`/`test`). A single input's `NAME=`
    /// means the same.
    pub split: Option<String>,
    /// Stop at the first bad input instead of recording and skipping it.
    pub strict: bool,
    /// Fail when more than this share (0..=1) of the inputs is rejected.
    pub max_rejected: Option<f64>,
    /// Draw a progress bar on stderr (only shown when stderr is a terminal).
    pub progress: bool,
}

impl IngestOptions {
    /// One input without a split name; the rest as by default.
    pub fn new(format: Format, input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Self {
            format,
            inputs: vec![Input::path(input)],
            output: output.into(),
            split: None,
            strict: false,
            max_rejected: None,
            progress: false,
        }
    }

    /// The inputs as one line, for the table's metadata and messages.
    pub fn describe_inputs(&self) -> String {
        let one = |i: &Input| match &i.split {
            Some(s) => format!("{s}={}", i.path.display()),
            None => i.path.display().to_string(),
        };
        self.inputs.iter().map(one).collect::<Vec<_>>().join(", ")
    }
}

/// What an ingest did.
#[derive(Debug, Clone)]
pub struct IngestReport {
    pub output: PathBuf,
    pub rejects_path: PathBuf,
    pub split_rows: BTreeMap<String, u64>,
    pub class_names: Vec<String>,
    pub rejects: Vec<Rejected>,
    /// What the input's reader noted (e.g. a class folder in only one split).
    pub notes: Vec<String>,
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
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
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

/// Checks the inputs can be combined, and returns the split a single one is forced to: several
/// inputs only for `imagefolder` (each `NAME=DIR`) and `parquet`; split names non-empty (the
/// parser checks) and distinct; not both `NAME=` and `split`.
pub fn check_inputs(opts: &IngestOptions) -> Result<Option<String>, DataError> {
    let usage = |m: String| Err(DataError::Usage(m));
    let named: Vec<&str> = opts
        .inputs
        .iter()
        .filter_map(|i| i.split.as_deref())
        .collect();
    if opts.inputs.is_empty() {
        return usage("no input given".into());
    }
    if named.contains(&"") {
        return usage("an input has an empty split name (write NAME=PATH)".into());
    }
    if let (Some(s), Some(n)) = (&opts.split, named.first()) {
        return usage(format!(
            "--split {s} and an input named {n}=...: give the split one way, not both"
        ));
    }
    if let Some(dup) = named
        .iter()
        .enumerate()
        .find(|(i, n)| named[..*i].contains(n))
    {
        return usage(format!(
            "split name '{}' is given to two inputs: each NAME=PATH needs its own name",
            dup.1
        ));
    }
    let several = opts.inputs.len() > 1;
    match opts.format {
        Format::ImageFolder if several && named.len() < opts.inputs.len() => usage(format!(
            "several imagefolder inputs need a split name each (--input train=DIR --input \
             test=DIR); unnamed: {}",
            unnamed(&opts.inputs)
        )),
        Format::ImageFolder | Format::Parquet => Ok(opts.split.clone()),
        f if several => usage(format!(
            "--format {f} takes one --input (several only for imagefolder and parquet)"
        )),
        _ => Ok(opts.split.clone().or(opts.inputs[0].split.clone())),
    }
}

fn unnamed(inputs: &[Input]) -> String {
    let v: Vec<String> = inputs
        .iter()
        .filter(|i| i.split.is_none())
        .map(|i| i.path.display().to_string())
        .collect();
    v.join(", ")
}

/// Opens the inputs of `opts` as one [`Source`].
pub fn open_source(opts: &IngestOptions) -> Result<Source, DataError> {
    let split = check_inputs(opts)?;
    let split = split.as_deref();
    let named = split.unwrap_or("test");
    let input = &opts.inputs[0].path;
    match opts.format {
        Format::Mnist => idx::open(input, idx::mnist_classes(), split),
        Format::FashionMnist => {
            let names = idx::FASHION_MNIST_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect();
            idx::open(input, names, split)
        }
        Format::ImageFolder => match split_dirs(&opts.inputs) {
            Some(dirs) => folder::open_splits(&dirs),
            None => folder::open_imagefolder(input, split),
        },
        Format::ImageNetC => folder::open_imagenet_c(input, named),
        Format::Cifar10 => cifar::open_cifar10(input, split),
        Format::Cifar10C => cifar::open_cifar10c(input, named),
        Format::Parquet => {
            let forced = |i: &Input| Input {
                split: i.split.clone().or(split.map(String::from)),
                path: i.path.clone(),
            };
            hf::open(&opts.inputs.iter().map(forced).collect::<Vec<_>>())
        }
    }
}

/// The inputs as split folders, when every one is named.
fn split_dirs(inputs: &[Input]) -> Option<Vec<folder::SplitDir>> {
    inputs
        .iter()
        .map(|i| {
            Some(folder::SplitDir {
                split: i.split.clone()?,
                dir: i.path.clone(),
            })
        })
        .collect()
}

/// Runs an ingest end to end.
pub fn ingest(opts: &IngestOptions) -> Result<IngestReport, DataError> {
    if let Some(f) = opts.max_rejected.filter(|f| !(0.0..=1.0).contains(f)) {
        return Err(DataError::Usage(format!(
            "--max-rejected {f}: a share of the inputs from 0 to 1 (0.05 = 5 %)"
        )));
    }
    let start = Instant::now();
    let source = open_source(opts)?;
    let class_names = source.class_names.clone();
    let notes = source.notes.clone();
    let mut writer = DatasetWriter::create(&opts.output, &class_names, opts.format.name())?;
    let bar = progress_bar(opts.progress, source.total);
    let rejects = run(source, &mut writer, opts.strict, &bar)?;
    bar.finish_and_clear();
    let rejects_path = rejects_path(&opts.output);
    enough_rows(
        opts,
        writer.split_rows().values().sum(),
        &rejects,
        &rejects_path,
    )?;
    let mut extra = json!({ "rejected": rejects.len(), "input": opts.describe_inputs() });
    if !notes.is_empty() {
        extra["notes"] = json!(notes);
    }
    let split_rows = writer.finish(extra)?;
    // After the table, so a failed run never leaves a fresh rejects list behind.
    write_atomic(&rejects_path, rejects_csv(&rejects).as_bytes())?;
    Ok(IngestReport {
        output: opts.output.clone(),
        rejects_path,
        split_rows,
        class_names,
        rejects,
        notes,
        elapsed: start.elapsed(),
    })
}

/// Fails when no row was written or too many inputs were rejected, writing the rejects list
/// first so that each rejected input is named (the table is never written then).
fn enough_rows(
    opts: &IngestOptions,
    rows: u64,
    rejects: &[Rejected],
    list: &Path,
) -> Result<(), DataError> {
    let inputs = rows + rejects.len() as u64;
    let share = rejects.len() as f64 / inputs.max(1) as f64;
    let over = opts.max_rejected.filter(|&limit| share > limit);
    if rows > 0 && over.is_none() {
        return Ok(());
    }
    if !rejects.is_empty() {
        write_atomic(list, rejects_csv(rejects).as_bytes())?;
    }
    let summary = RejectSummary::new(inputs, rejects, list);
    Err(match over {
        Some(limit) if rows > 0 => DataError::TooManyRejected { limit, summary },
        _ => DataError::NothingIngested(summary),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_is_hidden_unless_asked_for_and_counts_to_the_total() {
        assert!(progress_bar(false, Some(3)).is_hidden());
        assert_eq!(progress_bar(true, Some(3)).length(), Some(3));
        assert_eq!(progress_bar(true, None).length(), None);
    }

    #[test]
    fn formats_print_and_parse_as_their_command_line_names() {
        for (f, n) in Format::ALL {
            assert_eq!(f.to_string(), n);
            assert_eq!(n.parse::<Format>(), Ok(f));
        }
        let err = "png".parse::<Format>().unwrap_err();
        assert!(
            err.contains("unknown format 'png'") && err.contains("cifar10-c"),
            "{err}"
        );
    }

    #[test]
    fn inputs_are_described_with_their_split_names_and_unnamed_ones_listed() {
        let mut o = IngestOptions::new(Format::ImageFolder, "a", "out.parquet");
        o.inputs.push(Input {
            split: Some("train".into()),
            path: "b".into(),
        });
        o.inputs.push(Input::path("c"));
        assert_eq!(o.describe_inputs(), "a, train=b, c");
        let err = check_inputs(&o).unwrap_err().to_string();
        assert!(err.ends_with("unnamed: a, c"), "{err}");
    }

    #[test]
    fn the_rate_is_rows_over_wall_seconds() {
        let report = IngestReport {
            output: "o".into(),
            rejects_path: "r".into(),
            split_rows: BTreeMap::from([("test".into(), 10), ("train".into(), 30)]),
            class_names: vec![],
            rejects: vec![],
            notes: vec![],
            elapsed: Duration::from_millis(2000),
        };
        assert_eq!((report.rows(), report.images_per_sec()), (40, 20.0));
    }
}
