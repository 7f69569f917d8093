//! `paradigm_robustness` against a hand computation from `metrics`, runs written before the
//! `paradigm` column, and the report's paradigm section.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{close, floats, metrics_batch, query, texts, write_run_batch, Row};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

/// Models a and b are `distillation`, c is `contrastive`, d has no paradigm.
fn paradigm_of(model: &str) -> Option<&'static str> {
    match model {
        "a" | "b" => Some("distillation"),
        "c" => Some("contrastive"),
        _ => None,
    }
}

/// Clean errors a 0.2, b 0.3, c 0.25, d 0.1; corruptions fog and gaussian_noise at severities
/// 1 and 2; one geometric shift at severity 1; one dataset-level shift (left out of the view).
fn rows() -> Vec<Row> {
    let table = [
        ("a", 0.2, [0.4, 0.5, 0.6, 0.7], 0.35),
        ("b", 0.3, [0.6, 0.7, 0.8, 0.9], 0.45),
        ("c", 0.25, [0.3, 0.3, 0.5, 0.6], 0.5),
        ("d", 0.1, [0.9, 0.9, 0.9, 0.9], 0.9),
    ];
    let mut rows = Vec::new();
    for (m, clean, [f1, n1, f2, n2], rot) in table {
        rows.push(Row::clean(m, clean));
        rows.push(Row::new(m, "fog", "weather", "corruption", 1, f1));
        rows.push(Row::new(m, "gaussian_noise", "noise", "corruption", 1, n1));
        rows.push(Row::new(m, "fog", "weather", "corruption", 2, f2));
        rows.push(Row::new(m, "gaussian_noise", "noise", "corruption", 2, n2));
        rows.push(Row::new(m, "rotation", "geometric", "geometric", 1, rot));
        rows.push(Row::new(m, "imagenet_r", "imagenet_r", "dataset", 0, 0.8));
    }
    rows
}

/// `batch` with the schema's `paradigm` column (version 3) appended from [`paradigm_of`].
fn with_paradigm(batch: &RecordBatch) -> RecordBatch {
    let models = texts(batch, "model");
    let paradigm = StringArray::from(models.iter().map(|m| paradigm_of(m)).collect::<Vec<_>>());
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("paradigm", DataType::Utf8, true));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(paradigm));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
}

fn labelled_run(root: &Path) -> std::path::PathBuf {
    let dir = root.join("p");
    let batch = with_paradigm(&metrics_batch("p", &rows()));
    write_run_batch(&dir, "p", "cifar32", &batch, 1, 1);
    dir
}

/// `column` of the view's row for (paradigm, family, severity); panics if it is absent.
fn cell(dir: &Path, key: (&str, &str, i32), column: &str) -> Option<f64> {
    let b = query(&[dir], "SELECT * FROM paradigm_robustness");
    let (p, f, s) = (
        texts(&b, "paradigm"),
        texts(&b, "shift_family"),
        floats(&b, "severity"),
    );
    let row = (0..b.num_rows())
        .find(|&i| p[i] == key.0 && f[i] == key.1 && s[i] == Some(f64::from(key.2)))
        .unwrap_or_else(|| panic!("no row {key:?}"));
    floats(&b, column)[row]
}

