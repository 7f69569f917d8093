//! A network being trained: a `shiftlab_model::ResNet` trunk plus method heads, run
//! functionally over named tensors.
//!
//! Why functional: `ResNet::features` fixes evaluation mode (BatchNorm on running statistics)
//! for the encoders, but training needs batch statistics. The trunk's tensors are the
//! `ResNet`'s own (shallow clones share storage and gradients), so the trained weights are
//! saved and reloaded under torchvision names with no conversion.

use std::collections::BTreeMap;

use shiftlab_model::{Architecture, ResNet};
use tch::{Device, Kind, Tensor};

use crate::rng::Rng;

/// Named tensors in a fixed (sorted) order, so optimiser and EMA walks are deterministic.
pub type Named = BTreeMap<String, Tensor>;

/// The heads of a method: a multi-layer perceptron description.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mlp {
    pub layers: usize,
    pub hidden: i64,
    pub out: i64,
    /// BatchNorm after hidden linear layers (SimCLR, BYOL...); DINO's head has none.
    pub hidden_bn: bool,
    /// BatchNorm on the output too (SimSiam's projector).
    pub out_bn: bool,
    /// GELU instead of ReLU (DINO).
    pub gelu: bool,
}

/// Trunk plus heads; heads are plain named tensors under prefixes (`projector.`, `fc.`...).
pub struct Net {
    pub backbone: ResNet,
    /// The trunk's tensors by torchvision name (shallow clones of the `ResNet`'s).
    trunk: Named,
    pub heads: Named,
    pub device: Device,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Net({:?}, {} head tensors)",
            self.backbone,
            self.heads.len()
        )
    }
}

impl Net {
    /// A trunk with seeded weights (`ResNet::init_seeded`) on `device`; `width`: channels of
    /// its first stage (torchvision: 64).
    pub fn new(arch: Architecture, width: i64, channels: i64, seed: u64, device: Device) -> Net {
        let mut backbone = ResNet::with_shape(arch, channels, None, width);
        backbone.init_seeded(seed);
        backbone.to(device, Kind::Float);
        let trunk = backbone.vs.variables().into_iter().collect();
        Net {
            backbone,
            trunk,
            heads: Named::new(),
            device,
        }
    }

    /// Feature width of the trunk.
    pub fn dim(&self) -> i64 {
        self.backbone.feature_dim()
    }

    /// Adds an MLP under `prefix` taking `input` features; PyTorch's default Linear init
    /// (uniform ±1/sqrt(fan_in)) drawn from `rng`.
    pub fn add_mlp(&mut self, prefix: &str, input: i64, mlp: Mlp, rng: &mut Rng) {
        let mut c_in = input;
        for i in 0..mlp.layers {
            let last = i + 1 == mlp.layers;
            let c_out = if last { mlp.out } else { mlp.hidden };
            self.add_linear(&format!("{prefix}.{i}"), c_in, c_out, true, rng);
            if (!last && mlp.hidden_bn) || (last && mlp.out_bn) {
                self.add_bn(&format!("{prefix}.bn{i}"), c_out);
            }
            c_in = c_out;
        }
    }

    /// Adds `name.weight` `[out, input]` (and `name.bias`).
    pub fn add_linear(&mut self, name: &str, input: i64, out: i64, bias: bool, rng: &mut Rng) {
        let bound = 1.0 / (input as f64).sqrt();
        let w = rng.uniform_tensor(&[out, input], bound);
        self.add_param(format!("{name}.weight"), w);
        if bias {
            let b = rng.uniform_tensor(&[out], bound);
            self.add_param(format!("{name}.bias"), b);
        }
    }

    fn add_bn(&mut self, name: &str, c: i64) {
        let opts = (Kind::Float, self.device);
        self.add_param(format!("{name}.weight"), Tensor::ones([c], opts));
        self.add_param(format!("{name}.bias"), Tensor::zeros([c], opts));
        self.heads
            .insert(format!("{name}.running_mean"), Tensor::zeros([c], opts));
        self.heads
            .insert(format!("{name}.running_var"), Tensor::ones([c], opts));
    }

    fn add_param(&mut self, name: String, t: Tensor) {
        let t = t.to_device(self.device).set_requires_grad(true);
        self.heads.insert(name, t);
    }

    /// Every tensor (trunk under `backbone.`, heads under their names), for checkpoints/EMA.
    pub fn state(&self) -> Named {
        let trunk = self
            .trunk
            .iter()
            .map(|(k, v)| (format!("backbone.{k}"), v.shallow_clone()));
        let heads = self
            .heads
            .iter()
            .map(|(k, v)| (k.clone(), v.shallow_clone()));
        trunk.chain(heads).collect()
    }

    /// The tensors the optimiser updates.
    pub fn parameters(&self) -> Named {
        self.state()
            .into_iter()
            .filter(|(_, v)| v.requires_grad())
            .collect()
    }

