//! The one random generator of a training run. Why not libtorch's: its global generator is
//! shared by every thread of the process, so seeding it does not make a run reproducible, and
//! its state is awkward to checkpoint. Ours is a single `u64` (SplitMix64), saved with each
//! checkpoint so a resumed run draws exactly what an uninterrupted one would.

use tch::Tensor;

/// SplitMix64: tiny, well mixed, state is one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed ^ 0x5eed_5eed_d1ce_0001,
        }
    }

    /// Restores a generator from [`Rng::state`].
    pub fn from_state(state: u64) -> Rng {
        Rng { state }
    }

    pub fn state(&self) -> u64 {
        self.state
    }

    pub fn next_u64(&mut self) -> u64 {
        shiftlab_common::splitmix64(&mut self.state)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in 0..=n (inclusive), n small.
    pub fn below_incl(&mut self, n: i64) -> i64 {
        if n <= 0 {
            return 0;
        }
        (self.next_u64() % (n as u64 + 1)) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A permutation of 0..n (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<i64> {
        let mut v: Vec<i64> = (0..n as i64).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    }

    /// A float32 CPU tensor of `shape` with values uniform in [-bound, bound).
    pub fn uniform_tensor(&mut self, shape: &[i64], bound: f64) -> Tensor {
        let n: i64 = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| self.range(-bound, bound) as f32).collect();
        Tensor::from_slice(&v).view(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_state_continues_the_stream() {
        let mut a = Rng::new(3);
        a.next_u64();
        let mut b = Rng::from_state(a.state());
        assert_eq!(a.next_u64(), b.next_u64());
        let p = a.permutation(10);
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
        assert_ne!(Rng::new(3).next_u64(), Rng::new(4).next_u64());
    }
}