#[test]
fn paradigm_robustness_equals_the_hand_computation() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = labelled_run(tmp.path());
    let get = |p, f, s, c| cell(&dir, (p, f, s), c);
    // distillation, corruption, severity 1: a = (0.4 + 0.5) / 2 = 0.45, b = (0.6 + 0.7) / 2
    // = 0.65; mean 0.55, min 0.45, max 0.65, sample sd sqrt(2 x 0.1^2 / 1) = 0.1414...
    assert!(close(
        get("distillation", "corruption", 1, "mean_error"),
        0.55
    ));
    assert!(close(
        get("distillation", "corruption", 1, "min_error"),
        0.45
    ));
    assert!(close(
        get("distillation", "corruption", 1, "max_error"),
        0.65
    ));
    assert!(close(
        get("distillation", "corruption", 1, "std_error"),
        0.02f64.sqrt()
    ));
    assert!(close(get("distillation", "corruption", 1, "models"), 2.0));
    assert!(close(get("distillation", "corruption", 1, "shifts"), 2.0));
    // severity 2: a 0.65, b 0.85: mean 0.75.
    assert!(close(
        get("distillation", "corruption", 2, "mean_error"),
        0.75
    ));
    // clean (severity 0): (0.2 + 0.3) / 2; geometric severity 1: (0.35 + 0.45) / 2.
    assert!(close(get("distillation", "clean", 0, "mean_error"), 0.25));
    assert!(close(
        get("distillation", "geometric", 1, "mean_error"),
        0.4
    ));
    // contrastive is c alone: its own numbers, no spread.
    assert!(close(
        get("contrastive", "corruption", 1, "mean_error"),
        0.3
    ));
    assert!(close(
        get("contrastive", "corruption", 2, "mean_error"),
        0.55
    ));
    assert_eq!(get("contrastive", "corruption", 1, "std_error"), None);
    assert!(close(get("contrastive", "corruption", 1, "models"), 1.0));
    // d (no paradigm) and the dataset-level shift are not in the view.
    let b = query(
        &[dir.as_path()],
        "SELECT DISTINCT paradigm, shift_family FROM paradigm_robustness \
         ORDER BY paradigm, shift_family",
    );
    assert_eq!(
        texts(&b, "paradigm"),
        [
            "contrastive",
            "contrastive",
            "contrastive",
            "distillation",
            "distillation",
            "distillation"
        ]
    );
    assert_eq!(
        texts(&b, "shift_family"),
        [
            "clean",
            "corruption",
            "geometric",
            "clean",
            "corruption",
            "geometric"
        ]
    );
}

#[test]
fn runs_without_the_paradigm_column_read_as_unlabelled() {
    let tmp = tempfile::tempdir().expect("tmp");
    let old = tmp.path().join("v2");
    write_run_batch(&old, "v2", "cifar32", &metrics_batch("v2", &rows()), 1, 1);
    let b = query(
        &[old.as_path()],
        "SELECT COUNT(*) AS n FROM paradigm_robustness",
    );
    assert!(close(floats(&b, "n")[0], 0.0));
    let b = query(
        &[old.as_path()],
        "SELECT COUNT(*) AS n FROM metrics WHERE paradigm IS NULL",
    );
    assert!(close(floats(&b, "n")[0], rows().len() as f64));
    // Queried with a labelled run, each keeps its own.
    let new = labelled_run(tmp.path());
    let b = query(
        &[old.as_path(), new.as_path()],
        "SELECT DISTINCT run FROM paradigm_robustness",
    );
    assert_eq!(texts(&b, "run"), ["p"]);
}

#[test]
fn the_report_shows_paradigms_only_when_models_have_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = labelled_run(tmp.path());
    let out = tmp.path().join("out");
    let files = common::block_on(shiftlab_results::write_report(&[dir], &out)).expect("report");
    let html = std::fs::read_to_string(&files.html).expect("html");
    let md = std::fs::read_to_string(&files.markdown).expect("md");
    assert!(html.contains("<h2>Paradigms</h2>"), "{html}");
    // distillation, corruption: clean (0.2 + 0.3) / 2; severities 1 and 2 mean (0.55 + 0.75)
    // / 2; at severity 2: 0.75, a 0.65, b 0.85.
    assert!(
        md.contains(
            "| p | distillation | knn | corruption | 2 | 25.00 | 65.00 | 75.00 at severity 2 \
             (65.00-85.00) |"
        ),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.join("figures/paradigms.svg")).expect("figure");
    assert!(svg.contains("distillation") && svg.contains("contrastive"));
    let old = tmp.path().join("v2");
    write_run_batch(&old, "v2", "cifar32", &metrics_batch("v2", &rows()), 1, 1);
    let out = tmp.path().join("out2");
    let files = common::block_on(shiftlab_results::write_report(&[old], &out)).expect("report");
    let html = std::fs::read_to_string(&files.html).expect("html");
    assert!(!html.contains("Paradigms"));
    assert!(!out.join("figures/paradigms.svg").exists());
}