    /// Pooled trunk features; `train`: BatchNorm on batch statistics (running stats updated).
    pub fn features(&self, x: &Tensor, train: bool) -> Tensor {
        let small = self.backbone.arch == Architecture::ResNet18Small;
        let (stride, pad) = if small { (1, 1) } else { (2, 3) };
        let mut x = self.conv(x, "conv1", stride, pad);
        x = self.bn(&x, "bn1", train, &self.trunk).relu();
        if !small {
            x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for (i, &count) in self.backbone.arch.blocks().iter().enumerate() {
            for b in 0..count {
                let stride = if i > 0 && b == 0 { 2 } else { 1 };
                x = self.block(&x, &format!("layer{}.{b}", i + 1), stride, train);
            }
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }

    /// A residual block; bottleneck when the block has a `conv3` (torchvision v1.5 stride).
    fn block(&self, x: &Tensor, p: &str, stride: i64, train: bool) -> Tensor {
        let bottleneck = self.trunk.contains_key(&format!("{p}.conv3.weight"));
        let plan: &[(i64, i64)] = if bottleneck {
            &[(1, 0), (stride, 1), (1, 0)]
        } else {
            &[(stride, 1), (1, 1)]
        };
        let mut y = x.shallow_clone();
        for (j, &(s, pad)) in plan.iter().enumerate() {
            y = self.conv(&y, &format!("{p}.conv{}", j + 1), s, pad);
            y = self.bn(&y, &format!("{p}.bn{}", j + 1), train, &self.trunk);
            if j + 1 < plan.len() {
                y = y.relu();
            }
        }
        let shortcut = if self.trunk.contains_key(&format!("{p}.downsample.0.weight")) {
            let d = self.conv(x, &format!("{p}.downsample.0"), stride, 0);
            self.bn(&d, &format!("{p}.downsample.1"), train, &self.trunk)
        } else {
            x.shallow_clone()
        };
        (y + shortcut).relu()
    }

    fn conv(&self, x: &Tensor, name: &str, stride: i64, pad: i64) -> Tensor {
        let w = &self.trunk[&format!("{name}.weight")];
        x.conv2d(w, None::<Tensor>, [stride, stride], [pad, pad], [1, 1], 1)
    }

    /// BatchNorm (1-d or 2-d) over tensors `name.{weight,bias,running_mean,running_var}`.
    fn bn(&self, x: &Tensor, name: &str, train: bool, from: &Named) -> Tensor {
        let t = |s: &str| &from[&format!("{name}.{s}")];
        x.batch_norm(
            Some(t("weight")),
            Some(t("bias")),
            Some(t("running_mean")),
            Some(t("running_var")),
            train,
            0.1,
            1e-5,
            true,
        )
    }

    /// Runs the MLP `prefix` (as built by [`Net::add_mlp`]).
    pub fn mlp(&self, prefix: &str, x: &Tensor, mlp: Mlp, train: bool) -> Tensor {
        let mut x = x.shallow_clone();
        for i in 0..mlp.layers {
            let last = i + 1 == mlp.layers;
            x = self.linear(&format!("{prefix}.{i}"), &x);
            if (!last && mlp.hidden_bn) || (last && mlp.out_bn) {
                x = self.bn(&x, &format!("{prefix}.bn{i}"), train, &self.heads);
            }
            if !last {
                x = if mlp.gelu { x.gelu("none") } else { x.relu() };
            }
        }
        x
    }

    /// `x · Wᵀ + b` for the head `name`.
    pub fn linear(&self, name: &str, x: &Tensor) -> Tensor {
        let w = &self.heads[&format!("{name}.weight")];
        x.linear(w, self.heads.get(&format!("{name}.bias")))
    }

    /// A copy with its own storage and no gradients (the EMA target / teacher).
    pub fn frozen_copy(&self) -> Net {
        let mut backbone = ResNet::with_shape(
            self.backbone.arch,
            self.channels(),
            None,
            self.backbone.width,
        );
        backbone.to(self.device, Kind::Float);
        let trunk: Named = backbone.vs.variables().into_iter().collect();
        let _guard = tch::no_grad_guard();
        for (k, v) in &trunk {
            v.shallow_clone().copy_(&self.trunk[k]);
        }
        backbone.vs.freeze();
        let heads = self
            .heads
            .iter()
            .map(|(k, v)| (k.clone(), v.detach().copy()))
            .collect();
        Net {
            backbone,
            trunk: trunk.iter().map(|(k, v)| (k.clone(), v.detach())).collect(),
            heads,
            device: self.device,
        }
    }

    /// Input channels of the stem.
    pub fn channels(&self) -> i64 {
        self.trunk["conv1.weight"].size()[1]
    }
}

/// Exponential moving average `target ← tau·target + (1 − tau)·online` of the parameters;
/// buffers (BatchNorm running statistics) are copied, as BYOL and DINO do.
pub fn ema_update(target: &Net, online: &Net, tau: f64) {
    let _guard = tch::no_grad_guard();
    let online = online.state();
    for (k, t) in target.state() {
        let Some(o) = online.get(&k) else { continue };
        let mut t = t;
        if o.requires_grad() {
            let _ = t.g_mul_scalar_(tau);
            let _ = t.g_add_(&(o * (1.0 - tau)));
        } else {
            t.copy_(o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_forward_matches_the_encoder_trunk() {
        let net = Net::new(Architecture::ResNet18Small, 64, 1, 4, Device::Cpu);
        let x = Tensor::from_slice(
            &(0..2 * 16 * 16)
                .map(|i| (i % 7) as f32 / 7.0)
                .collect::<Vec<_>>(),
        )
        .view([2, 1, 16, 16]);
        let _g = tch::no_grad_guard();
        let a = net.features(&x, false);
        let b = net.backbone.features(&x);
        assert!(a.allclose(&b, 1e-5, 1e-5, false));
        // Train mode uses batch statistics: a different result.
        assert!(!net.features(&x, true).allclose(&b, 1e-5, 1e-5, false));
    }
}
