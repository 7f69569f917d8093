//! ResNet-18/50 with torchvision's parameter names, so torchvision-layout checkpoints
//! (converted to safetensors) load without renaming, plus a small-image ResNet-18.

use std::fmt;
use std::str::FromStr;

use tch::nn::{self, ConvConfig, Module, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::inference::{FusedBlock, FusedConv, InferenceResNet};

/// The native architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    ResNet18,
    ResNet50,
    /// ResNet-18 for 28–64 px images: 3x3 stride-1 stem, no max-pool (CIFAR-style SSL models).
    ResNet18Small,
}

impl Architecture {
    pub const NAMES: &'static str = "resnet18, resnet50, resnet18-small";

    /// Length of the pooled feature vector.
    pub fn feature_dim(self) -> i64 {
        match self {
            Architecture::ResNet50 => 2048,
            _ => 512,
        }
    }

    fn blocks(self) -> [i64; 4] {
        match self {
            Architecture::ResNet50 => [3, 4, 6, 3],
            _ => [2, 2, 2, 2],
        }
    }

    fn bottleneck(self) -> bool {
        self == Architecture::ResNet50
    }

    fn small(self) -> bool {
        self == Architecture::ResNet18Small
    }
}

impl FromStr for Architecture {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "resnet18" => Ok(Architecture::ResNet18),
            "resnet50" => Ok(Architecture::ResNet50),
            "resnet18-small" => Ok(Architecture::ResNet18Small),
            _ => Err(format!(
                "unknown architecture '{s}' (expected one of {})",
                Self::NAMES
            )),
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Architecture::ResNet18 => "resnet18",
            Architecture::ResNet50 => "resnet50",
            Architecture::ResNet18Small => "resnet18-small",
        })
    }
}

/// A ResNet trunk without its `fc` head; parameters live in `vs` under torchvision names.
pub struct ResNet {
    pub arch: Architecture,
    pub vs: nn::VarStore,
    conv1: Conv,
    bn1: nn::BatchNorm,
    layers: Vec<Block>,
}

impl fmt::Debug for ResNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ResNet({}, {} tensors)",
            self.arch,
            self.vs.variables().len()
        )
    }
}

impl ResNet {
    /// Builds the network on the CPU in float32 with torchvision's initialisation, drawn from
    /// libtorch's global generator; [`ResNet::init_seeded`] makes random weights reproducible.
    pub fn new(arch: Architecture, in_channels: i64) -> ResNet {
        ResNet::with_stem_padding(arch, in_channels, None)
    }

    /// [`ResNet::new`] with another padding of the stem conv than torchvision's (3, or 1 for
    /// the small variant); solo-learn's CIFAR ResNets use 2.
    pub fn with_stem_padding(arch: Architecture, in_channels: i64, padding: Option<i64>) -> ResNet {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let (k, stride, pad) = if arch.small() { (3, 1, 1) } else { (7, 2, 3) };
        let pad = padding.unwrap_or(pad);
        let conv1 = conv(&root / "conv1", in_channels, 64, k, stride, pad);
        let bn1 = batch_norm(&root / "bn1", 64);
        let mut layers = Vec::new();
        let mut c_in = 64;
        for (i, &count) in arch.blocks().iter().enumerate() {
            let width = 64 << i;
            let layer = &root / format!("layer{}", i + 1);
            for b in 0..count {
                let stride = if i > 0 && b == 0 { 2 } else { 1 };
                let block = Block::new(&layer / b, c_in, width, stride, arch.bottleneck());
                c_in = block.c_out;
                layers.push(block);
            }
        }
        ResNet {
            arch,
            vs,
            conv1,
            bn1,
            layers,
        }
    }

