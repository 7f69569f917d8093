//! `family_robustness` and `effective_robustness` against hand-computed numbers and against
//! `shiftlab_metrics::metrics::effective_robustness`, and the report on runs with shift
//! families (with and without ImageNet-C corruptions).

mod common;

use std::path::Path;

use common::{close, floats, metrics_batch, query, texts, write_run_batch, Row};
use shiftlab_metrics::metrics::effective_robustness;

/// Three models, no corruptions. Clean errors 0.4, 0.3, 0.2 (accuracy 0.6, 0.7, 0.8).
/// geometric: 2 shifts x 2 severities, mean errors 0.70, 0.58, 0.52 (accuracy 0.30, 0.42,
/// 0.48). By hand: mx = 0.7, my = 0.4, sxy = 0.018, sxx = 0.02, slope 0.9, intercept -0.23,
/// expected 0.31, 0.40, 0.49, effective robustness -0.01, 0.02, -0.01.
/// dataset (imagenet_r, severity 0): errors 0.8, 0.7, 0.5 (accuracy 0.2, 0.3, 0.5). By hand:
/// my = 1/3, dy = (-2/15, -1/30, 1/6), sxy = 0.03, slope 1.5, intercept 1/3 - 1.05 =
/// -43/60, expected 11/60, 20/60, 29/60, effective robustness 1/60, -2/60, 1/60.
fn family_rows() -> Vec<Row> {
    let geo = [
        ("m1", 0.4, [0.6, 0.8, 0.75, 0.65], 0.8),
        ("m2", 0.3, [0.5, 0.66, 0.6, 0.56], 0.7),
        ("m3", 0.2, [0.4, 0.6, 0.55, 0.53], 0.5),
    ];
    let mut rows = Vec::new();
    for (m, clean, e, dataset) in geo {
        rows.push(Row::clean(m, clean));
        rows.push(Row::new(m, "rotation", "geometric", "geometric", 1, e[0]));
        rows.push(Row::new(m, "rotation", "geometric", "geometric", 2, e[1]));
        rows.push(Row::new(m, "zoom_out", "geometric", "geometric", 1, e[2]));
        rows.push(Row::new(m, "zoom_out", "geometric", "geometric", 2, e[3]));
        rows.push(Row::new(
            m,
            "imagenet_r",
            "imagenet_r",
            "dataset",
            0,
            dataset,
        ));
    }
    rows
}

/// A run of [`family_rows`] named `fam`, a one-model run `one` and a run `flat` whose two
/// models share a clean accuracy (no line is determined for either).
fn write_runs(root: &Path) -> Vec<std::path::PathBuf> {
    let fam = root.join("fam");
    write_run_batch(
        &fam,
        "fam",
        "cifar32",
        &metrics_batch("fam", &family_rows()),
        1,
        1,
    );
    let one = root.join("one");
    let rows = [
        Row::clean("m1", 0.4),
        Row::new("m1", "gamma", "photometric", "photometric", 3, 0.5),
    ];
    write_run_batch(&one, "one", "cifar32", &metrics_batch("one", &rows), 1, 1);
    let flat = root.join("flat");
    let rows = [
        Row::clean("a", 0.3),
        Row::clean("b", 0.3),
        Row::new("a", "gamma", "photometric", "photometric", 1, 0.5),
        Row::new("b", "gamma", "photometric", "photometric", 1, 0.6),
    ];
    write_run_batch(
        &flat,
        "flat",
        "cifar32",
        &metrics_batch("flat", &rows),
        1,
        1,
    );
    vec![fam, one, flat]
}

/// `column` of `view` for (run, model, family), NULL as None; panics if the row is absent.
fn cell(dirs: &[&Path], view: &str, key: (&str, &str, &str), column: &str) -> Option<f64> {
    let b = query(dirs, &format!("SELECT * FROM {view}"));
    let (runs, models, fams) = (
        texts(&b, "run"),
        texts(&b, "model"),
        texts(&b, "shift_family"),
    );
    let row = (0..b.num_rows())
        .find(|&i| runs[i] == key.0 && models[i] == key.1 && fams[i] == key.2)
        .unwrap_or_else(|| panic!("{view} has no row {key:?}"));
    floats(&b, column)[row]
}

#[test]
fn family_robustness_matches_hand_computed_values() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dirs = write_runs(tmp.path());
    let d = [dirs[0].as_path()];
    let get = |model, family, column| cell(&d, "family_robustness", ("fam", model, family), column);
    assert!(close(get("m1", "geometric", "clean_accuracy"), 0.6));
    assert!(close(get("m1", "geometric", "shifted_accuracy"), 0.3));
    assert!(close(get("m1", "geometric", "accuracy_drop"), 0.3));
    assert!(close(get("m2", "geometric", "shifted_accuracy"), 0.42));
    assert!(close(get("m3", "dataset", "accuracy_drop"), 0.3));
    assert!(close(get("m1", "geometric", "shifts"), 2.0));
    assert!(close(get("m1", "geometric", "rows"), 4.0));
    assert!(close(get("m1", "dataset", "rows"), 1.0));
    let b = query(
        &d,
        "SELECT DISTINCT shift_family FROM family_robustness ORDER BY shift_family",
    );
    assert_eq!(
        texts(&b, "shift_family"),
        ["dataset", "geometric"],
        "clean is no family"
    );
}

