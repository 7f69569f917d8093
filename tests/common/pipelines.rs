//! Small pipelines on real Fashion-MNIST for the end-to-end tests, and their checks.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{python, root, text};

pub fn check_run(run: &Path, args: &[&str]) {
    let out = Command::new(python())
        .arg(root().join("tests/python/check_run.py"))
        .arg(run)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "check_run.py {} {args:?}:\n{}",
        run.display(),
        text(&out)
    );
}

/// A pipeline file with two small random-init encoders; `extra` replaces whole sections.
pub fn pipeline(
    dir: &Path,
    name: &str,
    dataset: &Path,
    shifts: &str,
    runtime: &str,
    limit: u32,
) -> PathBuf {
    let out = dir.join(format!("run-{name}"));
    let text = format!(
        r#"[pipeline]
name = "{name}"
output = "{out}"
seed = 3

[source]
dataset = "{dataset}"
limit = {limit}
fit_limit = 120

{shifts}

[[models]]
name = "r18-a"
architecture = "resnet18"
input_size = 32
seed = 1

[[models]]
name = "r18-b"
architecture = "resnet18"
input_size = 32
seed = 2
channels = 1
normalize = {{ mean = [0.286], std = [0.353] }}

[probes.linear]
epochs = 5

[probes.knn]
k = 10
temperature = 0.07

{runtime}
"#,
        out = out.display(),
        dataset = dataset.display(),
    );
    // Small model calls keep these tests fast (the default block of 64 would pad tiny batches).
    let text = if runtime.is_empty() {
        format!("{text}[runtime]\nembed_block = 8\n")
    } else {
        format!("{text}embed_block = 8\n")
    };
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).expect("write pipeline");
    file
}

pub const FEW_SHIFTS: &str = r#"[shifts]
preset = "cifar32"
corruptions = ["gaussian_noise", "glass_blur", "frost", "elastic_transform", "jpeg_compression"]
severities = [1, 5]
resize = 32"#;

pub fn run_dir(file: &Path) -> PathBuf {
    let name = file.file_stem().and_then(|s| s.to_str()).expect("name");
    file.with_file_name(format!("run-{name}"))
}

/// Files in `dir` whose names end with `suffix`.
pub fn count(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}
