//! A whole run: the run folder (created or joined), model loading, the fit phase (once per
//! folder), the evaluation phase with its sink, then the invocation's records and, when every
//! part of every shard is finished, `metrics`.
//!
//! Many invocations may run at once on one folder (see `folder`): each evaluates the parts of its
//! shard that have no manifest entry yet, and whichever one finds every part finished at its end
//! writes `metrics` (atomically: two doing so at once write the same bytes).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use shiftlab_corrupt::{Corruption, FrostAssets};
use shiftlab_model::{Encoder, ModelSpec};

use crate::config::{Pipeline, Runtime, Shift, Shifts, Source, Target};
use crate::error::PipelineError;
use crate::eval::sink::PartSink;
use crate::eval::{run_eval, EvalInputs, Stages};
use crate::fit::{fit_probes, FitSource};
use crate::folder::{InvocationRecord, RunFolder};
use crate::metrics::compute_metrics;
use crate::stage::StageStats;
use crate::tables::{self, MetricRow, RunRow};
use crate::targets::ResolvedTarget;

/// Selects the evaluation rows that `source.filter` (an SQL condition) admits: the ids of the
/// rows of `split` in `dataset`. The SQL engine lives outside this crate (the binary passes
/// DataFusion's, `shiftlab_results::select_ids`), so pipelines build without it.
pub trait RowFilter: Send + Sync {
    fn select(
        &self,
        dataset: &Path,
        split: &str,
        filter: &str,
    ) -> Result<HashSet<String>, Box<dyn std::error::Error + Send + Sync>>;
}

/// How to run (not part of the pipeline file).
#[derive(Clone)]
pub struct RunOptions {
    /// 1-based shard index and shard count.
    pub shard: (u32, u32),
    pub progress: bool,
    /// Stop after this many parts (used to test resume).
    pub max_parts: Option<usize>,
    /// Pause per sink item (used to test backpressure).
    pub sink_delay: Option<Duration>,
    /// Only create or join the folder and run the fit phase (a cluster's prepare job).
    pub prepare_only: bool,
    /// The engine for `source.filter`; a pipeline with a filter fails without one.
    pub row_filter: Option<Arc<dyn RowFilter>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shard: (1, 1),
            progress: true,
            max_parts: None,
            sink_delay: None,
            prepare_only: false,
            row_filter: None,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("shard", &self.shard)
            .field("progress", &self.progress)
            .field("max_parts", &self.max_parts)
            .field("sink_delay", &self.sink_delay)
            .field("prepare_only", &self.prepare_only)
            .field("row_filter", &self.row_filter.is_some())
            .finish()
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub output: PathBuf,
    pub parts_total: u32,
    pub parts_done_now: usize,
    pub parts_missing: Vec<u32>,
    pub samples: u64,
    pub errors: usize,
    pub metrics: Option<Vec<MetricRow>>,
    pub stages: Vec<StageStats>,
    pub wall_s: f64,
    pub images_per_s: f64,
    pub fit: FitSource,
}

/// The layout of a run: rows, parts and targets, from the dataset and the pipeline.
struct Plan {
    eval_rows: u64,
    source_parts: u32,
    parts_total: u32,
    targets: Vec<(ResolvedTarget, u32)>,
    selected: Option<HashSet<String>>,
    class_count: i64,
}

fn plan(p: &Pipeline, opts: &RunOptions) -> Result<Plan, PipelineError> {
    let src = &p.source;
    let part_size = p.runtime.part_size;
    let info = source_info(src)?;
    let selected = select(&p.file, src, opts)?;
    let eval_rows = count_eval_rows(src, &info, selected.as_ref());
    if eval_rows == 0 {
        return Err(PipelineError::Dataset {
            path: src.dataset.display().to_string(),
            message: format!("no rows in split '{}' (after the filter)", src.eval_split),
        });
    }
    let source_parts = parts_of(part_size, eval_rows);
    let targets = resolve_targets(
        &p.shifts.targets,
        part_size,
        &info.class_names,
        source_parts,
    )?;
    let parts_total = targets.last().map_or(source_parts, |(t, first)| {
        first + parts_of(part_size, t.eval_rows())
    });
    Ok(Plan {
        eval_rows,
        source_parts,
        parts_total,
        targets,
        selected,
        class_count: info.class_names.len() as i64,
    })
}

