//! Filling a native model from a safetensors file (torchvision names for ResNets, timm names for
//! ViTs), strictly: every tensor the architecture needs must be there with the right shape (a
//! missing one is listed with every other missing one and the file's unused tensors, which
//! usually show a wrong prefix); the rest is reported.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tch::{nn, Device, Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::resnet::ResNet;
use crate::vit::{FinalNorm, Pool, VisionTransformer, VitArch};

/// What a weights file held besides the backbone, for logs and the `runs` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    pub path: PathBuf,
    /// Hex SHA-256 of the file, so a run names the exact checkpoint.
    pub sha256: String,
    /// Backbone tensors copied into the model.
    pub loaded: usize,
    /// Tensors the backbone does not use (`fc.*`, projector heads...), sorted.
    /// BatchNorm `num_batches_tracked` counters are skipped silently.
    pub extra: Vec<String>,
}

/// A linear classification head `logits = features · Wᵀ + b` (torchvision's `fc`).
#[derive(Debug)]
pub struct LinearHead {
    /// `[classes, features]`.
    pub weight: Tensor,
    /// `[classes]`.
    pub bias: Tensor,
}

impl LinearHead {
    /// Reads `<prefix>.weight` and `<prefix>.bias` from a safetensors file.
    pub fn from_safetensors(path: &Path, prefix: &str) -> Result<LinearHead> {
        let tensors = read_tensors(path)?;
        LinearHead::from_tensors(path, &tensors, prefix)?.ok_or_else(|| ModelError::MissingTensor {
            path: path.into(),
            tensor: format!("{prefix}.weight"),
            expected: vec![-1, -1],
        })
    }

    /// The head in `tensors`, if `<prefix>.weight` is there; checks the shapes agree.
    fn from_tensors(
        path: &Path,
        tensors: &HashMap<String, Tensor>,
        prefix: &str,
    ) -> Result<Option<LinearHead>> {
        let Some(weight) = tensors.get(&format!("{prefix}.weight")) else {
            return Ok(None);
        };
        let size = weight.size();
        let &[classes, _] = &size[..] else {
            return Err(shape_error(
                path,
                &format!("{prefix}.weight"),
                vec![-1, -1],
                size,
            ));
        };
        let name = format!("{prefix}.bias");
        let bias = tensors
            .get(&name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: path.into(),
                tensor: name.clone(),
                expected: vec![classes],
            })?;
        if bias.size() != [classes] {
            return Err(shape_error(path, &name, vec![classes], bias.size()));
        }
        let f32 = |t: &Tensor| t.to_kind(Kind::Float);
        Ok(Some(LinearHead {
            weight: f32(weight),
            bias: f32(bias),
        }))
    }

    /// Number of classes.
    pub fn classes(&self) -> i64 {
        self.weight.size()[0]
    }

    /// Logits for `[N, features]` float32 features (on the head's device).
    pub fn logits(&self, features: &Tensor) -> Result<Tensor> {
        Ok(features.f_linear(&self.weight, Some(&self.bias))?)
    }

    /// Moves the head to `device`.
    pub fn to_device(&self, device: Device) -> LinearHead {
        LinearHead {
            weight: self.weight.to_device(device),
            bias: self.bias.to_device(device),
        }
    }
}

/// Copies the backbone tensors of `path` into `net`; returns the report and the `fc` head.
pub fn load_resnet(net: &mut ResNet, path: &Path) -> Result<(LoadReport, Option<LinearHead>)> {
    let tensors = read_tensors(path)?;
    check_width(net, &tensors, path)?;
    let report = fill(&net.vs, &tensors, path)?;
    let head = head_of(path, &tensors, "fc", net.feature_dim())?;
    Ok((report, head))
}

/// Builds a ViT from the tensors of `path`: the position grid from `pos_embed`'s shape, the
/// final norm from its name (`norm` or `fc_norm`); returns it with the report and `head`.
pub fn load_vit(
    arch: VitArch,
    in_channels: i64,
    pool: Pool,
    path: &Path,
) -> Result<(VisionTransformer, LoadReport, Option<LinearHead>)> {
    let tensors = read_tensors(path)?;
    let grid = match tensors.get("pos_embed").map(Tensor::size) {
        Some(size) => square_grid(&size, arch.embed_dim())
            .ok_or_else(|| shape_error(path, "pos_embed", vec![1, -1, arch.embed_dim()], size))?,
        None => arch.default_grid(),
    };
    let pooled = tensors.contains_key("fc_norm.weight") && !tensors.contains_key("norm.weight");
    let final_norm = if pooled {
        FinalNorm::Pooled
    } else {
        FinalNorm::Tokens
    };
    let net = VisionTransformer::new(arch, in_channels, grid, final_norm, pool);
    let report = fill(&net.vs, &tensors, path)?;
    let head = head_of(path, &tensors, "head", arch.embed_dim())?;
    Ok((net, report, head))
}

