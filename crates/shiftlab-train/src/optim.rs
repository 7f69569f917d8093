//! SGD with momentum, optionally with LARS's layer-wise rates, and a cosine learning-rate
//! schedule with linear warm-up.
//!
//! Why SGD by default, for every method: at the batch sizes a CPU or one GPU affords for
//! 28–64 px images (≤ 512), solo-learn and the SimSiam CIFAR recipe train these methods with
//! SGD, and one update rule keeps the comparison about the objectives. LARS (the optimiser of
//! the SimCLR, BYOL, SwAV and Barlow Twins papers) is there for larger batches and budgets; on
//! the Fashion-MNIST zoo's budget it did not help Barlow Twins (docs/training.md has the
//! numbers). Weight decay and the LARS ratio skip 1-d tensors (biases, BatchNorm), as the
//! LARS recipes do.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Serialize;
use tch::Tensor;

use crate::net::Named;

/// The update rule; both use momentum and the cosine schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    #[default]
    Sgd,
    /// LARS with trust coefficient [`LARS_ETA`] ([`Sgd::lars`]).
    Lars,
}

/// LARS trust coefficient η (solo-learn's small-image value).
pub const LARS_ETA: f64 = 0.02;

impl Optimizer {
    /// The state for this rule.
    pub fn build(self, momentum: f64, weight_decay: f64) -> Sgd {
        match self {
            Optimizer::Sgd => Sgd::new(momentum, weight_decay),
            Optimizer::Lars => Sgd::lars(momentum, weight_decay, LARS_ETA),
        }
    }

    /// For the sidecar.
    pub fn describe(self) -> String {
        match self {
            Optimizer::Sgd => "sgd-momentum, cosine schedule with linear warm-up".into(),
            Optimizer::Lars => format!(
                "lars (eta {LARS_ETA}, clipped), momentum, cosine schedule with linear warm-up"
            ),
        }
    }
}

impl FromStr for Optimizer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sgd" => Ok(Optimizer::Sgd),
            "lars" => Ok(Optimizer::Lars),
            _ => Err(format!("unknown optimizer '{s}' (expected sgd or lars)")),
        }
    }
}

/// SGD state: one momentum buffer per parameter name.
#[derive(Debug, Default)]
pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    /// LARS trust coefficient η; `None`: plain SGD.
    pub lars_eta: Option<f64>,
    pub buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    pub fn new(momentum: f64, weight_decay: f64) -> Sgd {
        Sgd {
            momentum,
            weight_decay,
            lars_eta: None,
            buffers: BTreeMap::new(),
        }
    }

    /// LARS as solo-learn runs it for small images: for each weight (≥ 2-d) the update
    /// `g + wd·p` is scaled by `min(η‖p‖ / (‖g‖ + wd‖p‖) / lr, 1)`, so a layer moves by at
    /// most η‖p‖ per unit of gradient direction whatever the loss's scale ("clipped" LARS:
    /// never faster than plain SGD).
    pub fn lars(momentum: f64, weight_decay: f64, eta: f64) -> Sgd {
        Sgd {
            lars_eta: Some(eta),
            ..Sgd::new(momentum, weight_decay)
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

    /// `buf ← m·buf + (g + wd·p)·r`, `p ← p − lr·buf` (PyTorch's SGD; `r` = 1, or the LARS
    /// ratio of [`Sgd::lars`]).
    pub fn step(&mut self, params: &Named, lr: f64) {
        let _guard = tch::no_grad_guard();
        for (name, p) in params {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let ratio = match self.lars_eta {
                Some(eta) if p.dim() > 1 => lars_ratio(p, &g, eta, self.weight_decay, lr),
                _ => 1.0,
            };
            let g = if p.dim() > 1 && self.weight_decay > 0.0 {
                g + p * self.weight_decay
            } else {
                g
            };
            let g = if ratio != 1.0 { g * ratio } else { g };
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

/// The clipped LARS factor of one weight tensor (1 when either norm is 0 or `lr` is 0).
fn lars_ratio(p: &Tensor, g: &Tensor, eta: f64, weight_decay: f64, lr: f64) -> f64 {
    let norm = |t: &Tensor| t.norm().to_kind(tch::Kind::Double).double_value(&[]);
    let (pn, gn) = (norm(p), norm(g));
    if pn == 0.0 || gn == 0.0 || lr <= 0.0 {
        return 1.0;
    }
    (eta * pn / (gn + weight_decay * pn) / lr).min(1.0)
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
    fn lars_scales_weights_by_the_trust_ratio_and_leaves_vectors_alone() {
        let w = Tensor::from_slice(&[3.0f32, 4.0])
            .view([1, 2])
            .set_requires_grad(true);
        let b = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let params: Named = [
            ("w".into(), w.shallow_clone()),
            ("b".into(), b.shallow_clone()),
        ]
        .into();
        let (eta, wd, lr) = (0.02, 0.1, 0.5);
        let mut sgd = Sgd::lars(0.9, wd, eta);
        Sgd::zero_grad(&params);
        // Gradients: w → 100·w (a loss on a large scale), b → 100.
        ((&w * &w).sum(tch::Kind::Float) * 50.0 + &b * 100.0)
            .sum(tch::Kind::Float)
            .backward();
        sgd.step(&params, lr);
        // By hand: ‖w‖ = 5, ‖g‖ = 500, ratio = 0.02·5 / (500 + 0.1·5) / 0.5 = 0.1/250.25.
        let ratio = 0.02 * 5.0 / (500.0 + 0.5) / 0.5;
        for (i, w0) in [3.0f64, 4.0].into_iter().enumerate() {
            let want = w0 - lr * ratio * (100.0 * w0 + wd * w0);
            assert!((w.double_value(&[0, i as i64]) - want).abs() < 1e-6, "{w}");
        }
        // The bias: plain SGD, no decay.
        assert!(
            (b.double_value(&[0]) - (1.0 - lr * 100.0)).abs() < 1e-4,
            "{b}"
        );
        // A small gradient: the ratio clips at 1 (plain SGD).
        let mut plain = Sgd::lars(0.9, 0.0, 10.0);
        let v = Tensor::from_slice(&[1.0f32, 1.0])
            .view([1, 2])
            .set_requires_grad(true);
        let one: Named = [("v".into(), v.shallow_clone())].into();
        (&v * 0.5).sum(tch::Kind::Float).backward();
        plain.step(&one, 0.1);
        assert!((v.double_value(&[0, 0]) - 0.95).abs() < 1e-6, "{v}");
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
