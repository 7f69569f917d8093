//! `shiftlab ingest`: a data set in its published layout -> the canonical dataset table.
//! The logic lives in `shiftlab_data::ingest`; this only maps arguments and prints the summary.

use std::path::PathBuf;

use anyhow::Context;
use shiftlab_data::{Format, IngestOptions, Input};

/// Input layouts `shiftlab ingest` understands.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// MNIST IDX files (train-/t10k-images-idx3-ubyte, -labels-idx1-ubyte; .gz or not).
    Mnist,
    /// Fashion-MNIST, same IDX layout, with its ten class names.
    FashionMnist,
    /// torchvision ImageFolder: <class>/<image files>, as ImageNet's val set; a root of split
    /// folders (train/, val/ or validation/, test/) gives those splits.
    Imagefolder,
    /// ImageNet-C: <corruption>/<severity>/<class>/<image files>.
    ImagenetC,
    /// CIFAR-10, binary (*.bin) or python (pickled) batches, detected.
    Cifar10,
    /// CIFAR-10-C: <corruption>.npy (5 severities stacked) and labels.npy.
    Cifar10C,
    /// Hugging Face `datasets` Parquet exports (image struct + label; path-only images are
    /// read from their path): a file or a folder of shards, validated.
    Parquet,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Mnist => Format::Mnist,
            FormatArg::FashionMnist => Format::FashionMnist,
            FormatArg::Imagefolder => Format::ImageFolder,
            FormatArg::ImagenetC => Format::ImageNetC,
            FormatArg::Cifar10 => Format::Cifar10,
            FormatArg::Cifar10C => Format::Cifar10C,
            FormatArg::Parquet => Format::Parquet,
        }
    }
}

/// Convert a data set to the canonical Parquet dataset table (schemas/dataset.json).
///
/// Bad inputs are listed with their reason in OUTPUT.rejects.csv and skipped, unless --strict.
/// Nothing is left at OUTPUT unless the whole run succeeds; writing no row at all, or rejecting
/// more than --max-rejected of the inputs, is a failure.
#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Input layout.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// Input directory (for --format parquet a file or a folder of shards). NAME=PATH gives its
    /// split; repeat for several (imagefolder: one folder per split, e.g. --input train=DIR
    /// --input test=DIR; parquet: files or folders).
    #[arg(long, value_name = "[NAME=]PATH", required = true)]
    pub input: Vec<Input>,
    /// Output Parquet file (written atomically).
    #[arg(long, value_name = "FILE.parquet")]
    pub output: PathBuf,
    /// imagefolder, imagenet-c, cifar10-c, parquet: the split name (default "test"; parquet
    /// guesses from a train/test/validation/val token of the file or folder names first, an
    /// imagefolder root of split folders gives their names). mnist, fashion-mnist, cifar10:
    /// ingest only this split (train or test).
    #[arg(long, value_name = "NAME")]
    pub split: Option<String>,
    /// Stop at the first bad input instead of recording and skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Fail (no table written) when more than this share of the inputs is rejected (0..=1,
    /// e.g. 0.05); without it only an ingest that writes no row fails.
    #[arg(long, value_name = "FRACTION")]
    pub max_rejected: Option<f64>,
}

/// Runs the ingest and prints its summary to stdout.
pub fn run_ingest(args: &IngestArgs) -> anyhow::Result<()> {
    let opts = IngestOptions {
        format: args.format.into(),
        inputs: args.input.clone(),
        output: args.output.clone(),
        split: args.split.clone(),
        strict: args.strict,
        max_rejected: args.max_rejected,
        progress: true,
    };
    let report = shiftlab_data::ingest(&opts).with_context(|| {
        format!(
            "ingest of {} ({}) failed",
            opts.describe_inputs(),
            opts.format
        )
    })?;
    println!("{report}");
    Ok(())
}
