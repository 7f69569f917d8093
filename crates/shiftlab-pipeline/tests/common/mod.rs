//! A tiny pipeline for the crate's integration tests: a dataset table of a few 32 px images
//! written with `shiftlab-data`'s own writer, one random-init ResNet-18, the kNN probe, one
//! corruption at one severity. A run takes a few seconds on one core.
#![allow(dead_code)] // each test binary uses its own subset

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, Float32Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shiftlab_data::imaging::{encode_png, StoredImage};
use shiftlab_data::writer::{DatasetWriter, Row};
use shiftlab_pipeline::{Pipeline, RunOptions};

pub const SIDE: u32 = 32;

/// A 32 px RGB image whose pixel (x, y) channel c is `(7·seed + 3x + 5y + 40c) mod 256`.
pub fn image(seed: u32) -> StoredImage {
    let pixels: Vec<u8> = (0..SIDE * SIDE * 3)
        .map(|i| {
            let (p, c) = (i / 3, i % 3);
            ((7 * seed + 3 * (p % SIDE) + 5 * (p / SIDE) + 40 * c) % 256) as u8
        })
        .collect();
    let bytes = encode_png(SIDE, SIDE, 3, &pixels).expect("PNG encodes");
    StoredImage {
        bytes,
        width: SIDE,
        height: SIDE,
        channels: 3,
    }
}

/// Writes a dataset table: `rows` are (id, split, label, image seed); classes "a", "b".
pub fn dataset(path: &Path, rows: &[(&str, &str, i64, u32)]) {
    let classes = ["a", "b"].map(String::from);
    let mut w = DatasetWriter::create(path, &classes, "test").expect("writer");
    for &(id, split, label, seed) in rows {
        w.push(Row {
            id: id.to_string(),
            split: split.to_string(),
            label,
            image: image(seed),
            path: None,
            corruption: None,
            severity: None,
        })
        .expect("row");
    }
    w.finish(serde_json::json!({})).expect("finish");
}

/// Eight fit images (two classes) and the given evaluation rows (id, label, image seed).
pub fn dataset_with_eval(path: &Path, eval: &[(&str, i64, u32)]) {
    let fit: Vec<(String, i64, u32)> = (0..8)
        .map(|i| (format!("fit{i}"), i64::from(i % 2), 100 + i))
        .collect();
    let mut rows: Vec<(&str, &str, i64, u32)> = fit
        .iter()
        .map(|(id, label, seed)| (id.as_str(), "train", *label, *seed))
        .collect();
    rows.extend(
        eval.iter()
            .map(|&(id, label, seed)| (id, "test", label, seed)),
    );
    dataset(path, &rows);
}

/// Pipeline text over `dataset` writing to `output`; `probes` is the whole probes block.
pub fn pipeline_text(dataset: &Path, output: &Path, probes: &str) -> String {
    format!(
        r#"[pipeline]
name = "tiny"
output = "{output}"
seed = 5

[source]
dataset = "{dataset}"

[shifts]
preset = "cifar32"
corruptions = ["gaussian_noise"]
severities = [5]

[[models]]
name = "r18"
architecture = "resnet18"
input_size = 32
seed = 1

{probes}

[runtime]
batch_size = 4
part_size = 2
embed_block = 4
cpu_workers = 1
torch_threads = 1
"#,
        output = output.display(),
        dataset = dataset.display(),
    )
}

/// The kNN probe with a k the 8 fit images allow.
pub const KNN: &str = "[probes.knn]\nk = 3";

/// Validates pipeline text as the `shiftlab` command does.
pub fn parse(dir: &Path, text: &str) -> Pipeline {
    shiftlab_pipeline::parse(&dir.join("tiny.toml"), text).expect("valid pipeline")
}

pub fn quiet() -> RunOptions {
    RunOptions {
        progress: false,
        ..RunOptions::default()
    }
}

/// One prediction row: (sample_id, shift, severity, cosine_to_clean).
pub type Prediction = (String, String, i32, Option<f32>);

/// Every row of the run's `predictions/part-*.parquet`, in part order.
pub fn predictions(run: &Path) -> Vec<Prediction> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(run.join("predictions"))
        .expect("predictions folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    parts.iter().flat_map(|p| part_rows(p)).collect()
}

fn part_rows(path: &Path) -> Vec<Prediction> {
    let file = File::open(path).expect("part opens");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut rows = Vec::new();
    for batch in reader {
        let b = batch.expect("batch");
        let col = |name: &str| b.column_by_name(name).expect("column").clone();
        let ids = col("sample_id");
        let ids = ids.as_any().downcast_ref::<StringArray>().expect("utf8");
        let shifts = col("shift");
        let shifts = shifts.as_any().downcast_ref::<StringArray>().expect("utf8");
        let sev = col("severity");
        let sev = sev
            .as_any()
            .downcast_ref::<arrow::array::Int32Array>()
            .expect("int32");
        let cos = col("cosine_to_clean");
        let cos = cos.as_any().downcast_ref::<Float32Array>().expect("f32");
        for i in 0..b.num_rows() {
            let c = (!cos.is_null(i)).then(|| cos.value(i));
            rows.push((
                ids.value(i).to_string(),
                shifts.value(i).to_string(),
                sev.value(i),
                c,
            ));
        }
    }
    rows
}
