//! The `shiftlab` command line: a thin layer over the library crates.
//!
//! This program links no libtorch: the commands that need no model run here and start in
//! milliseconds; the ones that do (run, train, info, submit, ...) are handed, with their
//! arguments, to the `shiftlab-torch` program installed beside this one (`exec`: signals and
//! the exit code are that program's).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod commands;

#[derive(Parser, Debug)]
#[command(
    name = "shiftlab",
    version,
    about = "Robustness of learned image representations to corruptions and distribution shifts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Arguments handed on unchanged to `shiftlab-torch` (which parses them, `--help` included).
#[derive(clap::Args, Debug)]
struct Forwarded {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print versions, libtorch, CUDA availability and thread counts.
    #[command(disable_help_flag = true)]
    Info(Forwarded),
    /// Convert a dataset (IDX, ImageFolder, ImageNet-C, CIFAR-10(-C), HF Parquet) to Parquet.
    Ingest(commands::ingest::IngestArgs),
    /// Rows per split, per class and per corruption/severity of a dataset Parquet file (via SQL).
    Inspect {
        /// A dataset table written by `shiftlab ingest`.
        file: PathBuf,
    },
    /// Apply one corruption or synthetic shift at one severity to an image (PNG/JPEG in, PNG out).
    Corrupt(commands::corrupt::CorruptArgs),
    /// One labelled picture: the clean image and every corruption and shift at every severity.
    Gallery(commands::corrupt::GalleryArgs),
    /// Shifted copies of a dataset table's split (synthetic shifts or corruptions x severities).
    ShiftDataset(commands::shift_dataset::ShiftDatasetArgs),
    /// Check a pipeline file without running it.
    #[command(disable_help_flag = true)]
    Validate(Forwarded),
    /// Run (or resume, or join as one shard) a pipeline file.
    #[command(disable_help_flag = true)]
    Run(Forwarded),
    /// Split a pipeline's run over a cluster scheduler (slurm; k8s manifests).
    #[command(disable_help_flag = true)]
    Submit(Forwarded),
    /// Parts finished and missing, the invocations that ran; exit 0 only when complete.
    #[command(disable_help_flag = true)]
    Status(Forwarded),
    /// Write `metrics` of a run folder whose parts are all finished.
    #[command(disable_help_flag = true)]
    Finish(Forwarded),
    /// Robustness metrics (CE, mCE, relative mCE) from an external table of errors.
    Metrics(commands::metrics::MetricsArgs),
    /// SQL over run folders, with metric views (robustness, mCE, drift).
    Query(commands::query::QueryArgs),
    /// An HTML page, SVG figures and a Markdown summary of run folders.
    Report(commands::report::ReportArgs),
    /// Train an encoder (SimCLR, SimSiam, BYOL, Barlow Twins, SwAV, DINO, supervised).
    #[command(disable_help_flag = true)]
    Train(Forwarded),
}

fn main() -> ExitCode {
    // Die quietly when a pipe reader (e.g. `head`) goes away, as command-line tools do.
    // SAFETY: setting a signal disposition to its default at start-up, before any threads.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Ingest(args) => commands::ingest::run_ingest(&args),
        Command::Inspect { file } => inspect(&file),
        Command::Corrupt(args) => commands::corrupt::run_corrupt(&args),
        Command::Gallery(args) => commands::corrupt::run_gallery(&args),
        Command::ShiftDataset(args) => commands::shift_dataset::run_shift_dataset(&args),
        Command::Metrics(args) => commands::metrics::run_metrics(&args),
        Command::Query(args) => commands::query::run_query(&args),
        Command::Report(args) => commands::report::run_report(&args),
        Command::Info(f) => hand_on("info", f),
        Command::Validate(f) => hand_on("validate", f),
        Command::Run(f) => hand_on("run", f),
        Command::Submit(f) => hand_on("submit", f),
        Command::Status(f) => hand_on("status", f),
        Command::Finish(f) => hand_on("finish", f),
        Command::Train(f) => hand_on("train", f),
    }
}

/// Replaces this process with `shiftlab-torch COMMAND ARGS...` (`SHIFTLAB_TORCH` overrides
/// where it is).
fn hand_on(command: &str, forwarded: Forwarded) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let program = torch_program()?;
    let err = std::process::Command::new(&program)
        .arg(command)
        .args(forwarded.args)
        .exec();
    Err(err).with_context(|| {
        format!(
            "cannot start {} for `shiftlab {command}`",
            program.display()
        )
    })
}

fn torch_program() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("SHIFTLAB_TORCH") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot find where this program is")?;
    let beside = exe.with_file_name("shiftlab-torch");
    if beside.is_file() {
        return Ok(beside);
    }
    anyhow::bail!(
        "this command needs libtorch, which this program does not link: {} was not found \
         (build it with `cargo build --bins`, the default `torch` feature, and keep it beside \
         `shiftlab`; or point SHIFTLAB_TORCH at it)",
        beside.display()
    )
}

fn inspect(file: &std::path::Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(shiftlab_results::inspect_dataset(file))?;
    print!("{report}");
    Ok(())
}
