//! Vision Transformers (ViT-Ti/S/B, patch 16 or 8) with timm's parameter names, which DINO,
//! MoCo v3 and iBOT release their weights in (`cls_token`, `pos_embed`, `patch_embed.proj`,
//! `blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, `norm` or `fc_norm`).
//!
//! Invariants, each the same as timm's `VisionTransformer` (checked against timm 1.0.31 by
//! `tests/parity.rs`):
//! * pre-norm blocks, LayerNorm eps 1e-6, exact GELU, `qkv` laid out `[3, heads, head_dim]`,
//!   fused attention (`scaled_dot_product_attention`, scale `head_dim^-1/2`);
//! * the position embedding holds the CLS position first, then a square grid (its side comes
//!   from the weights: 14 for 224 px at patch 16). Another input grid resamples the grid part
//!   as timm's `resample_abs_pos_embed` does: float32, bicubic, antialiased, no corner
//!   alignment, the CLS position kept; for the input size of the preprocessing this is done
//!   once at load ([`VisionTransformer::specialise`]);
//! * the input side must be a multiple of the patch size (timm would drop the remainder).
//!
//! Features: [`Pool::Cls`] is the CLS token after the final norm (DINO's evaluation). For
//! [`Pool::Mean`] timm has two definitions, told apart by the name of the final norm in the
//! weights: with `norm` (timm `global_pool='avg', fc_norm=False`, DINO's `--avgpool`) every
//! token is normalised, then the patch tokens averaged; with `fc_norm` (timm's default for
//! `global_pool='avg'`, MAE fine-tuning) the patch tokens are averaged, then normalised.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::error::{ModelError, Result};

/// The native ViTs; all have 12 blocks and an MLP 4x as wide as the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VitArch {
    Ti16,
    S16,
    S8,
    B16,
    B8,
}

const ALL: [(VitArch, &str); 5] = [
    (VitArch::Ti16, "vit-ti16"),
    (VitArch::S16, "vit-s16"),
    (VitArch::S8, "vit-s8"),
    (VitArch::B16, "vit-b16"),
    (VitArch::B8, "vit-b8"),
];

/// timm's LayerNorm epsilon for ViTs.
const LN_EPS: f64 = 1e-6;
const DEPTH: i64 = 12;

impl VitArch {
    pub const NAMES: &'static str = "vit-ti16, vit-s16, vit-s8, vit-b16, vit-b8";

    /// Token width, which is also the feature length.
    pub fn embed_dim(self) -> i64 {
        match self {
            VitArch::Ti16 => 192,
            VitArch::S16 | VitArch::S8 => 384,
            VitArch::B16 | VitArch::B8 => 768,
        }
    }

    pub fn heads(self) -> i64 {
        self.embed_dim() / 64
    }

    pub fn patch(self) -> i64 {
        match self {
            VitArch::S8 | VitArch::B8 => 8,
            _ => 16,
        }
    }

    /// The grid side of randomly initialised weights: 224 px, timm's default size.
    pub fn default_grid(self) -> i64 {
        224 / self.patch()
    }
}

impl FromStr for VitArch {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ALL.iter()
            .find(|(_, n)| *n == s)
            .map(|(a, _)| *a)
            .ok_or_else(|| format!("unknown ViT '{s}' (expected one of {})", Self::NAMES))
    }
}

impl fmt::Display for VitArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ALL.iter().find(|(a, _)| a == self).map_or("?", |(_, n)| n))
    }
}

/// How a ViT's tokens become one feature vector (`pool = "cls" | "mean"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// The CLS token after the final norm.
    #[default]
    Cls,
    /// The mean of the patch tokens (see the module docs for where the norm sits).
    Mean,
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pool::Cls => "cls",
            Pool::Mean => "mean",
        })
    }
}

/// Where the final LayerNorm sits, named as in the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalNorm {
    /// `norm`: on every token, before pooling.
    Tokens,
    /// `fc_norm`: on the pooled vector.
    Pooled,
}

impl FinalNorm {
    fn name(self) -> &'static str {
        match self {
            FinalNorm::Tokens => "norm",
            FinalNorm::Pooled => "fc_norm",
        }
    }
}

/// A ViT trunk without its classification `head`; parameters live in `vs` under timm names.
pub struct VisionTransformer {
    pub arch: VitArch,
    pub pool: Pool,
    pub vs: nn::VarStore,
    /// Side of the position-embedding grid.
    grid: i64,
    final_norm: FinalNorm,
    patch_embed: nn::Conv2D,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    norm: nn::LayerNorm,
    /// The position embedding resampled for one other grid (see [`Self::specialise`]).
    resampled: Option<((i64, i64), Tensor)>,
}

impl fmt::Debug for VisionTransformer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VisionTransformer({}, {} pool, grid {})",
            self.arch, self.pool, self.grid
        )
    }
}

