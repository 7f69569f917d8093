//! The training loop: epochs of shuffled batches, augmented views, loss, SGD step, method
//! update; periodic checkpoints; the backbone and a JSON sidecar at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use shiftlab_model::Architecture;
use tch::{Device, Kind, Tensor};

use crate::augment::Augment;
use crate::checkpoint::{self, Progress};
use crate::data::TrainData;
use crate::method::{Hyper, Learner, Method, Trunk};
use crate::optim::{cosine_lr, Optimizer, Sgd};
use crate::rng::Rng;

/// Everything a run needs besides the data.
#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    pub method: Method,
    #[serde(serialize_with = "display")]
    pub arch: Architecture,
    /// Channels of the trunk's first stage (64: torchvision's ResNets; the zoo: 16).
    pub width: i64,
    pub epochs: usize,
    pub batch_size: usize,
    /// Base learning rate at batch 256 (scaled by batch/256); `None`: the method's default.
    pub lr: Option<f64>,
    pub weight_decay: Option<f64>,
    pub optimizer: Optimizer,
    pub momentum: f64,
    /// Warm-up epochs (capped at a tenth of the run).
    pub warmup_epochs: usize,
    pub seed: u64,
    /// Save a checkpoint every this many epochs (0: never).
    pub checkpoint_every: usize,
    pub resume: bool,
    /// Stop (with a checkpoint, without the output) after this many epochs in this
    /// invocation: time-boxed runs continued later with `resume`.
    pub stop_after: Option<usize>,
    pub out: PathBuf,
    /// Store the output's learned floating-point tensors as float16 (half the size; loaders
    /// convert back to float32, and the trunk computes in float32); BatchNorm statistics stay
    /// float32.
    pub half_weights: bool,
    /// Probability of the gaussian blur in each SSL view (`None`: the recipe's 0.5); the
    /// CIFAR recipes of solo-learn and lightly leave the blur out at 32 px.
    pub blur_p: Option<f64>,
    #[serde(skip)]
    pub device: Device,
    pub hyper: Hyper,
}

fn display<S: serde::Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl TrainConfig {
    /// Defaults for `method` (paper hyper-parameters, batch 256, 10 warm-up epochs, seed 0).
    pub fn new(
        method: Method,
        arch: Architecture,
        epochs: usize,
        classes: i64,
        out: PathBuf,
    ) -> Self {
        TrainConfig {
            method,
            arch,
            width: shiftlab_model::DEFAULT_WIDTH,
            epochs,
            batch_size: 256,
            lr: None,
            weight_decay: None,
            optimizer: Optimizer::Sgd,
            momentum: 0.9,
            warmup_epochs: 10,
            seed: 0,
            checkpoint_every: 0,
            resume: false,
            stop_after: None,
            out,
            half_weights: false,
            blur_p: None,
            device: Device::Cpu,
            hyper: Hyper::for_method(method, classes),
        }
    }

    /// The learning rate actually used at the peak.
    pub fn peak_lr(&self) -> f64 {
        self.lr.unwrap_or(self.method.default_lr()) * self.batch_size as f64 / 256.0
    }
}

/// One report per optimiser step, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct StepReport {
    pub epoch: usize,
    pub step: usize,
    pub total_steps: usize,
    pub loss: f64,
    pub lr: f64,
}

/// What a finished run did (also the JSON sidecar).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub method: String,
    pub architecture: String,
    /// Channels of the first stage (`width` of the `[[models]]` entry that loads it).
    pub width: i64,
    pub channels: i64,
    pub image_size: i64,
    pub images: usize,
    pub epochs: usize,
    pub steps: usize,
    pub batch_size: usize,
    pub peak_lr: f64,
    pub weight_decay: f64,
    pub optimizer: String,
    pub seed: u64,
    /// libtorch intra-op threads of the run (CPU results can depend on it in the last bits).
    pub threads: i32,
    pub final_loss: f64,
    pub seconds: f64,
    /// CPU time of the process over this invocation, all threads (Linux; `None` elsewhere):
    /// the budget measure that does not depend on what else the machine was doing.
    pub cpu_seconds: Option<f64>,
    /// The CPU it ran on (`cpu_seconds` of one recipe differ ~3x between two 2-core machines
    /// of one model name, one with AVX-512 and one without), from `/proc/cpuinfo`.
    pub machine: Option<String>,
    pub seconds_per_epoch: f64,
    pub finished_unix: u64,
    /// The `normalize` to give the encoder (the training normalisation).
    pub normalize_mean: Vec<f64>,
    pub normalize_std: Vec<f64>,
    pub resumed_from_epoch: Option<usize>,
    /// False when `stop_after` ended the run early (no output written, checkpoint kept).
    pub completed: bool,
    pub config: TrainConfig,
    pub augment: Augment,
}

