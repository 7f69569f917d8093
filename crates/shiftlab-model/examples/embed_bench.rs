//! Throughput of `Encoder::embed` (preprocessing included) on random u8 images.
//!
//! `cargo run -p shiftlab-model --release --example embed_bench -- [arch] [side] [batch] [device]
//! [precision]`
//! e.g. `resnet18-small 28 256 cpu` (Fashion-MNIST-sized grey images).

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
    let cfg: ModelConfig = toml_like(&arch, side);
    let opts = RuntimeOptions {
        device: arg(3, "cpu").parse()?,
        precision: arg(4, "fp32").parse()?,
    };
    let encoder = Encoder::from_config(&cfg, Path::new(""), &opts)?;
    let images = Tensor::randint(256, [batch, side, side, 1], (Kind::Uint8, Device::Cpu));
    let _warm_up = encoder.embed(&images)?;
    let (mut done, start) = (0, Instant::now());
    while start.elapsed().as_secs_f64() < 5.0 {
        let _features = encoder.embed(&images)?;
        done += batch;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}: {done} images in {secs:.2} s = {:.0} images/s ({} torch threads)",
        encoder.description(),
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
        torchscript: None,
        input_size: Some(side as u32),
        resize: None,
        crop: None,
        normalize: None,
        channels: None,
        description: None,
    }
}
