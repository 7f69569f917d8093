//! The `metrics` table: aggregates of the whole `predictions` table of a run.
//!
//! Sums are taken over values sorted within each group, so the result does not depend on the
//! order rows reached the part files (thread timing): the same seed gives identical metrics.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Int32Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use shiftlab_corrupt::Corruption;

use crate::config::{Pipeline, FAMILY_DATASET, FAMILY_RELEASED};
use crate::error::PipelineError;
use crate::tables::MetricRow;

pub use shiftlab_probe::metrics::ECE_BINS;

#[derive(Default)]
struct Group {
    shift_group: String,
    shift_family: String,
    n: i64,
    errors: i64,
    top5_errors: i64,
    cosines: Vec<f32>,
    /// Rows without a cosine (dataset-level shifts).
    no_cosine: bool,
    /// (confidence, correct)
    calibration: Vec<(f32, bool)>,
}

/// (model rank, model, shift rank, shift, severity, probe).
type Key = (usize, String, usize, String, i32, String);
/// Output order: (model rank, probe rank, shift rank, shift, severity).
type Order = (usize, usize, usize, String, i32);

/// Reads every predictions part and aggregates per model x probe x shift x severity, in the
/// order of the pipeline file (models, probes, clean, corruptions and synthetic shifts by
/// severity, then the targets, then released corruptions).
pub fn compute_metrics(p: &Pipeline, files: &[PathBuf]) -> Result<Vec<MetricRow>, PipelineError> {
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    let (shifts, targets) = (&p.shifts.list, &p.shifts.targets);
    let model_order = |m: &str| {
        p.models
            .iter()
            .position(|x| x.name == m)
            .unwrap_or(usize::MAX)
    };
    // Released corruptions rank after the targets, in ImageNet-C order, so they never share a
    // key with an on-the-fly corruption of the same name and severity.
    let shift_order = |s: &str, group: &str, family: &str, sev: i32| {
        if family == FAMILY_RELEASED {
            let c = s
                .parse::<Corruption>()
                .map_or(Corruption::ALL.len(), |c| c.index());
            return shifts.len() + targets.len() + 1 + c;
        }
        if family == FAMILY_DATASET {
            let t = targets.iter().position(|t| t.name == group);
            return shifts.len() + t.unwrap_or(targets.len());
        }
        shifts
            .iter()
            .position(|x| x.name() == s && x.severity() == sev)
            .unwrap_or(usize::MAX)
    };
    for path in files {
        let file = File::open(path).map_err(|e| PipelineError::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| PipelineError::io(path, e))?;
        let wanted = [
            "model",
            "probe",
            "shift",
            "shift_group",
            "shift_family",
            "severity",
            "correct",
            "top5_correct",
            "confidence",
            "cosine_to_clean",
        ];
        let schema = builder.schema().clone();
        let idx: Vec<usize> = wanted
            .iter()
            .map(|c| schema.index_of(c))
            .collect::<Result<_, _>>()
            .map_err(|e| PipelineError::io(path, e))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| PipelineError::io(path, e))?;
        for batch in reader {
            let b = batch.map_err(|e| PipelineError::io(path, e))?;
            let s = |i: usize| b.column(i).as_string::<i32>().clone();
            let (model, probe, shift, group, family) = (s(0), s(1), s(2), s(3), s(4));
            let severity = b.column(5).as_primitive::<Int32Type>();
            let correct = b.column(6).as_boolean();
            let top5 = b.column(7).as_boolean();
            let conf = b.column(8).as_primitive::<Float32Type>();
            let cos = b.column(9).as_primitive::<Float32Type>();
            for i in 0..b.num_rows() {
                let sev = severity.value(i);
                let (sh, gr, fam) = (shift.value(i), group.value(i), family.value(i));
                let key = (
                    model_order(model.value(i)),
                    model.value(i).to_string(),
                    shift_order(sh, gr, fam, sev),
                    sh.to_string(),
                    sev,
                    probe.value(i).to_string(),
                );
                let g = groups.entry(key).or_default();
                if g.n == 0 {
                    g.shift_group = gr.to_string();
                    g.shift_family = fam.to_string();
                }
                g.n += 1;
                g.errors += i64::from(!correct.value(i));
                g.top5_errors += i64::from(!top5.value(i));
                if cos.is_valid(i) {
                    g.cosines.push(cos.value(i));
                } else {
                    g.no_cosine = true;
                }
                g.calibration.push((conf.value(i), correct.value(i)));
                debug_assert!(conf.is_valid(i));
            }
        }
    }
    let mut rows: Vec<(Order, MetricRow)> = groups
        .into_iter()
        .map(|((mi, model, si, shift, sev, probe), g)| {
            let probe_rank = probe_rank(&probe);
            let order = (mi, probe_rank, si, shift.clone(), sev);
            (order, finish(model, probe, shift, sev, g))
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let paradigm = |model: &str| {
        p.models
            .iter()
            .find(|m| m.name == model)
            .and_then(|m| m.paradigm.clone())
    };
    Ok(rows
        .into_iter()
        .map(|(_, r)| MetricRow {
            paradigm: paradigm(&r.model),
            ..r
        })
        .collect())
}

fn probe_rank(probe: &str) -> usize {
    ["linear", "knn", "head"]
        .iter()
        .position(|p| *p == probe)
        .unwrap_or(3)
}

fn finish(model: String, probe: String, shift: String, severity: i32, mut g: Group) -> MetricRow {
    let n = g.n.max(1) as f64;
    g.cosines.sort_by(f32::total_cmp);
    let mean_cos = (!g.no_cosine).then(|| g.cosines.iter().map(|&c| f64::from(c)).sum::<f64>() / n);
    MetricRow {
        model,
        probe,
        shift,
        shift_group: g.shift_group,
        shift_family: g.shift_family,
        severity,
        n: g.n,
        errors: g.errors,
        error: g.errors as f64 / n,
        top5_error: g.top5_errors as f64 / n,
        mean_cosine_to_clean: mean_cos,
        ece: ece(&mut g.calibration),
        paradigm: None,
    }
}

/// Expected calibration error over [`ECE_BINS`] equal-width bins (`shiftlab_probe`'s
/// definition), on samples sorted first so that the sums do not depend on arrival order.
pub fn ece(samples: &mut [(f32, bool)]) -> f64 {
    samples.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let wide: Vec<(f64, bool)> = samples.iter().map(|&(c, ok)| (f64::from(c), ok)).collect();
    shiftlab_probe::metrics::expected_calibration_error(&wide, ECE_BINS).unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::ece;

    #[test]
    fn ece_by_hand() {
        // Bin 14 (0.9333, 1]: confidences 0.95, 0.95, accuracy 1/2 -> |0.5 - 0.95| * 2/4 = 0.225.
        // Bin 8 (0.5333, 0.6]: confidences 0.55, 0.55, accuracy 1 -> |1 - 0.55| * 2/4 = 0.225.
        let mut s = vec![(0.95, true), (0.95, false), (0.55, true), (0.55, true)];
        assert!((ece(&mut s) - 0.45).abs() < 1e-6, "{}", ece(&mut s));
        let mut perfect = vec![(1.0, true), (1.0, true)];
        assert_eq!(ece(&mut perfect), 0.0);
    }
}