/// How many parts the pipeline's run has (what `--shard` and `submit` divide).
pub fn parts_total(p: &Pipeline, opts: &RunOptions) -> Result<u32, PipelineError> {
    Ok(plan(p, opts)?.parts_total)
}

/// Runs (or resumes, or joins) a pipeline.
pub fn run(p: &Pipeline, opts: &RunOptions) -> Result<RunSummary, PipelineError> {
    let started = now_us();
    if let Some(n) = p.runtime.torch_threads {
        tch::set_num_threads(n as i32);
    }
    let plan = plan(p, opts)?;
    let folder = RunFolder::create_or_join(p, plan.parts_total)?;
    let frost = load_frost(&p.file, &p.shifts)?;
    let encoders = load_encoders(&p.models, &p.runtime)?;
    let device = encoders
        .first()
        .map(|e| e.info().device.clone())
        .unwrap_or_default();
    let mut record = InvocationRecord::start(opts.shard, &device, started);
    folder.record_invocation(&record)?;
    let mut ended = Ended::default();
    let result = evaluate(p, opts, &folder, plan, encoders, frost, &mut ended);
    record.finished_us = Some(now_us());
    record.parts_done = ended.parts_done as u64;
    record.outcome = Some(match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => e.chain(),
    });
    let row = RunRow {
        run: p.name.clone(),
        invocation: record.id.clone(),
        fingerprint: p.fingerprint.clone(),
        config: p.text.clone(),
        seed: p.seed,
        shard: record.shard.clone(),
        parts_done: ended.parts_done as i64,
        started_us: started,
        finished_us: record.finished_us.unwrap_or(started),
        host: record.host.clone(),
        device,
        libtorch_version: shiftlab_model::runtime::BUILT_LIBTORCH_VERSION.to_string(),
        models_json: std::mem::take(&mut ended.models_json),
        fit_embeddings: ended.fit.as_str().to_string(),
        outcome: record.outcome.clone().unwrap_or_default(),
    };
    // The records are written whatever happened; the first error stays the one reported.
    let records = folder
        .write_run_records(p, &row, &ended.stages, ended.wall_s)
        .and_then(|()| folder.record_invocation(&record));
    let summary = result?;
    records?;
    Ok(summary)
}

/// What an invocation did, for its records, whether it ended well or not.
#[derive(Default)]
struct Ended {
    parts_done: usize,
    stages: Vec<StageStats>,
    wall_s: f64,
    fit: FitSource,
    models_json: String,
}

fn evaluate(
    p: &Pipeline,
    opts: &RunOptions,
    folder: &RunFolder,
    plan: Plan,
    encoders: Vec<Encoder>,
    frost: FrostAssets,
    ended: &mut Ended,
) -> Result<RunSummary, PipelineError> {
    ended.models_json =
        serde_json::to_string(&encoders.iter().map(|e| e.info()).collect::<Vec<_>>())
            .unwrap_or_default();
    let probes = fit_probes(
        p,
        &encoders,
        &folder.cache_dir(),
        plan.class_count,
        opts.progress,
    )?;
    ended.fit = probes.source;
    let parts_total = plan.parts_total;
    let done = folder.finished_parts()?;
    let (k, n) = opts.shard;
    let mut todo: BTreeSet<u32> = (0..parts_total)
        .filter(|&part| shard_of(part, n) == k && !done.contains(&part))
        .collect();
    if let Some(max) = opts.max_parts {
        todo = todo.into_iter().take(max).collect();
    }
    if opts.prepare_only {
        todo.clear();
    }
    let stages = Stages::new(p.runtime.cpu_workers);
    let (size, shifts) = (p.runtime.part_size, p.shifts.list.len());
    let todo_samples = todo
        .iter()
        .map(|&part| {
            let rows = (plan.eval_rows, plan.source_parts);
            part_images(size, shifts, part, rows, &plan.targets)
        })
        .sum::<u64>();
    let bar = progress_bar(opts.progress, todo_samples);
    let t0 = Instant::now();
    let embedding_dims = match p.runtime.save_embeddings {
        true => encoders.iter().map(|e| e.dim() as usize).collect(),
        false => Vec::new(),
    };
    let mut sink = PartSink::new(
        p,
        folder,
        bar.clone(),
        opts.sink_delay,
        &stages,
        embedding_dims,
    );
    let inputs = EvalInputs {
        pipeline: p,
        encoders,
        probes: probes.per_model,
        frost: Arc::new(frost),
        selected: plan.selected,
        todo,
        num_classes: probes.num_classes,
        targets: plan.targets,
    };
    let eval_result = run_eval(inputs, &stages, |msg| sink.accept(msg));
    let wall_s = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    ended.parts_done = sink.finished;
    ended.stages = stages.all();
    ended.wall_s = wall_s;
    let (error_count, images) = (sink.error_count, sink.images);
    drop(sink);
    eval_result?;
    let parts_missing = folder.missing_parts(parts_total)?;
    let metrics = if parts_missing.is_empty() && !opts.prepare_only {
        Some(write_metrics(p, folder, parts_total)?)
    } else {
        None
    };
    Ok(RunSummary {
        output: folder.root.clone(),
        parts_total,
        parts_done_now: ended.parts_done,
        parts_missing,
        samples: todo_samples,
        errors: error_count,
        metrics,
        stages: ended.stages.clone(),
        wall_s,
        images_per_s: images as f64 / wall_s.max(1e-9),
        fit: ended.fit,
    })
}

