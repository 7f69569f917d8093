//! The fit phase: clean embeddings of the fit split for every model (each image decoded once and
//! fed to every model), cached in the run folder, then the probes fitted on them.
//!
//! Once per folder: the invocation holding `cache/fit.lock` computes the embeddings; every other
//! invocation of the folder (shards started together) waits for the cache and loads it. Probes
//! are then fitted from the cache by each invocation (seeded, so identically).

use std::path::Path;

use indicatif::ProgressBar;
use rayon::prelude::*;
use shiftlab_model::Encoder;
use tch::{Kind, Tensor};

use crate::config::{Pipeline, Runtime, Source};
use crate::error::PipelineError;
use crate::folder::FitLock;
use crate::probes::{FitSet, Probe};
use crate::source::{decode, Geometry, PixelBatch, SampleStream};

/// Fitted probes of every model.
pub struct FittedProbes {
    pub per_model: Vec<Vec<Box<dyn Probe>>>,
    /// Classes the probes predict: evaluation labels must lie in `0..num_classes`.
    pub num_classes: i64,
    pub source: FitSource,
}

/// Where this invocation's fit-split embeddings came from (the `runs` table's `fit_embeddings`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FitSource {
    /// This invocation embedded the fit split (the folder's one fit phase).
    Computed,
    /// Loaded from the folder's cache.
    Reused,
    /// No probe needs fitting.
    #[default]
    None,
}

impl FitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FitSource::Computed => "computed",
            FitSource::Reused => "reused",
            FitSource::None => "none",
        }
    }
}

/// Embeds the fit split (or loads the cache) and fits every configured probe.
pub fn fit_probes(
    p: &Pipeline,
    encoders: &[Encoder],
    cache_dir: &Path,
    dataset_classes: i64,
    progress: bool,
) -> Result<FittedProbes, PipelineError> {
    if p.probes.linear.is_none() && p.probes.knn.is_none() {
        // Only fixed heads: nothing to fit, no fit-split pass.
        let per_model = encoders
            .iter()
            .map(|enc| {
                let empty = FitSet {
                    features: Tensor::zeros([0, enc.dim()], (Kind::Float, tch::Device::Cpu)),
                    labels: Tensor::zeros([0], (Kind::Int64, tch::Device::Cpu)),
                };
                crate::probes::build(&p.probes, p.seed, enc, &empty, dataset_classes)
            })
            .collect::<Result<_, _>>()?;
        return Ok(FittedProbes {
            per_model,
            num_classes: dataset_classes,
            source: FitSource::None,
        });
    }
    let (sets, source) = fit_sets(p, encoders, cache_dir, progress)?;
    let fit_classes = sets
        .first()
        .map(|s| s.labels.max().int64_value(&[]) + 1)
        .unwrap_or(0);
    let num_classes = dataset_classes.max(fit_classes);
    let mut per_model = Vec::new();
    for (enc, set) in encoders.iter().zip(&sets) {
        per_model.push(crate::probes::build(
            &p.probes,
            p.seed,
            enc,
            set,
            num_classes,
        )?);
    }
    Ok(FittedProbes {
        per_model,
        num_classes,
        source,
    })
}

fn cache_path(p: &Pipeline, cache_dir: &Path, model: &str) -> std::path::PathBuf {
    cache_dir.join(format!("fit-{model}-{}.safetensors", p.fingerprint))
}

/// The cache when it is complete (or becomes so while we wait for the folder's fit phase),
/// otherwise the embeddings computed here under the fit lock.
fn fit_sets(
    p: &Pipeline,
    encoders: &[Encoder],
    cache_dir: &Path,
    progress: bool,
) -> Result<(Vec<FitSet>, FitSource), PipelineError> {
    let cached: Vec<_> = encoders
        .iter()
        .map(|e| cache_path(p, cache_dir, e.name()))
        .collect();
    let complete = || cached.iter().all(|c| c.exists());
    let said = std::cell::Cell::new(false);
    let waiting = |holder: &str| {
        if progress && !said.replace(true) {
            eprintln!(
                "fit phase: waiting for {} to embed the fit split",
                holder.trim()
            );
        }
    };
    let Some(_lock) = FitLock::acquire_or_wait(cache_dir, complete, waiting)? else {
        let sets = cached
            .iter()
            .map(|c| FitSet::load(c))
            .collect::<Result<_, _>>()?;
        return Ok((sets, FitSource::Reused));
    };
    let geometry = p.shifts.geometry();
    let sets = embed_fit_split(&p.source, geometry, &p.runtime, encoders, &cached, progress)?;
    Ok((sets, FitSource::Computed))
}

/// Embeds the fit split with every model and saves each model's cache.
fn embed_fit_split(
    src: &Source,
    geometry: Geometry,
    runtime: &Runtime,
    encoders: &[Encoder],
    cached: &[std::path::PathBuf],
    progress: bool,
) -> Result<Vec<FitSet>, PipelineError> {
    let mut feats: Vec<Vec<Tensor>> = encoders.iter().map(|_| Vec::new()).collect();
    let mut labels: Vec<i64> = Vec::new();
    let stream = SampleStream::open(&src.dataset, &src.fit_split, None, src.fit_limit)?;
    let total = src.fit_limit.unwrap_or(0);
    let bar = if progress {
        ProgressBar::new(total).with_message("fit split: clean embeddings")
    } else {
        ProgressBar::hidden()
    };
    let mut batch = Vec::with_capacity(runtime.batch_size);
    let mut stream = stream.peekable();
    while stream.peek().is_some() {
        batch.clear();
        while batch.len() < runtime.batch_size {
            match stream.next() {
                Some(s) => batch.push(s?),
                None => break,
            }
        }
        let decoded: Vec<_> = batch
            .par_iter()
            .map(|s| decode(&s.bytes, geometry).map(|img| (s.label, img)))
            .collect();
        let ok: Vec<_> = decoded.into_iter().filter_map(Result::ok).collect();
        labels.extend(ok.iter().map(|(l, _)| *l));
        // Tensors built once per batch, shared by every model.
        let tensors = PixelBatch::from_images(ok.iter().map(|(_, img)| img)).tensors();
        for (m, enc) in encoders.iter().enumerate() {
            for x in &tensors {
                feats[m].push(
                    crate::eval::embed_blocked(enc, x, runtime.embed_block)
                        .map_err(|e| PipelineError::model(enc.name(), e))?,
                );
            }
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    if labels.is_empty() {
        return Err(PipelineError::Dataset {
            path: src.dataset.display().to_string(),
            message: format!("no decodable rows in the fit split '{}'", src.fit_split),
        });
    }
    let labels = Tensor::from_slice(&labels).to_kind(Kind::Int64);
    let mut sets = Vec::new();
    for (m, f) in feats.into_iter().enumerate() {
        let set = FitSet {
            features: Tensor::cat(&f, 0),
            labels: labels.shallow_clone(),
        };
        set.save(&cached[m])?;
        sets.push(set);
    }
    Ok(sets)
}