#[test]
fn effective_robustness_matches_hand_computed_values() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dirs = write_runs(tmp.path());
    let d = [dirs[0].as_path()];
    let get =
        |model, family, column| cell(&d, "effective_robustness", ("fam", model, family), column);
    assert!(close(get("m2", "geometric", "slope"), 0.9));
    assert!(close(get("m2", "geometric", "intercept"), -0.23));
    assert!(close(get("m2", "geometric", "models"), 3.0));
    assert!(close(get("m1", "geometric", "expected_accuracy"), 0.31));
    for (m, want) in [("m1", -0.01), ("m2", 0.02), ("m3", -0.01)] {
        let got = get(m, "geometric", "effective_robustness");
        assert!(close(got, want), "{m}: {got:?}, by hand {want}");
    }
    assert!(close(get("m1", "dataset", "slope"), 1.5));
    assert!(close(get("m1", "dataset", "intercept"), -43.0 / 60.0));
    for (m, want) in [("m1", 1.0 / 60.0), ("m2", -2.0 / 60.0), ("m3", 1.0 / 60.0)] {
        let got = get(m, "dataset", "effective_robustness");
        assert!(close(got, want), "{m}: {got:?}, by hand {want}");
    }
}

#[test]
fn effective_robustness_view_agrees_with_rust() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dirs = write_runs(tmp.path());
    let b = query(
        &[dirs[0].as_path()],
        "SELECT * FROM effective_robustness WHERE shift_family = 'geometric' ORDER BY model",
    );
    let (clean, shifted) = (floats(&b, "clean_accuracy"), floats(&b, "shifted_accuracy"));
    let clean: Vec<f64> = clean.into_iter().flatten().collect();
    let shifted: Vec<f64> = shifted.into_iter().flatten().collect();
    let (fit, er) = effective_robustness(&clean, &shifted).expect("three models fit");
    assert!(close(floats(&b, "slope")[0], fit.slope));
    assert!(close(floats(&b, "intercept")[0], fit.intercept));
    for (got, want) in floats(&b, "effective_robustness").into_iter().zip(er) {
        assert!(close(got, want), "SQL {got:?}, Rust {want}");
    }
    // The logit fit, by its own definition: logit(shifted) on logit(clean).
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let lx: Vec<f64> = clean.iter().map(|&p| logit(p)).collect();
    let ly: Vec<f64> = shifted.iter().map(|&p| logit(p)).collect();
    let lfit = shiftlab_metrics::metrics::linear_fit(&lx, &ly).expect("logit fit");
    let expected = 1.0 / (1.0 + (-lfit.predict(lx[0])).exp());
    assert!(close(floats(&b, "logit_slope")[0], lfit.slope));
    assert!(close(
        floats(&b, "logit_effective_robustness")[0],
        shifted[0] - expected
    ));
}

#[test]
fn degenerate_fits_are_null() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dirs = write_runs(tmp.path());
    let d: Vec<&Path> = dirs.iter().map(|p| p.as_path()).collect();
    for (run, model) in [("one", "m1"), ("flat", "a"), ("flat", "b")] {
        let key = (run, model, "photometric");
        assert_eq!(
            cell(&d, "effective_robustness", key, "slope"),
            None,
            "{key:?}"
        );
        assert_eq!(
            cell(&d, "effective_robustness", key, "effective_robustness"),
            None
        );
        assert!(cell(&d, "effective_robustness", key, "shifted_accuracy").is_some());
    }
    assert!(close(
        cell(
            &d,
            "effective_robustness",
            ("one", "m1", "photometric"),
            "models"
        ),
        1.0
    ));
    // The geometric fit of run `fam` is unchanged by the other runs.
    assert!(close(
        cell(
            &d,
            "effective_robustness",
            ("fam", "m2", "geometric"),
            "slope"
        ),
        0.9
    ));
}

#[test]
fn family_rows_stay_out_of_the_corruption_views() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dirs = write_runs(tmp.path());
    let d = [dirs[0].as_path()];
    let b = query(&d, "SELECT * FROM robustness ORDER BY model");
    assert_eq!(b.num_rows(), 3);
    assert!(floats(&b, "corruptions").iter().all(|c| *c == Some(0.0)));
    assert!(floats(&b, "mean_error").iter().all(Option::is_none));
    assert_eq!(query(&d, "SELECT * FROM corruption_errors").num_rows(), 0);
    // group_errors: the synthetic family, never the dataset rows.
    let g = query(
        &d,
        "SELECT DISTINCT shift_family, shift_group FROM group_errors",
    );
    assert_eq!(texts(&g, "shift_group"), ["geometric"]);
    // drift: no NULL cosine, no dataset family.
    let drift = query(
        &d,
        "SELECT * FROM drift WHERE model = 'm1' ORDER BY shift_family, severity",
    );
    assert_eq!(
        texts(&drift, "shift_family"),
        ["clean", "geometric", "geometric"]
    );
    assert!(floats(&drift, "mean_cosine_to_clean")
        .iter()
        .all(Option::is_some));
}

