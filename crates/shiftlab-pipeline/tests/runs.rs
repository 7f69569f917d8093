//! Tiny end-to-end runs through the public API (`run`, `RunFolder::finished_parts`, the run
//! folder's files): which parts count as finished, the refusal of a folder that holds other
//! settings, and corruption noise keyed by sample id.

mod common;

use std::collections::BTreeSet;

use common::{dataset_with_eval, parse, pipeline_text, predictions, quiet, KNN};
use shiftlab_pipeline::RunFolder;
use shiftlab_pipeline::{run, RunOptions};

#[test]
fn a_part_is_finished_only_when_its_manifest_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data.parquet");
    let eval: Vec<(String, i64, u32)> =
        (0..4).map(|i| (format!("e{i}"), i % 2, i as u32)).collect();
    let eval: Vec<(&str, i64, u32)> = eval
        .iter()
        .map(|(id, l, s)| (id.as_str(), *l, *s))
        .collect();
    dataset_with_eval(&data, &eval);
    let out = dir.path().join("run");
    let p = parse(dir.path(), &pipeline_text(&data, &out, KNN));
    let first = run(&p, &quiet()).expect("first run");
    assert_eq!((first.parts_total, first.parts_done_now), (2, 2));
    let folder = RunFolder { root: out.clone() };
    assert_eq!(
        folder.finished_parts().expect("parts"),
        BTreeSet::from([0, 1])
    );

    // Part 0 keeps its predictions but loses its manifest entry: it is not finished, and a
    // rerun does it again (and only it).
    std::fs::remove_file(out.join("manifest/part-00000.json")).expect("remove manifest");
    assert!(out.join("predictions/part-00000.parquet").exists());
    assert_eq!(folder.finished_parts().expect("parts"), BTreeSet::from([1]));
    let again = run(&p, &quiet()).expect("rerun");
    assert_eq!((again.parts_done_now, again.parts_missing.len()), (1, 0));
    assert!(out.join("manifest/part-00000.json").exists());
    assert_eq!(
        folder.finished_parts().expect("parts"),
        BTreeSet::from([0, 1])
    );

    // Other probe settings in the same folder are refused before anything is written.
    let other = parse(
        dir.path(),
        &pipeline_text(&data, &out, "[probes.knn]\nk = 4"),
    );
    let err = run(&other, &quiet())
        .expect_err("other settings are refused")
        .to_string();
    assert!(err.contains("different settings"), "{err}");
}

#[test]
fn identical_images_with_different_ids_get_different_noise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data.parquet");
    // "twin-a" and "twin-b" are the same picture; only their ids differ.
    dataset_with_eval(&data, &[("twin-a", 0, 7), ("twin-b", 0, 7)]);
    let out = dir.path().join("run");
    let p = parse(dir.path(), &pipeline_text(&data, &out, KNN));
    run(&p, &quiet()).expect("run");
    let rows = predictions(&out);
    let cosine = |id: &str, shift: &str| {
        let hits: Vec<f32> = rows
            .iter()
            .filter(|r| r.0 == id && r.1 == shift)
            .map(|r| r.3.expect("cosine_to_clean"))
            .collect();
        assert_eq!(hits.len(), 1, "{id} {shift}: {rows:?}");
        hits[0]
    };
    assert_eq!(cosine("twin-a", "clean"), cosine("twin-b", "clean"));
    let (a, b) = (
        cosine("twin-a", "gaussian_noise"),
        cosine("twin-b", "gaussian_noise"),
    );
    assert!(a < 1.0 && b < 1.0, "the noise moves both: {a} {b}");
    assert_ne!(a, b, "both twins got the same noise");
}

/// Four evaluation rows (id, label, image seed), two of each class: two source parts of 2.
const FOUR_EVAL: [(&str, i64, u32); 4] = [("e0", 0, 0), ("e1", 1, 1), ("e2", 0, 2), ("e3", 1, 3)];

/// A `[[targets]]` entry named `name` over a new table of `rows` test rows.
fn target_table(dir: &std::path::Path, name: &str, rows: u32) -> String {
    let path = dir.join(format!("{name}.parquet"));
    let ids: Vec<String> = (0..rows).map(|i| format!("{name}{i}")).collect();
    let table: Vec<(&str, &str, i64, u32)> = ids
        .iter()
        .zip(0..)
        .map(|(id, i)| (id.as_str(), "test", i64::from(i % 2), 50 + i))
        .collect();
    common::dataset(&path, &table);
    format!(
        "[[targets]]\nname = \"{name}\"\ndataset = \"{}\"\nsplit = \"test\"\n",
        path.display()
    )
}

