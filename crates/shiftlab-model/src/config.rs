//! The `[[models]]` entries of a pipeline TOML, checked into a [`ModelSpec`] before any file
//! is opened, so that configuration mistakes surface at once and name the model.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::preprocess::{Preprocess, IMAGENET_MEAN, IMAGENET_STD};
use crate::resnet::Architecture;
use crate::vit::{Pool, VitArch};

/// One `[[models]]` entry: a native architecture (optionally with safetensors weights) or a
/// TorchScript file, plus its preprocessing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    /// A ResNet (`resnet18` ... `wide_resnet50_2`, `resnet18-small`) or a ViT (`vit-ti16` ...
    /// `vit-b8`); excludes `torchscript`.
    #[serde(default)]
    pub architecture: Option<String>,
    /// Safetensors file with torchvision names; absent: random weights from `seed`.
    #[serde(default)]
    pub weights: Option<PathBuf>,
    /// Seed of the random initialisation when `weights` is absent (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Padding of the stem conv of `resnet18-small` (default 1; solo-learn CIFAR models: 2).
    #[serde(default)]
    pub stem_padding: Option<u8>,
    /// ResNets: channels of the stem and the first stage (default 64, torchvision's; the
    /// Fashion-MNIST zoo: 16). Must match the weights.
    #[serde(default)]
    pub width: Option<u16>,
    /// ViT features: `cls` (default) or `mean` of the patch tokens.
    #[serde(default)]
    pub pool: Option<Pool>,
    /// TorchScript file taking `[N, C, H, W]` float input, returning `[N, D]` features.
    #[serde(default)]
    pub torchscript: Option<PathBuf>,
    #[serde(default)]
    pub input_size: Option<u32>,
    #[serde(default)]
    pub resize: Option<u32>,
    #[serde(default)]
    pub crop: Option<u32>,
    /// Default: ImageNet statistics (3 channels); required with `channels = 1`.
    #[serde(default)]
    pub normalize: Option<Normalize>,
    /// 3 (default; grey images repeated) or 1 (1-channel stem; RGB converted to luma).
    #[serde(default)]
    pub channels: Option<u8>,
    /// Free text for the `runs` table (training data, origin of the checkpoint...).
    #[serde(default)]
    pub description: Option<String>,
    /// The family of training objectives the model stands for (`contrastive`, `distillation`,
    /// `redundancy_reduction`, `clustering`, `supervised`, `untrained`, `none`, or your own
    /// word): carried into `runs` and the results, grouped by the `paradigm_robustness` view.
    #[serde(default)]
    pub paradigm: Option<String>,
}

/// Mean and standard deviation per channel, on pixels scaled to [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// Where the network comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Native {
        arch: Architecture,
        weights: Option<PathBuf>,
        seed: u64,
        /// `None`: the architecture's own.
        stem_padding: Option<i64>,
        /// Channels of the first stage (64: torchvision's).
        width: i64,
    },
    /// A Vision Transformer; its position grid and final norm come from the weights.
    Vit {
        arch: VitArch,
        weights: Option<PathBuf>,
        seed: u64,
        pool: Pool,
    },
    TorchScript {
        path: PathBuf,
    },
    /// No network: the preprocessed pixels, flattened (`architecture = "pixels"`), the floor
    /// a learned representation has to beat.
    Pixels,
}

impl Source {
    /// The weights or TorchScript file, if any (they must exist before a run starts).
    pub fn file(&self) -> Option<&Path> {
        match self {
            Source::Native { weights, .. } | Source::Vit { weights, .. } => weights.as_deref(),
            Source::TorchScript { path } => Some(path),
            Source::Pixels => None,
        }
    }

    /// The side the architecture was made for, the default input size (ImageNet: 224).
    fn native_input(&self) -> Option<u32> {
        match self {
            Source::Native { arch, .. } => arch.native_input(),
            Source::Vit { .. } => Some(224),
            Source::TorchScript { .. } | Source::Pixels => None,
        }
    }
}

/// The architecture name of the raw-pixel floor ([`Source::Pixels`]).
pub const PIXELS: &str = "pixels";

/// Longest `paradigm` accepted (it is a label, not a description).
const PARADIGM_MAX: usize = 64;

/// Every native architecture name, for messages.
fn architecture_names() -> String {
    format!("{}, {}, {PIXELS}", Architecture::NAMES, VitArch::NAMES)
}

