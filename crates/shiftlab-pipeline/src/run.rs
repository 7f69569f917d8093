//! A whole run: the run folder and its manifest, model loading, the fit phase, the evaluation
//! phase with its sink, then metrics and the `runs` / `stages` records.
//!
//! Folder layout (every file written beside its final name and renamed when whole):
//! `predictions/part-NNNNN.parquet`, `errors/part-NNNNN.parquet`, `manifest/part-NNNNN.json`
//! (a part is finished exactly when its manifest entry exists), `run.json` (fingerprint and part
//! count), `cache/` (fit-split embeddings), `runs/`, `stages/`, and `metrics.parquet` once every
//! part of every shard is finished.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use shiftlab_corrupt::{Corruption, FrostAssets};
use shiftlab_model::Encoder;

use crate::config::{Pipeline, Shift};
use crate::error::PipelineError;
use crate::eval::{run_eval, EvalInputs, SinkMsg, Stages};
use crate::fit::fit_probes;
use crate::metrics::compute_metrics;
use crate::stage::{bottleneck, StageStats};
use crate::tables::{self, AtomicParquet, ErrorRows, MetricRow, RunRow};
use crate::targets::ResolvedTarget;

/// How to run (not part of the pipeline file).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// 1-based shard index and shard count.
    pub shard: (u32, u32),
    pub progress: bool,
    /// Stop after this many parts (used to test resume).
    pub max_parts: Option<usize>,
    /// Pause per sink item (used to test backpressure).
    pub sink_delay: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shard: (1, 1),
            progress: true,
            max_parts: None,
            sink_delay: None,
        }
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
}

/// Runs (or resumes) a pipeline.
pub fn run(p: &Pipeline, opts: &RunOptions) -> Result<RunSummary, PipelineError> {
    let started = now_us();
    let invocation = format!("{}-{}", started, std::process::id());
    if let Some(n) = p.torch_threads {
        tch::set_num_threads(n as i32);
    }
    let folder = RunFolder::open(p)?;
    let frost = load_frost(p)?;
    let encoders = load_encoders(p)?;
    let info = source_info(p)?;
    let selected = select(p)?;
    let eval_rows = count_eval_rows(p, &info, selected.as_ref());
    if eval_rows == 0 {
        return Err(PipelineError::Dataset {
            path: p.dataset.display().to_string(),
            message: format!("no rows in split '{}' (after the filter)", p.eval_split),
        });
    }
    let source_parts = eval_rows.div_ceil(p.part_size as u64) as u32;
    let targets = resolve_targets(p, &info.class_names, source_parts)?;
    let parts_total = targets.last().map_or(source_parts, |(t, first)| {
        first + parts_of(p, t.eval_rows())
    });
    folder.write_run_json(p, parts_total)?;
    let probes = fit_probes(
        p,
        &encoders,
        &folder.cache_dir(),
        info.class_names.len() as i64,
        opts.progress,
    )?;
    let num_classes = probes.num_classes;
    let done = folder.finished_parts()?;
    let (k, n) = opts.shard;
    let mut todo: BTreeSet<u32> = (0..parts_total)
        .filter(|part| part % n == k - 1 && !done.contains(part))
        .collect();
    if let Some(max) = opts.max_parts {
        todo = todo.into_iter().take(max).collect();
    }
    let stages = Stages::new(p.cpu_workers);
    let device = encoders
        .first()
        .map(|e| e.info().device.clone())
        .unwrap_or_default();
    let models_json = serde_json::to_string(&encoders.iter().map(|e| e.info()).collect::<Vec<_>>())
        .unwrap_or_default();
    let todo_samples = todo
        .iter()
        .map(|&part| part_images(p, part, eval_rows, source_parts, &targets))
        .sum::<u64>();
    let bar = progress_bar(opts.progress, todo_samples);
    let t0 = Instant::now();
    let mut sink = PartSink::new(p, &folder, bar.clone(), opts.sink_delay, &stages);
    let inputs = EvalInputs {
        pipeline: p,
        encoders,
        probes: probes.per_model,
        frost: Arc::new(frost),
        selected,
        todo: todo.clone(),
        num_classes,
        targets,
    };
    let eval_result = run_eval(inputs, &stages, |msg| sink.accept(msg));
    let wall_s = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let stage_stats = stages.all();
    let parts_done_now = sink.finished;
    let error_count = sink.error_count;
    let images = sink.images;
    drop(sink);
    folder.write_invocation(
        p,
        &RunRow {
            run: p.name.clone(),
            invocation: invocation.clone(),
            fingerprint: p.fingerprint.clone(),
            config: p.text.clone(),
            seed: p.seed,
            shard: format!("{k}/{n}"),
            parts_done: parts_done_now as i64,
            started_us: started,
            finished_us: now_us(),
            host: hostname(),
            device,
            libtorch_version: shiftlab_model::runtime::BUILT_LIBTORCH_VERSION.to_string(),
            models_json,
        },
        &stage_stats,
        wall_s,
    )?;
    eval_result?;
    let done = folder.finished_parts()?;
    let parts_missing: Vec<u32> = (0..parts_total)
        .filter(|part| !done.contains(part))
        .collect();
    let metrics = if parts_missing.is_empty() {
        let rows = compute_metrics(p, &folder.part_files("predictions", parts_total))?;
        tables::write_parquet(
            &folder.root.join("metrics.parquet"),
            &tables::metrics_batch(&p.name, &rows)
                .map_err(|e| PipelineError::io(&folder.root, e))?,
        )?;
        Some(rows)
    } else {
        None
    };
    Ok(RunSummary {
        output: folder.root.clone(),
        parts_total,
        parts_done_now,
        parts_missing,
        samples: todo_samples,
        errors: error_count,
        metrics,
        stages: stage_stats,
        wall_s,
        images_per_s: images as f64 / wall_s.max(1e-9),
    })
}

