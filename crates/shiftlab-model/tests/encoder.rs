//! Behaviour that needs no reference implementation: determinism in evaluation mode and the
//! error messages users see for bad files, tensors, devices and configs.

use std::path::Path;

use anyhow::Result;
use shiftlab_model::vit::FinalNorm;
use shiftlab_model::{
    Architecture, DeviceSpec, Encoder, ModelConfig, Pool, Precision, ResNet, RuntimeOptions,
    VisionTransformer, VitArch,
};
use tch::{Device, Kind, Tensor};

fn config(toml_text: &str) -> ModelConfig {
    toml::from_str(toml_text).expect("test config parses")
}

fn small(weights: Option<&Path>) -> ModelConfig {
    let mut cfg = config("name = \"s\"\narchitecture = \"resnet18-small\"");
    cfg.weights = weights.map(Path::to_path_buf);
    cfg
}

fn load(cfg: &ModelConfig) -> shiftlab_model::Result<Encoder> {
    Encoder::from_config(cfg, Path::new(""), &RuntimeOptions::default())
}

fn images(n: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randint(256, [n, 28, 28, 1], (Kind::Uint8, Device::Cpu))
}

#[test]
fn random_init_is_seeded_and_eval_mode_is_deterministic() -> Result<()> {
    let a = load(&small(None))?;
    let b = load(&small(None))?;
    let x = images(2, 7);
    let (ya, yb) = (a.embed(&x)?, b.embed(&x)?);
    assert_eq!(ya.size(), [2, 512]);
    assert!(ya.equal(&yb), "same seed, same input, different features");
    assert!(ya.equal(&a.embed(&x)?), "repeat run differs");
    let one = Tensor::cat(
        &[a.embed(&x.narrow(0, 0, 1))?, a.embed(&x.narrow(0, 1, 1))?],
        0,
    );
    let diff = (&ya - one).abs().max().double_value(&[]);
    assert!(
        diff <= 1e-5,
        "batch of 2 vs two batches of 1 differ by {diff}"
    );
    let mut seeded = small(None);
    seeded.seed = Some(1);
    assert!(!load(&seeded)?.embed(&x)?.equal(&ya), "seed has no effect");
    Ok(())
}

#[test]
fn shapes_for_each_architecture_and_empty_batch() -> Result<()> {
    for (arch, size, dim) in [
        ("resnet18", 64, 512),
        ("resnet34", 32, 512),
        ("resnet50", 64, 2048),
        ("wide_resnet50_2", 32, 2048),
        ("resnet18-small", 28, 512),
        ("vit-ti16", 32, 192),
        ("vit-b8", 16, 768),
    ] {
        let cfg = config(&format!(
            "name = \"m\"\narchitecture = \"{arch}\"\ninput_size = {size}"
        ));
        let enc = load(&cfg)?;
        assert_eq!(enc.dim(), dim, "{arch}");
        let x = Tensor::zeros([1, 40, 30, 3], (Kind::Uint8, Device::Cpu));
        assert_eq!(enc.embed(&x)?.size(), [1, dim], "{arch}");
        assert_eq!(enc.embed(&x.narrow(0, 0, 0))?.size(), [0, dim], "{arch}");
    }
    Ok(())
}

/// Writes the tensors of a fresh ResNet-18-small, edited by `edit`, as safetensors.
fn write_weights(path: &Path, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = ResNet::new(Architecture::ResNet18Small, 3)
        .vs
        .variables()
        .into_iter()
        .collect();
    edit(&mut named);
    Tensor::write_safetensors(&named, path)?;
    Ok(())
}

fn load_error(path: &Path) -> String {
    load(&small(Some(path)))
        .expect_err("load must fail")
        .to_string()
}

#[test]
fn missing_or_invalid_weights_file_is_named() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("nope.safetensors");
    let err = load_error(&missing);
    assert!(
        err.contains("nope.safetensors") && err.contains("no such file"),
        "{err}"
    );
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file")?;
    let err = load_error(&garbage);
    assert!(
        err.starts_with("model 's' (resnet18-small): cannot load safetensors weights")
            && err.contains("garbage.safetensors"),
        "{err}"
    );
    Ok(())
}

#[test]
fn missing_tensor_is_named_with_its_shape() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("w.safetensors");
    write_weights(&path, |t| {
        t.retain(|(n, _)| n != "layer3.1.bn2.running_var")
    })?;
    let err = load_error(&path);
    assert!(
        err.starts_with("model 's' (resnet18-small): weights ")
            && err.contains("1 of the 100 tensors the architecture needs are missing: 'layer3.1.bn2.running_var' [256]"),
        "{err}"
    );
    Ok(())
}

#[test]
fn wrong_shape_names_tensor_expected_and_found() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("w.safetensors");
    write_weights(&path, |t| {
        for (name, tensor) in t.iter_mut() {
            if name == "conv1.weight" {
                *tensor = Tensor::zeros([64, 3, 7, 7], (Kind::Float, Device::Cpu));
            }
        }
    })?;
    let err = load_error(&path);
    assert!(
        err.contains("'conv1.weight' has shape [64, 3, 7, 7], expected [64, 3, 3, 3]"),
        "{err}"
    );
    Ok(())
}

