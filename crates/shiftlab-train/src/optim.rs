//! SGD with momentum and a cosine learning-rate schedule with linear warm-up.
//!
//! Why SGD rather than LARS or Adam: at the batch sizes a CPU or one GPU affords for 28–64 px
//! images (≤ 512), LARS's layer-wise trust ratio brings little (solo-learn and the SimSiam
//! CIFAR recipe train well with SGD), and plain SGD is the same update for all seven methods,
//! which keeps the comparison about the objectives. Weight decay skips 1-d tensors (biases,
//! BatchNorm), as the LARS recipes do.

use std::collections::BTreeMap;

use tch::Tensor;

use crate::net::Named;

/// SGD state: one momentum buffer per parameter name.
#[derive(Debug, Default)]
pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    pub buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    pub fn new(momentum: f64, weight_decay: f64) -> Sgd {
        Sgd {
            momentum,
            weight_decay,
            buffers: BTreeMap::new(),
        }
    }

    /// Clears the gradients of `params` before a backward pass.
    pub fn zero_grad(params: &Named) {
        for p in params.values() {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// `buf ← m·buf + (g + wd·p)`, `p ← p − lr·buf` (PyTorch's SGD).
    pub fn step(&mut self, params: &Named, lr: f64) {
        let _guard = tch::no_grad_guard();
        for (name, p) in params {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let g = if p.dim() > 1 && self.weight_decay > 0.0 {
                g + p * self.weight_decay
            } else {
                g
            };
            let buf = match self.buffers.get(name) {
                Some(b) => b * self.momentum + g,
                // A copy: `g` may be the gradient itself, which the next zero_grad clears.
                None => g.copy(),
            };
            let _ = p.shallow_clone().g_sub_(&(&buf * lr));
            self.buffers.insert(name.clone(), buf);
        }
    }
}

/// Learning rate at `step` of `total`: linear warm-up over `warmup` steps, then cosine to 0.
pub fn cosine_lr(base: f64, step: usize, total: usize, warmup: usize) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let t = ((step - warmup) as f64 / span).min(1.0);
    base * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert!((cosine_lr(1.0, 0, 100, 10) - 0.1).abs() < 1e-12);
        assert!((cosine_lr(1.0, 9, 100, 10) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 100, 10) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 55, 100, 10) - 0.5).abs() < 1e-12);
        assert!(cosine_lr(1.0, 100, 100, 10).abs() < 1e-12);
    }

    #[test]
    fn sgd_matches_hand_computation() {
        let p = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0])
            .view([2, 2])
            .set_requires_grad(true);
        let params: Named = [("w".to_string(), p.shallow_clone())].into();
        let mut sgd = Sgd::new(0.9, 0.1);
        for _ in 0..2 {
            Sgd::zero_grad(&params);
            (&p * &p).sum(tch::Kind::Float).backward();
            sgd.step(&params, 0.01);
        }
        // One coordinate by hand: g = 2p + 0.1p.
        let (mut x, mut buf) = (1.0f64, 0.0f64);
        for i in 0..2 {
            let g = 2.1 * x;
            buf = if i == 0 { g } else { 0.9 * buf + g };
            x -= 0.01 * buf;
        }
        assert!((p.double_value(&[0, 0]) - x).abs() < 1e-6);
    }

    #[test]
    fn momentum_survives_zero_grad_for_vectors() {
        // 1-d tensors skip weight decay: the first buffer must not alias the gradient.
        let p = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let params: Named = [("b".to_string(), p.shallow_clone())].into();
        let mut sgd = Sgd::new(0.9, 0.1);
        for _ in 0..2 {
            Sgd::zero_grad(&params);
            (&p * 2.0).sum(tch::Kind::Float).backward();
            sgd.step(&params, 0.1);
        }
        // Gradient 2 both times: 1 − 0.1·2 − 0.1·(0.9·2 + 2).
        assert!((p.double_value(&[0]) - 0.42).abs() < 1e-6, "{p}");
    }
}
