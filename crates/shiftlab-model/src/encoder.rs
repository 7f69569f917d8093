//! The encoder the pipeline calls: u8 images in, float32 features out, in evaluation mode.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::config::{ModelConfig, ModelSpec, Source};
use crate::device::{device_name, Precision, RuntimeOptions};
use crate::error::{ModelError, Result};
use crate::inference::InferenceResNet;
use crate::preprocess::Preprocess;
use crate::resnet::ResNet;
use crate::vit::{FinalNorm, Pool, VisionTransformer, VitArch};
use crate::weights::{file_sha256, load_resnet, load_vit, LinearHead, LoadReport};

/// The network behind an encoder, on its device and in its precision.
enum Backbone {
    Native(Box<InferenceResNet>),
    Vit(Box<VisionTransformer>),
    Script(CModule),
    /// The preprocessed pixels themselves, flattened: the floor without a network.
    Pixels,
}

/// Facts about a loaded encoder, recorded with every run (serialise it to JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncoderInfo {
    pub name: String,
    /// `native`, `torchscript` or `pixels`.
    pub kind: &'static str,
    pub architecture: Option<String>,
    /// ViT pooling (`cls` or `mean`); absent for other models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<Pool>,
    /// Weights or TorchScript file; `None` for random weights.
    pub file: Option<PathBuf>,
    pub sha256: Option<String>,
    /// Seed of the random weights when there is no file.
    pub seed: Option<u64>,
    /// Tensors of the weights file the backbone does not use.
    pub extra_tensors: Vec<String>,
    pub dim: i64,
    pub device: String,
    pub precision: Precision,
    pub preprocess: Preprocess,
    pub description: Option<String>,
    /// ResNets: channels of the first stage; absent for other models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    /// The training paradigm the config gave (`contrastive`, `distillation`, ...).
    pub paradigm: Option<String>,
}

/// A loaded encoder. Not `Sync` (libtorch tensors); use one per thread or a mutex.
pub struct Encoder {
    backbone: Backbone,
    device: Device,
    kind: Kind,
    head: Option<LinearHead>,
    info: EncoderInfo,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description())
    }
}

impl Encoder {
    /// Validates a config entry and loads it (relative paths from `base_dir`).
    pub fn from_config(cfg: &ModelConfig, base_dir: &Path, opts: &RuntimeOptions) -> Result<Self> {
        Encoder::load(&cfg.validate(base_dir)?, opts)
    }

    /// Loads the network, moves it to the device and precision, and fixes evaluation mode.
    pub fn load(spec: &ModelSpec, opts: &RuntimeOptions) -> Result<Self> {
        let (device, kind) = opts.resolve()?;
        let mut info = EncoderInfo {
            name: spec.name.clone(),
            kind: "native",
            architecture: None,
            pool: None,
            file: None,
            sha256: None,
            seed: None,
            extra_tensors: Vec::new(),
            dim: 0,
            device: device_name(device),
            precision: opts.precision,
            preprocess: spec.preprocess.clone(),
            description: spec.description.clone(),
            width: None,
            paradigm: spec.paradigm.clone(),
        };
        let (backbone, head) = match &spec.source {
            Source::Native {
                arch,
                weights,
                seed,
                stem_padding,
                width,
            } => {
                let channels = i64::from(spec.preprocess.channels);
                let net = ResNet::with_shape(*arch, channels, *stem_padding, *width);
                info.width = Some(*width);
                let (mut net, head) = native(net, weights.as_deref(), *seed, &mut info)
                    .map_err(|e| weights_error(spec, &arch.to_string(), e))?;
                net.to(device, kind);
                let mut inference = net.fold();
                if let Some(side) = spec.preprocess.crop_to() {
                    inference.specialise(side, side);
                }
                (Backbone::Native(Box::new(inference)), head)
            }
            Source::Vit {
                arch,
                weights,
                seed,
                pool,
            } => {
                let channels = i64::from(spec.preprocess.channels);
                let (mut net, head) =
                    vit(*arch, channels, *pool, weights.as_deref(), *seed, &mut info)
                        .map_err(|e| weights_error(spec, &arch.to_string(), e))?;
                net.to(device, kind);
                if let Some(side) = spec.preprocess.crop_to() {
                    net.specialise(side, side)?;
                }
                (Backbone::Vit(Box::new(net)), head)
            }
            Source::TorchScript { path } => {
                let mut module = script(path, &mut info)?;
                module.to(device, kind, false);
                (Backbone::Script(module), None)
            }
            Source::Pixels => {
                info.kind = "pixels";
                info.architecture = Some(crate::config::PIXELS.to_string());
                (Backbone::Pixels, None)
            }
        };
        let mut encoder = Encoder {
            backbone,
            device,
            kind,
            head,
            info,
        };
        encoder.info.dim = encoder.probe_dim()?;
        Ok(encoder)
    }