/// A checked model entry: paths resolved, preprocessing complete.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    pub source: Source,
    pub preprocess: Preprocess,
    pub description: Option<String>,
    pub paradigm: Option<String>,
}

impl ModelSpec {
    /// What decides this model's outputs, as stable text for a run folder's fingerprint: the
    /// `Debug` form the spec had before `width` and `paradigm` existed, then `|width=W` when
    /// the width is not torchvision's. The paradigm is a label, not a setting: left out, so
    /// relabelling keeps a folder.
    pub fn decisive(&self) -> String {
        let (source, width) = match &self.source {
            Source::Native {
                arch,
                weights,
                seed,
                stem_padding,
                width,
            } => (
                fingerprint::Source::Native {
                    arch: *arch,
                    weights: weights.clone(),
                    seed: *seed,
                    stem_padding: *stem_padding,
                },
                *width,
            ),
            Source::Vit {
                arch,
                weights,
                seed,
                pool,
            } => (
                fingerprint::Source::Vit {
                    arch: *arch,
                    weights: weights.clone(),
                    seed: *seed,
                    pool: *pool,
                },
                crate::resnet::DEFAULT_WIDTH,
            ),
            Source::TorchScript { path } => (
                fingerprint::Source::TorchScript { path: path.clone() },
                crate::resnet::DEFAULT_WIDTH,
            ),
            Source::Pixels => (fingerprint::Source::Pixels, crate::resnet::DEFAULT_WIDTH),
        };
        let text = format!(
            "{:?}",
            fingerprint::ModelSpec {
                name: self.name.clone(),
                source,
                preprocess: self.preprocess.clone(),
                description: self.description.clone(),
            }
        );
        if width == crate::resnet::DEFAULT_WIDTH {
            text
        } else {
            format!("{text}|width={width}")
        }
    }
}

/// The shapes whose `Debug` text fingerprints were first computed from: kept apart from the
/// live types so new fields do not change the fingerprint of an existing folder.
mod fingerprint {
    use std::path::PathBuf;

    use crate::preprocess::Preprocess;
    use crate::resnet::Architecture;
    use crate::vit::{Pool, VitArch};

    #[derive(Debug)]
    #[allow(dead_code)] // read through Debug only
    pub(super) struct ModelSpec {
        pub name: String,
        pub source: Source,
        pub preprocess: Preprocess,
        pub description: Option<String>,
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    pub(super) enum Source {
        Native {
            arch: Architecture,
            weights: Option<PathBuf>,
            seed: u64,
            stem_padding: Option<i64>,
        },
        Vit {
            arch: VitArch,
            weights: Option<PathBuf>,
            seed: u64,
            pool: Pool,
        },
        TorchScript {
            path: PathBuf,
        },
        Pixels,
    }
}

impl ModelConfig {
    /// Checks the entry; relative paths are taken from `base_dir` (e.g. the TOML's folder).
    pub fn validate(&self, base_dir: &Path) -> Result<ModelSpec> {
        let err = |p: &str| ModelError::config(&self.name, p);
        if self.name.trim().is_empty() {
            return Err(err("the name is empty"));
        }
        let source = self.source(base_dir)?;
        let preprocess = self.preprocess(&source)?;
        preprocess.check().map_err(|p| err(&p))?;
        if let (Source::Vit { arch, .. }, Some(side)) = (&source, preprocess.crop_to()) {
            if side % arch.patch() != 0 {
                return Err(err(&format!(
                    "input size {side} is not a multiple of {arch}'s patch size {} \
                     (set input_size or crop to one)",
                    arch.patch()
                )));
            }
        }
        if matches!(source, Source::TorchScript { .. }) && preprocess.crop_to().is_none() {
            return Err(err(
                "a torchscript model needs input_size (or crop): its input size",
            ));
        }
        if source == Source::Pixels && preprocess.crop_to().is_none() {
            return Err(err(
                "architecture = \"pixels\" needs input_size (or crop): its features are \
                 channels x side x side pixels",
            ));
        }
        Ok(ModelSpec {
            name: self.name.clone(),
            source,
            preprocess,
            description: self.description.clone(),
            paradigm: self.paradigm()?,
        })
    }

    /// The paradigm label, trimmed; empty or long labels are mistakes.
    fn paradigm(&self) -> Result<Option<String>> {
        let Some(p) = &self.paradigm else {
            return Ok(None);
        };
        let p = p.trim();
        if p.is_empty() || p.len() > PARADIGM_MAX || p.contains(['\n', '\r']) {
            return Err(ModelError::config(
                &self.name,
                format!(
                    "paradigm must be a label of 1 to {PARADIGM_MAX} characters on one line \
                     (e.g. contrastive, distillation, redundancy_reduction, clustering, \
                     supervised, untrained)"
                ),
            ));
        }
        Ok(Some(p.to_string()))
    }

