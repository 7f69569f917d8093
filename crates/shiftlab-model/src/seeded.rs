//! Reproducible random weights: a counter-based generator keyed by a seed and the tensor's
//! name. libtorch's global generator is shared by all threads, so seeding it would not make
//! the weights reproducible while other threads draw from it.

use tch::Tensor;

/// Normal values of standard deviation `std` for the tensor `name` of shape `size`
/// (Box-Muller on two uniform draws of the tensor's own SplitMix64 stream).
pub(crate) fn normal(name: &str, seed: u64, size: &[i64], std: f64) -> Tensor {
    let mut state = name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let n: i64 = size.iter().product();
    let mut uniform = || -> Tensor {
        let v: Vec<f32> = (0..n)
            .map(|_| unit_interval(splitmix64(&mut state)))
            .collect();
        Tensor::from_slice(&v)
    };
    let (u1, u2) = (uniform(), uniform());
    let normal = (u1.log() * -2.0).sqrt() * (u2 * std::f64::consts::TAU).cos() * std;
    normal.view(size)
}

/// SplitMix64: a tiny, well-mixed generator, enough for initial weights.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The top 24 bits as a float in (0, 1] (never 0: it goes through a logarithm).
fn unit_interval(bits: u64) -> f32 {
    ((bits >> 40) as f32 + 1.0) / (1u64 << 24) as f32
}
