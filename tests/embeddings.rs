//! `runtime.save_embeddings` end to end: a ViT-Ti and a ResNet-18 (different dimensions, so one
//! folder per model) on real Fashion-MNIST at 32 px; pyarrow/numpy read the embeddings back and
//! recompute `cosine_to_clean` from them (tests/python/check_embeddings.py); a part whose
//! manifest and embeddings are deleted is rewritten to the same rows; a folder made without
//! embeddings refuses to resume with them.
// Runs pipelines: needs the libtorch build (`shiftlab-torch`).
#![cfg(feature = "torch")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::pipelines::run_dir;
use common::{fails, fmnist, ok, python, python_script, root, text};

const SAMPLES: usize = 12;
/// clean + 2 corruptions x 2 severities.
const SHIFTS: usize = 5;

fn pipeline(dir: &Path, name: &str, save: bool) -> PathBuf {
    let out = dir.join(format!("run-{name}"));
    let text = format!(
        r#"[pipeline]
name = "{name}"
output = "{out}"
seed = 4

[source]
dataset = "{dataset}"
limit = {SAMPLES}
fit_limit = 40

[shifts]
preset = "cifar32"
corruptions = ["gaussian_noise", "jpeg_compression"]
severities = [1, 5]
resize = 32

[[models]]
name = "vit"
architecture = "vit-ti16"
input_size = 32
seed = 1

[[models]]
name = "r18"
architecture = "resnet18"
input_size = 32
seed = 2

[probes.linear]
epochs = 3

[probes.knn]
k = 5

[runtime]
batch_size = 4
part_size = 5
embed_block = 4
save_embeddings = {save}
"#,
        out = out.display(),
        dataset = fmnist().display(),
    );
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).expect("write pipeline");
    file
}

fn check_embeddings(run: &Path) {
    let rows = (SAMPLES * SHIFTS).to_string();
    let out = Command::new(python())
        .arg(root().join("tests/python/check_embeddings.py"))
        .arg(run)
        .args([rows.as_str(), "vit=192", "r18=512"])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "check_embeddings.py:\n{}", text(&out));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

/// Every part file of `embeddings/` and `predictions/` under BEFORE has the same rows (exactly
/// equal values, order aside) as the file of that name under AFTER, and no file is new.
const SAME_PARTS: &str = r#"
import pathlib, sys, pyarrow.parquet as pq
before, after = (pathlib.Path(a) for a in sys.argv[1:3])
names = lambda root: sorted(str(p.relative_to(root)) for t in ("embeddings", "predictions")
                            for p in (root / t).rglob("part-*.parquet"))
assert names(before) == names(after), (names(before), names(after))
for name in names(before):
    a, b = (pq.read_table(r / name).to_pandas() for r in (before, after))
    key = [c for c in ("sample_id", "model", "probe", "shift", "severity") if c in a.columns]
    a, b = (t.sort_values(key).reset_index(drop=True) for t in (a, b))
    if "embedding" in a.columns:
        a["embedding"], b["embedding"] = (t["embedding"].map(lambda v: v.tobytes()) for t in (a, b))
    if "top5" in a.columns:
        a["top5"], b["top5"] = (t["top5"].map(tuple) for t in (a, b))
    assert len(a) > 0 and a.equals(b), f"{name} differs after the resume"
print(len(names(before)), "part files equal")
"#;

#[test]
fn saved_embeddings_match_the_predictions_and_resume_to_the_same_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = pipeline(dir.path(), "emb", true);
    let f = file.to_str().expect("utf-8");
    let first = ok(&["run", "--quiet", f]);
    assert!(first.contains("3 finished now, 0 of 3 missing"), "{first}");
    let run = run_dir(&file);
    check_embeddings(&run);

    // A part that lost its manifest and one model's embeddings is evaluated again, to the same
    // rows (the other files of the part are rewritten with the same content). Rows within a part
    // come in the order the shift workers finish, so the check sorts them.
    let before = dir.path().join("before");
    for t in ["embeddings", "predictions"] {
        copy_dir(&run.join(t), &before.join(t));
    }
    std::fs::remove_file(run.join("manifest/part-00001.json")).expect("manifest");
    std::fs::remove_file(run.join("embeddings/vit/part-00001.parquet")).expect("embeddings");
    let again = ok(&["run", "--quiet", f]);
    assert!(again.contains("1 finished now, 0 of 3 missing"), "{again}");
    python_script(
        SAME_PARTS,
        &[
            before.to_str().expect("utf-8"),
            run.to_str().expect("utf-8"),
        ],
    );
    check_embeddings(&run);

    // `shiftlab query` has one table per model, with the fixed-size list column.
    let csv = ok(&[
        "query",
        "--run",
        run.to_str().expect("utf-8"),
        "--format",
        "csv",
        "SELECT count(*) AS n, min(array_length(embedding)) AS d FROM embeddings_vit",
    ]);
    assert!(csv.contains(&format!("{},192", SAMPLES * SHIFTS)), "{csv}");

    // The same folder with the option turned off is a run of other settings.
    let off = pipeline(dir.path(), "emb", false);
    let msg = fails(&["run", "--quiet", off.to_str().expect("utf-8")]);
    assert!(msg.contains("different settings"), "{msg}");
}

#[test]
fn model_names_must_be_folder_names_only_with_the_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = pipeline(dir.path(), "bad", true);
    let named = std::fs::read_to_string(&file)
        .expect("read")
        .replace("name = \"vit\"", "name = \"vit/ti\"");
    std::fs::write(&file, &named).expect("write");
    let msg = fails(&["validate", file.to_str().expect("utf-8")]);
    assert!(
        msg.contains("vit/ti") && msg.contains("save_embeddings"),
        "{msg}"
    );
    std::fs::write(
        &file,
        named.replace("save_embeddings = true", "save_embeddings = false"),
    )
    .expect("write");
    ok(&["validate", file.to_str().expect("utf-8")]);
}
