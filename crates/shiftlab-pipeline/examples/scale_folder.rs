//! Writes the run folder an ImageNet-C-scale evaluation would leave, without embedding anything,
//! so that `shiftlab finish`, `query` and `report` can be measured at that scale on a machine
//! with no GPU (docs/scale-out.md, `scripts/bench-scale.sh`).
//!
//! Everything goes through the writers a real run uses: the dataset table through
//! `shiftlab_data::DatasetWriter`, the folder through `RunFolder::create_or_join`, each part's
//! predictions through `AtomicParquet` and its manifest through `RunFolder::write_manifest`, the
//! `runs` row through `RunFolder::write_run_records`. Only the predicted values are synthetic:
//! drawn from a seeded generator with an error that grows with severity and differs by model,
//! corruption and sample, so that aggregates and flip counts have realistic spreads.
//!
//! Usage: `scale_folder PIPELINE.toml [--images N]` (default 50,000), run from the folder the
//! pipeline's relative paths start from.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use shiftlab_common::SplitMix64;
use shiftlab_data::imaging::StoredImage;
use shiftlab_data::writer::{DatasetWriter, Row};
use shiftlab_pipeline::config::{self, Pipeline, Shift};
use shiftlab_pipeline::folder::RunFolder;
use shiftlab_pipeline::run::{self, now_us, RunOptions};
use shiftlab_pipeline::tables::{
    predictions_schema, AtomicParquet, ErrorRows, PredictionRows, RunRow,
};

const CLASSES: usize = 1000;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(pipeline) = args.first().map(PathBuf::from) else {
        return Err("usage: scale_folder PIPELINE.toml [--images N]".into());
    };
    let images = match args.iter().position(|a| a == "--images") {
        Some(i) => args.get(i + 1).ok_or("--images needs a number")?.parse()?,
        None => 50_000,
    };
    let started = now_us();
    write_dataset(&pipeline, images)?;
    let p = config::load(&pipeline)?;
    let parts_total = run::parts_total(&p, &RunOptions::default())?;
    let folder = RunFolder::create_or_join(&p, parts_total)?;
    let rows: u64 = (0..parts_total)
        .into_par_iter()
        .map(|part| write_part(&p, &folder, part, images))
        .collect::<Result<Vec<u64>>>()?
        .iter()
        .sum();
    let row = RunRow {
        run: p.name.clone(),
        invocation: "scale-folder".into(),
        fingerprint: p.fingerprint.clone(),
        config: p.text.clone(),
        seed: p.seed,
        shard: "1/1".into(),
        parts_done: i64::from(parts_total),
        started_us: started,
        finished_us: now_us(),
        host: shiftlab_common::invocation::hostname(),
        device: "none (synthetic predictions)".into(),
        libtorch_version: String::new(),
        models_json: serde_json::to_string(&p.models.iter().map(|m| &m.name).collect::<Vec<_>>())?,
        fit_embeddings: "none".into(),
        outcome: "ok".into(),
    };
    folder.write_run_records(&p, &row, &[], 0.0)?;
    println!(
        "{}: {parts_total} parts, {rows} prediction rows",
        folder.root.display()
    );
    Ok(())
}

/// The evaluation split the pipeline reads: `images` rows of a tiny PNG each, `CLASSES` labels.
fn write_dataset(pipeline: &Path, images: usize) -> Result<()> {
    let text = std::fs::read_to_string(pipeline)?;
    let value: toml::Value = toml::from_str(&text)?;
    let path = value["source"]["dataset"]
        .as_str()
        .ok_or("the pipeline has no source.dataset")?;
    let split = value["source"]["eval_split"].as_str().unwrap_or("val");
    let path = Path::new(path);
    if path.is_file() {
        return Ok(());
    }
    let names: Vec<String> = (0..CLASSES).map(|c| format!("class{c:04}")).collect();
    let mut png = Vec::new();
    image::GrayImage::new(8, 8)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    let mut w = DatasetWriter::create(path, &names, "synthetic")?;
    for i in 0..images {
        w.push(Row {
            id: format!("{split}/{i:06}"),
            split: split.to_string(),
            label: (i % CLASSES) as i64,
            image: StoredImage {
                bytes: png.clone(),
                width: 8,
                height: 8,
                channels: 1,
            },
            path: None,
            corruption: None,
            severity: None,
        })?;
    }
    w.finish(serde_json::json!({}))?;
    Ok(())
}

