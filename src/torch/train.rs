//! `shiftlab train`: trains a native ResNet with one of seven methods and writes its trunk as
//! safetensors with torchvision names (plus a JSON sidecar), ready for `[[models]] weights`.
//! The logic lives in `shiftlab_train`; this file parses flags and draws the progress bar.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use shiftlab_model::{Architecture, DeviceSpec};
use shiftlab_train::{Hyper, Method, Optimizer, StepReport, TrainConfig};

/// Train an encoder (SimCLR, SimSiam, BYOL, Barlow Twins, SwAV, DINO or supervised).
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// simclr | simsiam | byol | barlow_twins | swav | dino | supervised.
    #[arg(long, value_parser = parse_method)]
    pub method: Method,
    /// A dataset table written by `shiftlab ingest` (its `train` split is used).
    #[arg(long, value_name = "FILE.parquet")]
    pub dataset: PathBuf,
    /// resnet18-small (28–64 px), resnet18 or resnet50.
    #[arg(long, default_value = "resnet18-small", value_parser = parse_arch)]
    pub arch: Architecture,
    /// Channels of the stem and first stage (64: torchvision's width; every stage scales with
    /// it; give the same `width` to the `[[models]]` entry).
    #[arg(long, default_value_t = shiftlab_model::DEFAULT_WIDTH)]
    pub width: i64,
    /// Hidden width of the projector (default: the method's, e.g. 2048).
    #[arg(long)]
    pub proj_hidden: Option<i64>,
    /// Output width of the projector (default: the method's, e.g. SimCLR 128, Barlow Twins 2048).
    #[arg(long)]
    pub proj_out: Option<i64>,
    /// Hidden width of the predictor (BYOL and SimSiam; default: BYOL 4096, SimSiam 512).
    #[arg(long)]
    pub pred_hidden: Option<i64>,
    /// Linear layers of the projector, 1-4 (default: the method's: 3 for SimSiam, Barlow
    /// Twins and DINO, 2 for the others).
    #[arg(long)]
    pub proj_layers: Option<usize>,
    /// BatchNorm after the projector's hidden layers, true or false (default: the method's:
    /// false for DINO, true for the others).
    #[arg(long)]
    pub proj_bn: Option<bool>,
    /// SwAV prototypes / DINO output dimension (default: SwAV 3000, DINO 4096).
    #[arg(long)]
    pub prototypes: Option<i64>,
    #[arg(long)]
    pub epochs: usize,
    /// Output weights (the trunk only); the sidecar goes to FILE.json.
    #[arg(long, value_name = "FILE.safetensors")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Base learning rate at batch 256, scaled by batch/256 (default: the method's).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight decay (default: the method's; not applied to biases and BatchNorm).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// sgd | lars (layer-wise rates, eta 0.02; see docs/training.md).
    #[arg(long, default_value = "sgd", value_parser = parse_optimizer)]
    pub optimizer: Optimizer,
    /// Multiply the loss by this factor (1; solo-learn's Barlow Twins recipe: 0.1 with lars).
    #[arg(long)]
    pub loss_scale: Option<f64>,
    /// Barlow Twins' weight of the redundancy (off-diagonal) term (default 0.005, the paper's
    /// for an 8192-d projector; the term sums over D² - D pairs, so a narrower projector
    /// needs a larger weight to keep the same balance).
    #[arg(long)]
    pub lambda: Option<f64>,
    /// BYOL target / DINO teacher EMA rate at the first step, raised to 1 along a cosine
    /// (default: BYOL 0.99, DINO 0.996).
    #[arg(long)]
    pub ema_base: Option<f64>,
    #[arg(long, default_value_t = 10)]
    pub warmup_epochs: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use only the first N training images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Write FILE.ckpt.safetensors every K epochs (0: never).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Continue from FILE.ckpt.safetensors if it exists.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many epochs (checkpoint written, no output): continue with --resume.
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// cpu (default; reproducible), auto, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// libtorch intra-op threads (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Probability of the gaussian blur in each self-supervised view, 0-1 (default 0.5, the
    /// SimCLR/BYOL recipe; the CIFAR recipes of solo-learn and lightly use 0 at 32 px).
    #[arg(long)]
    pub blur_p: Option<f64>,
    /// Store the output weights as float16 (half the size; loaded back as float32).
    #[arg(long)]
    pub half_weights: bool,
}

fn parse_method(s: &str) -> Result<Method, String> {
    s.parse()
}

