//! The probes a run evaluates, behind one small interface, and their fit phase on clean
//! embeddings of the fit split (cached in the run folder).

use std::path::Path;

use shiftlab_model::{Encoder, LinearHead};
use shiftlab_probe::probe::head::head_outputs;
use shiftlab_probe::probe::{KnnClassifier, KnnConfig, LinearProbe, LinearProbeConfig};
use tch::Tensor;

use crate::config::Pipeline;
use crate::error::PipelineError;

pub use shiftlab_probe::probe::SampleOutput;

/// A fitted probe: features `[N, D]` (float32, CPU) and labels `[N]` in, per-sample outputs out.
pub trait Probe: Send {
    fn name(&self) -> &'static str;
    fn predict(&self, features: &Tensor, labels: &Tensor) -> Result<Vec<SampleOutput>, String>;
}

struct Linear(LinearProbe);
struct Knn(KnnClassifier);
struct Head(LinearHead);

impl Probe for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn predict(&self, features: &Tensor, labels: &Tensor) -> Result<Vec<SampleOutput>, String> {
        self.0.predict(features, labels).map_err(|e| e.to_string())
    }
}

impl Probe for Knn {
    fn name(&self) -> &'static str {
        "knn"
    }
    fn predict(&self, features: &Tensor, labels: &Tensor) -> Result<Vec<SampleOutput>, String> {
        self.0.predict(features, labels).map_err(|e| e.to_string())
    }
}

impl Probe for Head {
    fn name(&self) -> &'static str {
        "head"
    }
    fn predict(&self, features: &Tensor, labels: &Tensor) -> Result<Vec<SampleOutput>, String> {
        head_outputs(&self.0, features, labels).map_err(|e| e.to_string())
    }
}

/// Fits the configured probes of one model on its clean fit-split embeddings, on its device.
pub fn build(
    p: &Pipeline,
    encoder: &Encoder,
    set: &FitSet,
    classes: i64,
) -> Result<Vec<Box<dyn Probe>>, PipelineError> {
    let err = |probe: &str, e: &dyn std::fmt::Display| PipelineError::Probe {
        model: encoder.name().to_string(),
        probe: probe.to_string(),
        message: e.to_string(),
    };
    let device = encoder.device();
    let features = set.features.to_device(device);
    let labels = set.labels.to_device(device);
    let mut out: Vec<Box<dyn Probe>> = Vec::new();
    if let Some(cfg) = &p.probes.linear {
        let config = LinearProbeConfig {
            epochs: cfg.epochs,
            batch_size: cfg.batch_size as i64,
            learning_rate: cfg.learning_rate,
            weight_decay: cfg.weight_decay,
            seed: p.seed,
        };
        let probe = LinearProbe::train(&features, &labels, classes, &config)
            .map_err(|e| err("linear", &e))?;
        out.push(Box::new(Linear(probe)));
    }
    if let Some(cfg) = &p.probes.knn {
        let config = KnnConfig {
            k: cfg.k as i64,
            temperature: cfg.temperature,
            ..KnnConfig::default()
        };
        let knn =
            KnnClassifier::new(&features, &labels, classes, config).map_err(|e| err("knn", &e))?;
        out.push(Box::new(Knn(knn)));
    }
    if p.probes.head {
        let head = encoder
            .head()
            .ok_or_else(|| err("head", &"the weights file has no fc.weight / fc.bias head"))?;
        if head.classes() != classes {
            let msg = format!(
                "the head predicts {} classes, the dataset has {classes}",
                head.classes()
            );
            return Err(err("head", &msg));
        }
        out.push(Box::new(Head(head.to_device(device))));
    }
    Ok(out)
}

/// Clean fit-split embeddings of one model, cached as safetensors in the run folder.
pub struct FitSet {
    pub features: Tensor,
    pub labels: Tensor,
}

impl FitSet {
    pub fn save(&self, path: &Path) -> Result<(), PipelineError> {
        let tmp = crate::tables::tmp_name(path);
        Tensor::write_safetensors(
            &[("features", &self.features), ("labels", &self.labels)],
            &tmp,
        )
        .map_err(|e| PipelineError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| PipelineError::io(path, e))
    }

    pub fn load(path: &Path) -> Result<FitSet, PipelineError> {
        let named = Tensor::read_safetensors(path).map_err(|e| PipelineError::io(path, e))?;
        let get = |name: &str| {
            named
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .ok_or_else(|| PipelineError::io(path, format!("no tensor '{name}' in the cache")))
        };
        Ok(FitSet {
            features: get("features")?,
            labels: get("labels")?,
        })
    }
}