/// Reads every target's table and label map against the source's classes, so that `validate`
/// reports a bad label map before a run starts.
pub fn check_targets(p: &Pipeline) -> Result<Vec<ResolvedTarget>, PipelineError> {
    let info = source_info(p)?;
    p.targets
        .iter()
        .map(|t| ResolvedTarget::resolve(t, &info.class_names))
        .collect()
}

fn source_info(p: &Pipeline) -> Result<shiftlab_data::reader::DatasetInfo, PipelineError> {
    shiftlab_data::reader::read_info(&p.dataset).map_err(|e| PipelineError::Dataset {
        path: p.dataset.display().to_string(),
        message: e.to_string(),
    })
}

fn parts_of(p: &Pipeline, rows: u64) -> u32 {
    rows.div_ceil(p.part_size as u64) as u32
}

/// Each target with its first part: targets' parts follow the source's, in file order.
fn resolve_targets(
    p: &Pipeline,
    source_classes: &[String],
    source_parts: u32,
) -> Result<Vec<(ResolvedTarget, u32)>, PipelineError> {
    let mut next = source_parts;
    let mut out = Vec::new();
    for t in &p.targets {
        let resolved = ResolvedTarget::resolve(t, source_classes)?;
        let first = next;
        next += parts_of(p, resolved.eval_rows());
        out.push((resolved, first));
    }
    Ok(out)
}

/// Images a part sends through the models: source samples x shifts, or target samples.
fn part_images(
    p: &Pipeline,
    part: u32,
    eval_rows: u64,
    source_parts: u32,
    targets: &[(ResolvedTarget, u32)],
) -> u64 {
    let size = p.part_size as u64;
    let rows_in = |rows: u64, index: u32| rows.saturating_sub(index as u64 * size).min(size);
    if part < source_parts {
        return rows_in(eval_rows, part) * p.shifts.len() as u64;
    }
    targets
        .iter()
        .rev()
        .find(|(_, first)| part >= *first)
        .map_or(0, |(t, first)| rows_in(t.eval_rows(), part - first))
}

fn load_frost(p: &Pipeline) -> Result<FrostAssets, PipelineError> {
    let needs_frost = p
        .shifts
        .iter()
        .any(|s| matches!(s, Shift::Corruption(Corruption::Frost, _)));
    if !needs_frost {
        return Ok(FrostAssets::none());
    }
    FrostAssets::load(&p.frost_dir).map_err(|e| PipelineError::Config {
        file: p.file.display().to_string(),
        line: None,
        key: "shifts.frost_dir".into(),
        message: e.to_string(),
    })
}