#[test]
fn complete_file_loads_and_reports_no_extras() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("w.safetensors");
    write_weights(&path, |_| {})?;
    let enc = load(&small(Some(&path)))?;
    assert!(enc.info().extra_tensors.is_empty() && enc.head().is_none());
    assert!(
        enc.description().contains("resnet18-small from"),
        "{}",
        enc.description()
    );
    Ok(())
}

#[test]
fn torchscript_file_errors_are_named() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let garbage = dir.path().join("model.pt");
    std::fs::write(&garbage, b"not a zip archive")?;
    for path in [dir.path().join("absent.pt"), garbage] {
        let cfg = config(&format!(
            "name = \"ts\"\ntorchscript = {:?}\ninput_size = 32",
            path
        ));
        let err = load(&cfg).expect_err("load must fail").to_string();
        assert!(
            err.starts_with("cannot load TorchScript model")
                && err.contains(path.to_str().unwrap_or("?")),
            "{err}"
        );
    }
    Ok(())
}

#[test]
fn fp16_on_cpu_and_unknown_architecture_are_config_errors() {
    let opts = RuntimeOptions {
        device: DeviceSpec::Cpu,
        precision: Precision::Fp16,
    };
    let err = Encoder::from_config(&small(None), Path::new(""), &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("fp16 needs a CUDA device"), "{err}");
    let err = load(&config("name = \"x\"\narchitecture = \"vit-b17\""))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("model 'x': unknown architecture 'vit-b17' (expected one of resnet18, "),
        "{err}"
    );
}

#[test]
fn bf16_on_cpu_runs_close_to_fp32() -> Result<()> {
    let x = images(2, 3);
    let fp32 = load(&small(None))?.embed(&x)?;
    let opts = RuntimeOptions {
        device: DeviceSpec::Cpu,
        precision: Precision::Bf16,
    };
    let bf16 = Encoder::from_config(&small(None), Path::new(""), &opts)?.embed(&x)?;
    assert_eq!(bf16.kind(), Kind::Float);
    let rel = (&fp32 - &bf16).norm().double_value(&[]) / fp32.norm().double_value(&[]);
    println!("bf16 vs fp32 relative L2 error {rel:.2e}");
    assert!(rel < 0.05, "bf16 relative error {rel}");
    Ok(())
}

#[test]
fn encoder_can_move_to_a_worker_thread() -> Result<()> {
    fn assert_send<T: Send>() {}
    assert_send::<Encoder>();
    let enc = load(&small(None))?;
    let dim = std::thread::spawn(move || enc.embed(&images(1, 1)).map(|y| y.size()[1])).join();
    assert_eq!(dim.expect("worker thread")?, 512);
    Ok(())
}

#[test]
fn preprocessed_input_and_head_files_are_checked() -> Result<()> {
    let enc = load(&small(None))?;
    let wrong = Tensor::zeros([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    let err = enc.embed_preprocessed(&wrong).unwrap_err().to_string();
    assert!(
        err.contains("[N, 3, H, W]") && err.contains("[2, 1, 28, 28]"),
        "{err}"
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("head.safetensors");
    let w = Tensor::zeros([10, 512], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&[("fc.weight", &w)], &path)?;
    let err = shiftlab_model::LinearHead::from_safetensors(&path, "fc")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'fc.bias' is missing (expected shape [10])"),
        "{err}"
    );
    let err = shiftlab_model::LinearHead::from_safetensors(&path, "head")
        .unwrap_err()
        .to_string();
    assert!(err.contains("'head.weight' is missing"), "{err}");
    Ok(())
}

/// A ViT-Ti/16 at 32 px: `edit` changes its tensors before they are written.
fn vit_error(edit: impl FnOnce(&mut Vec<(String, Tensor)>)) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("vit.safetensors");
    let net = VisionTransformer::new(VitArch::Ti16, 3, 14, FinalNorm::Tokens, Pool::Cls);
    let mut named: Vec<(String, Tensor)> = net.vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut named);
    Tensor::write_safetensors(&named, &path)?;
    let cfg = config(&format!(
        "name = \"v\"\narchitecture = \"vit-ti16\"\ninput_size = 32\nweights = {:?}",
        path
    ));
    Ok(load(&cfg)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string()))
}