/// Computes `metrics` from every part and writes it atomically.
pub fn write_metrics(
    p: &Pipeline,
    folder: &RunFolder,
    parts_total: u32,
) -> Result<Vec<MetricRow>, PipelineError> {
    let rows = compute_metrics(p, &folder.part_files("predictions", parts_total))?;
    let batch =
        tables::metrics_batch(&p.name, &rows).map_err(|e| PipelineError::io(&folder.root, e))?;
    tables::write_parquet(&folder.metrics_path(), &batch)?;
    Ok(rows)
}

/// `metrics` for a folder whose parts were all written (by any number of invocations), or an
/// error naming the missing parts and the shard of `shards` each belongs to.
pub fn finish(
    p: &Pipeline,
    folder: &RunFolder,
    parts_total: u32,
    shards: u32,
) -> Result<Vec<MetricRow>, PipelineError> {
    let missing = folder.missing_parts(parts_total)?;
    if !missing.is_empty() {
        return Err(PipelineError::Incomplete {
            path: folder.root.display().to_string(),
            missing: describe_missing(&missing, shards),
            count: missing.len(),
            total: parts_total,
        });
    }
    write_metrics(p, folder, parts_total)
}

/// The 1-based shard of `shards` that evaluates `part` (`--shard K/N` runs `p mod N = K - 1`).
pub fn shard_of(part: u32, shards: u32) -> u32 {
    part % shards.max(1) + 1
}

/// `part 3 (shard 4/4), part 7 (shard 4/4)`, at most 20 named.
pub fn describe_missing(missing: &[u32], shards: u32) -> String {
    let shards = shards.max(1);
    let mut named: Vec<String> = missing
        .iter()
        .take(20)
        .map(|&part| format!("part {part} (shard {}/{shards})", shard_of(part, shards)))
        .collect();
    if missing.len() > 20 {
        named.push(format!("and {} more", missing.len() - 20));
    }
    named.join(", ")
}

fn select(
    file: &Path,
    src: &Source,
    opts: &RunOptions,
) -> Result<Option<HashSet<String>>, PipelineError> {
    let Some(filter) = &src.filter else {
        return Ok(None);
    };
    let engine = opts
        .row_filter
        .as_ref()
        .ok_or_else(|| PipelineError::Config {
            file: file.display().to_string(),
            line: None,
            key: "source.filter".into(),
            message: "this program was built without an SQL engine for source.filter".into(),
        })?;
    engine
        .select(&src.dataset, &src.eval_split, filter)
        .map(Some)
        .map_err(|source| PipelineError::Filter {
            file: file.display().to_string(),
            source,
        })
}

