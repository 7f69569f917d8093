//! `shiftlab query` and `shiftlab report` end to end on one small real run (6 Fashion-MNIST
//! images, the 15 benchmark corruptions x 5 severities, preset imagenet224 so mCE exists):
//! output formats, error messages, report files and their numbers, and the notebook.
// Runs pipelines: needs the libtorch build (`shiftlab-torch`).
#![cfg(feature = "torch")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{fails, fmnist, ok, root, text};

fn work() -> PathBuf {
    let dir = root().join("target/test-results");
    std::fs::create_dir_all(&dir).expect("work folder");
    dir
}

/// The small run, made once per test binary (about 5 s).
fn small_run() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = work().join("run-small-224");
        let _ = std::fs::remove_dir_all(&out);
        let pipeline = work().join("small-224.toml");
        let text = format!(
            r#"[pipeline]
name = "small-224"
output = "{out}"
seed = 0

[source]
dataset = "{dataset}"
limit = 6
fit_limit = 60

[shifts]
preset = "imagenet224"
corruptions = "benchmark15"
resize = 32

[[models]]
name = "r18"
architecture = "resnet18"
input_size = 32
seed = 0

[probes.knn]
k = 5

[runtime]
batch_size = 64
cpu_workers = 2
torch_threads = 1
"#,
            out = out.display(),
            dataset = fmnist().display()
        );
        std::fs::write(&pipeline, text).expect("pipeline file");
        ok(&["run", "--quiet", pipeline.to_str().expect("utf-8")]);
        out.to_str().expect("utf-8").to_string()
    })
}

#[test]
fn query_formats_and_mce() {
    let run = small_run();
    let csv = ok(&[
        "query",
        "--run",
        run,
        "--format",
        "csv",
        "SELECT model, probe, preset, mce, mean_error_15 FROM robustness",
    ]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("model,probe,preset,mce,mean_error_15"),
        "{csv}"
    );
    let row: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    assert_eq!(row[..3], ["r18", "knn", "imagenet224"], "{csv}");
    let mce: f64 = row[3].parse().expect("mCE is a number for imagenet224");
    assert!(mce > 0.0 && mce < 200.0, "{csv}");
    let json = ok(&[
        "query",
        "--run",
        run,
        "--format",
        "json",
        "SELECT COUNT(*) AS n FROM metrics",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    // clean + 15 x 5, one model, one probe.
    assert_eq!(v[0]["n"], 76, "{json}");
    let file = work().join("alexnet.parquet");
    ok(&[
        "query",
        "--format",
        "parquet",
        "--output",
        file.to_str().expect("utf-8"),
        "SELECT * FROM alexnet_errors",
    ]);
    let back = ok(&["query", "--format", "csv", "SELECT 1 AS one"]);
    assert!(back.contains("one"), "{back}");
    assert!(file.is_file());
}

#[test]
fn query_errors_name_tables_and_folders() {
    let run = small_run();
    let msg = fails(&["query", "--run", run, "SELECT nope FROM metrics"]);
    assert!(msg.contains("No field named nope"), "{msg}");
    assert!(
        msg.contains("robustness(run, model, probe, preset, clean_error"),
        "{msg}"
    );
    let msg = fails(&["query", "--run", "src", "SELECT 1"]);
    assert!(msg.contains("not a run folder"), "{msg}");
    let half = work().join("run-half");
    std::fs::create_dir_all(&half).expect("folder");
    std::fs::copy(Path::new(run).join("run.json"), half.join("run.json")).expect("run.json");
    let half = half.to_str().expect("utf-8");
    let msg = fails(&["query", "--run", half, "SELECT * FROM metrics"]);
    assert!(msg.contains("1 of 1 parts missing (part 0)"), "{msg}");
    assert!(msg.contains("has no metrics.parquet"), "{msg}");
    let msg = fails(&[
        "report",
        half,
        "--out",
        work().join("half-report").to_str().expect("utf-8"),
    ]);
    assert!(msg.contains("no metrics to report"), "{msg}");
    let msg = fails(&["query", "--format", "parquet", "SELECT 1"]);
    assert!(msg.contains("--output"), "{msg}");
}

#[test]
fn report_files_exist_and_match_the_view() {
    let run = small_run();
    let out = work().join("report");
    let _ = std::fs::remove_dir_all(&out);
    ok(&["report", run, "--out", out.to_str().expect("utf-8")]);
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    let mut refs = 0;
    for part in html.split("src=\"").skip(1) {
        let target = part.split('"').next().unwrap_or_default();
        assert!(
            out.join(target).is_file(),
            "report.html refers to missing {target}"
        );
        refs += 1;
    }
    assert!(refs >= 3, "{html}");
    assert!(html.contains("[probes.knn]"), "config text is in the page");
    let csv = ok(&[
        "query",
        "--run",
        run,
        "--format",
        "csv",
        "SELECT clean_error, mean_error_15, mce, relative_mce FROM robustness",
    ]);
    let values: Vec<f64> = csv
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split(',')
        .map(|v| v.parse().expect("number"))
        .collect();
    let row = md
        .lines()
        .find(|l| l.starts_with("| small-224 |"))
        .expect("a table row");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[5], "on the fly", "{row}");
    assert_eq!(cells[6], format!("{:.2}", 100.0 * values[0]), "{row}");
    assert_eq!(cells[8], format!("{:.2}", 100.0 * values[1]), "{row}");
    assert_eq!(cells[10], format!("{:.2}", values[2]), "{row}");
    assert_eq!(cells[11], format!("{:.2}", values[3]), "{row}");
}

/// CSV text as (header -> column of cells), one row expected.
fn first_row(csv: &str) -> std::collections::HashMap<String, String> {
    let mut lines = csv.lines();
    let header = lines.next().unwrap_or_default().split(',');
    let row = lines.next().unwrap_or_default().split(',');
    header
        .map(str::to_string)
        .zip(row.map(str::to_string))
        .collect()
}

#[test]
fn notebook_rederives_the_robustness_view() {
    let run = small_run();
    let python = root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `make test`",
        python.display()
    );
    let out = Command::new(python)
        .current_dir(root())
        .args([
            "tests/python/run_results_notebook.py",
            "examples/results.ipynb",
            run,
        ])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "notebook failed:\n{}", text(&out));
    let notebook = first_row(&String::from_utf8_lossy(&out.stdout));
    let sql = first_row(&ok(&[
        "query",
        "--run",
        run,
        "--format",
        "csv",
        "SELECT * FROM robustness",
    ]));
    for column in [
        "clean_error",
        "mean_error",
        "mean_error_15",
        "mean_error_19",
        "mce",
        "relative_mce",
    ] {
        let (a, b) = (&notebook[column], &sql[column]);
        let same = match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() < 1e-9,
            _ => a.is_empty() && b.is_empty(),
        };
        assert!(same, "{column}: notebook {a:?}, SQL {b:?}");
    }
    assert!(
        !sql["mce"].is_empty(),
        "the small run is imagenet224: mCE exists"
    );
}