fn parse_optimizer(s: &str) -> Result<Optimizer, String> {
    s.parse()
}

fn parse_arch(s: &str) -> Result<Architecture, String> {
    s.parse()
}

/// Builds the run configuration from the flags.
fn config(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    if args.epochs == 0 {
        anyhow::bail!("--epochs must be at least 1");
    }
    shiftlab_model::resnet::check_width(args.width).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let device: DeviceSpec = args.device.parse()?;
    let mut cfg = TrainConfig::new(args.method, args.arch, args.epochs, 0, args.out.clone());
    cfg.width = args.width;
    cfg.batch_size = args.batch_size;
    cfg.lr = args.lr;
    cfg.weight_decay = args.weight_decay;
    cfg.optimizer = args.optimizer;
    cfg.warmup_epochs = args.warmup_epochs;
    cfg.seed = args.seed;
    cfg.checkpoint_every = args.checkpoint_every;
    cfg.resume = args.resume;
    cfg.stop_after = args.stop_after;
    cfg.half_weights = args.half_weights;
    cfg.device = device.resolve()?;
    cfg.hyper = Hyper::for_method(args.method, 0);
    for (flag, value, slot) in [
        (
            "--proj-hidden",
            args.proj_hidden,
            &mut cfg.hyper.proj_hidden,
        ),
        ("--proj-out", args.proj_out, &mut cfg.hyper.proj_out),
        (
            "--pred-hidden",
            args.pred_hidden,
            &mut cfg.hyper.pred_hidden,
        ),
        ("--prototypes", args.prototypes, &mut cfg.hyper.prototypes),
    ] {
        match value {
            Some(v) if !(8..=16384).contains(&v) => {
                anyhow::bail!("{flag} must be in 8..=16384, got {v}")
            }
            Some(v) => *slot = v,
            None => {}
        }
    }
    if let Some(layers) = args.proj_layers {
        if !(1..=4).contains(&layers) {
            anyhow::bail!("--proj-layers must be in 1..=4, got {layers}");
        }
        cfg.hyper.proj_layers = layers;
    }
    if let Some(bn) = args.proj_bn {
        cfg.hyper.proj_bn = bn;
    }
    if let Some(tau) = args.ema_base {
        if !(0.0..1.0).contains(&tau) {
            anyhow::bail!("--ema-base must be in [0, 1), got {tau}");
        }
        cfg.hyper.tau_base = tau;
    }
    if let Some(lambda) = args.lambda {
        if !(lambda.is_finite() && lambda > 0.0) {
            anyhow::bail!("--lambda must be a positive number, got {lambda}");
        }
        cfg.hyper.lambda = lambda;
    }
    if let Some(scale) = args.loss_scale {
        if !(scale.is_finite() && scale > 0.0) {
            anyhow::bail!("--loss-scale must be a positive number, got {scale}");
        }
        cfg.hyper.loss_scale = scale;
    }
    if let Some(p) = args.blur_p {
        if !(0.0..=1.0).contains(&p) {
            anyhow::bail!("--blur-p must be a probability in [0, 1], got {p}");
        }
        cfg.blur_p = Some(p);
    }
    Ok(cfg)
}