/// Reads every target's table and label map against the source's classes, so that `validate`
/// reports a bad label map before a run starts.
pub fn check_targets(p: &Pipeline) -> Result<Vec<ResolvedTarget>, PipelineError> {
    let info = source_info(&p.source)?;
    p.shifts
        .targets
        .iter()
        .map(|t| ResolvedTarget::resolve(t, &info.class_names))
        .collect()
}

fn source_info(src: &Source) -> Result<shiftlab_data::reader::DatasetInfo, PipelineError> {
    shiftlab_data::reader::read_info(&src.dataset).map_err(|e| PipelineError::Dataset {
        path: src.dataset.display().to_string(),
        message: e.to_string(),
    })
}

fn parts_of(part_size: usize, rows: u64) -> u32 {
    rows.div_ceil(part_size as u64) as u32
}

/// Each target with its first part: targets' parts follow the source's, in file order.
fn resolve_targets(
    targets: &[Target],
    part_size: usize,
    source_classes: &[String],
    source_parts: u32,
) -> Result<Vec<(ResolvedTarget, u32)>, PipelineError> {
    let mut next = source_parts;
    let mut out = Vec::new();
    for t in targets {
        let resolved = ResolvedTarget::resolve(t, source_classes)?;
        let first = next;
        next += parts_of(part_size, resolved.eval_rows());
        out.push((resolved, first));
    }
    Ok(out)
}

/// Images a part sends through the models: source samples x shifts, or target samples;
/// `(eval_rows, source_parts)` are the source's.
fn part_images(
    part_size: usize,
    shifts: usize,
    part: u32,
    (eval_rows, source_parts): (u64, u32),
    targets: &[(ResolvedTarget, u32)],
) -> u64 {
    let size = part_size as u64;
    let rows_in = |rows: u64, index: u32| rows.saturating_sub(index as u64 * size).min(size);
    if part < source_parts {
        return rows_in(eval_rows, part) * shifts as u64;
    }
    targets
        .iter()
        .rev()
        .find(|(_, first)| part >= *first)
        .map_or(0, |(t, first)| rows_in(t.eval_rows(), part - first))
}

fn load_frost(file: &Path, shifts: &Shifts) -> Result<FrostAssets, PipelineError> {
    let needs_frost = shifts
        .list
        .iter()
        .any(|s| matches!(s, Shift::Corruption(Corruption::Frost, _)));
    if !needs_frost {
        return Ok(FrostAssets::none());
    }
    FrostAssets::locate(shifts.frost_dir.as_deref()).map_err(|e| PipelineError::Config {
        file: file.display().to_string(),
        line: None,
        key: "shifts.frost_dir".into(),
        message: e.to_string(),
    })
}

fn load_encoders(models: &[ModelSpec], runtime: &Runtime) -> Result<Vec<Encoder>, PipelineError> {
    let options = runtime.options();
    models
        .iter()
        .map(|spec| Encoder::load(spec, &options).map_err(|e| PipelineError::model(&spec.name, e)))
        .collect()
}

fn count_eval_rows(
    src: &Source,
    info: &shiftlab_data::reader::DatasetInfo,
    selected: Option<&std::collections::HashSet<String>>,
) -> u64 {
    let available = match selected {
        Some(ids) => ids.len() as u64,
        None => info.splits.get(&src.eval_split).copied().unwrap_or(0),
    };
    src.limit.map_or(available, |l| l.min(available))
}

