//! What libtorch this process runs on, and whether CUDA is usable.

use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Version of the libtorch this binary was built against (checked by the build script).
pub const BUILT_LIBTORCH_VERSION: &str = env!("SHIFTLAB_LIBTORCH_VERSION");

/// Outcome of loading the CUDA half of libtorch.
#[derive(Debug, Clone)]
pub enum CudaBackend {
    /// `libtorch_cuda.so` loaded from this path.
    Loaded(String),
    /// It could not be loaded; the loader's message says why.
    Unavailable(String),
}

static CUDA_BACKEND: OnceLock<CudaBackend> = OnceLock::new();

/// Loads `libtorch_cuda.so` once, globally, so tch sees the CUDA backend. Safe to call often.
pub fn load_cuda_backend() -> &'static CudaBackend {
    CUDA_BACKEND.get_or_init(|| {
        let name = CString::new("libtorch_cuda.so").expect("static name has no NUL");
        // SAFETY: dlopen with a valid C string; the handle is intentionally never closed.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if handle.is_null() {
            // SAFETY: dlerror returns a thread-local C string or null.
            let msg = unsafe { libc::dlerror() };
            let reason = if msg.is_null() {
                "unknown dlopen error".to_string()
            } else {
                unsafe { CStr::from_ptr(msg) }
                    .to_string_lossy()
                    .into_owned()
            };
            CudaBackend::Unavailable(reason)
        } else {
            CudaBackend::Loaded(library_path("libtorch_cuda.so").unwrap_or_default())
        }
    })
}

/// Facts about the running libtorch, for `shiftlab info` and the `runs` table.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    pub built_version: &'static str,
    /// Version read next to the `libtorch_cpu.so` actually mapped into this process.
    pub loaded_version: Option<String>,
    pub loaded_library: Option<String>,
    pub cuda_backend: CudaBackend,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    pub cudnn_available: bool,
    pub torch_threads: i32,
    pub torch_interop_threads: i32,
}

impl RuntimeInfo {
    /// Gathers the facts (loads the CUDA backend first).
    pub fn collect() -> Self {
        let cuda_backend = load_cuda_backend().clone();
        // Touch libtorch so its library is mapped before we look for it.
        let torch_threads = tch::get_num_threads();
        let loaded_library = library_path("libtorch_cpu.so");
        let loaded_version = loaded_library.as_deref().and_then(version_beside);
        RuntimeInfo {
            built_version: BUILT_LIBTORCH_VERSION,
            loaded_version,
            loaded_library,
            cuda_backend,
            cuda_available: tch::Cuda::is_available(),
            cuda_devices: tch::Cuda::device_count(),
            cudnn_available: tch::Cuda::cudnn_is_available(),
            torch_threads,
            torch_interop_threads: tch::get_num_interop_threads(),
        }
    }
}

/// Path of a shared library mapped into this process, from `/proc/self/maps`.
fn library_path(file_name: &str) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.rsplit('/').next() == Some(file_name))
        .map(str::to_string)
}

/// Reads `torch/version.py` beside `torch/lib/<library>` (the PyPI wheel layout).
fn version_beside(library: &str) -> Option<String> {
    let lib_dir = PathBuf::from(library).parent()?.to_path_buf();
    let text = std::fs::read_to_string(lib_dir.parent()?.join("version.py")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("__version__ = '"))
        .and_then(|l| l.split('\'').next())
        .map(str::to_string)
}
