//! The corruptions, grouped as in the paper. Each takes an RGB image and returns one.

pub mod blur;
pub mod digital;
pub mod jpeg;
pub mod noise;
pub mod spatter;
pub mod weather;
