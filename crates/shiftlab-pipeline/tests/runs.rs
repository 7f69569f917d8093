//! Tiny end-to-end runs through the public API (`run`, `RunFolder::finished_parts`, the run
//! folder's files): which parts count as finished, the refusal of a folder that holds other
//! settings, and corruption noise keyed by sample id.

mod common;

use std::collections::BTreeSet;

use common::{dataset_with_eval, parse, pipeline_text, predictions, quiet, KNN};
use shiftlab_pipeline::run;
use shiftlab_pipeline::RunFolder;

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
