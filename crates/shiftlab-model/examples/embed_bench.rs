//! Throughput of `Encoder::embed` (preprocessing included) on random u8 images.
//!
//! `cargo run -p shiftlab-model --release --example embed_bench -- [arch] [side] [batch] [device]
//! [precision] [input side] [input channels] [model channels]`
//! e.g. `resnet18-small 28 256 cpu` (Fashion-MNIST-sized grey images),
//! `resnet18 28 256 cpu fp32 32 3 1` (the gray28 workload of `scripts/bench-pipeline.sh`), or
//! `vit-s16 224 32 cpu fp32 224 3` (ViT-S/16 against timm: `scripts/bench-vit.sh`).
//! Prints the rate of preprocessing alone, the network alone and both (`Encoder::embed`), each
//! timed for `EMBED_BENCH_SECS` seconds (default 5) after one warm-up call.

use std::path::Path;
use std::time::Instant;

use shiftlab_model::{Encoder, ModelConfig, RuntimeOptions};
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let (arch, side, batch) = (
        arg(0, "resnet18-small"),
        arg(1, "28").parse::<i64>()?,
        arg(2, "256").parse::<i64>()?,
    );
    let in_side = arg(5, &side.to_string()).parse::<i64>()?;
    let in_channels = arg(6, "1").parse::<i64>()?;
    let mut cfg: ModelConfig = toml_like(&arch, side);
    cfg.channels = args.get(7).map(|c| c.parse()).transpose()?;
    if cfg.channels == Some(1) {
        // Fashion-MNIST's statistics, as the zoo encoders use.
        cfg.normalize = Some(shiftlab_model::Normalize {
            mean: vec![0.2858],
            std: vec![0.3532],
        });
    }
    let opts = RuntimeOptions {
        device: arg(3, "cpu").parse()?,
        precision: arg(4, "fp32").parse()?,
    };
    let loading = Instant::now();
    let encoder = Encoder::from_config(&cfg, Path::new(""), &opts)?;
    println!("loaded in {:.3} s", loading.elapsed().as_secs_f64());
    let shape = [batch, in_side, in_side, in_channels];
    let images = Tensor::randint(256, shape, (Kind::Uint8, Device::Cpu));
    let ready = encoder
        .preprocess()
        .apply(&images, encoder.device(), Kind::Float)?;
    println!("{}", encoder.description());
    rate("preprocessing", batch, || {
        encoder
            .preprocess()
            .apply(&images, encoder.device(), Kind::Float)
            .map(drop)
    })?;
    rate("network", batch, || {
        encoder.embed_preprocessed(&ready).map(drop)
    })?;
    rate("embed (both)", batch, || encoder.embed(&images).map(drop))?;
    Ok(())
}

/// Calls `f` for `EMBED_BENCH_SECS` after one warm-up call and prints images/s.
fn rate(
    what: &str,
    batch: i64,
    mut f: impl FnMut() -> shiftlab_model::Result<()>,
) -> shiftlab_model::Result<()> {
    f()?;
    let secs: f64 = std::env::var("EMBED_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let (mut done, start) = (0, Instant::now());
    while start.elapsed().as_secs_f64() < secs {
        f()?;
        done += batch;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{what}: {:.1} images/s ({} torch threads)",
        done as f64 / secs,
        tch::get_num_threads()
    );
    Ok(())
}

fn toml_like(arch: &str, side: i64) -> ModelConfig {
    ModelConfig {
        name: "bench".into(),
        architecture: Some(arch.into()),
        weights: None,
        seed: None,
        stem_padding: None,
        width: None,
        pool: None,
        torchscript: None,
        input_size: Some(side as u32),
        resize: None,
        crop: None,
        normalize: None,
        channels: None,
        description: None,
        paradigm: None,
    }
}