    fn source(&self, base_dir: &Path) -> Result<Source> {
        let err = |p: &str| ModelError::config(&self.name, p);
        match (&self.architecture, &self.torchscript) {
            (Some(_), Some(_)) => Err(err("set either architecture or torchscript, not both")),
            (None, None) => Err(err(
                "set architecture (with optional weights) or torchscript",
            )),
            (None, Some(_)) if self.weights.is_some() || self.seed.is_some() => Err(err(
                "weights and seed apply to a native architecture, not torchscript",
            )),
            (None, Some(_)) if self.width.is_some() => {
                Err(err("width applies to the ResNets, not torchscript"))
            }
            (None, Some(_)) if self.pool.is_some() => {
                Err(err("pool applies to a ViT architecture, not torchscript"))
            }
            (None, Some(path)) => Ok(Source::TorchScript {
                path: base_dir.join(path),
            }),
            (Some(_), None) if self.weights.is_some() && self.seed.is_some() => {
                Err(err("seed only applies to random weights (no weights file)"))
            }
            (Some(name), None) => self.native(name, base_dir),
        }
    }

    /// A ResNet, a ViT or the pixels, by the architecture's name.
    fn native(&self, name: &str, base_dir: &Path) -> Result<Source> {
        let weights = self.weights.as_ref().map(|w| base_dir.join(w));
        let seed = self.seed.unwrap_or(0);
        let resnet_only = |key: &str| {
            Err(ModelError::config(
                &self.name,
                format!("{key} applies to the ResNets only, not {name}"),
            ))
        };
        if name == PIXELS {
            return match () {
                _ if self.weights.is_some() || self.seed.is_some() => Err(ModelError::config(
                    &self.name,
                    "architecture = \"pixels\" has no weights and no seed",
                )),
                _ if self.pool.is_some() => resnet_only("pool"),
                _ if self.stem_padding.is_some() => resnet_only("stem_padding"),
                _ if self.width.is_some() => resnet_only("width"),
                _ => Ok(Source::Pixels),
            };
        }
        if let Ok(arch) = name.parse::<VitArch>() {
            if self.stem_padding.is_some() {
                return Err(ModelError::config(
                    &self.name,
                    "stem_padding applies to resnet18-small only",
                ));
            }
            if self.width.is_some() {
                return resnet_only("width");
            }
            let pool = self.pool.unwrap_or_default();
            return Ok(Source::Vit {
                arch,
                weights,
                seed,
                pool,
            });
        }
        let Ok(arch) = name.parse::<Architecture>() else {
            return Err(ModelError::config(
                &self.name,
                format!(
                    "unknown architecture '{name}' (expected one of {})",
                    architecture_names()
                ),
            ));
        };
        if self.pool.is_some() {
            return Err(ModelError::config(
                &self.name,
                "pool applies to ViT architectures, not ResNets",
            ));
        }
        Ok(Source::Native {
            arch,
            weights,
            seed,
            stem_padding: self.stem_padding(arch)?,
            width: self.width()?,
        })
    }

    /// Checks `width` against the range a ResNet can be built with.
    fn width(&self) -> Result<i64> {
        let Some(w) = self.width else {
            return Ok(crate::resnet::DEFAULT_WIDTH);
        };
        crate::resnet::check_width(i64::from(w)).map_err(|e| ModelError::config(&self.name, e))
    }

    /// Checks `stem_padding`: small variant only, 0 to 3.
    fn stem_padding(&self, arch: Architecture) -> Result<Option<i64>> {
        let err = |p: String| Err(ModelError::config(&self.name, p));
        match self.stem_padding {
            None => Ok(None),
            Some(_) if arch != Architecture::ResNet18Small => {
                err("stem_padding applies to resnet18-small only".into())
            }
            Some(p) if p > 3 => err(format!("stem_padding {p} is not in 0..=3")),
            Some(p) => Ok(Some(i64::from(p))),
        }
    }