    /// Features `[N, dim]` float32 on the CPU for a `[N, H, W, C]` u8 batch (C = 1 or 3).
    pub fn embed(&self, batch_u8: &Tensor) -> Result<Tensor> {
        let n = batch_u8.size().first().copied().unwrap_or(0);
        if n == 0 && batch_u8.dim() == 4 {
            return Ok(Tensor::zeros([0, self.dim()], (Kind::Float, Device::Cpu)));
        }
        let _guard = tch::no_grad_guard();
        let x = self
            .info
            .preprocess
            .apply(batch_u8, self.device, self.kind)?;
        let y = self.forward(&x)?;
        Ok(y.to_kind(Kind::Float).to_device(Device::Cpu).contiguous())
    }

    /// Features for a batch already preprocessed to `[N, channels, h, w]` (any float kind, any
    /// device): for callers doing their own preprocessing, and to test the network alone.
    pub fn embed_preprocessed(&self, x: &Tensor) -> Result<Tensor> {
        let channels = i64::from(self.info.preprocess.channels);
        let size = x.size();
        if size.len() != 4 || size[1] != channels || size[2] < 1 || size[3] < 1 {
            return Err(ModelError::Input(format!(
                "expected a preprocessed [N, {channels}, H, W] batch, got shape {size:?}"
            )));
        }
        let _guard = tch::no_grad_guard();
        let y = self.forward(&x.to_device(self.device).to_kind(self.kind))?;
        Ok(y.to_kind(Kind::Float).to_device(Device::Cpu).contiguous())
    }

    /// [`Encoder::embed`] for contiguous HWC bytes of `dims = [n, height, width, channels]`.
    pub fn embed_bytes(&self, pixels: &[u8], dims: [usize; 4]) -> Result<Tensor> {
        self.embed(&crate::preprocess::batch_from_bytes(pixels, dims)?)
    }

