//! Released corruption benchmarks evaluated as corruptions, end to end: a CIFAR-10-C-style
//! table (arrays written by numpy, `ingest --format cifar10-c`) and a small ImageNet-C tree with
//! all 15 x 5 (`ingest --format imagenet-c`), each a `[[targets]]` entry of a pipeline whose
//! source is the clean split. `corruption_errors` and `robustness` must equal a hand
//! computation from the run's `predictions` (tests/python/released.py), mCE included for the
//! imagenet224 run, and the rows must say they come from released files.

mod common;

use std::path::Path;

use common::{ok, python, root, text};

/// The 15 benchmark corruptions x 5 severities of one clean image set.
const CONDITIONS: usize = 75;

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs tests/python/released.py with `args`; it must succeed. Returns its stdout.
fn released_py(args: &[&str]) -> String {
    let out = std::process::Command::new(python())
        .current_dir(root())
        .arg("tests/python/released.py")
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "released.py {args:?}:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A pipeline: clean `source` (split `split`) with no on-the-fly corruption, `target` as the
/// released corruptions, one random-init ResNet-18 and a kNN probe fitted on the clean split.
fn pipeline(out: &Path, source: &Path, target: &Path, split: &str, preset: &str) -> String {
    format!(
        r#"[pipeline]
name = "released-{preset}"
output = "{out}"
seed = 0

[source]
dataset = "{source}"
eval_split = "{split}"
fit_split = "{split}"

[shifts]
preset = "{preset}"
corruptions = "none"

[[targets]]
name = "released"
dataset = "{target}"
split = "{split}"

[[models]]
name = "r18"
architecture = "resnet18"
input_size = 32
seed = 3

[probes.knn]
k = 3

[runtime]
batch_size = 32
part_size = 64
embed_block = 32
cpu_workers = 2
torch_threads = 1
"#,
        out = path(out),
        source = path(source),
        target = path(target),
    )
}

/// Runs the pipeline, writes the two views as CSV and has the Python check recompute them.
fn run_and_check(dir: &Path, text: &str, rows: usize, alexnet: bool) -> String {
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, text).expect("pipeline file");
    ok(&["run", "--quiet", path(&file)]);
    let run = dir.join("run");
    let mut csv = Vec::new();
    for view in ["corruption_errors", "robustness"] {
        let out = dir.join(format!("{view}.csv"));
        ok(&[
            "query",
            "--run",
            path(&run),
            "--format",
            "csv",
            "--output",
            path(&out),
            &format!("SELECT * FROM {view}"),
        ]);
        csv.push(out);
    }
    let rows = rows.to_string();
    let alexnet_csv = root().join("data-ref/alexnet_errors.csv");
    let mut args = vec![
        "check",
        path(&run),
        path(&csv[0]),
        path(&csv[1]),
        "--rows",
        &rows,
    ];
    if alexnet {
        args.extend(["--alexnet", path(&alexnet_csv)]);
    }
    released_py(&args)
}

#[test]
fn cifar10_c_arrays_enter_the_corruption_views() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    released_py(&["cifar", path(d)]);
    let (source, target) = (d.join("cifar.parquet"), d.join("cifar10c.parquet"));
    let clean = d.join("clean");
    ok(&[
        "ingest",
        "--format",
        "cifar10",
        "--split",
        "test",
        "--input",
        path(&clean),
        "--output",
        path(&source),
    ]);
    let arrays = d.join("c");
    ok(&[
        "ingest",
        "--format",
        "cifar10-c",
        "--input",
        path(&arrays),
        "--output",
        path(&target),
    ]);
    let text = pipeline(&d.join("run"), &source, &target, "test", "cifar32");
    let report = run_and_check(d, &text, 6 * CONDITIONS, false);
    assert!(
        report.contains("released: ok: 75 corruption_errors rows"),
        "{report}"
    );
    // cifar32: no AlexNet normaliser, so no mCE; the plain means are there.
    let mce = ok(&[
        "query",
        "--run",
        path(&d.join("run")),
        "--format",
        "csv",
        "SELECT mce, mean_error_15 IS NOT NULL AS has_mean FROM robustness",
    ]);
    assert_eq!(mce.lines().nth(1), Some(",true"), "{mce}");
}

#[test]
fn imagenet_c_folder_gives_the_mce_of_the_formula() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    released_py(&["imagenet-c", path(d)]);
    let (source, target) = (d.join("val.parquet"), d.join("imagenet-c.parquet"));
    ok(&[
        "ingest",
        "--format",
        "imagefolder",
        "--split",
        "val",
        "--input",
        path(&d.join("val")),
        "--output",
        path(&source),
    ]);
    ok(&[
        "ingest",
        "--format",
        "imagenet-c",
        "--split",
        "val",
        "--input",
        path(&d.join("c")),
        "--output",
        path(&target),
    ]);
    let text = pipeline(&d.join("run"), &source, &target, "val", "imagenet224");
    // Four images (two per class) per corruption and severity.
    let report = run_and_check(d, &text, 4 * CONDITIONS, true);
    assert!(
        report.contains("released: ok: 75 corruption_errors rows"),
        "{report}"
    );
    assert!(!report.contains("mCE nan"), "{report}");
}