/// Trains on `data`, writes `cfg.out` (backbone only, torchvision names) and `cfg.out`.json.
pub fn train(
    cfg: &TrainConfig,
    data: &TrainData,
    mut on_step: impl FnMut(&StepReport),
) -> Result<Summary> {
    let t0 = Instant::now();
    let cpu0 = process_cpu_seconds();
    let mut run = Run::start(cfg, data)?;
    let resumed_from = run.progress.epoch;
    let mut loss = f64::NAN;
    let stop = resumed_from.saturating_add(cfg.stop_after.unwrap_or(usize::MAX));
    let last = cfg.epochs.min(stop);
    while run.progress.epoch < last {
        loss = run.epoch(&mut on_step)?;
        let epoch = run.progress.epoch;
        let every = cfg.checkpoint_every > 0;
        let due = every && (epoch % cfg.checkpoint_every == 0 || epoch == cfg.epochs);
        if due || (epoch == last && last < cfg.epochs) {
            checkpoint::save(&run.ckpt, &run.learner, &run.sgd, &run.progress)?;
        }
    }
    let cpu_seconds = cpu0.zip(process_cpu_seconds()).map(|(a, b)| b - a);
    let summary = run.summary(loss, resumed_from, t0.elapsed().as_secs_f64(), cpu_seconds);
    if summary.completed {
        save_backbone(&run.learner, &cfg.out, cfg.half_weights)?;
        let json = serde_json::to_string_pretty(&summary)?;
        checkpoint::write_text_atomic(&sidecar_path(&cfg.out), &json)?;
    }
    Ok(summary)
}

/// `FILE.json` beside `FILE.safetensors`.
pub fn sidecar_path(out: &Path) -> PathBuf {
    out.with_extension("json")
}

/// Writes the trunk's tensors only, under torchvision names (what `shiftlab run` loads);
/// floating-point ones as float16 with `half`.
pub fn save_backbone(learner: &Learner, out: &Path, half: bool) -> Result<()> {
    let vars = learner
        .online
        .backbone
        .vs
        .variables()
        .into_iter()
        .map(|(name, t)| {
            let t = if half && halvable(&name, &t) {
                t.to_kind(tch::Kind::Half)
            } else {
                t
            };
            (name, t)
        })
        .collect();
    checkpoint::write_atomic(out, &vars)
}

/// Learned floating-point tensors within float16's range. BatchNorm running statistics stay
/// float32: pre-BN activations can grow past 65,504 (Barlow Twins did), where float16 holds
/// only infinity, and they are a few thousand numbers.
fn halvable(name: &str, t: &tch::Tensor) -> bool {
    const F16_MAX: f64 = 65504.0;
    let stat = name.ends_with("running_mean") || name.ends_with("running_var");
    t.is_floating_point() && !stat && t.abs().max().double_value(&[]) <= F16_MAX
}

/// User plus system CPU time of this process so far, from `/proc/self/stat` (fields 14 and
/// 15, in USER_HZ = 100 ticks per second on Linux).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// "MODEL NAME, N logical CPUs, AVX-512|AVX2|no AVX2" from `/proc/cpuinfo` (Linux; `None`
/// elsewhere): the vector unit decides libtorch's CPU kernels and so the cost per step.
pub fn machine() -> Option<String> {
    describe_cpu(&std::fs::read_to_string("/proc/cpuinfo").ok()?)
}