#[test]
fn metrics_without_shift_family_are_read_as_corruptions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("v1");
    let rows = [
        Row::clean("m", 0.25),
        Row::new("m", "fog", "weather", "corruption", 1, 0.5),
        Row::new("m", "fog", "weather", "corruption", 2, 0.75),
    ];
    let batch = metrics_batch("v1", &rows);
    let v1 = batch
        .project(&[0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12])
        .expect("v1 columns");
    assert!(v1.column_by_name("shift_family").is_none());
    write_run_batch(&dir, "v1", "cifar32", &v1, 1, 1);
    let d = [dir.as_path()];
    let b = query(
        &d,
        "SELECT clean_error, mean_error, corruptions FROM robustness",
    );
    assert!(close(floats(&b, "clean_error")[0], 0.25));
    assert!(close(floats(&b, "mean_error")[0], 0.625));
    let f = query(
        &d,
        "SELECT shift_family, shifted_accuracy FROM family_robustness",
    );
    assert_eq!(texts(&f, "shift_family"), ["corruption"]);
    assert!(close(floats(&f, "shifted_accuracy")[0], 0.375));
}

/// The report's files, text of the page and of the summary.
fn report(dirs: &[std::path::PathBuf], out: &Path) -> (String, String) {
    let files = common::block_on(shiftlab_results::write_report(dirs, out)).expect("report");
    for f in &files.figures {
        let svg = std::fs::read_to_string(f).expect("figure");
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{f:?}"
        );
    }
    let html = std::fs::read_to_string(&files.html).expect("html");
    for part in html.split("src=\"").skip(1) {
        let target = part.split('"').next().unwrap_or_default();
        assert!(
            out.join(target).is_file(),
            "report.html refers to missing {target}"
        );
    }
    (html, std::fs::read_to_string(&files.markdown).expect("md"))
}

#[test]
fn report_with_only_shift_families() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dirs = write_runs(tmp.path());
    let (html, md) = report(&dirs[..1], &tmp.path().join("out"));
    assert!(html.contains("<h2>Shift families</h2>"), "{html}");
    assert!(html.contains("families.svg"), "{html}");
    // No corruptions: no heat map and no corruption drift chart, but the family's own.
    assert!(
        !html.contains("heatmap.svg") && !html.contains("drift.svg"),
        "{html}"
    );
    assert!(html.contains("drift-geometric.svg") && html.contains("errors-geometric.svg"));
    // m2's geometric row: clean 70.00 %, shifted 42.00 %, drop 28.00, ER +2.00 points.
    let row = md
        .lines()
        .find(|l| l.starts_with("| fam | m2 | knn | geometric |"))
        .unwrap_or_else(|| panic!("no m2 geometric row in\n{md}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(&cells[5..9], ["70.00", "42.00", "28.00", "2.00"], "{row}");
}

#[test]
fn report_with_corruptions_and_families() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("mixed");
    let mut rows = family_rows();
    for m in ["m1", "m2", "m3"] {
        for s in 1..=5 {
            rows.push(Row::new(
                m,
                "fog",
                "weather",
                "corruption",
                s,
                0.1 * s as f64,
            ));
        }
    }
    write_run_batch(
        &dir,
        "mixed",
        "cifar32",
        &metrics_batch("mixed", &rows),
        1,
        1,
    );
    let (html, md) = report(&[dir], &tmp.path().join("out"));
    assert!(html.contains("<h2>Shift families</h2>") && html.contains("<h2>Robustness</h2>"));
    assert!(md.contains("| mixed | m1 | knn | corruption |"), "{md}");
    assert!(html.contains("errors-weather.svg") && html.contains("errors-geometric.svg"));
}

#[test]
fn report_with_only_corruptions_has_no_family_section() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("c");
    let rows: Vec<Row> = ["m1", "m2"]
        .iter()
        .flat_map(|m| {
            let shifted = (1..=5).map(move |s| Row::new(m, "fog", "weather", "corruption", s, 0.5));
            std::iter::once(Row::clean(m, 0.2)).chain(shifted)
        })
        .collect();
    write_run_batch(&dir, "c", "cifar32", &metrics_batch("c", &rows), 1, 1);
    let (html, _) = report(&[dir], &tmp.path().join("out"));
    assert!(!html.contains("Shift families"), "{html}");
}