#[test]
fn vit_weights_errors_name_model_tensors_and_shapes() -> Result<()> {
    assert_eq!(vit_error(|_| {})?, "", "complete weights must load");
    let err = vit_error(|t| {
        for (name, tensor) in t.iter_mut() {
            if name.starts_with("blocks.3.attn.proj") || name == "blocks.7.mlp.fc1.weight" {
                *tensor = Tensor::zeros([5], (Kind::Float, Device::Cpu));
            }
        }
    })?;
    assert!(
        err.starts_with("model 'v' (vit-ti16): weights ")
            && err.ends_with("tensor 'blocks.3.attn.proj.bias' has shape [5], expected [192]"),
        "{err}"
    );
    // A wrong prefix: every tensor missing, the unused ones listed.
    let err = vit_error(|t| {
        for (name, _) in t.iter_mut() {
            *name = format!("module.{name}");
        }
    })?;
    assert!(
        err.contains("150 of the 150 tensors the architecture needs are missing: 'blocks.0.attn.proj.bias' [192], ")
            && err.contains("and 142 more; the file has 150 tensors the architecture does not use: 'module.blocks.0.attn.proj.bias'"),
        "{err}"
    );
    let err = vit_error(|t| {
        for (name, tensor) in t.iter_mut() {
            if name == "pos_embed" {
                *tensor = Tensor::zeros([1, 51, 192], (Kind::Float, Device::Cpu));
            }
        }
    })?;
    assert!(
        err.contains("tensor 'pos_embed' has shape [1, 51, 192], expected [1, -1, 192]"),
        "{err}"
    );
    Ok(())
}

#[test]
fn vit_patch_size_must_divide_the_input() -> Result<()> {
    let enc = load(&config(
        "name = \"v\"\narchitecture = \"vit-s8\"\ninput_size = 32",
    ))?;
    let x = Tensor::zeros([1, 3, 36, 32], (Kind::Float, Device::Cpu));
    let err = enc.embed_preprocessed(&x).unwrap_err().to_string();
    assert_eq!(
        err,
        "input batch: model 'v': 36x32 px is not a multiple of vit-s8's patch size 8"
    );
    let err = load(&config(
        "name = \"v\"\narchitecture = \"vit-s16\"\ncrop = 36",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("model 'v': input size 36 is not a multiple of vit-s16's patch size 16"),
        "{err}"
    );
    Ok(())
}

#[test]
fn vit_random_init_is_seeded_and_bf16_on_cpu_is_close() -> Result<()> {
    let cfg = |extra: &str| {
        config(&format!(
            "name = \"v\"\narchitecture = \"vit-ti16\"\ninput_size = 32\n{extra}"
        ))
    };
    let x = Tensor::randint(256, [2, 32, 32, 3], (Kind::Uint8, Device::Cpu));
    let a = load(&cfg(""))?.embed(&x)?;
    assert!(
        a.equal(&load(&cfg(""))?.embed(&x)?),
        "same seed, different features"
    );
    assert!(
        !a.equal(&load(&cfg("seed = 1"))?.embed(&x)?),
        "seed has no effect"
    );
    let mean = load(&cfg("pool = \"mean\""))?;
    assert!(!a.equal(&mean.embed(&x)?), "pool has no effect");
    assert!(
        mean.description()
            .contains("vit-ti16 (mean pool) with random weights"),
        "{}",
        mean.description()
    );
    let opts = RuntimeOptions {
        device: DeviceSpec::Cpu,
        precision: Precision::Bf16,
    };
    let bf16 = Encoder::from_config(&cfg(""), Path::new(""), &opts)?.embed(&x)?;
    let rel = (&a - &bf16).norm().double_value(&[]) / a.norm().double_value(&[]);
    println!("ViT bf16 vs fp32 relative L2 error {rel:.2e}");
    assert!(rel < 0.05, "bf16 relative error {rel}");
    Ok(())
}

#[test]
fn pixels_are_the_normalised_input_flattened() -> Result<()> {
    let cfg = config(
        "name = \"px\"\narchitecture = \"pixels\"\ninput_size = 28\nchannels = 1\n\
         normalize = { mean = [0.25], std = [0.5] }",
    );
    let enc = load(&cfg)?;
    assert_eq!(enc.dim(), 784);
    assert_eq!(enc.info().kind, "pixels");
    let x = images(3, 5);
    let y = enc.embed(&x)?;
    assert_eq!(y.size(), [3, 784]);
    // By hand: (v / 255 - 0.25) / 0.5, row-major over the 28 x 28 pixels.
    let v: Vec<u8> = x.flatten(0, -1).try_into()?;
    let want: Vec<f32> = v
        .iter()
        .map(|&p| ((f64::from(p) / 255.0 - 0.25) / 0.5) as f32)
        .collect();
    let got: Vec<f32> = y.flatten(0, -1).try_into()?;
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 1e-5,
        "pixels differ from the hand computation by {worst}"
    );
    assert!(enc.description().contains("the normalised pixels"));
    Ok(())
}

#[test]
fn width_builds_a_narrower_trunk_whose_random_init_is_seeded() -> Result<()> {
    let mut cfg = small(None);
    cfg.width = Some(16);
    cfg.channels = Some(1);
    cfg.normalize = Some(shiftlab_model::Normalize {
        mean: vec![0.3],
        std: vec![0.3],
    });
    let a = load(&cfg)?;
    assert_eq!(a.dim(), 128);
    assert_eq!(a.info().width, Some(16));
    assert!(
        a.description().contains("resnet18-small (width 16)"),
        "{}",
        a.description()
    );
    let x = images(2, 3);
    assert!(a.embed(&x)?.equal(&load(&cfg)?.embed(&x)?));
    Ok(())
}
