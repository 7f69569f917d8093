//! `shiftlab ingest` end to end: the binary writes, pyarrow/numpy/Pillow read back and compare
//! against sources they read (or wrote) independently (tests/python/check_ingest.py).

mod common;

use std::path::Path;

use common::{python, root};
use std::process::Command;
use std::time::Instant;

const FMNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Runs `check_ingest.py ARGS`, failing with its output.
fn check(args: &[&str]) {
    let out = Command::new(python())
        .arg(root().join("tests/python/check_ingest.py"))
        .args(args)
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "check_ingest.py {args:?} failed:\n{text}"
    );
}

/// Runs `shiftlab ingest ARGS`; returns stdout.
fn ingest(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shiftlab"))
        .arg("ingest")
        .args(args)
        .output()
        .expect("the shiftlab binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "shiftlab ingest {args:?} failed:\n{stdout}{stderr}"
    );
    stdout
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[test]
fn real_fashion_mnist_round_trips_through_pyarrow() {
    assert!(
        Path::new(FMNIST).is_dir(),
        "{FMNIST} missing: apt-get install the Fashion-MNIST package (make setup)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fashion-mnist.parquet");
    let start = Instant::now();
    let summary = ingest(&[
        "--format",
        "fashion-mnist",
        "--input",
        FMNIST,
        "--output",
        s(&out),
    ]);
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "ingest of Fashion-MNIST: {secs:.1} s ({:.0} images/s)",
        70_000.0 / secs
    );
    assert!(summary.contains("wrote 70000 rows"), "{summary}");
    assert!(summary.contains("split train: 60000 rows"), "{summary}");
    assert!(summary.contains("rejected: 0"), "{summary}");
    check(&["fmnist", s(&out), FMNIST]);
}

#[test]
fn cifar10_python_batches_pickled_by_python() {
    let tmp = tempfile::tempdir().unwrap();
    let batches = tmp.path().join("cifar-10-batches-py");
    check(&["make-cifar-py", s(&batches)]);
    let out = tmp.path().join("cifar.parquet");
    ingest(&[
        "--format",
        "cifar10",
        "--input",
        s(tmp.path()),
        "--output",
        s(&out),
    ]);
    check(&["cifar-py", s(&out), s(&batches)]);
}

#[test]
fn cifar10_c_arrays_saved_by_numpy() {
    let tmp = tempfile::tempdir().unwrap();
    let arrays = tmp.path().join("CIFAR-10-C");
    check(&["make-cifar-c", s(&arrays)]);
    let out = tmp.path().join("cifar-c.parquet");
    ingest(&[
        "--format",
        "cifar10-c",
        "--input",
        s(&arrays),
        "--output",
        s(&out),
    ]);
    check(&["cifar-c", s(&out), s(&arrays)]);
}

#[test]
fn hf_export_written_by_pyarrow() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("train-00000-of-00001.parquet");
    check(&["make-hf", s(&export)]);
    let out = tmp.path().join("hf.parquet");
    let summary = ingest(&[
        "--format",
        "parquet",
        "--input",
        s(&export),
        "--output",
        s(&out),
    ]);
    assert!(summary.contains("rejected: 1"), "{summary}");
    let rejects = std::fs::read_to_string(tmp.path().join("hf.parquet.rejects.csv")).unwrap();
    assert_eq!(
        rejects,
        "path,reason\ntrain/00003,label 5 out of range 0..2 (3 classes)\n"
    );
    check(&["hf", s(&out), s(&export)]);
}

#[test]
fn strict_failure_exits_non_zero_and_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let class = tmp.path().join("val/cat");
    std::fs::create_dir_all(&class).unwrap();
    std::fs::write(class.join("empty.png"), b"").unwrap();
    let out = tmp.path().join("val.parquet");
    let res = Command::new(env!("CARGO_BIN_EXE_shiftlab"))
        .args(["ingest", "--format", "imagefolder", "--strict", "--input"])
        .args([s(&tmp.path().join("val")), "--output", s(&out)])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(stderr.contains("cat/empty.png: zero-byte file"), "{stderr}");
    assert!(!out.exists());
}
