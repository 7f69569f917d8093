//! `shiftlab ingest`: a data set in its published layout -> the canonical dataset table.
//! The logic lives in `shiftlab_data::ingest`; this only maps arguments and prints the summary.

use std::path::PathBuf;

use anyhow::Context;
use shiftlab_data::{Format, IngestOptions};

/// Input layouts `shiftlab ingest` understands.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// MNIST IDX files (train-/t10k-images-idx3-ubyte, -labels-idx1-ubyte; .gz or not).
    Mnist,
    /// Fashion-MNIST, same IDX layout, with its ten class names.
    FashionMnist,
    /// torchvision ImageFolder: <class>/<image files>, as ImageNet's val set.
    Imagefolder,
    /// ImageNet-C: <corruption>/<severity>/<class>/<image files>.
    ImagenetC,
    /// CIFAR-10, binary (*.bin) or python (pickled) batches, detected.
    Cifar10,
    /// CIFAR-10-C: <corruption>.npy (5 severities stacked) and labels.npy.
    Cifar10C,
    /// A Hugging Face `datasets` Parquet export (image struct + label), validated.
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
/// Nothing is left at OUTPUT unless the whole run succeeds.
#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Input layout.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// Input directory (a file for --format parquet).
    #[arg(long, value_name = "PATH")]
    pub input: PathBuf,
    /// Output Parquet file (written atomically).
    #[arg(long, value_name = "FILE.parquet")]
    pub output: PathBuf,
    /// imagefolder, imagenet-c, cifar10-c, parquet: the split name (default "test"; parquet
    /// guesses from a train-/test-/validation- file name first). mnist, fashion-mnist, cifar10:
    /// ingest only this split (train or test).
    #[arg(long, value_name = "NAME")]
    pub split: Option<String>,
    /// Stop at the first bad input instead of recording and skipping it.
    #[arg(long)]
    pub strict: bool,
}

/// Runs the ingest and prints its summary to stdout.
pub fn run_ingest(args: &IngestArgs) -> anyhow::Result<()> {
    let opts = IngestOptions {
        format: args.format.into(),
        input: args.input.clone(),
        output: args.output.clone(),
        split: args.split.clone(),
        strict: args.strict,
        progress: true,
    };
    let report = shiftlab_data::ingest(&opts).with_context(|| {
        format!(
            "ingest of {} ({}) failed",
            args.input.display(),
            opts.format
        )
    })?;
    println!("{report}");
    Ok(())
}