/// `paradigm` labels reach the `runs` record and `metrics`, and `paradigm_robustness` equals
/// the same grouping computed here from `metrics`: two pixel floors (one paradigm) and a
/// narrow random-init ResNet (another), 8 images, 2 corruptions x 2 severities.
#[test]
fn paradigms_reach_runs_metrics_and_the_view() {
    let out = work().join("run-paradigms");
    let _ = std::fs::remove_dir_all(&out);
    let pipeline = work().join("paradigms.toml");
    let text = format!(
        r#"[pipeline]
name = "paradigms"
output = "{out}"
seed = 0

[source]
dataset = "{dataset}"
limit = 8
fit_limit = 60

[shifts]
preset = "cifar32"
corruptions = ["gaussian_noise", "contrast"]
severities = [1, 3]
resize = 32

[[models]]
name = "px28"
architecture = "pixels"
input_size = 28
paradigm = "none"

[[models]]
name = "px16"
architecture = "pixels"
input_size = 16
paradigm = "none"

[[models]]
name = "narrow"
architecture = "resnet18-small"
width = 8
input_size = 28
paradigm = "untrained"

[probes.knn]
k = 5

[runtime]
batch_size = 16
embed_block = 8
"#,
        out = out.display(),
        dataset = fmnist().display()
    );
    std::fs::write(&pipeline, text).expect("pipeline file");
    ok(&["run", "--quiet", pipeline.to_str().expect("utf-8")]);
    let run = out.to_str().expect("utf-8");
    let q = |sql: &str| {
        ok(&[
            "query",
            "--run",
            run,
            "--format",
            "csv",
            "--precision",
            "12",
            sql,
        ])
    };
    let labels = q("SELECT DISTINCT model, paradigm FROM metrics ORDER BY model");
    assert_eq!(
        labels.trim(),
        "model,paradigm\nnarrow,untrained\npx16,none\npx28,none",
        "{labels}"
    );
    let models = q("SELECT models FROM runs");
    assert!(
        models.contains("\"\"paradigm\"\":\"\"untrained\"\"")
            && models.contains("\"\"kind\"\":\"\"pixels\"\""),
        "{models}"
    );
    // By hand from metrics: per model, the mean over the family's shifts; then per paradigm.
    let rows = q("SELECT paradigm, model, shift_family, severity, error FROM metrics");
    let mut per_model: std::collections::BTreeMap<(String, String, String, String), Vec<f64>> =
        Default::default();
    for line in rows.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        let key = (c[0].into(), c[2].into(), c[3].into(), c[1].into());
        per_model
            .entry(key)
            .or_default()
            .push(c[4].parse().expect("error"));
    }
    let mut per_paradigm: std::collections::BTreeMap<(String, String, String), Vec<f64>> =
        Default::default();
    for ((p, f, s, _), errors) in per_model {
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        per_paradigm.entry((p, f, s)).or_default().push(mean);
    }
    let view = q(
        "SELECT paradigm, shift_family, severity, models, mean_error, min_error, \
                  max_error FROM paradigm_robustness ORDER BY paradigm, shift_family, severity",
    );
    let lines: Vec<&str> = view.lines().skip(1).collect();
    assert_eq!(lines.len(), per_paradigm.len(), "{view}");
    for line in lines {
        let c: Vec<&str> = line.split(',').collect();
        let want = &per_paradigm[&(c[0].to_string(), c[1].to_string(), c[2].to_string())];
        let num = |i: usize| c[i].parse::<f64>().expect("number");
        let mean = want.iter().sum::<f64>() / want.len() as f64;
        let (lo, hi) = want
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        assert_eq!(num(3) as usize, want.len(), "{line}");
        for (got, want) in [(num(4), mean), (num(5), lo), (num(6), hi)] {
            assert!((got - want).abs() < 1e-9, "{line}: {got} vs {want}");
        }
    }
    assert!(view.contains("none,corruption,3,2,"), "{view}");
}
