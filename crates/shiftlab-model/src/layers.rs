//! Layer pieces shared by the trainable ResNet ([`crate::resnet`]) and its evaluation form
//! ([`crate::inference`]): both import this module, neither imports the other's internals.

use tch::nn::{self, ConvConfig};

/// torchvision's BatchNorm epsilon (set explicitly in [`batch_norm`]).
pub(crate) const BN_EPS: f64 = 1e-5;

/// A conv layer with the geometry the folded form needs (tch keeps its config private).
pub(crate) struct Conv {
    pub(crate) layer: nn::Conv2D,
    pub(crate) stride: i64,
    pub(crate) padding: i64,
}

/// Bias-free conv with torchvision's init (Kaiming normal, fan-out, ReLU gain).
pub(crate) fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> Conv {
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
pub(crate) fn batch_norm(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        eps: BN_EPS,
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}
