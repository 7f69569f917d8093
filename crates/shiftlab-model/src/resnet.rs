//! torchvision's ResNet family (ResNet-18/34/50/101/152, Wide ResNet-50-2) with torchvision's
//! parameter names, so torchvision-layout checkpoints (converted to safetensors) load without
//! renaming, plus a small-image ResNet-18. [`ResNet::fold`] gives the evaluation form
//! ([`crate::inference`]); the layer pieces both use live in [`crate::layers`].

use std::fmt;
use std::str::FromStr;

use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::inference::{FusedBlock, FusedConv, InferenceResNet};
use crate::layers::{batch_norm, conv, Conv};

/// The native ResNets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet101,
    ResNet152,
    /// torchvision's `wide_resnet50_2`: ResNet-50 with bottlenecks twice as wide inside.
    WideResNet50x2,
    /// ResNet-18 for 28–64 px images: 3x3 stride-1 stem, no max-pool (CIFAR-style SSL models).
    ResNet18Small,
}

/// torchvision's width of the stem and the first stage; the other stages double it.
pub const DEFAULT_WIDTH: i64 = 64;

/// The widths a config may ask for: enough to be a network, few enough to fit any machine.
pub const WIDTHS: std::ops::RangeInclusive<i64> = 4..=256;

/// Checks a width against [`WIDTHS`]; the message serves the config and the `--width` flag.
pub fn check_width(width: i64) -> Result<i64, String> {
    if WIDTHS.contains(&width) {
        Ok(width)
    } else {
        Err(format!(
            "width {width} is not in {}..={}",
            WIDTHS.start(),
            WIDTHS.end()
        ))
    }
}

/// Every ResNet with its config name.
const ALL: [(Architecture, &str); 7] = [
    (Architecture::ResNet18, "resnet18"),
    (Architecture::ResNet34, "resnet34"),
    (Architecture::ResNet50, "resnet50"),
    (Architecture::ResNet101, "resnet101"),
    (Architecture::ResNet152, "resnet152"),
    (Architecture::WideResNet50x2, "wide_resnet50_2"),
    (Architecture::ResNet18Small, "resnet18-small"),
];

impl Architecture {
    pub const NAMES: &'static str =
        "resnet18, resnet34, resnet50, resnet101, resnet152, wide_resnet50_2, resnet18-small";

    /// Length of the pooled feature vector at torchvision's width (64).
    pub fn feature_dim(self) -> i64 {
        self.feature_dim_at(DEFAULT_WIDTH)
    }

    /// Length of the pooled feature vector when the first stage has `width` channels (the
    /// stages double it: 8x, and 4x that for bottlenecks).
    pub fn feature_dim_at(self, width: i64) -> i64 {
        let last = width * 8;
        if self.bottleneck_width().is_some() {
            last * 4
        } else {
            last
        }
    }

    /// Blocks per stage (torchvision's).
    pub fn blocks(self) -> [i64; 4] {
        match self {
            Architecture::ResNet18 | Architecture::ResNet18Small => [2, 2, 2, 2],
            Architecture::ResNet34 | Architecture::ResNet50 | Architecture::WideResNet50x2 => {
                [3, 4, 6, 3]
            }
            Architecture::ResNet101 => [3, 4, 23, 3],
            Architecture::ResNet152 => [3, 8, 36, 3],
        }
    }

    /// Bottleneck blocks: the inner width as a multiple of the stage width
    /// (torchvision's `width_per_group / 64`); `None`: basic blocks.
    fn bottleneck_width(self) -> Option<i64> {
        match self {
            Architecture::ResNet18 | Architecture::ResNet34 | Architecture::ResNet18Small => None,
            Architecture::WideResNet50x2 => Some(2),
            _ => Some(1),
        }
    }

    fn small(self) -> bool {
        self == Architecture::ResNet18Small
    }

    /// The input side the architecture was made for: 224 for the ImageNet ones, none for the
    /// small variant (it runs at the data's size).
    pub fn native_input(self) -> Option<u32> {
        (!self.small()).then_some(224)
    }
}