    /// Length of the feature vector.
    pub fn dim(&self) -> i64 {
        self.info.dim
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn info(&self) -> &EncoderInfo {
        &self.info
    }

    pub fn preprocess(&self) -> &Preprocess {
        &self.info.preprocess
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The `fc` head of the weights file (float32, on the CPU), if it had one.
    pub fn head(&self) -> Option<&LinearHead> {
        self.head.as_ref()
    }

    /// One line for the `runs` table and logs.
    pub fn description(&self) -> String {
        let i = &self.info;
        let arch = i.architecture.as_ref().map(|a| match (i.pool, i.width) {
            (Some(pool), _) => format!("{a} ({pool} pool)"),
            (None, Some(w)) if w != crate::resnet::DEFAULT_WIDTH => format!("{a} (width {w})"),
            _ => a.clone(),
        });
        let source = match (&arch, &i.file) {
            _ if i.kind == "pixels" => "the normalised pixels (no network)".to_string(),
            (Some(a), Some(f)) => format!("{a} from {}", f.display()),
            (Some(a), None) => format!("{a} with random weights (seed {})", i.seed.unwrap_or(0)),
            (None, f) => format!(
                "torchscript {}",
                f.as_deref().unwrap_or(Path::new("")).display()
            ),
        };
        let sha = i
            .sha256
            .as_deref()
            .map_or(String::new(), |s| format!(" sha256 {}", &s[..12]));
        format!(
            "{}: {source}{sha}; {}-d features on {} {}; {}",
            i.name,
            i.dim,
            i.device,
            i.precision,
            i.preprocess.summary()
        )
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.backbone {
            Backbone::Native(net) => Ok(net.features(x)),
            Backbone::Vit(net) => net.features(x).map_err(|e| match e {
                ModelError::Input(m) => {
                    ModelError::Input(format!("model '{}': {m}", self.info.name))
                }
                other => other,
            }),
            Backbone::Script(m) => script_forward(m, x),
            Backbone::Pixels => Ok(x.flatten(1, -1)),
        }
    }

    /// Runs one blank image through the network: checks it runs here and gives its width.
    fn probe_dim(&self) -> Result<i64> {
        let p = &self.info.preprocess;
        let side = p.crop_to().or(p.resize_to()).unwrap_or(32);
        let blank = Tensor::zeros([1, side, side, 3], (Kind::Uint8, Device::Cpu));
        let _guard = tch::no_grad_guard();
        let x = p.apply(&blank, self.device, self.kind)?;
        let y = self
            .forward(&x)
            .map_err(|e| ModelError::config(&self.info.name, e.to_string()))?;
        Ok(y.size()[1])
    }
}

/// Gives a fresh ResNet random (seeded) weights, or fills it from `weights` if given.
fn native(
    mut net: ResNet,
    weights: Option<&Path>,
    seed: u64,
    info: &mut EncoderInfo,
) -> Result<(ResNet, Option<LinearHead>)> {
    info.architecture = Some(net.arch.to_string());
    let Some(path) = weights else {
        net.init_seeded(seed);
        info.seed = Some(seed);
        return Ok((net, None));
    };
    let (report, head) = load_resnet(&mut net, path)?;
    record(info, report);
    Ok((net, head))
}

/// A ViT with random (seeded) weights at 224 px, or built from the tensors of `weights`.
fn vit(
    arch: VitArch,
    channels: i64,
    pool: Pool,
    weights: Option<&Path>,
    seed: u64,
    info: &mut EncoderInfo,
) -> Result<(VisionTransformer, Option<LinearHead>)> {
    info.architecture = Some(arch.to_string());
    info.pool = Some(pool);
    let Some(path) = weights else {
        let mut net =
            VisionTransformer::new(arch, channels, arch.default_grid(), FinalNorm::Tokens, pool);
        net.init_seeded(seed);
        info.seed = Some(seed);
        return Ok((net, None));
    };
    let (net, report, head) = load_vit(arch, channels, pool, path)?;
    record(info, report);
    Ok((net, head))
}

fn record(info: &mut EncoderInfo, report: LoadReport) {
    info.file = Some(report.path);
    info.sha256 = Some(report.sha256);
    info.extra_tensors = report.extra;
}

/// A weights-loading error with the model's name and architecture.
fn weights_error(spec: &ModelSpec, architecture: &str, error: ModelError) -> ModelError {
    ModelError::Weights {
        model: spec.name.clone(),
        architecture: architecture.to_string(),
        error: Box::new(error),
    }
}

/// Loads a TorchScript module on the CPU in evaluation mode.
fn script(path: &Path, info: &mut EncoderInfo) -> Result<CModule> {
    let fail = |reason: String| ModelError::File {
        what: "TorchScript model",
        path: path.into(),
        reason,
    };
    if !path.is_file() {
        return Err(fail("no such file".to_string()));
    }
    let mut module = CModule::load(path).map_err(|e| fail(first_line(&e.to_string())))?;
    module.f_set_eval()?;
    info.kind = "torchscript";
    info.file = Some(path.into());
    info.sha256 = Some(file_sha256(path)?);
    Ok(module)
}

/// Runs a TorchScript module; accepts a tensor or a tuple/list whose first item is one.
fn script_forward(module: &CModule, x: &Tensor) -> Result<Tensor> {
    let out = module.forward_is(&[IValue::Tensor(x.shallow_clone())])?;
    let y = match out {
        IValue::Tensor(t) => t,
        IValue::Tuple(items) | IValue::GenericList(items) => match items.into_iter().next() {
            Some(IValue::Tensor(t)) => t,
            _ => {
                return Err(ModelError::Input(
                    "torchscript output holds no tensor".into(),
                ))
            }
        },
        IValue::TensorList(items) => items
            .into_iter()
            .next()
            .ok_or_else(|| ModelError::Input("torchscript returned an empty list".into()))?,
        other => return Err(ModelError::Input(format!("torchscript returned {other:?}"))),
    };
    if y.dim() < 2 || y.size()[0] != x.size()[0] {
        return Err(ModelError::Input(format!(
            "torchscript output shape {:?} is not [N, D] for N = {}",
            y.size(),
            x.size()[0]
        )));
    }
    Ok(y.flatten(1, -1))
}

/// libtorch messages carry C++ backtraces; the first line says what happened.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).to_string()
}
