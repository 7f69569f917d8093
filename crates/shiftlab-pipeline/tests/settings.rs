//! Pipeline settings through the public parser: probe defaults and what the fingerprint (the
//! key a resume is checked against) covers.

mod common;

use std::path::Path;

use common::{dataset_with_eval, parse, pipeline_text, KNN};

/// Pipeline text over a dataset written into `dir` (the parser checks that it exists).
fn text(dir: &Path, probes: &str) -> String {
    let data = dir.join("data.parquet");
    if !data.exists() {
        dataset_with_eval(&data, &[("e0", 0, 0)]);
    }
    pipeline_text(&data, &dir.join("run"), probes)
}

#[test]
fn knn_defaults_to_dino_k_20_and_temperature_0_07() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = parse(dir.path(), &text(dir.path(), "[probes.knn]"));
    let knn = p.probes.knn.expect("knn probe");
    // DINO's k-NN evaluation reports k = 20 at temperature 0.07 (Caron et al. 2021).
    assert_eq!(knn.k, 20);
    assert_eq!(knn.temperature, 0.07);
}

#[test]
fn fingerprint_covers_every_probe_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = parse(dir.path(), &text(dir.path(), KNN)).fingerprint;
    let others = [
        "[probes.knn]\nk = 4",
        "[probes.knn]\nk = 3\ntemperature = 0.1",
        "[probes.knn]\nk = 3\n[probes.linear]\nepochs = 5",
        "[probes.linear]\nepochs = 5",
    ];
    for probes in others {
        let f = parse(dir.path(), &text(dir.path(), probes)).fingerprint;
        assert_ne!(f, base, "probes {probes:?} share the fingerprint {base}");
    }
    let linear = |s: &str| {
        parse(
            dir.path(),
            &text(dir.path(), &format!("[probes.linear]\n{s}")),
        )
        .fingerprint
    };
    let epochs = linear("epochs = 5");
    for other in [
        "epochs = 6",
        "epochs = 5\nlearning_rate = 0.02",
        "epochs = 5\nweight_decay = 0.001",
        "epochs = 5\nbatch_size = 64",
    ] {
        assert_ne!(linear(other), epochs, "linear {other:?}");
    }
}

#[test]
fn fingerprint_ignores_runtime_knobs_but_not_the_seed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = text(dir.path(), KNN);
    let base = parse(dir.path(), &t).fingerprint;
    let knobs = t
        .replace("batch_size = 4", "batch_size = 3")
        .replace("torch_threads = 1", "torch_threads = 2");
    assert_eq!(parse(dir.path(), &knobs).fingerprint, base);
    let seed = t.replace("seed = 5", "seed = 6");
    assert_ne!(parse(dir.path(), &seed).fingerprint, base);
}

#[test]
fn save_embeddings_is_in_the_fingerprint_only_when_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = text(dir.path(), KNN);
    let base = parse(dir.path(), &t).fingerprint;
    let with = |v: &str| {
        t.replace(
            "torch_threads = 1",
            &format!("torch_threads = 1\nsave_embeddings = {v}"),
        )
    };
    // Off (written or not) keeps the fingerprint of folders made before the option existed.
    assert_eq!(parse(dir.path(), &with("false")).fingerprint, base);
    // On: a folder without embeddings must not resume as one with them.
    assert_ne!(parse(dir.path(), &with("true")).fingerprint, base);
}