/// The side `g` of a `[1, 1 + g², dim]` position embedding.
fn square_grid(size: &[i64], dim: i64) -> Option<i64> {
    let &[1, tokens, d] = size else {
        return None;
    };
    let g = ((tokens - 1) as f64).sqrt().round() as i64;
    (d == dim && g > 0 && g * g == tokens - 1).then_some(g)
}

/// Copies every variable of `vs` from `tensors`: all missing ones are one error (with the
/// unused tensors, which usually show a wrong prefix), then the first shape mismatch in name
/// order is one.
fn fill(vs: &nn::VarStore, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<LoadReport> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut extra: Vec<String> = tensors
        .keys()
        .filter(|k| !vars.iter().any(|(n, _)| n == *k) && !k.ends_with("num_batches_tracked"))
        .cloned()
        .collect();
    extra.sort();
    let missing: Vec<(String, Vec<i64>)> = vars
        .iter()
        .filter(|(n, _)| !tensors.contains_key(n))
        .map(|(n, v)| (n.clone(), v.size()))
        .collect();
    if !missing.is_empty() {
        return Err(ModelError::MissingTensors {
            path: path.into(),
            needed: vars.len(),
            missing,
            unused: extra,
        });
    }
    let _guard = tch::no_grad_guard();
    for (name, var) in &vars {
        let src = &tensors[name];
        if src.size() != var.size() {
            return Err(shape_error(path, name, var.size(), src.size()));
        }
        var.shallow_clone().f_copy_(&src.to_kind(var.kind()))?;
    }
    Ok(LoadReport {
        path: path.into(),
        sha256: file_sha256(path)?,
        loaded: vars.len(),
        extra,
    })
}

/// The classifier `prefix` (`fc`, `head`) if the file has one, checked to take `dim` features.
fn head_of(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    prefix: &str,
    dim: i64,
) -> Result<Option<LinearHead>> {
    let head = LinearHead::from_tensors(path, tensors, prefix)?;
    if let Some(h) = &head {
        if h.weight.size()[1] != dim {
            return Err(shape_error(
                path,
                &format!("{prefix}.weight"),
                vec![h.classes(), dim],
                h.weight.size(),
            ));
        }
    }
    Ok(head)
}

/// All tensors of a safetensors file by name, with a file error naming the path.
fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    if !path.is_file() {
        return Err(file_error(path, "no such file".to_string()));
    }
    let tensors = Tensor::read_safetensors(path).map_err(|e| file_error(path, e.to_string()))?;
    Ok(tensors.into_iter().collect())
}

fn file_error(path: &Path, reason: String) -> ModelError {
    ModelError::File {
        what: "safetensors weights",
        path: path.into(),
        reason,
    }
}

/// A trunk of another width fails on its first tensor: say which width the file has, the
/// likely fix, rather than list every mismatching shape.
fn check_width(net: &ResNet, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let Some(found) = tensors.get("conv1.weight").map(Tensor::size) else {
        return Ok(());
    };
    match found.first() {
        Some(&w) if w != net.width => Err(ModelError::File {
            what: "weights",
            path: path.into(),
            reason: format!(
                "conv1.weight has {w} output channels: the file holds a width-{w} {} and this \
                 entry builds width {} (set width = {w})",
                net.arch, net.width
            ),
        }),
        _ => Ok(()),
    }
}

fn shape_error(path: &Path, tensor: &str, expected: Vec<i64>, found: Vec<i64>) -> ModelError {
    ModelError::ShapeMismatch {
        path: path.into(),
        tensor: tensor.to_string(),
        expected,
        found,
    }
}

/// Hex SHA-256 of a file, streamed.
pub fn file_sha256(path: &Path) -> Result<String> {
    let io = |e: std::io::Error| ModelError::File {
        what: "file",
        path: path.into(),
        reason: e.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
