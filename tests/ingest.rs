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
    check_in(args, &[]);
}

/// [`check`] with extra environment variables.
fn check_in(args: &[&str], env: &[(&str, &str)]) {
    let out = Command::new(python())
        .arg(root().join("tests/python/check_ingest.py"))
        .args(args)
        .envs(env.iter().copied())
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

/// Runs `shiftlab ingest ARGS`, which must succeed; returns stdout.
fn ingest(args: &[&str]) -> String {
    let out = run_ingest(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "shiftlab ingest {args:?} failed:\n{stdout}{stderr}"
    );
    stdout
}

fn run_ingest(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shiftlab"))
        .arg("ingest")
        .args(args)
        .output()
        .expect("the shiftlab binary runs")
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

#[test]
fn split_folders_in_torchvision_order_and_the_explicit_form_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    check(&["make-splits", s(&data)]);
    let (a, b) = (
        tmp.path().join("root.parquet"),
        tmp.path().join("two.parquet"),
    );
    let summary = ingest(&[
        "--format",
        "imagefolder",
        "--input",
        s(&data),
        "--output",
        s(&a),
    ]);
    assert!(summary.contains("split train: 15 rows"), "{summary}");
    let train = format!("train={}", s(&data.join("train")));
    let test = format!("test={}", s(&data.join("test")));
    let args = [
        "--format",
        "imagefolder",
        "--input",
        &train,
        "--input",
        &test,
    ];
    ingest(&[&args[..], &["--output", s(&b)]].concat());
    check(&["splits", s(&a), s(&b), s(&data)]);
}

#[test]
fn datasets_imagefolder_exports_as_file_shards_and_hub_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("src"), tmp.path().join("hf"));
    let offline = [("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1")];
    check_in(&["make-datasets", s(&src), s(&out)], &offline);
    let table = |name: &str| tmp.path().join(format!("{name}.parquet"));
    // The file `datasets` wrote for train alone: split train from the name.
    let file = out.join("file/hf-train-00000-of-00001.parquet");
    let summary = ingest(&[
        "--format",
        "parquet",
        "--input",
        s(&file),
        "--output",
        s(&table("file")),
    ]);
    assert!(summary.contains("rejected: 0"), "{summary}");
    check(&["hf-datasets", s(&table("file")), s(&out), "train"]);
    for layout in ["shards", "hub"] {
        let input = out.join(layout);
        ingest(&[
            "--format",
            "parquet",
            "--input",
            s(&input),
            "--output",
            s(&table(layout)),
        ]);
        check(&["hf-datasets", s(&table(layout)), s(&out), "train,test"]);
    }
    // Both files named explicitly.
    let train = format!("train={}", s(&file));
    let test = format!(
        "test={}",
        s(&out.join("file/hf-test-00000-of-00001.parquet"))
    );
    let args = ["--format", "parquet", "--input", &train, "--input", &test];
    ingest(&[&args[..], &["--output", s(&table("two"))]].concat());
    check(&["hf-datasets", s(&table("two")), s(&out), "train,test"]);

    // With the source images gone, every row is rejected: a failure that names each.
    std::fs::rename(&src, tmp.path().join("moved")).unwrap();
    let failed = table("failed");
    let res = run_ingest(&[
        "--format",
        "parquet",
        "--input",
        s(&file),
        "--output",
        s(&failed),
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success(),
        "exit 0 with nothing ingested:\n{stderr}"
    );
    assert!(
        stderr.contains("nothing ingested: 12 of 12 inputs rejected"),
        "{stderr}"
    );
    assert!(stderr.contains("12 x image file not found"), "{stderr}");
    assert!(!failed.exists());
    let rejects = std::fs::read_to_string(tmp.path().join("failed.parquet.rejects.csv")).unwrap();
    let missing = rejects
        .lines()
        .filter(|l| l.contains(",image file not found: "))
        .count();
    assert_eq!(missing, 12, "{rejects}");
}

#[test]
fn all_bad_inputs_exit_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let class = tmp.path().join("val/cat");
    std::fs::create_dir_all(&class).unwrap();
    std::fs::write(class.join("a.png"), b"").unwrap();
    std::fs::write(class.join("b.txt"), b"text").unwrap();
    let (val, out) = (tmp.path().join("val"), tmp.path().join("val.parquet"));
    let args = [
        "--format",
        "imagefolder",
        "--input",
        s(&val),
        "--output",
        s(&out),
    ];
    let res = run_ingest(&args);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{stderr}");
    assert!(stderr.contains("2 of 2 inputs rejected"), "{stderr}");
    assert!(
        stderr.contains("1 x zero-byte file (first: cat/a.png: zero-byte file)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 x not an image file (first: cat/b.txt"),
        "{stderr}"
    );
    assert!(!out.exists());
    // --max-rejected: a share above it fails too; bad values are refused.
    std::fs::write(class.join("c.png"), gray_png()).unwrap();
    let res = run_ingest(&[&args[..], &["--max-rejected", "0.5"]].concat());
    assert!(!res.status.success(), "2 of 3 rejected is more than 0.5");
    assert!(String::from_utf8_lossy(&res.stderr).contains("more than --max-rejected 0.5"));
    ingest(&[&args[..], &["--max-rejected", "0.7"]].concat());
    let res = run_ingest(&[
        "--format",
        "imagefolder",
        "--input",
        "=x",
        "--output",
        s(&out),
    ]);
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("split name before '=' is empty"));
}

/// A 2 x 2 gray PNG.
fn gray_png() -> Vec<u8> {
    let mut c = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_pixel(2, 2, image::Luma([7]))
        .write_to(&mut c, image::ImageFormat::Png)
        .unwrap();
    c.into_inner()
}