impl FromStr for Architecture {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ALL.iter()
            .find(|(_, n)| *n == s)
            .map(|(a, _)| *a)
            .ok_or_else(|| {
                format!(
                    "unknown architecture '{s}' (expected one of {})",
                    Self::NAMES
                )
            })
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = ALL.iter().find(|(a, _)| a == self).map_or("?", |(_, n)| n);
        f.write_str(name)
    }
}

/// A ResNet trunk without its `fc` head; parameters live in `vs` under torchvision names.
pub struct ResNet {
    pub arch: Architecture,
    /// Channels of the stem and the first stage (torchvision: 64).
    pub width: i64,
    pub vs: nn::VarStore,
    conv1: Conv,
    bn1: nn::BatchNorm,
    layers: Vec<Block>,
}

impl fmt::Debug for ResNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ResNet({}, width {}, {} tensors)",
            self.arch,
            self.width,
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
        ResNet::with_shape(arch, in_channels, padding, DEFAULT_WIDTH)
    }

    /// [`ResNet::with_stem_padding`] with `width` channels in the stem and the first stage
    /// instead of 64 (a width multiplier: every stage scales with it; the tensor names stay
    /// torchvision's). Narrow trunks make the small-image layout affordable on a CPU.
    pub fn with_shape(
        arch: Architecture,
        in_channels: i64,
        padding: Option<i64>,
        width: i64,
    ) -> ResNet {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let (k, stride, pad) = if arch.small() { (3, 1, 1) } else { (7, 2, 3) };
        let pad = padding.unwrap_or(pad);
        let conv1 = conv(&root / "conv1", in_channels, width, k, stride, pad);
        let bn1 = batch_norm(&root / "bn1", width);
        let mut layers = Vec::new();
        let mut c_in = width;
        let base = width;
        for (i, &count) in arch.blocks().iter().enumerate() {
            let width = base << i;
            let layer = &root / format!("layer{}", i + 1);
            for b in 0..count {
                let stride = if i > 0 && b == 0 { 2 } else { 1 };
                let block = Block::new(&layer / b, c_in, width, stride, arch.bottleneck_width());
                c_in = block.c_out;
                layers.push(block);
            }
        }
        ResNet {
            arch,
            width: base,
            vs,
            conv1,
            bn1,
            layers,
        }
    }

    /// Length of the pooled feature vector of this network.
    pub fn feature_dim(&self) -> i64 {
        self.arch.feature_dim_at(self.width)
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
            var.copy_(&crate::seeded::normal(&name, seed, &size, std));
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

/// A basic (two 3x3) or bottleneck (1x1, 3x3, 1x1) residual block.
struct Block {
    convs: Vec<(Conv, nn::BatchNorm)>,
    downsample: Option<(Conv, nn::BatchNorm)>,
    c_out: i64,
}

impl Block {
    /// `bottleneck`: the inner width as a multiple of `width` (see
    /// `Architecture::bottleneck_width`); the block's output has `4 * width` channels.
    fn new(p: nn::Path, c_in: i64, width: i64, stride: i64, bottleneck: Option<i64>) -> Block {
        // torchvision's ResNet v1.5: the stride sits on the 3x3 conv of a bottleneck.
        let shapes: Vec<(i64, i64, i64, i64)> = if let Some(m) = bottleneck {
            let inner = width * m;
            vec![
                (c_in, inner, 1, 1),
                (inner, inner, 3, stride),
                (inner, width * 4, 1, 1),
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
    fn width_scales_every_stage_and_keeps_the_names() {
        let net = ResNet::with_shape(Architecture::ResNet18Small, 1, None, 16);
        let vars = net.vs.variables();
        assert_eq!(vars["conv1.weight"].size(), [16, 1, 3, 3]);
        assert_eq!(vars["layer1.1.conv2.weight"].size(), [16, 16, 3, 3]);
        assert_eq!(vars["layer2.0.downsample.0.weight"].size(), [32, 16, 1, 1]);
        assert_eq!(vars["layer4.1.bn2.running_var"].size(), [128]);
        assert_eq!(
            vars.len(),
            ResNet::new(Architecture::ResNet18Small, 1)
                .vs
                .variables()
                .len()
        );
        assert_eq!(net.feature_dim(), 128);
        let _guard = tch::no_grad_guard();
        let y = net.features(&Tensor::randn([2, 1, 28, 28], (Kind::Float, Device::Cpu)));
        assert_eq!(y.size(), [2, 128]);
        let wide = ResNet::with_shape(Architecture::ResNet50, 3, None, 32);
        assert_eq!(wide.feature_dim(), 1024);
        assert_eq!(Architecture::ResNet50.feature_dim_at(32), 1024);
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
    fn the_family_has_torchvision_tensor_counts_and_widths() {
        // (architecture, torchvision state-dict tensors, of them num_batches_tracked,
        //  layer1.0.conv2 shape, layer4.0's last conv)
        for (arch, total, counters, conv2, last) in [
            (Architecture::ResNet34, 218, 36, [64, 64, 3, 3], "conv2"),
            (Architecture::ResNet101, 626, 104, [64, 64, 3, 3], "conv3"),
            (Architecture::ResNet152, 932, 155, [64, 64, 3, 3], "conv3"),
            (
                Architecture::WideResNet50x2,
                320,
                53,
                [128, 128, 3, 3],
                "conv3",
            ),
        ] {
            let vars = ResNet::new(arch, 3).vs.variables();
            assert_eq!(vars.len(), total - counters - 2, "{arch}");
            assert_eq!(vars["layer1.0.conv2.weight"].size(), conv2, "{arch}");
            let last = &vars[&format!("layer4.0.{last}.weight")];
            assert_eq!(last.size()[0], arch.feature_dim(), "{arch}");
            assert_eq!(arch.to_string().parse::<Architecture>(), Ok(arch));
        }
        assert_eq!(
            ResNet::new(Architecture::WideResNet50x2, 3).vs.variables()["layer4.0.conv3.weight"]
                .size(),
            [2048, 1024, 1, 1]
        );
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

    /// A trunk with seeded weights and non-trivial BatchNorm parameters (fresh ones would make
    /// folding an identity).
    fn trunk(arch: Architecture, channels: i64) -> ResNet {
        let mut net = ResNet::new(arch, channels);
        net.init_seeded(3);
        let _guard = tch::no_grad_guard();
        for (name, mut v) in net.vs.variables() {
            let r = Tensor::rand(v.size().as_slice(), (Kind::Float, Device::Cpu));
            if name.ends_with("running_var") || name.ends_with("bn1.weight") {
                v.copy_(&(r * 2.0 + 0.1));
            } else if name.ends_with("running_mean") || name.contains(".bn") {
                v.copy_(&(r - 0.5));
            }
        }
        net
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> (f64, f64) {
        let d = (a - b).abs().max().double_value(&[]);
        (d, b.abs().max().double_value(&[]))
    }

    #[test]
    fn folded_and_dense_forms_match_conv_batchnorm() {
        // (architecture, channels, side, convs expected dense at that side)
        for (arch, c, side, dense) in [
            (Architecture::ResNet18, 3, 32, 7),
            (Architecture::ResNet18, 1, 28, 7),
            (Architecture::ResNet18, 3, 64, 3),
            (Architecture::ResNet18Small, 1, 28, 0),
            (Architecture::ResNet50, 3, 64, 2),
            (Architecture::ResNet34, 3, 32, 17),
            (Architecture::WideResNet50x2, 3, 32, 13),
        ] {
            let net = trunk(arch, c);
            let x = Tensor::randn([3, c, side, side], (Kind::Float, Device::Cpu));
            let _guard = tch::no_grad_guard();
            let want = net.features(&x);
            let mut folded = net.fold();
            let (d, scale) = max_diff(&folded.features(&x), &want);
            assert!(
                d <= 1e-5 * scale.max(1.0),
                "{arch} folded: {d} (max {scale})"
            );
            assert!(scale > 0.1, "{arch}: features vanished");
            assert_eq!(folded.specialise(side, side), dense, "{arch} at {side} px");
            let (d, _) = max_diff(&folded.features(&x), &want);
            assert!(
                d <= 1e-5 * scale.max(1.0),
                "{arch} dense: {d} (max {scale})"
            );
            // Another size still runs, through the conv kernels.
            let y = Tensor::randn([2, c, side + 8, side + 8], (Kind::Float, Device::Cpu));
            let (d, _) = max_diff(&folded.features(&y), &net.features(&y));
            assert!(d <= 1e-5 * scale.max(1.0), "{arch} other size: {d}");
        }
    }
}