#[test]
fn targets_take_the_parts_after_the_source_in_file_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data.parquet");
    dataset_with_eval(&data, &FOUR_EVAL);
    // Source parts 0-1, target "a" (1 row) part 2, target "b" (3 rows) parts 3-4.
    let probes = format!(
        "{KNN}\n\n{}\n{}",
        target_table(dir.path(), "a", 1),
        target_table(dir.path(), "b", 3)
    );
    let p = parse(
        dir.path(),
        &pipeline_text(&data, &dir.path().join("run"), &probes),
    );
    assert_eq!(
        shiftlab_pipeline::run::parts_total(&p, &quiet()).ok(),
        Some(5)
    );
    let s = run(&p, &quiet()).expect("run");
    // Every part holds what its place says: 2 x 2 source images, 1, then 2 and 1 target rows.
    assert_eq!((s.parts_done_now, s.samples), (5, 2 * 2 * 2 + 1 + 3));
    let mut by_target: Vec<(String, i64)> = s
        .metrics
        .expect("metrics")
        .iter()
        .filter(|m| m.shift_family == "dataset")
        .map(|m| (m.shift.clone(), m.n))
        .collect();
    by_target.sort();
    assert_eq!(by_target, [("a".to_string(), 1), ("b".to_string(), 3)]);
}

/// Four evaluation rows (two source parts of 2) and, in `[[targets]]`, a table of five test
/// rows (three more parts): five parts (a count that 2 x 3 would not give).
fn five_part_pipeline(dir: &std::path::Path) -> shiftlab_pipeline::Pipeline {
    let data = dir.join("data.parquet");
    dataset_with_eval(&data, &FOUR_EVAL);
    let probes = format!("{KNN}\n\n{}", target_table(dir, "other", 5));
    parse(dir, &pipeline_text(&data, &dir.join("run"), &probes))
}

#[test]
fn shards_share_the_parts_and_metrics_appear_once_every_part_is_finished() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = five_part_pipeline(dir.path());
    assert_eq!(
        shiftlab_pipeline::run::parts_total(&p, &quiet()).ok(),
        Some(5)
    );
    let out = dir.path().join("run");
    let folder = RunFolder { root: out.clone() };
    let shard = |k| RunOptions {
        shard: (k, 2),
        ..quiet()
    };
    let first = run(&p, &shard(1)).expect("shard 1/2");
    assert_eq!((first.parts_total, first.parts_done_now), (5, 3));
    assert_eq!(first.parts_missing, [1, 3]);
    // Parts 0 (two source rows x clean and one corruption), 2 and 4 (two and one target rows).
    assert_eq!(first.samples, 2 * 2 + 2 + 1);
    assert!(first.metrics.is_none() && !folder.metrics_path().exists());
    let err = shiftlab_pipeline::run::finish(&p, &folder, 5, 2)
        .expect_err("two parts are missing")
        .to_string();
    assert!(
        err.contains("part 1 (shard 2/2), part 3 (shard 2/2)"),
        "{err}"
    );

    let second = run(&p, &shard(2)).expect("shard 2/2");
    assert_eq!((second.parts_done_now, second.samples), (2, 2 * 2 + 2));
    assert!(second.parts_missing.is_empty());
    let per_s = second.images_per_s * second.wall_s;
    assert!((per_s - second.samples as f64).abs() < 1e-6, "{per_s}");
    let metrics = second.metrics.expect("every part is finished: metrics");
    assert!(folder.metrics_path().exists());
    // One row per shift: clean, gaussian_noise at 5, the target.
    let mut shifts: Vec<(String, i32, i64)> = metrics
        .iter()
        .map(|m| (m.shift.clone(), m.severity, m.n))
        .collect();
    shifts.sort();
    let expected = [("clean", 0, 4), ("gaussian_noise", 5, 4), ("other", 0, 5)];
    let expected: Vec<(String, i32, i64)> = expected
        .iter()
        .map(|&(s, sev, n)| (s.to_string(), sev, n))
        .collect();
    assert_eq!(shifts, expected, "{metrics:?}");
    let again = shiftlab_pipeline::run::finish(&p, &folder, 5, 2).expect("finish");
    let key = |rows: &[shiftlab_pipeline::tables::MetricRow]| {
        let mut k: Vec<(String, i32, i64, i64)> = rows
            .iter()
            .map(|m| (m.shift.clone(), m.severity, m.n, m.errors))
            .collect();
        k.sort();
        k
    };
    assert_eq!(key(&again), key(&metrics));
}

#[test]
fn prepare_only_fits_and_evaluates_nothing_and_does_not_rewrite_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = five_part_pipeline(dir.path());
    let out = dir.path().join("run");
    let prepare = RunOptions {
        prepare_only: true,
        ..quiet()
    };
    let s = run(&p, &prepare).expect("prepare");
    assert_eq!(
        (s.parts_done_now, s.parts_missing.len(), s.samples),
        (0, 5, 0)
    );
    assert!(s.metrics.is_none());
    let cached = std::fs::read_dir(out.join("cache")).expect("cache").count();
    assert!(cached > 0, "the fit phase wrote its cache");

    let whole = run(&p, &quiet()).expect("run");
    assert!(whole.metrics.is_some());
    let metrics = out.join("metrics.parquet");
    let written = std::fs::metadata(&metrics)
        .and_then(|m| m.modified())
        .expect("mtime");
    let again = run(&p, &prepare).expect("prepare a finished run");
    assert!(again.metrics.is_none(), "a prepare job computes no metrics");
    let now = std::fs::metadata(&metrics)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(now, written);
}

