//! The seeded generator of shuffles (the workspace's one SplitMix64), so they do not depend on
//! libtorch's global RNG, which parallel tests and other callers share.

pub(crate) use shiftlab_common::SplitMix64;