fn describe_cpu(cpuinfo: &str) -> Option<String> {
    let field = |line: &str, key: &str| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    };
    let model = cpuinfo.lines().find_map(|l| field(l, "model name"))?;
    let cpus = cpuinfo
        .lines()
        .filter_map(|l| field(l, "processor"))
        .count();
    let flags = cpuinfo
        .lines()
        .find_map(|l| field(l, "flags"))
        .unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let vector = if has("avx512f") {
        "AVX-512"
    } else if has("avx2") {
        "AVX2"
    } else {
        "no AVX2"
    };
    Some(format!("{model}, {cpus} logical CPUs, {vector}"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A run in progress.
struct Run<'a> {
    cfg: &'a TrainConfig,
    data: &'a TrainData,
    learner: Learner,
    sgd: Sgd,
    augment: Augment,
    rng: Rng,
    progress: Progress,
    batch: usize,
    steps_per_epoch: usize,
    ckpt: PathBuf,
}

impl<'a> Run<'a> {
    /// Builds the learner, or restores it from the checkpoint with `resume`.
    fn start(cfg: &'a TrainConfig, data: &'a TrainData) -> Result<Run<'a>> {
        if data.len() < 2 {
            bail!("training needs at least 2 images, got {}", data.len());
        }
        if cfg.batch_size < 2 {
            bail!("--batch-size must be at least 2 (batch statistics)");
        }
        let batch = cfg.batch_size.min(data.len());
        let (m, s) = (data.mean.clone(), data.std.clone());
        let augment = match cfg.method {
            Method::Supervised => Augment::supervised(data.side, m, s),
            _ => {
                let ssl = Augment::ssl(data.side, m, s);
                Augment {
                    blur_p: cfg.blur_p.unwrap_or(ssl.blur_p),
                    ..ssl
                }
            }
        };
        let learner = Learner::new(
            cfg.method,
            cfg.hyper.clone(),
            Trunk {
                arch: cfg.arch,
                width: cfg.width,
            },
            data.channels,
            cfg.seed,
            cfg.device,
        );
        let wd = cfg
            .weight_decay
            .unwrap_or(cfg.method.default_weight_decay());
        let mut run = Run {
            cfg,
            data,
            learner,
            sgd: cfg.optimizer.build(cfg.momentum, wd),
            augment,
            rng: Rng::new(cfg.seed),
            progress: Progress {
                method: cfg.method.to_string(),
                epoch: 0,
                step: 0,
                rng_state: 0,
            },
            batch,
            steps_per_epoch: data.len() / batch,
            ckpt: checkpoint::checkpoint_path(&cfg.out),
        };
        if cfg.resume && run.ckpt.is_file() {
            run.progress = checkpoint::load(&run.ckpt, &mut run.learner, &mut run.sgd)?;
            run.rng = Rng::from_state(run.progress.rng_state);
        } else if cfg.resume {
            eprintln!("no checkpoint at {}: starting afresh", run.ckpt.display());
        }
        Ok(run)
    }

    /// The record of this invocation (the sidecar when the run is complete).
    fn summary(
        &self,
        final_loss: f64,
        resumed_from: usize,
        seconds: f64,
        cpu_seconds: Option<f64>,
    ) -> Summary {
        let (cfg, data) = (self.cfg, self.data);
        let trained = self.progress.epoch.saturating_sub(resumed_from).max(1);
        Summary {
            method: cfg.method.to_string(),
            architecture: cfg.arch.to_string(),
            width: cfg.width,
            channels: data.channels,
            image_size: data.side,
            images: data.len(),
            epochs: self.progress.epoch,
            steps: self.progress.step,
            batch_size: self.batch,
            peak_lr: cfg.peak_lr(),
            weight_decay: self.sgd.weight_decay,
            optimizer: cfg.optimizer.describe(),
            seed: cfg.seed,
            threads: tch::get_num_threads(),
            final_loss,
            seconds,
            cpu_seconds,
            machine: machine(),
            seconds_per_epoch: seconds / trained as f64,
            finished_unix: unix_now(),
            normalize_mean: data.mean.clone(),
            normalize_std: data.std.clone(),
            resumed_from_epoch: (resumed_from > 0).then_some(resumed_from),
            completed: self.progress.epoch >= cfg.epochs,
            config: cfg.clone(),
            augment: self.augment.clone(),
        }
    }

    /// One pass over the shuffled data (last partial batch dropped); returns the mean loss.
    /// A non-finite loss stops the run: continuing would only write NaN weights.
    fn epoch(&mut self, on_step: &mut impl FnMut(&StepReport)) -> Result<f64> {
        let order = self.rng.permutation(self.data.len());
        let total = self.cfg.epochs * self.steps_per_epoch;
        let warmup = (self.cfg.warmup_epochs * self.steps_per_epoch).min(total / 10);
        let mut sum = 0.0;
        for chunk in order.chunks_exact(self.batch) {
            let idx = Tensor::from_slice(chunk);
            let images = self.data.images.index_select(0, &idx);
            let labels = self.data.labels.index_select(0, &idx);
            let views: Vec<Tensor> = (0..self.cfg.method.views())
                .map(|_| self.augment.view(&images, &mut self.rng, self.cfg.device))
                .collect();
            let lr = cosine_lr(self.cfg.peak_lr(), self.progress.step, total, warmup);
            let loss = step(&mut self.learner, &mut self.sgd, &views, &labels, lr);
            if !loss.is_finite() {
                bail!(
                    "loss is {loss} at step {} (lr {lr:.4}): lower --lr or raise --warmup-epochs",
                    self.progress.step + 1
                );
            }
            self.progress.step += 1;
            self.learner
                .after_step(self.progress.step as f64 / total.max(1) as f64);
            sum += loss;
            on_step(&StepReport {
                epoch: self.progress.epoch,
                step: self.progress.step,
                total_steps: total,
                loss,
                lr,
            });
        }
        self.progress.epoch += 1;
        self.progress.rng_state = self.rng.state();
        Ok(sum / self.steps_per_epoch.max(1) as f64)
    }
}

