//! Training the native ResNets of `shiftlab-model` on tch with seven methods: SimCLR, SimSiam,
//! BYOL, Barlow Twins, SwAV, DINO and supervised. The output is the trunk alone under
//! torchvision names (loadable by `shiftlab_model::Encoder`) plus a JSON sidecar.
//!
//! Entry points: [`train::train_file`] (what `shiftlab train` runs) or [`train::train`] on a
//! [`data::TrainData`]; [`method::Learner`] and [`train::step`] for single steps. Every random
//! choice comes from [`rng::Rng`] (seeded), so CPU runs are reproducible. See `docs/training.md`.

pub mod augment;
pub mod checkpoint;
pub mod data;
pub mod losses;
pub mod method;
pub mod net;
pub mod optim;
pub mod rng;
pub mod train;

pub use method::{Hyper, Learner, Method, Trunk};
pub use optim::{Optimizer, LARS_ETA};
pub use train::{train, train_file, StepReport, Summary, TrainConfig};

/// Sets libtorch's intra-op thread count (for sharing a machine), without the caller linking
/// `tch` itself.
pub fn set_threads(n: i32) {
    tch::set_num_threads(n.max(1));
}
