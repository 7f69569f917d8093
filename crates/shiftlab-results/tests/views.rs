//! The metric views against hand-computed values and against `shiftlab_metrics`'s Rust formulas,
//! on synthetic run folders whose errors are chosen: AlexNet's own errors give mCE 100, half of
//! them 50; non-`imagenet224` runs give no mCE; half-finished runs say what is missing.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{block_on, close, metrics_batch, write_run_batch, Row};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use shiftlab_metrics::corruptions::{BENCHMARK_15, EXTRA_4};
use shiftlab_metrics::metrics::{mce, mean_error, relative_mce};
use shiftlab_metrics::{AlexNetTable, CorruptionSet, ModelErrors};
use shiftlab_results::RunSession;

/// One model's errors: clean, and per corruption the 5 severities.
struct Synthetic {
    model: &'static str,
    clean: f64,
    errors: Vec<(&'static str, [f64; 5])>,
}

fn alexnet_errors(scale: f64) -> Vec<(&'static str, [f64; 5])> {
    let table = AlexNetTable::embedded();
    BENCHMARK_15
        .iter()
        .chain(EXTRA_4.iter())
        .map(|c| {
            let e = table.get(c).expect("AlexNet has every corruption");
            let s = e.severities.unwrap_or([e.mean; 5]);
            (*c, s.map(|v| v * scale))
        })
        .collect()
}

/// Errors with no pattern a wrong formula could agree with by chance.
fn irregular_errors() -> Vec<(&'static str, [f64; 5])> {
    BENCHMARK_15
        .iter()
        .chain(EXTRA_4.iter())
        .enumerate()
        .map(|(i, c)| {
            let s = std::array::from_fn(|s| 0.1 + ((i * 7 + s * 13) % 17) as f64 * 0.05);
            (*c, s)
        })
        .collect()
}

fn group(c: &str) -> &'static str {
    if c.contains("noise") {
        "noise"
    } else if c.contains("blur") {
        "blur"
    } else {
        "digital"
    }
}

/// Rows of `models`: clean, every corruption x severity, and rows of a synthetic family and a
/// dataset-level shift with errors far from the corruptions', so that a corruption view
/// reading them would be visibly off.
fn rows(models: &[Synthetic]) -> Vec<Row> {
    let mut rows = Vec::new();
    for m in models {
        rows.push(Row::clean(m.model, m.clean));
        for (c, errs) in &m.errors {
            for (s, e) in errs.iter().enumerate() {
                rows.push(Row::new(
                    m.model,
                    c,
                    group(c),
                    "corruption",
                    s as i32 + 1,
                    *e,
                ));
            }
        }
        for s in 1..=5 {
            rows.push(Row::new(
                m.model,
                "rotation",
                "geometric",
                "geometric",
                s,
                0.99,
            ));
            rows.push(Row::new(
                m.model,
                "gamma",
                "photometric",
                "photometric",
                s,
                0.01,
            ));
        }
        rows.push(Row::new(
            m.model,
            "imagenet_r",
            "imagenet_r",
            "dataset",
            0,
            0.97,
        ));
    }
    rows
}

/// Writes run.json, manifests for `finished` of `parts` parts, and metrics.parquet when all are.
fn write_run(
    dir: &Path,
    name: &str,
    preset: &str,
    models: &[Synthetic],
    parts: u64,
    finished: u64,
) {
    let batch = metrics_batch(name, &rows(models));
    write_run_batch(dir, name, preset, &batch, parts, finished);
}

fn models() -> Vec<Synthetic> {
    vec![
        Synthetic {
            model: "alexnet-like",
            clean: 0.4345,
            errors: alexnet_errors(1.0),
        },
        Synthetic {
            model: "half",
            clean: 0.4345 / 2.0,
            errors: alexnet_errors(0.5),
        },
        Synthetic {
            model: "irregular",
            clean: 0.2,
            errors: irregular_errors(),
        },
    ]
}