pub fn run_train(args: &TrainArgs) -> anyhow::Result<()> {
    let cfg = config(args)?;
    if let Some(n) = args.threads {
        shiftlab_train::set_threads(n);
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} steps ({eta} left) {msg}",
        )?
        .progress_chars("=> "),
    );
    let on_step = |r: &StepReport| {
        bar.set_length(r.total_steps as u64);
        bar.set_position(r.step as u64);
        bar.set_message(format!(
            "epoch {} loss {:.4} lr {:.4}",
            r.epoch + 1,
            r.loss,
            r.lr
        ));
    };
    let summary = shiftlab_train::train_file(&cfg, &args.dataset, args.limit, on_step)?;
    bar.finish();
    if !summary.completed {
        println!(
            "stopped after epoch {} of {}: continue with --resume",
            summary.epochs, args.epochs
        );
        return Ok(());
    }
    println!(
        "{} {}: {} images, {} epochs in {:.1} s ({:.1} s/epoch), final loss {:.4}",
        summary.method,
        summary.architecture,
        summary.images,
        summary.epochs,
        summary.seconds,
        summary.seconds_per_epoch,
        summary.final_loss
    );
    println!(
        "wrote {} (normalize mean {:?} std {:?})",
        args.out.display(),
        summary.normalize_mean,
        summary.normalize_std
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TrainArgs,
    }

    fn parse(extra: &[&str]) -> Result<TrainArgs, clap::Error> {
        let base = ["x", "--dataset", "d.parquet", "--out", "o.safetensors"];
        Cli::try_parse_from(base.iter().chain(extra)).map(|c| c.args)
    }

    #[test]
    fn flags_become_the_config() {
        let args =
            parse(&["--method", "barlow_twins", "--epochs", "3", "--lr", "0.1"]).expect("parses");
        let cfg = config(&args).expect("valid");
        assert_eq!(cfg.method, Method::BarlowTwins);
        assert_eq!(cfg.arch, Architecture::ResNet18Small);
        assert!((cfg.peak_lr() - 0.1).abs() < 1e-12);
        assert!((cfg.hyper.lambda - 5e-3).abs() < 1e-12);
        assert_eq!(cfg.optimizer, Optimizer::Sgd);
        assert_eq!(cfg.hyper.loss_scale, 1.0);
        let args = parse(&[
            "--method",
            "barlow_twins",
            "--epochs",
            "3",
            "--optimizer",
            "lars",
            "--loss-scale",
            "0.1",
            "--ema-base",
            "0.99",
            "--lambda",
            "0.02",
            "--proj-layers",
            "2",
            "--proj-bn",
            "true",
            "--prototypes",
            "2048",
            "--pred-hidden",
            "1024",
            "--blur-p",
            "0",
        ])
        .expect("parses");
        let cfg = config(&args).expect("valid");
        assert_eq!(cfg.optimizer, Optimizer::Lars);
        assert_eq!((cfg.hyper.loss_scale, cfg.hyper.tau_base), (0.1, 0.99));
        assert_eq!(cfg.hyper.lambda, 0.02);
        let h = &cfg.hyper;
        assert_eq!((h.proj_layers, h.proj_bn, h.prototypes), (2, true, 2048));
        assert_eq!(h.pred_hidden, 1024);
        assert_eq!(cfg.blur_p, Some(0.0));
        assert_eq!(
            config(&parse(&["--method", "byol", "--epochs", "1"]).expect("parses"))
                .expect("valid")
                .blur_p,
            None
        );
    }

    #[test]
    fn bad_flags_are_named() {
        let err = parse(&["--method", "mocov3", "--epochs", "1"]).unwrap_err();
        assert!(err.to_string().contains("unknown method 'mocov3'"), "{err}");
        let args = parse(&["--method", "dino", "--epochs", "0"]).expect("parses");
        assert!(config(&args).is_err());
        let args =
            parse(&["--method", "dino", "--epochs", "1", "--device", "tpu"]).expect("parses");
        assert!(config(&args).is_err());
        let err = parse(&["--method", "byol", "--epochs", "1", "--optimizer", "adam"]).unwrap_err();
        assert!(
            err.to_string().contains("unknown optimizer 'adam'"),
            "{err}"
        );
        for (flag, value) in [
            ("--ema-base", "1.0"),
            ("--loss-scale", "0"),
            ("--lambda", "0"),
            ("--lambda", "inf"),
            ("--proj-layers", "0"),
            ("--proj-layers", "5"),
            ("--prototypes", "4"),
            ("--pred-hidden", "20000"),
            ("--blur-p", "1.5"),
            ("--blur-p", "NaN"),
        ] {
            let args = parse(&["--method", "byol", "--epochs", "1", flag, value]).expect("parses");
            let err = config(&args).expect_err("out of range").to_string();
            assert!(err.contains(flag), "{err}");
        }
        let args = parse(&["--method", "byol", "--epochs", "1", "--blur-p=-0.1"]).expect("parses");
        let err = config(&args).expect_err("negative").to_string();
        assert!(err.contains("--blur-p must be a probability"), "{err}");
        for width in ["3", "257"] {
            let args = parse(&["--method", "byol", "--epochs", "1", "--width", width]);
            let err = config(&args.expect("parses")).expect_err("out of range");
            let want = format!("--width {width} is not in 4..=256");
            assert_eq!(err.to_string(), want);
        }
        for width in [4, 256] {
            let flag = width.to_string();
            let args = parse(&["--method", "byol", "--epochs", "1", "--width", &flag]);
            assert_eq!(
                config(&args.expect("parses")).expect("in range").width,
                width
            );
        }
    }
}
