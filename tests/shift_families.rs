//! Shifts beyond ImageNet-C end to end: probes fitted on Fashion-MNIST train, evaluated on the
//! test split under every synthetic family on the fly, and on a shifted copy of the test split
//! (made by `shiftlab shift-dataset`) as a dataset-level shift, once with all classes and once
//! through a label map that keeps three classes (predictions restricted to them). Outputs are
//! read back with pyarrow/pandas (tests/python/check_run.py) and the report must show the
//! families.
// Runs pipelines: needs the libtorch build (`shiftlab-torch`).
#![cfg(feature = "torch")]

mod common;

use std::path::Path;

use common::{fails, fmnist, ok, python, python_script, root, text};

const SOURCE_LIMIT: usize = 6;
const TARGET_LIMIT: usize = 10;
/// The shift families beyond clean and ImageNet-C that the run must report.
const FAMILIES: [&str; 5] = [
    "geometric",
    "photometric",
    "resolution",
    "occlusion",
    "dataset",
];

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn pipeline_text(out: &Path, target: &Path, map: &Path) -> String {
    format!(
        r#"[pipeline]
name = "families"
output = "{out}"
seed = 5

[source]
dataset = "{source}"
limit = {SOURCE_LIMIT}
fit_limit = 120

[shifts]
preset = "cifar32"
corruptions = ["gaussian_noise"]
synthetic = "all"
severities = [1, 5]
resize = 32

[[targets]]
name = "fmnist-shifted"
dataset = "{target}"

[[targets]]
name = "fmnist-3-classes"
dataset = "{target}"
label_map = "{map}"

[[models]]
name = "r18"
architecture = "resnet18"
input_size = 32
seed = 1

[probes.linear]
epochs = 5

[probes.knn]
k = 10

[runtime]
batch_size = 8
part_size = 8
embed_block = 8
"#,
        out = path(out),
        source = path(fmnist()),
        target = path(target),
        map = path(map),
    )
}

/// Rows of the target table whose label is one of `labels`.
fn rows_with_labels(table: &Path, labels: &[i64]) -> usize {
    let script = "import sys, pyarrow.parquet as pq\n\
        t = pq.read_table(sys.argv[1], columns=['label']).column('label').to_pylist()\n\
        keep = {int(x) for x in sys.argv[2].split(',')}\n\
        print(sum(1 for l in t if l in keep))";
    let keep = labels
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(",");
    python_script(script, &[path(table), &keep])
        .trim()
        .parse()
        .expect("a count")
}

#[test]
fn synthetic_families_and_dataset_shifts_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("fmnist-shifted.parquet");
    ok(&[
        "shift-dataset",
        "--input",
        path(fmnist()),
        "--output",
        path(&target),
        "--split",
        "test",
        "--shift",
        "rotation,occlusion",
        "--severity",
        "3",
        "--limit",
        &TARGET_LIMIT.to_string(),
        "--resize",
        "32",
    ]);
    // By name, by index, and a name on the source side: target classes 0, 1, 9 -> the same.
    let map = dir.path().join("three.csv");
    std::fs::write(
        &map,
        "# three classes\ntarget,source\nT-shirt/top,T-shirt/top\n1,1\nAnkle boot,9\n",
    )
    .expect("write map");
    let file = dir.path().join("families.toml");
    let run = dir.path().join("run");
    std::fs::write(&file, pipeline_text(&run, &target, &map)).expect("write pipeline");

    let checked = ok(&["validate", path(&file)]);
    assert!(
        checked.contains("target 'fmnist-3-classes'")
            && checked.contains("3 of 10 classes mapped, restricted to 3 source classes"),
        "{checked}"
    );
    let out = ok(&["run", "--quiet", path(&file)]);
    for family in FAMILIES {
        assert!(out.contains(family), "summary lacks {family}:\n{out}");
    }

    // Source: clean + (1 corruption + 9 synthetic) x 2 severities = 21 shifts; targets: every
    // shifted row (2 shifts x 10), and only the mapped classes through the label map.
    let target_rows = 2 * TARGET_LIMIT;
    let mapped = rows_with_labels(&target, &[0, 1, 9]);
    let predictions = (SOURCE_LIMIT * 21 + target_rows + mapped) * 2;
    let metrics = (21 + 2 + 2) * 2;
    let errors = target_rows - mapped;
    let check = std::process::Command::new(python())
        .arg(root().join("tests/python/check_run.py"))
        .arg(&run)
        .args([
            "--predictions",
            &predictions.to_string(),
            "--metrics",
            &metrics.to_string(),
            "--errors",
            &errors.to_string(),
            "--families",
            "clean,corruption,geometric,photometric,resolution,occlusion,dataset",
            "--restricted",
            "fmnist-3-classes=0,1,9",
        ])
        .output()
        .expect("python runs");
    assert!(check.status.success(), "{}", text(&check));

    // Each target is its own set in the family views (ImageNet-R and -Sketch are two shifts).
    let sets = ok(&[
        "query",
        "--run",
        path(&run),
        "--format",
        "csv",
        "SELECT DISTINCT shift_set FROM effective_robustness WHERE shift_family = 'dataset' \
         ORDER BY shift_set",
    ]);
    assert_eq!(
        sets.lines().collect::<Vec<_>>(),
        ["shift_set", "fmnist-3-classes", "fmnist-shifted"],
        "{sets}"
    );

    let report = dir.path().join("report");
    ok(&["report", "--out", path(&report), path(&run)]);
    let html = std::fs::read_to_string(report.join("report.html")).expect("report.html");
    // Every family, and each target as its own set.
    let sets = ["dataset: fmnist-shifted", "dataset: fmnist-3-classes"];
    for family in FAMILIES.iter().chain(&sets) {
        assert!(html.contains(family), "report lacks {family}");
    }
}

#[test]
fn bad_shift_and_target_settings_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    let missing = dir.path().join("nope.parquet");
    let map = dir.path().join("map.csv");
    std::fs::write(&map, "target,source\n0,0\n").expect("map");
    let bad_map = dir.path().join("bad-map.csv");
    std::fs::write(&bad_map, "target,source\nSneaker,Sneakers\n").expect("map");
    let good = pipeline_text(&run, fmnist(), &map);
    let cases = [
        (
            good.replace(
                "synthetic = \"all\"",
                "synthetic = [\"rotation\", \"blurry\"]",
            ),
            "shifts.synthetic",
        ),
        (
            good.replace("synthetic = \"all\"", "synthetic = [\"gaussian_noise\"]"),
            "shifts.corruptions",
        ),
        (
            good.replace(
                "corruptions = [\"gaussian_noise\"]",
                "corruptions = [\"rotation\"]",
            ),
            "shifts.synthetic",
        ),
        (
            good.replacen(path(fmnist()), path(&missing), 2).replacen(
                path(&missing),
                path(fmnist()),
                1,
            ),
            "nope.parquet",
        ),
        (good.replace("fmnist-shifted", "clean"), "targets.name"),
        (good.replace("label_map = ", "labelmap = "), "labelmap"),
        (
            good.replace(path(&map), path(&bad_map)),
            "line 2: source class \"Sneakers\"",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&file, text).expect("write");
        let err = fails(&["validate", path(&file)]);
        assert!(err.contains(want), "case {i}: expected {want:?} in:\n{err}");
    }
}