/// The whole `robustness` view of `dirs`, read once per test thread (sessions are slow to
/// open in debug builds).
fn robustness_view(dirs: &[&Path]) -> RecordBatch {
    type Cache = RefCell<HashMap<Vec<PathBuf>, RecordBatch>>;
    thread_local!(static CACHE: Cache = RefCell::new(HashMap::new()));
    let dirs: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    if let Some(b) = CACHE.with(|c| c.borrow().get(&dirs).cloned()) {
        return b;
    }
    let batches = block_on(async {
        let s = RunSession::open(&dirs).await.expect("session");
        s.query("SELECT * FROM robustness").await.expect("query")
    });
    let schema = batches.first().expect("a batch").schema();
    let batch = concat_batches(&schema, &batches).expect("one batch");
    CACHE.with(|c| c.borrow_mut().insert(dirs, batch.clone()));
    batch
}

/// (run, model, column) -> value of `robustness` (one probe per synthetic run).
fn robustness(dirs: &[&Path], run: &str, model: &str, column: &str) -> Option<f64> {
    let batch = robustness_view(dirs);
    let text = |name: &str| {
        let col = batch.column_by_name(name).expect("column");
        cast(col, &DataType::Utf8)
            .expect("cast")
            .as_string::<i32>()
            .clone()
    };
    let (runs, models) = (text("run"), text("model"));
    let row = (0..batch.num_rows())
        .find(|&i| runs.value(i) == run && models.value(i) == model)
        .expect("a row");
    let col = cast(
        batch.column_by_name(column).expect("column"),
        &DataType::Float64,
    )
    .expect("cast");
    let values = col.as_primitive::<Float64Type>();
    values.is_valid(row).then(|| values.value(row))
}

#[test]
fn alexnet_errors_give_mce_100_and_half_gives_50() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("r224");
    write_run(&dir, "r224", "imagenet224", &models(), 1, 1);
    let d = [dir.as_path()];
    assert!(close(robustness(&d, "r224", "alexnet-like", "mce"), 100.0));
    assert!(close(
        robustness(&d, "r224", "alexnet-like", "relative_mce"),
        100.0
    ));
    assert!(close(robustness(&d, "r224", "half", "mce"), 50.0));
    assert!(close(robustness(&d, "r224", "half", "relative_mce"), 50.0));
    assert!(close(
        robustness(&d, "r224", "half", "clean_error"),
        0.4345 / 2.0
    ));
}

#[test]
fn views_agree_with_the_rust_formulas() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("r224");
    write_run(&dir, "r224", "imagenet224", &models(), 1, 1);
    let d = [dir.as_path()];
    let alexnet = AlexNetTable::embedded();
    for m in models() {
        let arrays = m.errors.iter().map(|(c, e)| (*c, *e));
        let rust = ModelErrors::from_arrays(m.model, Some(m.clean), arrays).expect("valid");
        let want = [
            ("mce", mce(&rust, alexnet).expect("mce")),
            ("relative_mce", relative_mce(&rust, alexnet).expect("rel")),
            (
                "mean_error_15",
                mean_error(&rust, CorruptionSet::Benchmark15).expect("15"),
            ),
            (
                "mean_error_19",
                mean_error(&rust, CorruptionSet::All19).expect("19"),
            ),
            (
                "mean_error",
                mean_error(&rust, CorruptionSet::All19).expect("19"),
            ),
        ];
        for (column, value) in want {
            let got = robustness(&d, "r224", m.model, column);
            assert!(
                close(got, value),
                "{} {column}: SQL {got:?}, Rust {value}",
                m.model
            );
        }
    }
}

#[test]
fn other_presets_have_mean_error_but_no_mce() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("r32");
    write_run(&dir, "r32", "cifar32", &models(), 1, 1);
    let d = [dir.as_path()];
    assert_eq!(robustness(&d, "r32", "half", "mce"), None);
    assert_eq!(robustness(&d, "r32", "half", "relative_mce"), None);
    let alex_mean15 = BENCHMARK_15
        .iter()
        .map(|c| AlexNetTable::embedded().get(c).map_or(0.0, |e| e.mean))
        .sum::<f64>()
        / 15.0;
    assert!(close(
        robustness(&d, "r32", "alexnet-like", "mean_error_15"),
        alex_mean15
    ));
    let acc = robustness(&d, "r32", "alexnet-like", "mean_accuracy_15");
    assert!(close(acc, 1.0 - alex_mean15));
}