/// One part: every image x model x probe x shift, committed before its manifest entry.
fn write_part(p: &Pipeline, folder: &RunFolder, part: u32, images: usize) -> Result<u64> {
    let first = part as usize * p.runtime.part_size;
    let last = (first + p.runtime.part_size).min(images);
    let probes = p.probes.names();
    let path = folder.part_path("predictions", part);
    let mut w = AtomicParquet::create(&path, predictions_schema())?;
    let mut total = 0;
    // A batch per few images, as the sink receives them.
    for chunk in (first..last).collect::<Vec<_>>().chunks(8) {
        let mut rows = PredictionRows::default();
        for &i in chunk {
            image_rows(p, &probes, part, i, &mut rows);
        }
        total += rows.len() as u64;
        w.write(&rows.to_batch()?)?;
    }
    w.commit()?;
    folder.write_manifest(&p.name, part, total, ErrorRows::default())?;
    Ok(total)
}

/// The rows of image `i`: every model x probe x shift.
fn image_rows(p: &Pipeline, probes: &[&str], part: u32, i: usize, rows: &mut PredictionRows) {
    let label = (i % CLASSES) as i64;
    let difficulty = SplitMix64::new(i as u64).next_f64();
    for (m, model) in p.models.iter().enumerate() {
        for (q, probe) in probes.iter().enumerate() {
            for (s, shift) in p.shifts.list.iter().enumerate() {
                let mut rng = SplitMix64::new((((i * 16 + m) * 4 + q) * 128 + s) as u64);
                let draw = 0.5 * difficulty + 0.5 * rng.next_f64();
                let correct = draw <= 1.0 - error_rate(m, *shift, s);
                let wrong =
                    (label + 1 + (rng.next_u64() % (CLASSES as u64 - 1)) as i64) % CLASSES as i64;
                let prediction = if correct { label } else { wrong };
                let mut top5: Vec<i64> = (0..5)
                    .map(|k| (prediction + k * 7) % CLASSES as i64)
                    .collect();
                if !correct && rng.next_f64() < 0.6 {
                    top5[4] = label;
                }
                let confidence = if correct {
                    0.5 + 0.5 * rng.next_f64()
                } else {
                    0.1 + 0.6 * rng.next_f64()
                } as f32;
                let confidence = match *probe {
                    "knn" => (confidence * 20.0).round().max(1.0) / 20.0,
                    _ => confidence,
                };
                let cosine = 1.0 - 0.04 * f64::from(shift.severity()) * (0.5 + rng.next_f64());
                rows.run.push(p.name.clone());
                rows.part.push(part as i32);
                rows.sample_id
                    .push(format!("{}/{i:06}", p.source.eval_split));
                rows.label.push(label);
                rows.model.push(model.name.clone());
                rows.probe.push(probe.to_string());
                rows.shift.push(shift.name().to_string());
                rows.shift_group.push(shift.group().to_string());
                rows.shift_family.push(shift.family());
                rows.severity.push(shift.severity());
                rows.prediction.push(prediction);
                rows.top5_correct.push(top5.contains(&label));
                rows.top5.push(top5);
                rows.correct.push(correct);
                rows.confidence.push(confidence);
                rows.cosine_to_clean.push(Some(cosine as f32));
            }
        }
    }
}

/// Error of model `m` under a shift: a clean error per model, growing with severity at a rate
/// that differs by corruption.
fn error_rate(m: usize, shift: Shift, s: usize) -> f64 {
    let clean = 0.18 + 0.03 * m as f64;
    let per_severity = 0.04 + 0.01 * (s % 7) as f64;
    (clean + per_severity * shift.severity() as f64).min(0.97)
}
