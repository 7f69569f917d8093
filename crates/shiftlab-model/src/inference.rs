//! The evaluation form of a native ResNet trunk, built once from its loaded weights:
//!
//! * every BatchNorm folded into the conv before it (`w·γ/√(σ²+ε)`, bias `β − μ·γ/√(σ²+ε)`),
//!   which removes a pass over every activation;
//! * activations in channels-last layout, which oneDNN runs faster than NCHW on the CPU (and
//!   cuDNN in half precision; float32 on CUDA keeps NCHW);
//! * once specialised to an input size ([`InferenceResNet::specialise`]), every conv whose input
//!   has no more positions than its kernel has taps (`H·W ≤ k²`: the 2x2 and 1x1 maps at the end
//!   of a ResNet on 28-64 px images) becomes one dense matrix product. A 3x3 conv on a 2x2 map
//!   only ever uses 4 of its 9 taps per output, and on a 1x1 map 1 of 9, yet conv kernels pay
//!   for the padding; the dense matrix holds exactly the weights that meet real pixels.
//!
//! Folding and channels-last alone gave ~1.6x the eager PyTorch rate of ResNet-18 on two CPU
//! cores at 28-32 px, with the dense small maps 2-2.5x (network 2,756 vs eager 1,393 images/s
//! on the last measurement, ResNet-18 at 28 px grey, batch 256; `examples/embed_bench.rs`,
//! `docs/pipeline-benchmark.md`). The same function as [`crate::ResNet::features`] up to float
//! rounding (summation order), checked by tests on random weights and statistics (in
//! `resnet.rs`, beside [`crate::ResNet::fold`], which builds this form: this module depends on
//! [`crate::layers`] only).

use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::layers::{Conv, BN_EPS};

/// A folded, channels-last ResNet trunk in evaluation mode.
pub struct InferenceResNet {
    stem: FusedConv,
    max_pool: bool,
    blocks: Vec<FusedBlock>,
    nhwc: bool,
}

impl InferenceResNet {
    /// `device` and `kind` are the weights'; they decide the layout.
    pub(crate) fn new(
        mut stem: FusedConv,
        max_pool: bool,
        mut blocks: Vec<FusedBlock>,
        device: Device,
        kind: Kind,
    ) -> Self {
        let nhwc = device == Device::Cpu || kind != Kind::Float;
        if nhwc {
            for conv in
                std::iter::once(&mut stem).chain(blocks.iter_mut().flat_map(|b| b.convs_mut()))
            {
                conv.weight = channels_last(&conv.weight);
            }
        }
        InferenceResNet {
            stem,
            max_pool,
            blocks,
            nhwc,
        }
    }

