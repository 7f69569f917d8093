//! The in-run baseline views (`baseline_corruptions`, `baseline_robustness`), the `ranking`
//! view and the `origin` of corruption rows (on the fly vs released files), against values
//! computed by hand from the metrics rows written here; and the report built on them.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{block_on, close, floats, metrics_batch, texts, write_run_batch, Row};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use shiftlab_metrics::corruptions::BENCHMARK_15;
use shiftlab_results::{RunSession, SessionOptions};

const MODELS: [&str; 3] = ["m1", "m2", "m3"];
const CLEAN: [f64; 3] = [0.1, 0.15, 0.2];

/// E(model, corruption, severity): irregular, so a wrong formula cannot agree by chance.
fn error(m: usize, c: usize, s: usize) -> f64 {
    0.2 + ((c * 7 + s * 13 + m * 5) % 17) as f64 * 0.04
}

/// m2 lacks fog severities 4 and 5 (so fog has no CE for it).
fn present(m: usize, c: &str, s: usize) -> bool {
    !(m == 1 && c == "fog" && s > 3)
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (m, model) in MODELS.iter().enumerate() {
        rows.push(Row::clean(model, CLEAN[m]));
        for (c, name) in BENCHMARK_15.iter().enumerate() {
            for s in 1..=5 {
                if present(m, name, s) {
                    let e = error(m, c, s);
                    rows.push(Row::new(model, name, "g", "corruption", s as i32, e));
                }
            }
        }
    }
    rows
}

fn run_dir(tmp: &Path, rows: &[Row]) -> PathBuf {
    let dir = tmp.join("base");
    write_run_batch(&dir, "base", "cifar32", &metrics_batch("base", rows), 1, 1);
    dir
}

fn query_with(dirs: &[PathBuf], options: &SessionOptions, sql: &str) -> RecordBatch {
    block_on(async {
        let s = RunSession::open_with(dirs, options).await.expect("session");
        let schema = s.ctx.sql(sql).await.expect("plan").schema().inner().clone();
        let batches = s.query(sql).await.expect("query");
        concat_batches(&schema, &batches).expect("one batch")
    })
}

/// By hand: (CE, relative CE) of model `m` on corruption `c` against model `b`, when both have
/// the 5 severities.
fn ce_by_hand(m: usize, b: usize, c: usize) -> Option<(f64, f64)> {
    let name = BENCHMARK_15[c];
    let all = |k: usize| (1..=5).all(|s| present(k, name, s));
    if !all(m) || !all(b) {
        return None;
    }
    let sum = |k: usize| (1..=5).map(|s| error(k, c, s)).sum::<f64>();
    let rel = |k: usize| (1..=5).map(|s| error(k, c, s) - CLEAN[k]).sum::<f64>();
    Some((100.0 * sum(m) / sum(b), 100.0 * rel(m) / rel(b)))
}

#[test]
fn baseline_views_equal_the_hand_computation() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dirs = vec![run_dir(tmp.path(), &rows())];
    for (b, baseline) in [(0, None), (2, Some("m3".to_string()))] {
        let options = SessionOptions { baseline };
        let t = query_with(
            &dirs,
            &options,
            "SELECT model, baseline, corruptions, mce_vs_baseline, relative_mce_vs_baseline \
             FROM baseline_robustness ORDER BY model",
        );
        assert_eq!(texts(&t, "model"), MODELS);
        assert!(texts(&t, "baseline").iter().all(|x| x == MODELS[b]));
        for m in 0..3 {
            let pairs: Vec<(f64, f64)> = (0..15).filter_map(|c| ce_by_hand(m, b, c)).collect();
            let n = pairs.len() as f64;
            let mce = pairs.iter().map(|p| p.0).sum::<f64>() / n;
            let rel = pairs.iter().map(|p| p.1).sum::<f64>() / n;
            assert!(close(floats(&t, "corruptions")[m], n), "{m}: {n}");
            assert!(close(floats(&t, "mce_vs_baseline")[m], mce), "{m}: {mce}");
            assert!(
                close(floats(&t, "relative_mce_vs_baseline")[m], rel),
                "{m}: {rel}"
            );
        }
        // The baseline scores 100; m2 misses fog (14 corruptions), and so does everyone against
        // m2, but not against m1 or m3.
        assert!(close(floats(&t, "mce_vs_baseline")[b], 100.0));
        assert!(close(floats(&t, "corruptions")[1], 14.0));
    }
    let per = query_with(
        &dirs,
        &SessionOptions::default(),
        "SELECT ce_vs_baseline FROM baseline_corruptions WHERE model = 'm3' AND corruption = 'fog'",
    );
    let (ce, _) = ce_by_hand(
        2,
        0,
        BENCHMARK_15.iter().position(|c| *c == "fog").unwrap_or(0),
    )
    .expect("m3 and m1 have fog");
    assert!(close(floats(&per, "ce_vs_baseline")[0], ce));
}

#[test]
fn a_baseline_the_run_lacks_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dirs = vec![run_dir(tmp.path(), &rows())];
    let options = SessionOptions {
        baseline: Some("resnet".into()),
    };
    let err = block_on(RunSession::open_with(&dirs, &options))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("--baseline \"resnet\"") && err.contains("m1, m2, m3"),
        "{err}"
    );
}