fn load_encoders(p: &Pipeline) -> Result<Vec<Encoder>, PipelineError> {
    p.models
        .iter()
        .map(|spec| {
            Encoder::load(spec, &p.runtime).map_err(|e| PipelineError::model(&spec.name, e))
        })
        .collect()
}

fn select(p: &Pipeline) -> Result<Option<std::collections::HashSet<String>>, PipelineError> {
    let Some(filter) = &p.filter else {
        return Ok(None);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| PipelineError::Stage(e.to_string()))?;
    rt.block_on(shiftlab_results::select_ids(
        &p.dataset,
        &p.eval_split,
        filter,
    ))
    .map(Some)
    .map_err(|e| PipelineError::Config {
        file: p.file.display().to_string(),
        line: None,
        key: "source.filter".into(),
        message: e.to_string(),
    })
}

fn count_eval_rows(
    p: &Pipeline,
    info: &shiftlab_data::reader::DatasetInfo,
    selected: Option<&std::collections::HashSet<String>>,
) -> u64 {
    let available = match selected {
        Some(ids) => ids.len() as u64,
        None => info.splits.get(&p.eval_split).copied().unwrap_or(0),
    };
    p.limit.map_or(available, |l| l.min(available))
}

fn progress_bar(show: bool, len: u64) -> ProgressBar {
    if !show {
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

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The run folder.
pub struct RunFolder {
    pub root: PathBuf,
}

impl RunFolder {
    /// Creates the folder, or checks that an existing one belongs to this pipeline.
    fn open(p: &Pipeline) -> Result<Self, PipelineError> {
        let root = p.output.clone();
        let folder_err = |message: String| PipelineError::RunFolder {
            path: root.display().to_string(),
            message,
        };
        let run_json = root.join("run.json");
        if run_json.exists() {
            let text = std::fs::read_to_string(&run_json).map_err(|e| folder_err(e.to_string()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| folder_err(format!("run.json is not valid JSON: {e}")))?;
            let found = v["fingerprint"].as_str().unwrap_or_default();
            if found != p.fingerprint {
                return Err(folder_err(format!(
                    "it holds a run of different settings (fingerprint {found}, this file {}); \
                     choose another pipeline.output or remove the folder",
                    p.fingerprint
                )));
            }
        } else if root.exists()
            && std::fs::read_dir(&root)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
        {
            return Err(folder_err(
                "exists, is not empty and is not a shiftlab run (no run.json)".into(),
            ));
        }
        for sub in [
            "predictions",
            "errors",
            "manifest",
            "cache",
            "runs",
            "stages",
        ] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| PipelineError::io(&d, e))?;
            remove_stale_tmp(&d);
        }
        Ok(RunFolder { root })
    }

    fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    fn write_run_json(&self, p: &Pipeline, parts_total: u32) -> Result<(), PipelineError> {
        let v = serde_json::json!({
            "name": p.name,
            "fingerprint": p.fingerprint,
            "parts_total": parts_total,
            "part_size": p.part_size,
            "preset": p.preset.name(),
            "shifts": p.shifts.len(),
            "targets": p.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            "models": p.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        });
        tables::write_atomic(&self.root.join("run.json"), v.to_string().as_bytes())
    }

    /// Parts whose manifest entry exists.
    pub fn finished_parts(&self) -> Result<BTreeSet<u32>, PipelineError> {
        let dir = self.root.join("manifest");
        let entries = std::fs::read_dir(&dir).map_err(|e| PipelineError::io(&dir, e))?;
        Ok(entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("part-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect())
    }

    fn part_path(&self, table: &str, part: u32) -> PathBuf {
        self.root
            .join(table)
            .join(format!("part-{part:05}.parquet"))
    }

    fn part_files(&self, table: &str, parts_total: u32) -> Vec<PathBuf> {
        (0..parts_total)
            .map(|part| self.part_path(table, part))
            .collect()
    }

    fn write_invocation(
        &self,
        p: &Pipeline,
        row: &RunRow,
        stats: &[StageStats],
        wall_s: f64,
    ) -> Result<(), PipelineError> {
        let err = |e: arrow::error::ArrowError| PipelineError::io(&self.root, e);
        let runs = tables::runs_batch(row).map_err(err)?;
        tables::write_parquet(
            &self
                .root
                .join("runs")
                .join(format!("{}.parquet", row.invocation)),
            &runs,
        )?;
        let st = tables::stages_batch(&p.name, &row.invocation, stats, wall_s).map_err(err)?;
        tables::write_parquet(
            &self
                .root
                .join("stages")
                .join(format!("{}.parquet", row.invocation)),
            &st,
        )
    }
}

fn remove_stale_tmp(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// An open part: its predictions file being written and what makes it whole.
struct OpenPart {
    writer: AtomicParquet,
    errors: ErrorRows,
    received: u64,
    expected: Option<u64>,
    rows: u64,
}

/// Writes prediction rows into per-part files and finishes parts as they become whole.
struct PartSink<'a> {
    p: &'a Pipeline,
    folder: &'a RunFolder,
    open: HashMap<u32, OpenPart>,
    bar: ProgressBar,
    delay: Option<Duration>,
    stages: &'a Stages,
    finished: usize,
    error_count: usize,
    images: u64,
    last_message: Instant,
}

impl<'a> PartSink<'a> {
    fn new(
        p: &'a Pipeline,
        folder: &'a RunFolder,
        bar: ProgressBar,
        delay: Option<Duration>,
        stages: &'a Stages,
    ) -> Self {
        PartSink {
            p,
            folder,
            open: HashMap::new(),
            bar,
            delay,
            stages,
            finished: 0,
            error_count: 0,
            images: 0,
            last_message: Instant::now(),
        }
    }

    fn accept(&mut self, msg: SinkMsg) -> Result<(), PipelineError> {
        crate::eval::slow(self.delay);
        let part = match &msg {
            SinkMsg::Declare { part, .. } | SinkMsg::Item { part, .. } => *part,
        };
        if !self.open.contains_key(&part) {
            let writer = AtomicParquet::create(
                &self.folder.part_path("predictions", part),
                tables::predictions_schema(),
            )?;
            self.open.insert(
                part,
                OpenPart {
                    writer,
                    errors: ErrorRows::default(),
                    received: 0,
                    expected: None,
                    rows: 0,
                },
            );
        }
        let Some(open) = self.open.get_mut(&part) else {
            return Ok(());
        };
        match msg {
            SinkMsg::Declare {
                chunks,
                shifts,
                extra,
                ..
            } => open.expected = Some(chunks as u64 * shifts as u64 + extra as u64),
            SinkMsg::Item { rows, errors, .. } => {
                open.received += 1;
                open.rows += rows.len() as u64;
                self.error_count += errors.len();
                open.errors.extend(errors);
                if !rows.is_empty() {
                    let batch = rows
                        .to_batch()
                        .map_err(|e| PipelineError::io(&self.folder.root, e))?;
                    open.writer.write(&batch)?;
                }
                let per_image = (self.p.models.len() * self.p.probes_count()).max(1) as u64;
                let images = rows.len() as u64 / per_image;
                self.images += images;
                self.bar.inc(images);
            }
        }
        if open.expected == Some(open.received) {
            self.finish(part)?;
        }
        if self.last_message.elapsed() > Duration::from_millis(500) {
            self.last_message = Instant::now();
            if let Some(b) = bottleneck(&self.stages.all()) {
                self.bar.set_message(format!("bottleneck: {}", b.name));
            }
        }
        Ok(())
    }

    /// Commits the part's files, then its manifest entry (the part counts only after that).
    fn finish(&mut self, part: u32) -> Result<(), PipelineError> {
        let Some(open) = self.open.remove(&part) else {
            return Ok(());
        };
        open.writer.commit()?;
        let errors = open
            .errors
            .to_batch(&self.p.name)
            .map_err(|e| PipelineError::io(&self.folder.root, e))?;
        tables::write_parquet(&self.folder.part_path("errors", part), &errors)?;
        let entry = serde_json::json!({
            "part": part,
            "rows": open.rows,
            "errors": open.errors.len(),
            "finished_us": now_us(),
        });
        let path = self
            .folder
            .root
            .join("manifest")
            .join(format!("part-{part:05}.json"));
        tables::write_atomic(&path, entry.to_string().as_bytes())?;
        self.finished += 1;
        Ok(())
    }
}
