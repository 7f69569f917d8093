//! Encoders on libtorch through `tch`: runtime facts (version, CUDA), device choice, native
//! ResNets with torchvision names and ViTs with timm names loaded from safetensors, TorchScript
//! models, preprocessing.
//!
//! Module graph (no cycles): `resnet` → `inference` → `layers` ← `resnet`; `vit` stands
//! alone; `weights` fills both; `encoder` wires config, weights and networks.
//!
//! Linking drops `libtorch_cuda.so` because no symbol in it is called directly, so CUDA would
//! look absent even on a GPU machine. [`load_cuda_backend`] `dlopen`s it with `RTLD_GLOBAL`
//! before the first question about CUDA; where it is missing (CPU-only libtorch, no driver) the
//! reason is kept and reported, and everything runs on the CPU.
//!
//! Entry point: [`ModelConfig`] (a `[[models]]` TOML entry) → [`Encoder::from_config`] →
//! [`Encoder::embed`]. See `docs/models.md`.

pub mod config;
pub mod device;
pub mod encoder;
pub mod error;
pub mod inference;
mod layers;
pub mod preprocess;
pub mod resnet;
pub mod runtime;
mod seeded;
pub mod vit;
pub mod weights;

pub use config::{validate_models, ModelConfig, ModelSpec, Normalize, Source};
pub use device::{DeviceSpec, Precision, RuntimeOptions};
pub use encoder::{Encoder, EncoderInfo};
pub use error::{ModelError, Result};
pub use inference::InferenceResNet;
pub use preprocess::Preprocess;
pub use resnet::{Architecture, ResNet, DEFAULT_WIDTH};
pub use runtime::{load_cuda_backend, CudaBackend, RuntimeInfo};
pub use vit::{Pool, VisionTransformer, VitArch};
pub use weights::{LinearHead, LoadReport};