impl VisionTransformer {
    /// Builds the network on the CPU in float32 (values from libtorch's global generator:
    /// call [`Self::init_seeded`] or load weights). `grid`: side of the position grid.
    pub fn new(
        arch: VitArch,
        in_channels: i64,
        grid: i64,
        final_norm: FinalNorm,
        pool: Pool,
    ) -> VisionTransformer {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let d = arch.embed_dim();
        let cfg = nn::ConvConfig {
            stride: arch.patch(),
            ..Default::default()
        };
        let patch_embed = nn::conv2d(
            &root / "patch_embed" / "proj",
            in_channels,
            d,
            arch.patch(),
            cfg,
        );
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let cls_token = root.var("cls_token", &[1, 1, d], init);
        let pos_embed = root.var("pos_embed", &[1, 1 + grid * grid, d], init);
        let blocks = (0..DEPTH)
            .map(|i| Block::new(&root / "blocks" / i, d))
            .collect();
        let norm = layer_norm(&root / final_norm.name(), d);
        VisionTransformer {
            arch,
            pool,
            vs,
            grid,
            final_norm,
            patch_embed,
            cls_token,
            pos_embed,
            blocks,
            norm,
            resampled: None,
        }
    }

    /// Redraws every weight matrix, the patch projection, the CLS token and the position
    /// embedding (normal, std 0.02 as timm) from a generator keyed by `seed` and the tensor
    /// name; biases are set to 0 (norm weights are 1 from the start).
    pub fn init_seeded(&mut self, seed: u64) {
        let _guard = tch::no_grad_guard();
        for (name, mut var) in self.vs.variables() {
            let size = var.size();
            if size.len() >= 2 {
                var.copy_(&crate::seeded::normal(&name, seed, &size, 0.02));
            } else if name.ends_with(".bias") {
                let _ = var.zero_();
            }
        }
    }

    /// Moves the parameters to `device` and casts them to `kind`.
    pub fn to(&mut self, device: Device, kind: Kind) {
        self.vs.set_device(device);
        self.vs.set_kind(kind);
        self.resampled = None;
    }

    /// Resamples the position embedding once for `height x width` inputs (the preprocessing's
    /// size), so that [`Self::features`] does not on every batch. Other sizes still work.
    pub fn specialise(&mut self, height: i64, width: i64) -> Result<()> {
        let grid = self.grid_of(height, width)?;
        let _guard = tch::no_grad_guard();
        self.resampled = (grid != (self.grid, self.grid)).then(|| (grid, self.resample(grid)));
        Ok(())
    }

    /// The patch grid of an input, or an error if the patch size does not divide it.
    pub fn grid_of(&self, height: i64, width: i64) -> Result<(i64, i64)> {
        let p = self.arch.patch();
        if height % p != 0 || width % p != 0 || height < p || width < p {
            return Err(ModelError::Input(format!(
                "{height}x{width} px is not a multiple of {}'s patch size {p}",
                self.arch
            )));
        }
        Ok((height / p, width / p))
    }

    /// timm's `resample_abs_pos_embed`: the grid part in float32, bicubic with antialiasing.
    fn resample(&self, (h, w): (i64, i64)) -> Tensor {
        let d = self.arch.embed_dim();
        let g = self.grid;
        let cls = self.pos_embed.narrow(1, 0, 1);
        let grid = self
            .pos_embed
            .narrow(1, 1, g * g)
            .to_kind(Kind::Float)
            .reshape([1, g, g, d])
            .permute([0, 3, 1, 2])
            .internal_upsample_bicubic2d_aa([h, w], false, None, None)
            .permute([0, 2, 3, 1])
            .reshape([1, h * w, d])
            .to_kind(self.pos_embed.kind());
        Tensor::cat(&[cls, grid], 1)
    }

    fn pos_embed_for(&self, grid: (i64, i64)) -> Tensor {
        match &self.resampled {
            _ if grid == (self.grid, self.grid) => self.pos_embed.shallow_clone(),
            Some((g, pos)) if *g == grid => pos.shallow_clone(),
            _ => self.resample(grid),
        }
    }

    /// Features `[N, embed_dim]` for `[N, C, H, W]` input, `H` and `W` multiples of the patch.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let size = x.size();
        let grid = self.grid_of(size[2], size[3])?;
        let n = size[0];
        let tokens = x.apply(&self.patch_embed).flatten(2, 3).transpose(1, 2);
        let cls = self.cls_token.expand([n, -1, -1], false);
        let mut x = Tensor::cat(&[cls, tokens], 1);
        let _ = x.g_add_(&self.pos_embed_for(grid));
        for block in &self.blocks {
            x = block.forward(x, self.arch.heads());
        }
        let patches = grid.0 * grid.1;
        Ok(match (self.pool, self.final_norm) {
            (Pool::Cls, _) => x.select(1, 0).apply(&self.norm),
            (Pool::Mean, FinalNorm::Tokens) => x
                .narrow(1, 1, patches)
                .apply(&self.norm)
                .mean_dim(1, false, None),
            (Pool::Mean, FinalNorm::Pooled) => x
                .narrow(1, 1, patches)
                .mean_dim(1, false, None)
                .apply(&self.norm),
        })
    }
}

