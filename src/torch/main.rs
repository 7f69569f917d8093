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
    keep_freed_memory();
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

/// Lets glibc keep freed blocks of up to 32 MiB and up to 1 GiB of free heap instead of
/// handing them back to the kernel (a larger threshold measured the same): libtorch frees every
/// step's activations, and with the defaults each step faults their pages in again (measured
/// in docs/training.md, "The allocator": a fifth of a DINO run's CPU time). Skipped where the user set glibc's own `MALLOC_MMAP_THRESHOLD_` or
/// `MALLOC_TRIM_THRESHOLD_`. Returns whether the allocator took the settings.
fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_set = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        if user_set {
            return false;
        }
        // SAFETY: mallopt only changes the allocator's parameters (under its own lock).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
                && libc::mallopt(libc::M_TOP_PAD, 64 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
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

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    #[test]
    fn a_16_mib_block_comes_from_the_heap() {
        // glibc's default mmap threshold (128 KiB) maps a 16 MiB block and unmaps it on free.
        // (The trim setting is not checked: in a test thread's arena the default keeps it too.)
        const SIZE: usize = 16 << 20;
        assert!(super::keep_freed_memory());
        // SAFETY: a plain malloc/free pair; mallinfo2 only reads the allocator's counters.
        unsafe {
            let mapped = libc::mallinfo2().hblkhd;
            let p = libc::malloc(SIZE);
            assert!(!p.is_null());
            let mapped_after = libc::mallinfo2().hblkhd;
            libc::free(p);
            assert!(mapped_after < mapped + SIZE, "the block was mmapped");
            assert!(
                libc::mallinfo2().fordblks >= SIZE,
                "the freed block was trimmed"
            );
        }
    }
}