#[test]
fn ranking_orders_by_mean_shifted_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rows = rows();
    let dirs = vec![run_dir(tmp.path(), &rows)];
    let t = query_with(
        &dirs,
        &SessionOptions::default(),
        "SELECT rank, model, mean_shifted_error, shifted_rows FROM ranking ORDER BY rank",
    );
    let mut by_hand: Vec<(f64, &str, f64)> = MODELS
        .iter()
        .map(|m| {
            let e: Vec<f64> = rows
                .iter()
                .filter(|r| r.model == *m && r.family != "clean")
                .map(|r| r.error)
                .collect();
            (e.iter().sum::<f64>() / e.len() as f64, *m, e.len() as f64)
        })
        .collect();
    by_hand.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (i, (mean, model, n)) in by_hand.iter().enumerate() {
        assert_eq!(texts(&t, "model")[i], *model);
        assert!(close(floats(&t, "rank")[i], i as f64 + 1.0));
        assert!(close(floats(&t, "mean_shifted_error")[i], *mean));
        assert!(close(floats(&t, "shifted_rows")[i], *n));
    }
}

/// The same corruptions made on the fly and read from released files: never averaged together.
#[test]
fn released_and_on_the_fly_corruptions_stay_apart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut rows = vec![Row::clean("m1", 0.1)];
    for s in 1..=5 {
        rows.push(Row::new("m1", "fog", "weather", "corruption", s, 0.2));
        let mut r = Row::new("m1", "fog", "weather", "released_corruption", s, 0.6);
        r.cosine = None;
        rows.push(r);
    }
    let dirs = vec![run_dir(tmp.path(), &rows)];
    let sql = "SELECT origin, corruptions, mean_error, clean_error FROM robustness ORDER BY origin";
    let t = query_with(&dirs, &SessionOptions::default(), sql);
    assert_eq!(texts(&t, "origin"), ["on_the_fly", "released"]);
    assert!(close(floats(&t, "mean_error")[0], 0.2) && close(floats(&t, "mean_error")[1], 0.6));
    assert!(floats(&t, "clean_error").iter().all(|c| close(*c, 0.1)));
    let e = query_with(
        &dirs,
        &SessionOptions::default(),
        "SELECT origin, COUNT(*) AS n, SUM(error_increase) AS inc FROM corruption_errors \
         GROUP BY origin ORDER BY origin",
    );
    assert!(close(floats(&e, "n")[1], 5.0) && close(floats(&e, "inc")[1], 2.5));
}

/// The report of a run without AlexNet normaliser: says so, shows the in-run baseline, ranks
/// the models, and gives each model one colour in every figure.
#[test]
fn report_names_the_missing_alexnet_and_keeps_colours() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dirs = vec![run_dir(tmp.path(), &rows())];
    let out = tmp.path().join("out");
    let options = SessionOptions {
        baseline: Some("m2".into()),
    };
    let files =
        block_on(shiftlab_results::write_report_with(&dirs, &out, &options)).expect("report");
    let html = std::fs::read_to_string(&files.html).expect("html");
    let md = std::fs::read_to_string(&files.markdown).expect("md");
    assert!(
        md.contains("Runs base (cifar32) have no AlexNet reference"),
        "{md}"
    );
    assert!(md.contains("| no AlexNet ref. | no AlexNet ref. |"), "{md}");
    assert!(md.contains("## Relative to an in-run baseline"), "{md}");
    assert!(md.contains("**Not** the ImageNet-C mCE"), "{md}");
    assert!(
        html.contains("<strong>Not</strong> the ImageNet-C mCE"),
        "{html}"
    );
    // The baseline's own row: 100.00 over its 14 complete corruptions.
    assert!(
        md.contains("| base | m2 | knn | on the fly | m2 | 14 | 100.00 | 100.00 |"),
        "{md}"
    );
    let ranking: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| base | knn |"))
        .collect();
    assert_eq!(ranking.len(), 3, "{md}");
    assert!(ranking[0].starts_with("| base | knn | 1 |"), "{md}");
    let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let svgs: HashMap<String, String> = files
        .figures
        .iter()
        .filter_map(|p| Some((name(p)?, std::fs::read_to_string(p).ok()?)))
        .collect();
    for figure in [
        "clean-vs-shifted.svg",
        "errors-g.svg",
        "drift.svg",
        "heatmap.svg",
    ] {
        assert!(
            svgs.contains_key(figure),
            "{figure} missing: {:?}",
            svgs.keys()
        );
        assert!(
            html.contains(&format!("figures/{figure}")),
            "{figure} not in the page"
        );
    }
    // Models sorted by name take palette entries 0, 1, 2 everywhere.
    let palette = shiftlab_results::svg::PALETTE;
    for (i, m) in MODELS.iter().enumerate() {
        let title = format!("fill=\"{}\">{m}</text>", palette[i]);
        assert!(svgs["errors-g.svg"].contains(&title), "{m} title colour");
        assert!(svgs["drift.svg"].contains(&title), "{m} drift colour");
        let point = format!("r=\"4\" fill=\"{}\"/><text", palette[i]);
        let legend = format!("{point} x=\"");
        assert!(
            svgs["clean-vs-shifted.svg"].contains(&legend),
            "{m} legend colour"
        );
    }
}
