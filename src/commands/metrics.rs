//! `shiftlab metrics`: ImageNet-C metrics from an external table of errors (e.g. published
//! numbers), so they can be put beside a run's own. The logic lives in `shiftlab_metrics`.

use std::path::PathBuf;

use shiftlab_metrics::metrics::{summarize, summarize_unnormalised};
use shiftlab_metrics::report::format_summary;
use shiftlab_metrics::table::read_error_files;
use shiftlab_metrics::{AlexNetTable, ErrorUnit};

/// How the error values in the input files are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnitArg {
    /// Errors as fractions, 0..1 (0.239).
    #[default]
    Fraction,
    /// Errors as percentages, 0..100 (23.9).
    Percent,
}

/// Whether CE and mCE are normalised by AlexNet's ImageNet-C errors.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormaliserArg {
    /// ImageNet-C: CE, mCE and relative mCE against AlexNet.
    #[default]
    Alexnet,
    /// No normaliser (CIFAR-10-C, Tiny-ImageNet-C): mean error and mean accuracy only.
    None,
}

/// ImageNet-C metrics (mCE, relative mCE, mean error, per-corruption CE) from a table of errors.
#[derive(clap::Args, Debug)]
pub struct MetricsArgs {
    /// CSV with columns model,corruption,severity,error (severities 1..5; `#` lines are
    /// comments). Rows with corruption `clean` and severity 0 (or empty) give clean errors.
    #[arg(long, value_name = "FILE.csv")]
    pub errors: PathBuf,
    /// Optional CSV with columns model,error holding clean errors (instead of `clean` rows).
    #[arg(long, value_name = "FILE.csv")]
    pub clean: Option<PathBuf>,
    /// Unit of the error values in both files.
    #[arg(long, value_enum, default_value_t = UnitArg::Fraction)]
    pub unit: UnitArg,
    /// `none` for datasets without an AlexNet reference (presets cifar32, tiny64).
    #[arg(long, value_enum, default_value_t = NormaliserArg::Alexnet)]
    pub normaliser: NormaliserArg,
}

/// Reads the tables and prints, per model: clean error, AlexNet-normalised mCE, relative mCE,
/// unnormalised mean error over the 15 and 19 corruptions, and per-corruption CE.
pub fn run_metrics(args: &MetricsArgs) -> anyhow::Result<()> {
    print!("{}", render_metrics(args)?);
    Ok(())
}

/// The report `run_metrics` prints, one block per model.
pub fn render_metrics(args: &MetricsArgs) -> anyhow::Result<String> {
    let unit = match args.unit {
        UnitArg::Fraction => ErrorUnit::Fraction,
        UnitArg::Percent => ErrorUnit::Percent,
    };
    // The errors name the file and its rows already.
    let models = read_error_files(&args.errors, args.clean.as_deref(), unit)?;
    anyhow::ensure!(!models.is_empty(), "{} has no rows", args.errors.display());
    let alexnet = AlexNetTable::embedded();
    let blocks: Vec<String> = models
        .iter()
        .map(|m| match args.normaliser {
            NormaliserArg::Alexnet => summarize(m, alexnet),
            NormaliserArg::None => summarize_unnormalised(m),
        })
        .map(|s| format_summary(&s))
        .collect();
    Ok(blocks.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MetricsArgs,
    }

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics")
    }

    fn render(argv: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from(std::iter::once("metrics").chain(argv.iter().copied()))?;
        render_metrics(&cli.args)
    }

    #[test]
    fn published_resnet50_table_renders_its_mce() -> anyhow::Result<()> {
        let file = fixtures().join("resnet50_game_of_noise_means.csv");
        let path = file.to_string_lossy();
        let text = render(&["--errors", path.as_ref(), "--unit", "percent"])?;
        assert!(
            text.contains("mCE (AlexNet-normalised, 15 benchmark)     76.62"),
            "{text}"
        );
        assert!(text.contains("clean error"), "{text}");
        Ok(())
    }

    #[test]
    fn without_normaliser_prints_mean_accuracy_not_mce() -> anyhow::Result<()> {
        let file = fixtures().join("resnet50_game_of_noise_means.csv");
        let path = file.to_string_lossy();
        let argv = [
            "--errors",
            path.as_ref(),
            "--unit",
            "percent",
            "--normaliser",
            "none",
        ];
        let text = render(&argv)?;
        assert!(!text.contains("mCE"), "{text}");
        // 100 - 60.776 (mean of the 15 mean errors) = 39.22 %, as the source prints.
        assert!(text.contains("39.22 %"), "{text}");
        Ok(())
    }

    #[test]
    fn bad_rows_are_reported_with_their_numbers() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("bad.csv");
        std::fs::write(&file, "model,corruption,severity,error\nm,fog,7,0.5\n")?;
        let path = file.to_string_lossy();
        let err = render(&["--errors", path.as_ref()])
            .err()
            .map(|e| format!("{e:#}"));
        let msg = err.unwrap_or_default();
        assert!(msg.contains("row 2: severity 7 outside 1..5"), "{msg}");
        Ok(())
    }
}