    /// Fills defaults: ImageNet statistics; 224 px for the ImageNet ResNets and the ViTs,
    /// native size else.
    fn preprocess(&self, source: &Source) -> Result<Preprocess> {
        let channels = self.channels.unwrap_or(3);
        let (mean, std) = match (&self.normalize, channels) {
            (Some(n), _) => (n.mean.clone(), n.std.clone()),
            (None, 1) => {
                return Err(ModelError::config(
                    &self.name,
                    "channels = 1 needs normalize",
                ))
            }
            (None, _) => (IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec()),
        };
        let sized = self.input_size.is_some() || self.resize.is_some() || self.crop.is_some();
        let input_size = if sized {
            self.input_size
        } else {
            source.native_input()
        };
        let (resize, crop) = (self.resize, self.crop);
        Ok(Preprocess {
            input_size,
            resize,
            crop,
            mean,
            std,
            channels,
        })
    }
}

/// Checks every entry and that names are unique (they key the results tables).
pub fn validate_models(models: &[ModelConfig], base_dir: &Path) -> Result<Vec<ModelSpec>> {
    validate_models_at(models, base_dir).map_err(|(_, e)| e)
}

/// [`validate_models`] over any sequence of entries; the error comes with the position of the
/// entry that failed, so a caller can point at it in its file.
pub fn validate_models_at<'a>(
    models: impl IntoIterator<Item = &'a ModelConfig>,
    base_dir: &Path,
) -> std::result::Result<Vec<ModelSpec>, (usize, ModelError)> {
    let mut seen = HashSet::new();
    models
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            if !seen.insert(m.name.as_str()) {
                return Err((
                    i,
                    ModelError::config(&m.name, "the name is used by another model"),
                ));
            }
            m.validate(base_dir).map_err(|e| (i, e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Pipeline {
        models: Vec<ModelConfig>,
    }

    fn parse(toml_text: &str) -> std::result::Result<Vec<ModelConfig>, String> {
        toml::from_str::<Pipeline>(toml_text)
            .map(|p| p.models)
            .map_err(|e| e.to_string())
    }

    const SKETCH: &str = r#"
        [[models]]
        name = "simclr"
        architecture = "resnet18-small"
        weights = "models/fashion-mnist/simclr.safetensors"
        [[models]]
        name = "my-dino"
        torchscript = "models/dino_vits16.pt"
        input_size = 224
        normalize = { mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225] }
    "#;

    #[test]
    fn sketch_parses_and_validates() {
        let specs = validate_models(&parse(SKETCH).unwrap(), Path::new("/p")).unwrap();
        let weights = PathBuf::from("/p/models/fashion-mnist/simclr.safetensors");
        let native = Source::Native {
            arch: Architecture::ResNet18Small,
            weights: Some(weights),
            seed: 0,
            stem_padding: None,
            width: 64,
        };
        assert_eq!(specs[0].source, native);
        assert_eq!(specs[0].preprocess.crop_to(), None);
        assert_eq!(specs[1].preprocess.crop_to(), Some(224));
        assert_eq!(
            specs[1].source,
            Source::TorchScript {
                path: "/p/models/dino_vits16.pt".into()
            }
        );
    }

    #[test]
    fn imagenet_resnets_default_to_224() {
        let m = parse("[[models]]\nname = \"r\"\narchitecture = \"resnet50\"").unwrap();
        let spec = m[0].validate(Path::new("")).unwrap();
        assert_eq!(
            (spec.preprocess.resize_to(), spec.preprocess.crop_to()),
            (Some(224), Some(224))
        );
    }

    #[test]
    fn vits_default_to_224_and_cls_and_read_pool() {
        let m = parse("[[models]]\nname = \"v\"\narchitecture = \"vit-s8\"").unwrap();
        let spec = m[0].validate(Path::new("")).unwrap();
        assert_eq!(spec.preprocess.crop_to(), Some(224));
        let vit = |pool| Source::Vit {
            arch: VitArch::S8,
            weights: None,
            seed: 0,
            pool,
        };
        assert_eq!(spec.source, vit(Pool::Cls));
        let m = parse(
            "[[models]]\nname = \"v\"\narchitecture = \"vit-s8\"\npool = \"mean\"\ninput_size = 32",
        );
        let spec = m.unwrap()[0].validate(Path::new("")).unwrap();
        assert_eq!(
            (spec.source, spec.preprocess.crop_to()),
            (vit(Pool::Mean), Some(32))
        );
        let err = parse("[[models]]\nname = \"v\"\narchitecture = \"vit-s8\"\npool = \"max\"");
        let err = err.unwrap_err();
        assert!(
            err.contains("unknown variant `max`, expected `cls` or `mean`")
                && err.contains("line 4"),
            "{err}"
        );
    }

    #[test]
    fn width_paradigm_and_pixels_are_read() {
        let m = parse(
            "[[models]]\nname = \"s\"\narchitecture = \"resnet18-small\"\nwidth = 16\n\
             paradigm = \" contrastive \"\n\
             [[models]]\nname = \"p\"\narchitecture = \"pixels\"\ninput_size = 28\n\
             [[models]]\nname = \"r\"\narchitecture = \"resnet18\"",
        )
        .unwrap();
        let specs = validate_models(&m, Path::new("")).unwrap();
        let width = |s: &ModelSpec| match s.source {
            Source::Native { width, .. } => Some(width),
            _ => None,
        };
        assert_eq!(width(&specs[0]), Some(16));
        assert_eq!(specs[0].paradigm.as_deref(), Some("contrastive"));
        assert_eq!(specs[1].source, Source::Pixels);
        assert_eq!(specs[1].paradigm, None);
        assert_eq!(width(&specs[2]), Some(64));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = parse("[[models]]\nname = \"r\"\narchitecture = \"resnet18\"\nwieghts = \"x\"");
        assert!(err.unwrap_err().contains("wieghts"));
    }

    fn problem(toml_text: &str) -> String {
        let models = parse(toml_text).unwrap();
        validate_models(&models, Path::new(""))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn validation_errors_name_model_and_problem() {
        let cases = [
            (
                "architecture = \"resnet35\"",
                "unknown architecture 'resnet35' (expected one of resnet18, resnet34, resnet50, \
                 resnet101, resnet152, wide_resnet50_2, resnet18-small, vit-ti16, vit-s16, \
                 vit-s8, vit-b16, vit-b8, pixels)",
            ),
            ("architecture = \"pixels\"", "pixels\" needs input_size"),
            (
                "architecture = \"pixels\"\ninput_size = 28\nseed = 1",
                "has no weights",
            ),
            (
                "architecture = \"pixels\"\ninput_size = 28\nwidth = 16",
                "width applies to the ResNets only, not pixels",
            ),
            (
                "architecture = \"vit-s16\"\nwidth = 16",
                "width applies to the ResNets only",
            ),
            (
                "torchscript = \"a.pt\"\nwidth = 16",
                "width applies to the ResNets",
            ),
            (
                "architecture = \"resnet18\"\nwidth = 3",
                "width 3 is not in 4..=256",
            ),
            (
                "architecture = \"resnet18\"\nwidth = 512",
                "width 512 is not in",
            ),
            (
                "architecture = \"resnet18\"\nparadigm = \"  \"",
                "paradigm must be a label",
            ),
            (
                "architecture = \"vit-s16\"\ninput_size = 40",
                "input size 40 is not a multiple of vit-s16's patch size 16",
            ),
            (
                "architecture = \"resnet50\"\npool = \"mean\"",
                "pool applies to ViT",
            ),
            (
                "architecture = \"vit-b8\"\nstem_padding = 2",
                "resnet18-small only",
            ),
            ("torchscript = \"a.pt\"", "needs input_size"),
            (
                "architecture = \"resnet18\"\ntorchscript = \"a.pt\"",
                "not both",
            ),
            ("weights = \"w.safetensors\"", "set architecture"),
            (
                "architecture = \"resnet18\"\nchannels = 1",
                "needs normalize",
            ),
            (
                "architecture = \"resnet18\"\nchannels = 2",
                "channels must be 1 or 3",
            ),
            (
                "architecture = \"resnet18\"\nnormalize = { mean = [0.5], std = [0.5] }",
                "3 mean",
            ),
            (
                "architecture = \"resnet18\"\nresize = 8\ncrop = 16",
                "larger than resize",
            ),
            (
                "architecture = \"resnet18\"\nstem_padding = 2",
                "resnet18-small only",
            ),
            (
                "architecture = \"resnet18-small\"\nstem_padding = 4",
                "not in 0..=3",
            ),
        ];
        for (body, expected) in cases {
            let err = problem(&format!("[[models]]\nname = \"m1\"\n{body}"));
            assert!(
                err.starts_with("model 'm1': ") && err.contains(expected),
                "{body}: {err}"
            );
        }
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let one = "[[models]]\nname = \"a\"\narchitecture = \"resnet18\"\n";
        assert!(problem(&format!("{one}{one}")).contains("used by another model"));
    }
}
