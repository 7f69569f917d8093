//! The `shiftlab` command line: a thin layer over the library crates.

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

#[derive(Subcommand, Debug)]
enum Command {
    /// Print versions, libtorch, CUDA availability and thread counts.
    Info,
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
    Validate(commands::pipeline::ValidateArgs),
    /// Run (or resume) a pipeline file.
    Run(commands::pipeline::RunArgs),
    /// Robustness metrics (CE, mCE, relative mCE) from an external table of errors.
    Metrics(commands::metrics::MetricsArgs),
    /// SQL over run folders, with metric views (robustness, mCE, drift).
    Query(commands::query::QueryArgs),
    /// An HTML page, SVG figures and a Markdown summary of run folders.
    Report(commands::report::ReportArgs),
    /// Train an encoder (SimCLR, SimSiam, BYOL, Barlow Twins, SwAV, DINO, supervised).
    Train(commands::train::TrainArgs),
}

fn main() -> ExitCode {
    // Die quietly when a pipe reader (e.g. `head`) goes away, as command-line tools do.
    // SAFETY: setting a signal disposition to its default at start-up, before any threads.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before anything asks libtorch about CUDA (see shiftlab_model::runtime).
    shiftlab_model::load_cuda_backend();
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
        Command::Info => info(),
        Command::Ingest(args) => commands::ingest::run_ingest(&args),
        Command::Inspect { file } => inspect(&file),
        Command::Corrupt(args) => commands::corrupt::run_corrupt(&args),
        Command::Gallery(args) => commands::corrupt::run_gallery(&args),
        Command::ShiftDataset(args) => commands::shift_dataset::run_shift_dataset(&args),
        Command::Validate(args) => commands::pipeline::run_validate(&args),
        Command::Run(args) => commands::pipeline::run_run(&args),
        Command::Metrics(args) => commands::metrics::run_metrics(&args),
        Command::Train(args) => commands::train::run_train(&args),
        Command::Query(args) => commands::query::run_query(&args),
        Command::Report(args) => commands::report::run_report(&args),
    }
}

fn info() -> anyhow::Result<()> {
    use shiftlab_model::CudaBackend;
    let rt = shiftlab_model::RuntimeInfo::collect();
    println!("shiftlab                  {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch (built against)  {}", rt.built_version);
    println!(
        "libtorch (loaded)         {} from {}",
        rt.loaded_version.as_deref().unwrap_or("unknown"),
        rt.loaded_library.as_deref().unwrap_or("unknown")
    );
    match &rt.cuda_backend {
        CudaBackend::Loaded(path) => println!("libtorch_cuda             loaded from {path}"),
        CudaBackend::Unavailable(why) => println!("libtorch_cuda             not loaded: {why}"),
    }
    println!(
        "CUDA usable               {} ({} device(s), cuDNN {})",
        if rt.cuda_available { "yes" } else { "no" },
        rt.cuda_devices,
        if rt.cudnn_available { "yes" } else { "no" }
    );
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("CPU cores                 {cores}");
    println!("torch intra-op threads    {}", rt.torch_threads);
    println!("torch inter-op threads    {}", rt.torch_interop_threads);
    Ok(())
}

fn inspect(file: &std::path::Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(shiftlab_results::inspect_dataset(file))?;
    print!("{report}");
    Ok(())
}
