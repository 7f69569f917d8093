//! Small pieces shared by every shiftlab crate, so that each exists once: the atomic file writer
//! (unique temporary name, fsync of file and folder, rename), the SplitMix64 seeder, and the id of
//! the running invocation (host and pid) that temporary names and lock files carry.
//!
//! No dependencies: the light crates (corruptions, data) can use it without growing.

pub mod atomic;
pub mod invocation;
pub mod seed;

pub use atomic::{remove_stale_temporaries, write_atomic, AtomicFile};
pub use invocation::Invocation;
pub use seed::{splitmix64, SplitMix64};
