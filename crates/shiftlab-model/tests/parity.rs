//! Parity with torchvision and timm (independent implementations): tests/python/model_reference.py
//! builds ResNets and ViTs with random weights and perturbed normalisation parameters, writes
//! most of them as checkpoints in an SSL library's layout and converts them with
//! tools/convert_checkpoint.py, runs torchvision's transforms and the PyTorch models on fixed
//! u8 images, and saves everything; we load the same safetensors / TorchScript files through the
//! public API and compare.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};
use shiftlab_model::{validate_models, Encoder, ModelConfig, RuntimeOptions};
use tch::Tensor;

/// Relative to the largest feature (at least 1): float32 rounding grows with the magnitude,
/// and the evaluation form (folded BatchNorm, dense small maps) sums in another order than
/// torchvision's conv + BatchNorm, so ResNet-50's features (up to ~100) differ by ~1e-4.
const TOLERANCE: f64 = 1e-5;
/// ViTs: relative to the largest feature (the bound). Measured: ~1e-6.
const VIT_TOLERANCE: f64 = 1e-4;

/// Canonical: Python finds its venv from the interpreter's path, taken lexically.
fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&root).unwrap_or(root)
}

/// Runs the Python reference once per test binary; fails loudly if the venv is missing.
fn reference_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `make setup-test` (scripts/setup-python.sh, then \
             scripts/setup-torch-python.sh) before the model parity tests",
            python.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(&python)
            .arg(root.join("tests/python/model_reference.py"))
            .arg(dir.path())
            .output()
            .expect("run the Python reference");
        assert!(
            out.status.success(),
            "model_reference.py failed (no torch in .venv? run scripts/setup-torch-python.sh):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

#[derive(serde::Deserialize)]
struct Pipeline {
    models: Vec<ModelConfig>,
}

fn model_configs() -> Result<Vec<ModelConfig>> {
    let text = std::fs::read_to_string(reference_dir().join("models.toml"))?;
    Ok(toml::from_str::<Pipeline>(&text)?.models)
}

fn expected(name: &str) -> Result<HashMap<String, Tensor>> {
    let path = reference_dir().join(format!("{name}.expected.safetensors"));
    Ok(Tensor::read_safetensors(&path)
        .with_context(|| path.display().to_string())?
        .into_iter()
        .collect())
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    ensure!(
        a.size() == b.size(),
        "shapes differ: {:?} vs {:?}",
        a.size(),
        b.size()
    );
    Ok((a - b).abs().max().double_value(&[]))
}

fn load(name: &str) -> Result<Encoder> {
    let configs = model_configs()?;
    validate_models(&configs, reference_dir())?;
    let cfg = configs
        .iter()
        .find(|c| c.name == name)
        .context("case in models.toml")?;
    Ok(Encoder::from_config(
        cfg,
        reference_dir(),
        &RuntimeOptions::default(),
    )?)
}

/// [`check_with`] at the ResNet tolerance.
fn check_case(name: &str, dim: i64) -> Result<()> {
    check_with(name, dim, |scale| TOLERANCE * scale.max(1.0)).map(drop)
}

/// [`check_with`] at the ViT tolerance.
fn check_vit(name: &str, dim: i64) -> Result<Encoder> {
    check_with(name, dim, |scale| VIT_TOLERANCE * scale)
}

/// Preprocessing alone, the network alone, then both (the path the pipeline uses); the
/// classifier head too where the file has one. `bound`: tolerance for a largest value.
fn check_with(name: &str, dim: i64, bound: impl Fn(f64) -> f64) -> Result<Encoder> {
    let want = expected(name)?;
    let encoder = load(name)?;
    ensure!(
        encoder.dim() == dim,
        "{name}: dim {} != {dim}",
        encoder.dim()
    );
    let input = encoder
        .preprocess()
        .apply(&want["images"], tch::Device::Cpu, tch::Kind::Float)?;
    let d_pre = max_abs_diff(&input, &want["input"])?;
    let d_net = max_abs_diff(
        &encoder.embed_preprocessed(&want["input"])?,
        &want["features"],
    )?;
    let features = encoder.embed(&want["images"])?;
    let d_all = max_abs_diff(&features, &want["features"])?;
    let scale = want["features"].abs().max().double_value(&[]);
    let tolerance = bound(scale);
    println!("{name}: max|diff| preprocess {d_pre:.2e}, network {d_net:.2e}, end to end {d_all:.2e} (max|feature| {scale:.2})");
    ensure!(
        d_pre <= 1e-5 && d_net <= tolerance && d_all <= tolerance,
        "{name}: beyond tolerance"
    );
    if let Some(head) = encoder.head() {
        let d_head = max_abs_diff(&head.logits(&features)?, &want["logits"])?;
        println!("{name}: fc logits max|diff| {d_head:.2e}");
        let scale = want["logits"].abs().max().double_value(&[]);
        ensure!(d_head <= bound(scale), "{name}: logits beyond tolerance");
    }
    Ok(encoder)
}

#[test]
fn resnet18_matches_torchvision() -> Result<()> {
    check_case("r18", 512)
}

#[test]
fn resnet50_matches_torchvision() -> Result<()> {
    check_case("r50", 2048)
}

#[test]
fn resnet18_small_grey_repeated_matches_torchvision() -> Result<()> {
    check_case("small3", 512)
}

#[test]
fn resnet18_small_one_channel_stem_matches_torchvision() -> Result<()> {
    check_case("small1", 512)
}

#[test]
fn resnet34_from_mmselfsup_matches_torchvision() -> Result<()> {
    check_case("r34", 512)
}

#[test]
fn resnet101_from_moco_v3_matches_torchvision() -> Result<()> {
    check_case("r101", 2048)
}

#[test]
fn resnet152_from_lightly_matches_torchvision() -> Result<()> {
    check_case("r152", 2048)
}

#[test]
fn wide_resnet50_2_from_moco_v2_matches_torchvision() -> Result<()> {
    check_case("wrn50", 2048)
}

#[test]
fn vit_s16_cls_from_dino_teacher_matches_timm() -> Result<()> {
    check_vit("vit_s16_cls", 384).map(drop)
}

#[test]
fn vit_s16_mean_from_dino_student_matches_timm() -> Result<()> {
    check_vit("vit_s16_mean", 384).map(drop)
}

#[test]
fn vit_b16_cls_with_head_matches_timm() -> Result<()> {
    let encoder = check_vit("vit_b16_cls", 768)?;
    assert_eq!(encoder.head().map(|h| h.classes()), Some(1000));
    Ok(())
}

/// 48 px: the 14x14 position grid resampled to 3x3; fc_norm after the mean (timm's avg).
#[test]
fn vit_b16_mean_fc_norm_at_48_px_from_moco_v3_matches_timm_dynamic_size() -> Result<()> {
    check_vit("vit_b16_mean48", 768).map(drop)
}

#[test]
fn vit_s16_at_32_px_from_lightly_matches_timm_dynamic_size() -> Result<()> {
    check_vit("vit_s16_32", 384).map(drop)
}

#[test]
fn vit_s8_mean_at_48_px_from_solo_learn_matches_timm_dynamic_size() -> Result<()> {
    check_vit("vit_s8_48", 384).map(drop)
}

/// torchvision's names converted; its 2x2 position grid (32 px) read from the weights.
#[test]
fn vit_ti16_from_torchvision_matches_torchvision() -> Result<()> {
    check_vit("vit_ti16_tv", 192).map(drop)
}

/// The converter refuses layouts it does not know, naming what it saw and what it tried.
#[test]
fn unknown_checkpoint_layouts_are_refused_with_keys_and_prefixes() -> Result<()> {
    let root = repo_root();
    let convert = |file: &str| -> Result<String> {
        let out = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tools/convert_checkpoint.py"))
            .arg(reference_dir().join(file))
            .arg(reference_dir().join(format!("{file}.safetensors")))
            .output()?;
        ensure!(!out.status.success(), "{file}: the converter accepted it");
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let err = convert("unknown_nesting.pth")?;
    assert!(
        err.contains("unknown checkpoint layout")
            && err.contains("['epoch', 'weights']")
            && err.contains("'state_dict', 'model', 'teacher', 'student'"),
        "{err}"
    );
    let err = convert("unknown_names.pth")?;
    assert!(
        err.contains("unknown checkpoint layout for resnet18")
            && err.contains("'module.backbone.', 'model.'")
            && err.contains("top-level keys ['epoch', 'state_dict']")
            && err.contains("its keys start with ['encoder.']"),
        "{err}"
    );
    Ok(())
}

#[test]
fn torchscript_matches_torchvision() -> Result<()> {
    check_case("script", 512)
}

#[test]
fn extra_tensors_are_reported_and_head_loaded() -> Result<()> {
    let encoder = load("r18")?;
    assert_eq!(
        encoder.info().extra_tensors,
        ["fc.bias", "fc.weight", "projector.0.weight"]
    );
    assert_eq!(encoder.head().map(|h| h.classes()), Some(1000));
    assert_eq!(encoder.info().sha256.as_ref().map(String::len), Some(64));
    let json = serde_json::to_string(encoder.info())?;
    assert!(
        json.contains("\"architecture\":\"resnet18\"") && json.contains("\"crop\":32"),
        "{json}"
    );
    Ok(())
}
