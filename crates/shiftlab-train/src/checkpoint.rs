//! Checkpoints and outputs, written atomically (`shiftlab_common::AtomicFile`) so a
//! killed run never leaves a truncated file where `--resume` or `shiftlab run` will look.
//!
//! A checkpoint is one safetensors file: the learner's tensors (`online.*`, `target.*`,
//! `center`), the SGD momentum buffers (`sgd.*`, so a resumed run continues exactly), and a
//! JSON record (epoch, step, generator state) stored as the u8 tensor `meta`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use shiftlab_common::AtomicFile;
use tch::{Device, Tensor};

use crate::method::Learner;
use crate::net::Named;
use crate::optim::Sgd;

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub method: String,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimiser steps taken.
    pub step: usize,
    /// State of the run's generator after `epoch` epochs.
    pub rng_state: u64,
}

/// The checkpoint beside an output `FILE.safetensors`: `FILE.ckpt.safetensors`.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    out.with_extension("ckpt.safetensors")
}

/// Writes named tensors (moved to the CPU) to `path` atomically.
pub fn write_atomic(path: &Path, tensors: &Named) -> Result<()> {
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.detach().to_device(Device::Cpu).contiguous()))
        .collect();
    let writing = || format!("writing {}", path.display());
    let file = AtomicFile::create(path).with_context(writing)?;
    // libtorch's writer takes a path: it fills the temporary, the commit publishes it.
    Tensor::write_safetensors(&cpu, file.temporary_path()).with_context(writing)?;
    file.commit().with_context(writing)?;
    Ok(())
}

/// Writes `text` to `path` atomically.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<()> {
    shiftlab_common::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Saves the learner, the SGD buffers and `progress`.
pub fn save(path: &Path, learner: &Learner, sgd: &Sgd, progress: &Progress) -> Result<()> {
    let mut tensors = learner.state();
    for (k, v) in &sgd.buffers {
        tensors.insert(format!("sgd.{k}"), v.shallow_clone());
    }
    let meta = serde_json::to_vec(progress)?;
    tensors.insert("meta".into(), Tensor::from_slice(&meta));
    write_atomic(path, &tensors)
}

/// Restores the learner and SGD buffers from `path`; returns where the run stood.
pub fn load(path: &Path, learner: &mut Learner, sgd: &mut Sgd) -> Result<Progress> {
    let tensors: Named = Tensor::read_safetensors(path)
        .with_context(|| format!("reading checkpoint {}", path.display()))?
        .into_iter()
        .collect();
    let meta = tensors
        .get("meta")
        .context("checkpoint has no 'meta' record")?;
    let bytes = Vec::<u8>::try_from(meta)?;
    let progress: Progress = serde_json::from_slice(&bytes).context("bad checkpoint 'meta'")?;
    if progress.method != learner.method.name() {
        anyhow::bail!(
            "checkpoint {} is for method {}, not {}",
            path.display(),
            progress.method,
            learner.method
        );
    }
    learner.load_state(&tensors)?;
    let device = learner.online.device;
    sgd.buffers = tensors
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("sgd.")?.to_string(), v.to_device(device))))
        .collect();
    Ok(progress)
}