/// One pre-norm transformer block.
struct Block {
    norm1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Block {
    fn new(p: nn::Path, d: i64) -> Block {
        let attn = &p / "attn";
        let mlp = &p / "mlp";
        let linear = |p: nn::Path, i, o| nn::linear(p, i, o, Default::default());
        Block {
            norm1: layer_norm(&p / "norm1", d),
            qkv: linear(&attn / "qkv", d, 3 * d),
            proj: linear(&attn / "proj", d, d),
            norm2: layer_norm(&p / "norm2", d),
            fc1: linear(&mlp / "fc1", d, 4 * d),
            fc2: linear(&mlp / "fc2", 4 * d, d),
        }
    }

    /// `x + attn(norm1(x))`, then `+ mlp(norm2(x))`, adding in place into `x`.
    fn forward(&self, mut x: Tensor, heads: i64) -> Tensor {
        let size = x.size();
        let (n, l, d) = (size[0], size[1], size[2]);
        let qkv = x
            .apply(&self.norm1)
            .apply(&self.qkv)
            .reshape([n, l, 3, heads, d / heads])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let attended = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        let attended = attended
            .transpose(1, 2)
            .reshape([n, l, d])
            .apply(&self.proj);
        let _ = x.g_add_(&attended);
        let mut hidden = x.apply(&self.norm2).apply(&self.fc1);
        let _ = hidden.gelu_("none");
        let _ = x.g_add_(&hidden.apply(&self.fc2));
        x
    }
}

fn layer_norm(p: nn::Path, d: i64) -> nn::LayerNorm {
    let cfg = nn::LayerNormConfig {
        eps: LN_EPS,
        ..Default::default()
    };
    nn::layer_norm(p, vec![d], cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vit(arch: VitArch, pool: Pool, norm: FinalNorm) -> VisionTransformer {
        let mut net = VisionTransformer::new(arch, 3, arch.default_grid(), norm, pool);
        net.init_seeded(1);
        net
    }

    #[test]
    fn timm_names_and_shapes() {
        let vars = vit(VitArch::S16, Pool::Cls, FinalNorm::Tokens)
            .vs
            .variables();
        assert_eq!(vars["pos_embed"].size(), [1, 197, 384]);
        assert_eq!(vars["patch_embed.proj.weight"].size(), [384, 3, 16, 16]);
        assert_eq!(vars["blocks.11.attn.qkv.weight"].size(), [1152, 384]);
        assert_eq!(vars["blocks.0.mlp.fc2.weight"].size(), [384, 1536]);
        assert_eq!(vars["norm.bias"].size(), [384]);
        // timm's vit_small_patch16_224 state dict: 152 tensors, 2 of them the head.
        assert_eq!(vars.len(), 150);
        let fc = vit(VitArch::B8, Pool::Mean, FinalNorm::Pooled)
            .vs
            .variables();
        assert_eq!(fc["fc_norm.weight"].size(), [768]);
        assert_eq!(fc["pos_embed"].size(), [1, 785, 768]);
        assert!(!fc.contains_key("norm.weight"));
    }

    #[test]
    fn shapes_pooling_and_patch_check() -> Result<()> {
        let _guard = tch::no_grad_guard();
        let x = Tensor::randn([2, 3, 32, 48], (Kind::Float, Device::Cpu));
        let cls = vit(VitArch::Ti16, Pool::Cls, FinalNorm::Tokens);
        let mean = vit(VitArch::Ti16, Pool::Mean, FinalNorm::Tokens);
        let (a, b) = (cls.features(&x)?, mean.features(&x)?);
        assert_eq!((a.size(), b.size()), (vec![2, 192], vec![2, 192]));
        assert!(!a.allclose(&b, 1e-3, 1e-3, false), "pooling has no effect");
        let err = cls.features(&x.narrow(2, 0, 30)).unwrap_err().to_string();
        assert!(
            err.contains("30x48 px is not a multiple of vit-ti16's patch size 16"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn specialised_position_embedding_equals_the_resampled_one() -> Result<()> {
        let _guard = tch::no_grad_guard();
        let mut net = vit(VitArch::S8, Pool::Cls, FinalNorm::Tokens);
        let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        let plain = net.features(&x)?;
        net.specialise(32, 32)?;
        assert!(net.resampled.is_some());
        assert!(net.features(&x)?.equal(&plain));
        // At the native grid nothing is resampled.
        net.specialise(224, 224)?;
        assert!(net.resampled.is_none());
        Ok(())
    }
}