    /// Pooled features `[N, feature_dim]` in evaluation mode (BatchNorm on running stats).
    pub fn features(&self, x: &Tensor) -> Tensor {
        let mut x = x.apply(&self.conv1.layer).apply_t(&self.bn1, false).relu();
        if !self.arch.small() {
            x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for block in &self.layers {
            x = block.forward(&x);
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }

    /// The evaluation form of these weights (see [`InferenceResNet`]), on their device and in
    /// their precision (call [`ResNet::to`] first).
    pub fn fold(&self) -> InferenceResNet {
        let _guard = tch::no_grad_guard();
        let kind = self.conv1.layer.ws.kind();
        InferenceResNet::new(
            FusedConv::new(&self.conv1, &self.bn1, kind),
            !self.arch.small(),
            self.layers.iter().map(|b| b.fold(kind)).collect(),
            self.vs.device(),
            kind,
        )
    }

    /// Moves the parameters to `device` and casts them to `kind`.
    pub fn to(&mut self, device: Device, kind: Kind) {
        self.vs.set_device(device);
        self.vs.set_kind(kind);
    }

    /// Redraws the conv weights (Kaiming normal, fan-out) from a counter-based generator keyed
    /// by `seed` and the tensor name: libtorch's global generator is shared by all threads, so
    /// seeding it would not make the weights reproducible while other threads draw from it.
    pub fn init_seeded(&mut self, seed: u64) {
        let _guard = tch::no_grad_guard();
        for (name, mut var) in self.vs.variables() {
            let size = var.size();
            if size.len() != 4 {
                continue;
            }
            let std = (2.0 / (size[0] * size[2] * size[3]) as f64).sqrt();
            let mut state = name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
            let n = var.numel();
            let mut uniform = || -> Tensor {
                let v: Vec<f32> = (0..n)
                    .map(|_| unit_interval(splitmix64(&mut state)))
                    .collect();
                Tensor::from_slice(&v)
            };
            let (u1, u2) = (uniform(), uniform());
            let normal = (u1.log() * -2.0).sqrt() * (u2 * std::f64::consts::TAU).cos() * std;
            var.copy_(&normal.view(size.as_slice()));
        }
    }

    /// Number of scalar parameters and buffers.
    pub fn numel(&self) -> i64 {
        self.vs
            .variables()
            .values()
            .map(Tensor::numel)
            .sum::<usize>() as i64
    }
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

/// A basic (two 3x3) or bottleneck (1x1, 3x3, 1x1) residual block.
struct Block {
    convs: Vec<(Conv, nn::BatchNorm)>,
    downsample: Option<(Conv, nn::BatchNorm)>,
    c_out: i64,
}

impl Block {
    fn new(p: nn::Path, c_in: i64, width: i64, stride: i64, bottleneck: bool) -> Block {
        // torchvision's ResNet v1.5: the stride sits on the 3x3 conv of a bottleneck.
        let shapes: Vec<(i64, i64, i64, i64)> = if bottleneck {
            vec![
                (c_in, width, 1, 1),
                (width, width, 3, stride),
                (width, width * 4, 1, 1),
            ]
        } else {
            vec![(c_in, width, 3, stride), (width, width, 3, 1)]
        };
        let convs = shapes
            .iter()
            .enumerate()
            .map(|(i, &(ci, co, k, s))| {
                let c = conv(&p / format!("conv{}", i + 1), ci, co, k, s, k / 2);
                (c, batch_norm(&p / format!("bn{}", i + 1), co))
            })
            .collect::<Vec<_>>();
        let c_out = shapes.last().map_or(width, |s| s.1);
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            let d = &p / "downsample";
            (
                conv(&d / "0", c_in, c_out, 1, stride, 0),
                batch_norm(&d / "1", c_out),
            )
        });
        Block {
            convs,
            downsample,
            c_out,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let last = self.convs.len() - 1;
        let mut y = x.shallow_clone();
        for (i, (c, bn)) in self.convs.iter().enumerate() {
            y = y.apply(&c.layer).apply_t(bn, false);
            if i < last {
                y = y.relu();
            }
        }
        let shortcut = match &self.downsample {
            Some((c, bn)) => bn.forward_t(&c.layer.forward(x), false),
            None => x.shallow_clone(),
        };
        (y + shortcut).relu()
    }

    fn fold(&self, kind: Kind) -> FusedBlock {
        FusedBlock::new(
            self.convs
                .iter()
                .map(|(c, bn)| FusedConv::new(c, bn, kind))
                .collect(),
            self.downsample
                .as_ref()
                .map(|(c, bn)| FusedConv::new(c, bn, kind)),
        )
    }
}

/// torchvision's BatchNorm epsilon (set explicitly in [`batch_norm`]).
pub(crate) const BN_EPS: f64 = 1e-5;

/// A conv layer with the geometry [`FusedConv`] needs (tch keeps its config private).
pub(crate) struct Conv {
    pub(crate) layer: nn::Conv2D,
    pub(crate) stride: i64,
    pub(crate) padding: i64,
}

/// Bias-free conv with torchvision's init (Kaiming normal, fan-out, ReLU gain).
fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> Conv {
    let ws_init = nn::Init::Kaiming {
        dist: nn::init::NormalOrUniform::Normal,
        fan: nn::init::FanInOut::FanOut,
        non_linearity: nn::init::NonLinearity::ReLU,
    };
    let cfg = ConvConfig {
        stride,
        padding,
        bias: false,
        ws_init,
        ..Default::default()
    };
    Conv {
        layer: nn::conv2d(p, c_in, c_out, k, cfg),
        stride,
        padding,
    }
}

/// BatchNorm with torchvision's init (weight 1, bias 0) and eps.
fn batch_norm(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        eps: BN_EPS,
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

/// Maps a parse error to a config error naming the model.
pub(crate) fn parse_architecture(model: &str, name: &str) -> Result<Architecture> {
    name.parse()
        .map_err(|e: String| ModelError::config(model, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(arch: Architecture, c: i64, side: i64) -> Vec<i64> {
        let net = ResNet::new(arch, c);
        let _guard = tch::no_grad_guard();
        net.features(&Tensor::randn(
            [2, c, side, side],
            (Kind::Float, Device::Cpu),
        ))
        .size()
    }

    #[test]
    fn feature_shapes() {
        assert_eq!(shape(Architecture::ResNet18, 3, 64), [2, 512]);
        assert_eq!(shape(Architecture::ResNet18Small, 3, 28), [2, 512]);
        assert_eq!(shape(Architecture::ResNet18Small, 1, 28), [2, 512]);
        assert_eq!(shape(Architecture::ResNet50, 3, 64), [2, 2048]);
    }

    #[test]
    fn torchvision_names_and_sizes() {
        let vars = ResNet::new(Architecture::ResNet50, 3).vs.variables();
        assert_eq!(vars["conv1.weight"].size(), [64, 3, 7, 7]);
        assert_eq!(vars["layer1.0.downsample.0.weight"].size(), [256, 64, 1, 1]);
        assert_eq!(vars["layer4.2.bn3.running_var"].size(), [2048]);
        assert_eq!(vars["layer2.0.conv2.weight"].size(), [128, 128, 3, 3]);
        assert!(!vars.contains_key("fc.weight"));
        // torchvision resnet50 has 320 state-dict tensors, 53 of them num_batches_tracked.
        assert_eq!(vars.len(), 320 - 53 - 2);
        let small = ResNet::new(Architecture::ResNet18Small, 1).vs.variables();
        assert_eq!(small["conv1.weight"].size(), [64, 1, 3, 3]);
        assert!(!small.contains_key("layer1.0.downsample.0.weight"));
    }

    #[test]
    fn seeded_init_is_reproducible_with_kaiming_scale() {
        let draw = |seed| {
            let mut net = ResNet::new(Architecture::ResNet18Small, 3);
            net.init_seeded(seed);
            net.vs.variables()["layer4.1.conv2.weight"].shallow_clone()
        };
        let (a, b, c) = (draw(5), draw(5), draw(6));
        assert!(a.equal(&b) && !a.equal(&c));
        let std = a.std(true).double_value(&[]);
        let want = (2.0f64 / (512.0 * 9.0)).sqrt();
        assert!((std / want - 1.0).abs() < 0.02, "std {std} vs {want}");
        assert!(a.mean(Kind::Float).double_value(&[]).abs() < 0.01 * want);
    }

    #[test]
    fn unknown_architecture_is_named() {
        let err = parse_architecture("m", "resnet34").unwrap_err().to_string();
        assert!(
            err.contains("model 'm'") && err.contains("'resnet34'"),
            "{err}"
        );
    }
}
