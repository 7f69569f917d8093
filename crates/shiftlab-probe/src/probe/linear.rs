//! Linear probe: multinomial logistic regression on frozen features, trained on their device.
//!
//! * Features are standardised per dimension with the training mean and standard deviation
//!   (kept in the probe and applied to queries), so one learning rate suits any encoder.
//! * Weights and bias start at zero (the objective is convex; no random init needed).
//! * Optimiser: Adam (tch `nn::Adam`) on mini-batches, cross-entropy loss, L2 regularisation
//!   through Adam's weight decay (adds `weight_decay x param` to every gradient, bias included).
//! * Batches come from a seeded SplitMix64 shuffle per epoch, independent of libtorch's global
//!   RNG, so training on the CPU is deterministic under a seed.

use tch::nn::{self, OptimizerConfig};
use tch::{Kind, Reduction, Tensor};

use super::error::{check_labels, matrix_dims, ProbeError};
use super::outputs::{outputs_from_logits, SampleOutput};
use super::rng::SplitMix64;

/// Linear-probe settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearProbeConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per Adam step.
    pub batch_size: i64,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// L2 penalty (Adam weight decay).
    pub weight_decay: f64,
    /// Seed of the batch shuffle.
    pub seed: u64,
}

impl Default for LinearProbeConfig {
    fn default() -> Self {
        Self {
            epochs: 100,
            batch_size: 256,
            learning_rate: 1e-2,
            weight_decay: 1e-4,
            seed: 0,
        }
    }
}

/// A trained linear probe: standardisation plus `logits = z · Wᵀ + b`.
#[derive(Debug)]
pub struct LinearProbe {
    mean: Tensor,
    std: Tensor,
    weight: Tensor,
    bias: Tensor,
    losses: Vec<f64>,
}

impl LinearProbe {
    /// Trains on features `[N, D]` and labels `[N]` in 0..classes, on the features' device.
    pub fn train(
        features: &Tensor,
        labels: &Tensor,
        classes: i64,
        config: &LinearProbeConfig,
    ) -> Result<Self, ProbeError> {
        check_config(config, classes)?;
        let (n, d) = matrix_dims(features, "training features")?;
        check_labels(labels, n, classes)?;
        let device = features.device();
        // float64 throughout: the fitted weights then agree to float32 precision whatever the
        // thread count libtorch splits the reductions over.
        let x = features.to_kind(Kind::Double);
        let mean = x.mean_dim(0, true, Kind::Double);
        let std = x.std_dim(0, false, true).clamp_min(1e-6);
        let data = Batches {
            z: (&x - &mean) / &std,
            y: labels.to_kind(Kind::Int64).to_device(device),
            batch_size: config.batch_size,
        };
        let mut vs = nn::VarStore::new(device);
        let weight = vs.root().zeros("weight", &[classes, d]);
        let bias = vs.root().zeros("bias", &[classes]);
        vs.double();
        let mut opt = nn::Adam::default()
            .wd(config.weight_decay)
            .build(&vs, config.learning_rate)?;
        let mut rng = SplitMix64::new(config.seed);
        let losses = (0..config.epochs)
            .map(|_| data.epoch(&mut rng, &mut opt, &weight, &bias))
            .collect();
        Ok(Self {
            mean,
            std,
            weight: weight.detach(),
            bias: bias.detach(),
            losses,
        })
    }

    /// Logits `[M, C]` for features `[M, D]`.
    pub fn logits(&self, features: &Tensor) -> Result<Tensor, ProbeError> {
        let (_, d) = matrix_dims(features, "features")?;
        let want = self.weight.size()[1];
        if d != want {
            return Err(ProbeError::Shape(format!(
                "features have {d} dimensions, the probe was trained on {want}"
            )));
        }
        // float64, so logits do not depend (beyond float32 rounding) on the rows per call or
        // the thread count: the pipeline's results must not change with its batch size.
        let double = |t: &Tensor| t.to_kind(Kind::Double);
        let x = double(&features.to_device(self.weight.device()));
        let z = (x - double(&self.mean)) / double(&self.std);
        Ok(tch::no_grad(|| {
            z.f_linear(&double(&self.weight), Some(&double(&self.bias)))
        })?)
    }

    /// Per-sample outputs (confidence = softmax maximum).
    pub fn predict(
        &self,
        features: &Tensor,
        labels: &Tensor,
    ) -> Result<Vec<SampleOutput>, ProbeError> {
        outputs_from_logits(&self.logits(features)?, labels)
    }

    /// Mean training cross-entropy of each epoch (as measured during the epoch).
    pub fn loss_history(&self) -> &[f64] {
        &self.losses
    }

    /// Weights `[C, D]` acting on standardised features.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

/// Standardised training data, cut into shuffled mini-batches.
struct Batches {
    z: Tensor,
    y: Tensor,
    batch_size: i64,
}

impl Batches {
    /// One pass in a fresh seeded order; returns the epoch's mean loss.
    fn epoch(
        &self,
        rng: &mut SplitMix64,
        opt: &mut nn::Optimizer,
        weight: &Tensor,
        bias: &Tensor,
    ) -> f64 {
        let n = self.z.size()[0];
        let device = self.z.device();
        let order = Tensor::from_slice(&rng.permutation(n as usize)).to_device(device);
        // Summed on the device: one host sync per epoch, not per step.
        let mut sum = Tensor::zeros([], (Kind::Double, device));
        for start in (0..n).step_by(self.batch_size as usize) {
            let idx = order.narrow(0, start, self.batch_size.min(n - start));
            let logits = self.z.index_select(0, &idx).matmul(&weight.tr()) + bias;
            let target = self.y.index_select(0, &idx);
            let loss =
                logits.cross_entropy_loss::<Tensor>(&target, None, Reduction::Mean, -100, 0.0);
            opt.backward_step(&loss);
            sum += loss.detach().to_kind(Kind::Double) * idx.size()[0] as f64;
        }
        sum.double_value(&[]) / n as f64
    }
}

fn check_config(c: &LinearProbeConfig, classes: i64) -> Result<(), ProbeError> {
    let ok = c.epochs >= 1
        && c.batch_size >= 1
        && c.learning_rate > 0.0
        && c.weight_decay >= 0.0
        && classes >= 2;
    if ok {
        return Ok(());
    }
    Err(ProbeError::Config(format!(
        "need epochs, batch_size >= 1, learning_rate > 0, weight_decay >= 0, classes >= 2; got {c:?} with {classes} classes"
    )))
}

#[cfg(test)]
mod tests;
