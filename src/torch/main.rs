//! `shiftlab-torch`: the commands of `shiftlab` that need libtorch (a model, a GPU, training).
//! `shiftlab` hands them here with their arguments; it can also be called directly.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod pipeline;
mod submit;
mod train;

#[derive(Parser, Debug)]
#[command(
    name = "shiftlab",
    version,
    about = "shiftlab's commands that need libtorch (run through `shiftlab`)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print versions, libtorch, CUDA availability and thread counts.
    Info,
    /// Check a pipeline file without running it.
    Validate(pipeline::ValidateArgs),
    /// Run (or resume, or join as one shard) a pipeline file.
    Run(pipeline::RunArgs),
    /// Split a pipeline's run over a cluster scheduler.
    #[command(subcommand)]
    Submit(submit::SubmitCommand),
    /// Parts finished and missing, the invocations that ran; exit 0 only when complete.
    Status(pipeline::StatusArgs),
    /// Write `metrics` of a run folder whose parts are all finished.
    Finish(pipeline::FinishArgs),
    /// Train an encoder (SimCLR, SimSiam, BYOL, Barlow Twins, SwAV, DINO, supervised).
    Train(train::TrainArgs),
}

fn main() -> ExitCode {
    // SAFETY: setting a signal disposition to its default at start-up, before any threads.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before anything asks libtorch about CUDA (see shiftlab_model::runtime).
    shiftlab_model::load_cuda_backend();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(),
        Command::Validate(args) => pipeline::run_validate(&args).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => pipeline::run_run(&args),
        Command::Submit(cmd) => submit::run_submit(&cmd),
        Command::Status(args) => pipeline::run_status(&args),
        Command::Finish(args) => pipeline::run_finish(&args).map(|()| ExitCode::SUCCESS),
        Command::Train(args) => train::run_train(&args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn info() -> anyhow::Result<ExitCode> {
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
    Ok(ExitCode::SUCCESS)
}