#[test]
fn several_runs_are_queried_together() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_run(&a, "a", "imagenet224", &models(), 1, 1);
    write_run(&b, "b", "cifar32", &models(), 1, 1);
    let d = [a.as_path(), b.as_path()];
    assert!(close(robustness(&d, "a", "half", "mce"), 50.0));
    assert_eq!(robustness(&d, "b", "half", "mce"), None);
    let dirs = vec![a.clone(), b.clone()];
    let rows = block_on(async {
        let s = RunSession::open(&dirs).await.expect("session");
        let batches = s.query("SELECT * FROM robustness").await.expect("query");
        batches.iter().map(RecordBatch::num_rows).sum::<usize>()
    });
    assert_eq!(rows, 6);
}

#[test]
fn half_finished_and_foreign_folders_say_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("half");
    write_run(&dir, "half", "cifar32", &models(), 4, 2);
    let s = block_on(RunSession::open(std::slice::from_ref(&dir))).expect("session");
    let notes = s.notes.join("\n");
    assert!(
        notes.contains("2 of 4 parts missing (parts 2, 3)"),
        "{notes}"
    );
    assert!(notes.contains("no metrics.parquet"), "{notes}");
    let err = block_on(s.query("SELECT * FROM robustness"))
        .err()
        .map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(err.contains("robustness"), "{err}");
    assert!(
        err.contains("alexnet_errors(corruption, benchmark_15"),
        "{err}"
    );
    assert!(err.contains("no metrics.parquet"), "{err}");
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir_all(&foreign).expect("folder");
    let err = block_on(RunSession::open(&[foreign]))
        .err()
        .map(|e| e.to_string());
    assert!(err
        .unwrap_or_default()
        .contains("not a run folder: it has no run.json"));
}

/// First column of a one-column query as numbers.
fn numbers(dir: &Path, sql: &str) -> Vec<f64> {
    let dirs = vec![dir.to_path_buf()];
    let batches = block_on(async {
        let s = RunSession::open(&dirs).await.expect("session");
        s.query(sql).await.expect("query")
    });
    batches
        .iter()
        .flat_map(|b| {
            let col = cast(b.column(0), &DataType::Float64).expect("cast");
            let v = col.as_primitive::<Float64Type>().clone();
            (0..v.len()).map(move |i| v.value(i))
        })
        .collect()
}

#[test]
fn per_corruption_ce_and_drift() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("r224");
    write_run(&dir, "r224", "imagenet224", &models(), 1, 1);
    // AlexNet's own errors: CE 100 on each of the 19 (the extra 4 from 5 x their mean).
    let ce = numbers(
        &dir,
        "SELECT ce FROM corruption_summary WHERE model = 'alexnet-like'",
    );
    assert_eq!(ce.len(), 19);
    assert!(ce.iter().all(|c| (c - 100.0).abs() < 1e-9), "{ce:?}");
    // The synthetic cosine is 1 - 0.1 x severity for every corruption.
    let drift = numbers(
        &dir,
        "SELECT mean_cosine_to_clean FROM drift WHERE model = 'half' \
         AND shift_family IN ('clean', 'corruption') ORDER BY severity",
    );
    let want = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5];
    assert!(
        drift.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-9),
        "{drift:?}"
    );
    let increase = numbers(
        &dir,
        "SELECT error_increase FROM corruption_errors \
         WHERE model = 'half' AND corruption = 'fog' AND severity = 1",
    );
    assert!(
        (increase[0] - (0.67474 - 0.4345) / 2.0).abs() < 1e-9,
        "{increase:?}"
    );
}