    /// Pooled features `[N, feature_dim]`.
    pub fn features(&self, x: &Tensor) -> Tensor {
        let x = if self.nhwc {
            channels_last(x)
        } else {
            x.shallow_clone()
        };
        let mut x = self.stem.forward(&x).relu_();
        if self.max_pool {
            x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for block in &self.blocks {
            x = block.forward(&x);
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }

    /// Prepares dense matrices for `height x width` inputs (see the module docs). Inputs of
    /// other sizes still work, through the conv kernels. Returns how many convs went dense.
    pub fn specialise(&mut self, height: i64, width: i64) -> usize {
        let _guard = tch::no_grad_guard();
        let mut size = self.stem.out_size((height, width));
        if self.max_pool {
            size = ((size.0 - 1) / 2 + 1, (size.1 - 1) / 2 + 1);
        }
        let mut dense = 0;
        for block in &mut self.blocks {
            let (next, n) = block.specialise(size);
            size = next;
            dense += n;
        }
        dense
    }
}

/// `x` with NHWC strides (a no-op when it has them already, e.g. after the HWC->CHW permute of
/// preprocessing); libtorch picks channels-last kernels from the input's strides.
fn channels_last(x: &Tensor) -> Tensor {
    if x.dim() != 4 {
        return x.shallow_clone();
    }
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// A conv with its BatchNorm folded in, and optionally its dense form for one input size.
pub(crate) struct FusedConv {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    padding: i64,
    dense: Option<Dense>,
}

/// A conv on `input` maps as one matrix product over NHWC-flattened pixels.
struct Dense {
    input: (i64, i64),
    output: (i64, i64),
    /// `[H·W·c_in, Ho·Wo·c_out]`.
    matrix: Tensor,
    /// `[Ho·Wo·c_out]`: the bias repeated per output position.
    bias: Tensor,
}

impl FusedConv {
    /// Folds in float64 (then casts to `kind`), so folding adds no rounding of its own.
    pub(crate) fn new(conv: &Conv, bn: &nn::BatchNorm, kind: Kind) -> FusedConv {
        let d = |t: &Tensor| t.to_kind(Kind::Double);
        let c = bn.running_mean.size()[0];
        let ones = || Tensor::ones([c], (Kind::Double, bn.running_mean.device()));
        let gamma = bn.ws.as_ref().map_or_else(ones, d);
        let zeros = || Tensor::zeros([c], (Kind::Double, bn.running_mean.device()));
        let beta = bn.bs.as_ref().map_or_else(zeros, d);
        let scale = gamma / (d(&bn.running_var) + BN_EPS).sqrt();
        let weight = d(&conv.layer.ws) * scale.view([c, 1, 1, 1]);
        let bias = beta - d(&bn.running_mean) * &scale;
        FusedConv {
            weight: weight.to_kind(kind),
            bias: bias.to_kind(kind),
            stride: conv.stride,
            padding: conv.padding,
            dense: None,
        }
    }

    fn kernel(&self) -> i64 {
        self.weight.size()[2]
    }

    fn out_size(&self, (h, w): (i64, i64)) -> (i64, i64) {
        let k = self.kernel();
        let o = |x: i64| (x + 2 * self.padding - k) / self.stride + 1;
        (o(h), o(w))
    }

    /// Builds the dense form when `H·W ≤ k²`; returns the output size.
    fn specialise(&mut self, input: (i64, i64)) -> (i64, i64) {
        let output = self.out_size(input);
        let k = self.kernel();
        self.dense = (input.0 * input.1 <= k * k).then(|| self.dense_form(input, output));
        output
    }

    /// Block `(input position, output position)` of the matrix is the kernel tap joining them,
    /// `W[:, :, ky, kx]ᵀ`, or zero where none does: entries are copied weights, so the dense form
    /// computes the same sums as the conv, only in another order.
    fn dense_form(&self, input: (i64, i64), output: (i64, i64)) -> Dense {
        let size = self.weight.size();
        let (c_out, c_in, k) = (size[0], size[1], size[2]);
        let (s, p) = (self.stride, self.padding);
        let options = (self.weight.kind(), self.weight.device());
        let matrix = Tensor::zeros(
            [input.0 * input.1 * c_in, output.0 * output.1 * c_out],
            options,
        );
        for (iy, ix, oy, ox) in positions(input, output) {
            let (ky, kx) = (iy - oy * s + p, ix - ox * s + p);
            if (0..k).contains(&ky) && (0..k).contains(&kx) {
                let row = (iy * input.1 + ix) * c_in;
                let col = (oy * output.1 + ox) * c_out;
                let tap = self.weight.select(3, kx).select(2, ky).transpose(0, 1);
                matrix
                    .narrow(0, row, c_in)
                    .narrow(1, col, c_out)
                    .copy_(&tap);
            }
        }
        Dense {
            input,
            output,
            matrix,
            bias: self.bias.repeat([output.0 * output.1]),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        if let Some(d) = &self.dense {
            if (size[2], size[3]) == d.input {
                let flat = x.permute([0, 2, 3, 1]).reshape([size[0], -1]);
                let c_out = self.weight.size()[0];
                return d
                    .bias
                    .addmm(&flat, &d.matrix)
                    .view([size[0], d.output.0, d.output.1, c_out])
                    .permute([0, 3, 1, 2]);
            }
        }
        x.conv2d(
            &self.weight,
            Some(&self.bias),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        )
    }
}

/// Every (input y, input x, output y, output x).
fn positions(input: (i64, i64), output: (i64, i64)) -> impl Iterator<Item = (i64, i64, i64, i64)> {
    (0..input.0).flat_map(move |iy| {
        (0..input.1).flat_map(move |ix| {
            (0..output.0).flat_map(move |oy| (0..output.1).map(move |ox| (iy, ix, oy, ox)))
        })
    })
}

/// A residual block of fused convs.
pub(crate) struct FusedBlock {
    convs: Vec<FusedConv>,
    downsample: Option<FusedConv>,
}

impl FusedBlock {
    pub(crate) fn new(convs: Vec<FusedConv>, downsample: Option<FusedConv>) -> Self {
        FusedBlock { convs, downsample }
    }

    fn convs_mut(&mut self) -> impl Iterator<Item = &mut FusedConv> {
        self.convs.iter_mut().chain(self.downsample.as_mut())
    }

    /// Specialises every conv along the block; returns the output size and the dense count.
    fn specialise(&mut self, input: (i64, i64)) -> ((i64, i64), usize) {
        let mut size = input;
        let mut dense = 0;
        for c in &mut self.convs {
            size = c.specialise(size);
            dense += usize::from(c.dense.is_some());
        }
        if let Some(c) = &mut self.downsample {
            c.specialise(input);
            dense += usize::from(c.dense.is_some());
        }
        (size, dense)
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let last = self.convs.len() - 1;
        let mut y = x.shallow_clone();
        for (i, c) in self.convs.iter().enumerate() {
            y = c.forward(&y);
            if i < last {
                y = y.relu_();
            }
        }
        let shortcut = match &self.downsample {
            Some(c) => c.forward(x),
            None => x.shallow_clone(),
        };
        y.g_add_(&shortcut).relu_()
    }
}
