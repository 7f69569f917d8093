//! Helpers shared by the end-to-end tests of the `shiftlab` binary.
#![allow(dead_code)] // each test binary uses its own subset

pub mod pipelines;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root (tests run the binary from here, as a user would).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The reference-test Python (`make test` creates it with scripts/setup-python.sh).
pub fn python() -> PathBuf {
    let py = root().join(".venv/bin/python");
    assert!(
        py.is_file(),
        "{} is missing: run `make test` (scripts/setup-python.sh)",
        py.display()
    );
    py
}

/// stdout then stderr, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `shiftlab ARGS` in the repository root.
pub fn shiftlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shiftlab"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("the shiftlab binary runs")
}

/// Runs `shiftlab ARGS`, which must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = shiftlab(args);
    assert!(
        out.status.success(),
        "shiftlab {args:?} failed:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `shiftlab ARGS`, which must fail; returns stdout and stderr.
pub fn fails(args: &[&str]) -> String {
    let out = shiftlab(args);
    assert!(
        !out.status.success(),
        "shiftlab {args:?} should fail:\n{}",
        text(&out)
    );
    text(&out)
}

/// The real Fashion-MNIST as a dataset table, ingested once into target/test-data (written
/// atomically by ingest, so concurrent test binaries never see half a file).
pub fn fmnist() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = root().join("target/test-data");
        std::fs::create_dir_all(&dir).expect("test data folder");
        let path = dir.join("fashion-mnist.parquet");
        if !path.exists() {
            ok(&[
                "ingest",
                "--format",
                "fashion-mnist",
                "--input",
                "/usr/share/datasets/fashion-mnist",
                "--output",
                path.to_str().expect("utf-8 path"),
            ]);
        }
        path
    })
}

/// Runs a Python snippet of the reference venv with arguments; it must succeed.
pub fn python_script(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "python check failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
