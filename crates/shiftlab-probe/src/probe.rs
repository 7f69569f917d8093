//! Probes on frozen features, on libtorch through `tch` (feature `torch`).
//!
//! * [`knn`]: weighted k-nearest-neighbour classifier as in DINO's `eval_knn.py`.
//! * [`linear`]: multinomial logistic regression trained on the features' device.
//! * [`head`]: a given linear head (torchvision's `fc`) read from safetensors.
//! * [`outputs`]: per-sample predictions, top-5, confidence, correctness; cosine similarity of a
//!   shifted embedding to its clean twin.

pub mod error;
pub mod head;
pub mod knn;
pub mod linear;
pub mod outputs;
mod rng;

pub use error::ProbeError;
pub use knn::{KnnClassifier, KnnConfig};
pub use linear::{LinearProbe, LinearProbeConfig};
pub use outputs::{
    cosine_to_clean, ece, outputs_from_logits, outputs_from_scores, outputs_from_scores_within,
    restrict_scores, SampleOutput,
};