/// A bar of `len` images when asked for; none for an invocation with nothing left to do.
fn progress_bar(asked: bool, len: u64) -> ProgressBar {
    if !asked || len == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} images {per_sec} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// Microseconds since the Unix epoch (the unit of every timestamp in the run folder).
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_go_round_robin_to_shards_numbered_from_one() {
        let shards: Vec<u32> = (0..7).map(|part| shard_of(part, 3)).collect();
        assert_eq!(shards, [1, 2, 3, 1, 2, 3, 1]);
        assert_eq!((shard_of(5, 0), shard_of(5, 1)), (1, 1));
    }

    #[test]
    fn missing_parts_are_named_with_their_shard_at_most_twenty() {
        assert_eq!(
            describe_missing(&[3, 7], 4),
            "part 3 (shard 4/4), part 7 (shard 4/4)"
        );
        assert_eq!(describe_missing(&[2], 0), "part 2 (shard 1/1)");
        let many: Vec<u32> = (0..25).collect();
        let text = describe_missing(&many, 2);
        assert_eq!(text.matches("part ").count(), 20, "{text}");
        assert!(
            text.starts_with("part 0 (shard 1/2), part 1 (shard 2/2)"),
            "{text}"
        );
        assert!(text.ends_with("part 19 (shard 2/2), and 5 more"), "{text}");
        let twenty: Vec<u32> = (0..20).collect();
        assert!(!describe_missing(&twenty, 1).contains("more"));
    }

    #[test]
    fn a_last_short_part_counts_and_no_rows_make_no_parts() {
        assert_eq!(parts_of(2, 5), 3);
        assert_eq!(parts_of(2, 4), 2);
        assert_eq!(parts_of(3, 1), 1);
        assert_eq!(parts_of(2, 0), 0);
    }

    fn target(name: &str, rows: u64, limit: Option<u64>) -> ResolvedTarget {
        ResolvedTarget {
            target: Target {
                name: name.into(),
                dataset: PathBuf::from("t.parquet"),
                split: "test".into(),
                limit,
                label_map: None,
                restrict: false,
            },
            map: Vec::new(),
            class_names: Vec::new(),
            allowed: None,
            rows,
        }
    }

    #[test]
    fn a_part_sends_its_rows_times_the_shifts_or_its_target_rows() {
        // Source: 5 rows in parts of 2 (parts 0-2), 3 shifts each. Targets: 3 rows (a limit of
        // 3 of 9) in parts 3-4, then 1 row in part 5.
        let targets = [(target("a", 9, Some(3)), 3), (target("b", 1, None), 5)];
        let images: Vec<u64> = (0..7)
            .map(|part| part_images(2, 3, part, (5, 3), &targets))
            .collect();
        assert_eq!(images, [6, 6, 3, 2, 1, 1, 0]);
        assert_eq!(part_images(2, 3, 3, (5, 3), &[]), 0);
    }

    #[test]
    fn evaluation_rows_are_the_split_or_the_filter_cut_by_the_limit() {
        let info = shiftlab_data::reader::DatasetInfo {
            class_names: vec!["a".into()],
            source_format: "test".into(),
            num_rows: 12,
            splits: [("test".to_string(), 10), ("train".to_string(), 2)].into(),
            notes: Vec::new(),
        };
        let source = |split: &str, limit| Source {
            dataset: PathBuf::from("d.parquet"),
            eval_split: split.into(),
            fit_split: "train".into(),
            limit,
            fit_limit: None,
            filter: None,
        };
        let ids: HashSet<String> = ["x", "y", "z"].map(String::from).into();
        assert_eq!(count_eval_rows(&source("test", None), &info, None), 10);
        assert_eq!(count_eval_rows(&source("test", Some(4)), &info, None), 4);
        assert_eq!(count_eval_rows(&source("test", Some(40)), &info, None), 10);
        assert_eq!(count_eval_rows(&source("val", None), &info, None), 0);
        assert_eq!(count_eval_rows(&source("test", None), &info, Some(&ids)), 3);
        assert_eq!(
            count_eval_rows(&source("test", Some(2)), &info, Some(&ids)),
            2
        );
    }

    #[test]
    fn timestamps_are_microseconds_since_the_epoch() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        let us = now_us();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        assert!(before.as_micros() as i64 <= us && us <= after.as_micros() as i64);
    }

    #[test]
    fn a_progress_bar_is_drawn_only_when_asked_for_and_there_is_work() {
        assert_eq!(progress_bar(true, 8).length(), Some(8));
        assert_eq!(progress_bar(false, 8).length(), None, "not asked for");
        assert_eq!(progress_bar(true, 0).length(), None, "nothing to do");
    }

    #[test]
    fn default_options_run_every_part_of_the_only_shard_with_progress() {
        let o = RunOptions::default();
        assert_eq!(o.shard, (1, 1));
        assert!(o.progress && !o.prepare_only);
        assert!(o.max_parts.is_none() && o.sink_delay.is_none() && o.row_filter.is_none());
        let text = format!("{o:?}");
        assert!(
            text.contains("shard: (1, 1)") && text.contains("row_filter: false"),
            "{text}"
        );
    }
}