/// One optimiser step on fixed views; returns the loss before the step.
pub fn step(
    learner: &mut Learner,
    sgd: &mut Sgd,
    views: &[Tensor],
    labels: &Tensor,
    lr: f64,
) -> f64 {
    let params = learner.online.parameters();
    Sgd::zero_grad(&params);
    let loss = learner.loss(views, labels);
    loss.backward();
    sgd.step(&params, lr);
    loss.to_kind(Kind::Double).double_value(&[])
}

/// Reads the dataset and trains (what `shiftlab train` runs).
pub fn train_file(
    cfg: &TrainConfig,
    dataset: &Path,
    limit: Option<usize>,
    on_step: impl FnMut(&StepReport),
) -> Result<Summary> {
    let data = crate::data::load(dataset, "train", limit)
        .with_context(|| format!("loading {}", dataset.display()))?;
    let mut cfg = cfg.clone();
    cfg.hyper.classes = cfg.hyper.classes.max(data.classes);
    train(&cfg, &data, on_step)
}

#[cfg(test)]
mod tests {
    use super::describe_cpu;

    const TWO_CPUS: &str =
        "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n\n\
        processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n";

    #[test]
    fn the_cpu_is_named_with_its_count_and_vector_unit() {
        let got = describe_cpu(TWO_CPUS);
        assert_eq!(got.as_deref(), Some("AMD EPYC, 2 logical CPUs, AVX2"));
        let wide = TWO_CPUS.replace("avx2 fma", "avx2 avx512f avx512vl");
        let got = describe_cpu(&wide);
        assert_eq!(got.as_deref(), Some("AMD EPYC, 2 logical CPUs, AVX-512"));
        let old = TWO_CPUS.replace("avx2 ", "");
        assert_eq!(
            describe_cpu(&old).as_deref(),
            Some("AMD EPYC, 2 logical CPUs, no AVX2")
        );
        assert_eq!(describe_cpu("processor\t: 0\n"), None);
    }
}