#[test]
fn an_invocation_leaves_its_record_its_runs_and_stages_rows_and_the_pipeline_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = five_part_pipeline(dir.path());
    let one = RunOptions {
        max_parts: Some(1),
        ..quiet()
    };
    let before = shiftlab_pipeline::run::now_us();
    let s = run(&p, &one).expect("one part");
    assert_eq!((s.parts_done_now, s.parts_missing.len()), (1, 4));
    let out = dir.path().join("run");
    let (folder, info) = RunFolder::open(&out).expect("run folder");
    assert_eq!(info.pipeline_file, dir.path().join("tiny.toml"));
    assert!(info.workdir.is_absolute());
    assert_eq!(info.parts_total, 5);
    let records = folder.invocations();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!((r.outcome.as_deref(), r.parts_done), (Some("ok"), 1));
    // The device the encoders ran on: "cpu" here, a CUDA device where there is one.
    assert_eq!(r.shard, "1/1");
    assert!(
        r.device == "cpu" || r.device.starts_with("cuda"),
        "{}",
        r.device
    );
    assert!(r.started_us >= before);
    assert!(r.finished_us.is_some_and(|f| f >= r.started_us));
    assert_eq!(r.pid, std::process::id());
    for table in ["runs", "stages"] {
        let name = out.join(table).join(format!("{}.parquet", r.id));
        assert!(name.exists(), "{} is missing", name.display());
    }
}

/// Admits the rows whose ids it was given (the binary's engine is DataFusion, in another crate).
struct Ids(Vec<&'static str>);

impl shiftlab_pipeline::RowFilter for Ids {
    fn select(
        &self,
        _dataset: &std::path::Path,
        split: &str,
        filter: &str,
    ) -> Result<std::collections::HashSet<String>, Box<dyn std::error::Error + Send + Sync>> {
        if filter == "broken" {
            return Err(format!("cannot parse '{filter}'").into());
        }
        assert_eq!(split, "test");
        Ok(self.0.iter().map(|s| s.to_string()).collect())
    }
}

#[test]
fn a_source_filter_needs_an_engine_and_evaluates_only_the_rows_it_admits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data.parquet");
    dataset_with_eval(&data, &FOUR_EVAL);
    let text = |filter: &str| {
        pipeline_text(&data, &dir.path().join("run"), KNN)
            .replace("[source]\n", &format!("[source]\nfilter = \"{filter}\"\n"))
    };
    let p = parse(dir.path(), &text("label = 1"));
    let err = run(&p, &quiet()).expect_err("no engine").to_string();
    assert!(err.contains("without an SQL engine"), "{err}");
    let engine = RunOptions {
        row_filter: Some(std::sync::Arc::new(Ids(vec!["e1", "e3"]))),
        ..quiet()
    };
    let s = run(&p, &engine).expect("filtered run");
    assert_eq!((s.parts_total, s.samples), (1, 2 * 2));
    let mut ids: Vec<String> = predictions(&dir.path().join("run"))
        .into_iter()
        .filter(|r| r.1 == "clean")
        .map(|r| r.0)
        .collect();
    ids.sort();
    assert_eq!(ids, ["e1", "e3"]);
    let broken = parse(dir.path(), &text("broken"));
    let err = run(&broken, &engine).expect_err("the engine refuses the filter");
    let text = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(text.contains("cannot parse 'broken'"), "{text}");
}

#[test]
fn targets_are_checked_against_the_source_classes_before_a_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = five_part_pipeline(dir.path());
    let targets = shiftlab_pipeline::run::check_targets(&p).expect("targets");
    let found: Vec<(&str, u64)> = targets
        .iter()
        .map(|t| (t.target.name.as_str(), t.eval_rows()))
        .collect();
    assert_eq!(found, [("other", 5)]);
}

#[test]
fn frost_uses_the_built_in_photos_or_names_a_frost_dir_it_cannot_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data.parquet");
    dataset_with_eval(&data, &[("e0", 0, 0), ("e1", 1, 1)]);
    let text = |extra: &str| {
        pipeline_text(&data, &dir.path().join("run"), KNN).replace(
            "corruptions = [\"gaussian_noise\"]",
            &format!("corruptions = [\"frost\"]\n{extra}"),
        )
    };
    let missing = dir.path().join("no-frost-here");
    let p = parse(
        dir.path(),
        &text(&format!("frost_dir = \"{}\"", missing.display())),
    );
    let err = run(&p, &quiet()).expect_err("no photos there").to_string();
    assert!(err.contains("shifts.frost_dir"), "{err}");
    let p = parse(dir.path(), &text(""));
    let s = run(&p, &quiet()).expect("frost with the built-in photos");
    assert_eq!(s.errors, 0);
    let frosted = predictions(&dir.path().join("run"))
        .into_iter()
        .filter(|r| r.1 == "frost")
        .count();
    assert_eq!(frosted, 2);
}
