//! The probes a run evaluates, behind one small interface, and their fit phase on clean
//! embeddings of the fit split (cached in the run folder).

use std::path::Path;

use shiftlab_model::{Encoder, LinearHead};
use shiftlab_probe::probe::head::head_logits;
use shiftlab_probe::probe::outputs_from_scores_within;
use shiftlab_probe::probe::{KnnClassifier, KnnConfig, LinearProbe, LinearProbeConfig, ProbeError};
use tch::{Kind, Tensor};

use crate::config::Probes;
use crate::error::PipelineError;

pub use shiftlab_probe::probe::SampleOutput;

/// A fitted probe: features `[N, D]` in, per-class scores `[N, C]` that sum to 1 per row out
/// (softmax probabilities, kNN vote shares), so that a dataset-level shift can restrict them to
/// the classes it covers before the outputs are read.
pub trait Probe: Send {
    fn name(&self) -> &'static str;
    fn scores(&self, features: &Tensor) -> Result<Tensor, ProbeError>;

    /// Per-sample outputs, among `allowed` classes when given.
    fn predict(
        &self,
        features: &Tensor,
        labels: &Tensor,
        allowed: Option<&[i64]>,
    ) -> Result<Vec<SampleOutput>, ProbeError> {
        let scores = self.scores(features)?;
        outputs_from_scores_within(&scores, labels, allowed)
    }
}

fn softmax(logits: Tensor) -> Tensor {
    logits.to_kind(Kind::Double).softmax(1, Kind::Double)
}

struct Linear(LinearProbe);
struct Knn(KnnClassifier);
struct Head(LinearHead);

impl Probe for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn scores(&self, features: &Tensor) -> Result<Tensor, ProbeError> {
        self.0.logits(features).map(softmax)
    }
}

impl Probe for Knn {
    fn name(&self) -> &'static str {
        "knn"
    }
    fn scores(&self, features: &Tensor) -> Result<Tensor, ProbeError> {
        self.0.scores(features)
    }
}

impl Probe for Head {
    fn name(&self) -> &'static str {
        "head"
    }
    fn scores(&self, features: &Tensor) -> Result<Tensor, ProbeError> {
        head_logits(&self.0, features).map(softmax)
    }
}

/// Fits the configured probes of one model on its clean fit-split embeddings, on its device.
pub fn build(
    probes: &Probes,
    seed: u64,
    encoder: &Encoder,
    set: &FitSet,
    classes: i64,
) -> Result<Vec<Box<dyn Probe>>, PipelineError> {
    let err = |probe: &'static str, e: ProbeError| PipelineError::probe(encoder.name(), probe, e);
    let device = encoder.device();
    let features = set.features.to_device(device);
    let labels = set.labels.to_device(device);
    let mut out: Vec<Box<dyn Probe>> = Vec::new();
    if let Some(cfg) = &probes.linear {
        let config = LinearProbeConfig {
            epochs: cfg.epochs,
            batch_size: cfg.batch_size as i64,
            learning_rate: cfg.learning_rate,
            weight_decay: cfg.weight_decay,
            seed,
        };
        let probe = LinearProbe::train(&features, &labels, classes, &config)
            .map_err(|e| err("linear", e))?;
        out.push(Box::new(Linear(probe)));
    }
    if let Some(cfg) = &probes.knn {
        let config = KnnConfig {
            k: cfg.k as i64,
            temperature: cfg.temperature,
            ..KnnConfig::default()
        };
        let knn =
            KnnClassifier::new(&features, &labels, classes, config).map_err(|e| err("knn", e))?;
        out.push(Box::new(Knn(knn)));
    }
    if probes.head {
        let head = encoder.head().ok_or_else(|| {
            err(
                "head",
                ProbeError::Config("the weights file has no fc.weight / fc.bias head".into()),
            )
        })?;
        if head.classes() != classes {
            let msg = format!(
                "the head predicts {} classes, the dataset has {classes}",
                head.classes()
            );
            return Err(err("head", ProbeError::Config(msg)));
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
    /// Saves atomically, through the workspace's one atomic writer.
    pub fn save(&self, path: &Path) -> Result<(), PipelineError> {
        let file =
            shiftlab_common::AtomicFile::create(path).map_err(|e| PipelineError::io(path, e))?;
        Tensor::write_safetensors(
            &[("features", &self.features), ("labels", &self.labels)],
            file.temporary_path(),
        )
        .map_err(|e| PipelineError::io(path, e))?;
        file.commit().map_err(|e| PipelineError::io(path, e))?;
        Ok(())
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
