//! Pipeline files in TOML: parsed strictly (unknown keys are errors), then validated into a
//! [`Pipeline`] before anything runs, so a mistake is reported with its key and line at once.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use shiftlab_corrupt::{Corruption, Preset, Severity, SyntheticShift};
use shiftlab_model::config::{validate_models, ModelConfig, ModelSpec};
use shiftlab_model::device::{DeviceSpec, Precision, RuntimeOptions};
use toml::Spanned;

use crate::error::PipelineError;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    pub pipeline: PipelineSection,
    pub source: SourceSection,
    #[serde(default)]
    pub shifts: ShiftsSection,
    pub models: Vec<ModelConfig>,
    #[serde(default)]
    pub probes: ProbesSection,
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Dataset-level shifts: other datasets evaluated with the probes fitted on the source.
    #[serde(default)]
    pub targets: Vec<TargetSection>,
}

/// One `[[targets]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    pub name: Spanned<String>,
    pub dataset: Spanned<PathBuf>,
    /// Split of the target table (default: the source's `eval_split`).
    #[serde(default)]
    pub split: Option<String>,
    #[serde(default)]
    pub limit: Option<u64>,
    /// CSV `target,source` of class names or indices (default: match class names).
    #[serde(default)]
    pub label_map: Option<Spanned<PathBuf>>,
    /// Restrict predictions to the source classes the target covers (default true).
    #[serde(default = "default_true")]
    pub restrict: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    pub name: String,
    pub output: Spanned<PathBuf>,
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    pub dataset: Spanned<PathBuf>,
    #[serde(default = "default_eval_split")]
    pub eval_split: String,
    #[serde(default = "default_fit_split")]
    pub fit_split: String,
    /// First `limit` evaluation rows (file order, after the filter).
    #[serde(default)]
    pub limit: Option<u64>,
    /// First `fit_limit` rows of the fit split used to fit the probes.
    #[serde(default)]
    pub fit_limit: Option<u64>,
    /// SQL boolean expression over the dataset's columns, e.g. `label < 5`.
    #[serde(default)]
    pub filter: Option<Spanned<String>>,
}

fn default_eval_split() -> String {
    "test".into()
}
fn default_fit_split() -> String {
    "train".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftsSection {
    #[serde(default = "default_preset")]
    pub preset: Spanned<String>,
    /// `"all"`, `"benchmark15"`, `"extra4"`, `"none"` or a list of names.
    #[serde(default = "default_corruptions")]
    pub corruptions: Spanned<toml::Value>,
    /// Synthetic shifts: `"all"`, `"none"` (default), a family, or a list of shift or family
    /// names.
    #[serde(default = "default_synthetic")]
    pub synthetic: Spanned<toml::Value>,
    #[serde(default = "default_severities")]
    pub severities: Spanned<Vec<i64>>,
    /// Resize (shorter side, bilinear) before shifting, e.g. 28 px Fashion-MNIST to 32.
    #[serde(default)]
    pub resize: Option<u32>,
    /// Centre crop after `resize`, before shifting (ImageNet-C: resize 256, crop 224).
    #[serde(default)]
    pub crop: Option<u32>,
    /// Folder of the frost photos (default: `assets/frost`).
    #[serde(default)]
    pub frost_dir: Option<PathBuf>,
}

impl Default for ShiftsSection {
    fn default() -> Self {
        ShiftsSection {
            preset: default_preset(),
            corruptions: default_corruptions(),
            synthetic: default_synthetic(),
            severities: default_severities(),
            resize: None,
            crop: None,
            frost_dir: None,
        }
    }
}

fn default_preset() -> Spanned<String> {
    Spanned::new(0..0, "imagenet224".into())
}
fn default_corruptions() -> Spanned<toml::Value> {
    Spanned::new(0..0, toml::Value::String("all".into()))
}
fn default_synthetic() -> Spanned<toml::Value> {
    Spanned::new(0..0, toml::Value::String("none".into()))
}
fn default_severities() -> Spanned<Vec<i64>> {
    Spanned::new(0..0, vec![1, 2, 3, 4, 5])
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesSection {
    #[serde(default)]
    pub linear: Option<LinearProbeConfig>,
    #[serde(default)]
    pub knn: Option<KnnConfig>,
    /// Use the `fc` layer stored in each model's weights file as a fixed linear head.
    #[serde(default)]
    pub head: Option<HeadConfig>,
}

/// Multinomial logistic regression on frozen features (see `shiftlab-probe`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinearProbeConfig {
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    #[serde(default = "default_probe_batch")]
    pub batch_size: usize,
}
fn default_epochs() -> usize {
    100
}
fn default_lr() -> f64 {
    1e-2
}
fn default_wd() -> f64 {
    1e-4
}
fn default_probe_batch() -> usize {
    256
}

/// Weighted kNN as in DINO's evaluation.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct KnnConfig {
    #[serde(default = "default_k")]
    pub k: usize,
    #[serde(default = "default_temperature")]
    pub temperature: f64,
}
fn default_k() -> usize {
    20
}
fn default_temperature() -> f64 {
    0.07
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    #[serde(default = "empty")]
    pub device: Spanned<String>,
    #[serde(default = "empty")]
    pub precision: Spanned<String>,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Capacity of every queue between stages, in batches.
    #[serde(default = "default_queue")]
    pub queue_batches: usize,
    /// Threads for decoding and shifting (default: all cores).
    #[serde(default)]
    pub cpu_workers: Option<usize>,
    /// libtorch intra-op threads (default: libtorch's choice).
    #[serde(default)]
    pub torch_threads: Option<usize>,
    /// Samples per output part: the unit of resume and sharding.
    #[serde(default = "default_part")]
    pub part_size: usize,
    /// Images per model call; every call has exactly this many (see `embed_blocked`).
    #[serde(default = "default_embed_block")]
    pub embed_block: usize,
    /// Also write every evaluated image's features to `embeddings/MODEL/` (default false).
    #[serde(default)]
    pub save_embeddings: bool,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            device: Spanned::new(0..0, String::new()),
            precision: Spanned::new(0..0, String::new()),
            batch_size: default_batch(),
            queue_batches: default_queue(),
            cpu_workers: None,
            torch_threads: None,
            part_size: default_part(),
            embed_block: default_embed_block(),
            save_embeddings: false,
        }
    }
}

fn empty() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}
fn default_batch() -> usize {
    256
}
fn default_queue() -> usize {
    4
}
fn default_part() -> usize {
    1024
}
fn default_embed_block() -> usize {
    64
}

/// One shift applied on the fly to every evaluation image of the source: the clean baseline,
/// an ImageNet-C corruption or a synthetic shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shift {
    Clean,
    Corruption(Corruption, Severity),
    Synthetic(SyntheticShift, Severity),
}

impl Shift {
    /// Name in the output tables (`clean` or the shift's name).
    pub fn name(self) -> &'static str {
        match self {
            Shift::Clean => "clean",
            Shift::Corruption(c, _) => c.name(),
            Shift::Synthetic(s, _) => s.name(),
        }
    }

    /// Severity in the output tables: 0 for clean.
    pub fn severity(self) -> i32 {
        match self {
            Shift::Clean => 0,
            Shift::Corruption(_, s) | Shift::Synthetic(_, s) => i32::from(s.get()),
        }
    }

    /// `shift_group`: the corruption's group (noise, blur, ...) or the synthetic family.
    pub fn group(self) -> &'static str {
        match self {
            Shift::Clean => "clean",
            Shift::Corruption(c, _) => c.group().name(),
            Shift::Synthetic(s, _) => s.family(),
        }
    }

    /// `shift_family`: `clean`, `corruption` or the synthetic family.
    pub fn family(self) -> &'static str {
        match self {
            Shift::Clean => "clean",
            Shift::Corruption(..) => FAMILY_CORRUPTION,
            Shift::Synthetic(s, _) => s.family(),
        }
    }
}

/// `shift_family` of the ImageNet-C corruptions.
pub const FAMILY_CORRUPTION: &str = "corruption";
/// `shift_family` of dataset-level shifts (`[[targets]]`).
pub const FAMILY_DATASET: &str = "dataset";
/// `shift_family` of target rows that are ImageNet-C corruptions read from files (released
/// ImageNet-C, CIFAR-10-C), see [`crate::targets::row_columns`].
pub const FAMILY_RELEASED: &str = "released_corruption";

/// A validated `[[targets]]` entry: another dataset evaluated as it is (no on-the-fly shifts).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `shift_group` of its rows (and `shift` unless a row names its own corruption).
    pub name: String,
    pub dataset: PathBuf,
    pub split: String,
    pub limit: Option<u64>,
    pub label_map: Option<PathBuf>,
    pub restrict: bool,
}

/// Which probes to fit and evaluate.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    pub linear: Option<LinearProbeConfig>,
    pub knn: Option<KnnConfig>,
    pub head: bool,
}

/// A validated pipeline, ready to run.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub file: PathBuf,
    /// The file's text, recorded in the `runs` table.
    pub text: String,
    /// SHA-256 of the settings that decide the outputs (resume refuses a different one).
    pub fingerprint: String,
    pub output: PathBuf,
    pub seed: u64,
    pub dataset: PathBuf,
    pub eval_split: String,
    pub fit_split: String,
    pub limit: Option<u64>,
    pub fit_limit: Option<u64>,
    pub filter: Option<String>,
    pub preset: Preset,
    /// Clean first, then every corruption x severity, then every synthetic shift x severity.
    pub shifts: Vec<Shift>,
    /// Dataset-level shifts, evaluated after the source's parts.
    pub targets: Vec<Target>,
    pub resize: Option<u32>,
    pub crop: Option<u32>,
    /// `shifts.frost_dir`; unset: `$SHIFTLAB_FROST_DIR`, else the photos built into the binary.
    pub frost_dir: Option<PathBuf>,
    pub models: Vec<ModelSpec>,
    pub probes: Probes,
    pub runtime: RuntimeOptions,
    pub batch_size: usize,
    pub queue_batches: usize,
    pub cpu_workers: usize,
    pub torch_threads: Option<usize>,
    pub part_size: usize,
    /// Images per model call (results are identical only for equal blocks: see `eval`).
    pub embed_block: usize,
    /// `runtime.save_embeddings`: an output table, so part of the fingerprint.
    pub save_embeddings: bool,
}

/// Reads and validates a pipeline file; relative paths are taken from the current folder.
pub fn load(path: &Path) -> Result<Pipeline, PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::Config {
        file: path.display().to_string(),
        line: None,
        key: String::new(),
        message: format!("cannot read the pipeline file: {e}"),
    })?;
    parse(path, &text)
}

/// Validates pipeline text (named `path` in messages).
pub fn parse(path: &Path, text: &str) -> Result<Pipeline, PipelineError> {
    let ctx = Ctx { path, text };
    let raw: PipelineFile = toml::from_str(text).map_err(|e| ctx.toml_error(&e))?;
    validate(&ctx, raw)
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> Result<T, PipelineError> {
        Err(PipelineError::Config {
            file: self.path.display().to_string(),
            line: if span.is_empty() {
                None
            } else {
                line_of(self.text, span.start)
            },
            key: key.to_string(),
            message: message.into(),
        })
    }

    fn toml_error(&self, e: &toml::de::Error) -> PipelineError {
        let line = e.span().and_then(|s| line_of(self.text, s.start));
        PipelineError::Config {
            file: self.path.display().to_string(),
            line,
            key: String::new(),
            message: e.message().to_string(),
        }
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> Option<usize> {
    let offset = offset.min(text.len());
    Some(
        text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1,
    )
}

fn validate(ctx: &Ctx, raw: PipelineFile) -> Result<Pipeline, PipelineError> {
    let preset = Preset::from_name(raw.shifts.preset.get_ref())
        .or_else(|e| ctx.err(raw.shifts.preset.span(), "shifts.preset", e.to_string()))?;
    let corruptions = corruption_list(ctx, &raw.shifts.corruptions)?;
    let synthetic = synthetic_list(ctx, &raw.shifts.synthetic)?;
    let severities = severity_list(ctx, &raw.shifts.severities)?;
    let mut shifts = vec![Shift::Clean];
    for &c in &corruptions {
        shifts.extend(severities.iter().map(|&s| Shift::Corruption(c, s)));
    }
    for &c in &synthetic {
        shifts.extend(severities.iter().map(|&s| Shift::Synthetic(c, s)));
    }
    let targets = target_list(ctx, &raw.targets, &raw.source.eval_split)?;
    let runtime = runtime_options(ctx, &raw.runtime)?;
    check_positive(ctx, &raw.runtime)?;
    let base = std::env::current_dir().unwrap_or_default();
    let models = validate_models(&raw.models, &base).map_err(|e| PipelineError::Config {
        file: ctx.path.display().to_string(),
        line: model_line(ctx.text, &e.to_string()),
        key: "models".into(),
        message: e.to_string(),
    })?;
    check_model_files(ctx, &models)?;
    if raw.runtime.save_embeddings {
        check_folder_names(ctx, &models)?;
    }
    let dataset_path = raw.source.dataset.get_ref();
    if !dataset_path.is_file() {
        return ctx.err(
            raw.source.dataset.span(),
            "source.dataset",
            format!(
                "{} does not exist (make it with `shiftlab ingest`)",
                dataset_path.display()
            ),
        );
    }
    if models.is_empty() {
        return ctx.err(0..0, "models", "at least one [[models]] entry is needed");
    }
    let probes = Probes {
        linear: raw.probes.linear,
        knn: raw.probes.knn,
        head: raw.probes.head.is_some(),
    };
    if probes.linear.is_none() && probes.knn.is_none() && !probes.head {
        return ctx.err(
            0..0,
            "probes",
            "no probe configured: add [probes.linear], [probes.knn] or [probes.head]",
        );
    }
    if let Some(k) = &probes.knn {
        if k.k == 0 || k.temperature <= 0.0 {
            return ctx.err(0..0, "probes.knn", "k must be >= 1 and temperature > 0");
        }
    }
    let dataset = raw.source.dataset.get_ref().clone();
    let mut pipeline = Pipeline {
        name: raw.pipeline.name,
        file: ctx.path.to_path_buf(),
        text: ctx.text.to_string(),
        output: raw.pipeline.output.into_inner(),
        seed: raw.pipeline.seed,
        dataset,
        eval_split: raw.source.eval_split,
        fit_split: raw.source.fit_split,
        limit: raw.source.limit,
        fit_limit: raw.source.fit_limit,
        filter: raw.source.filter.map(Spanned::into_inner),
        preset,
        shifts,
        targets,
        resize: raw.shifts.resize,
        crop: raw.shifts.crop,
        frost_dir: raw.shifts.frost_dir,
        models,
        probes,
        runtime,
        batch_size: raw.runtime.batch_size,
        queue_batches: raw.runtime.queue_batches,
        cpu_workers: raw
            .runtime
            .cpu_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        torch_threads: raw.runtime.torch_threads,
        part_size: raw.runtime.part_size,
        embed_block: raw.runtime.embed_block,
        save_embeddings: raw.runtime.save_embeddings,
        fingerprint: String::new(),
    };
    pipeline.fingerprint = fingerprint(&pipeline);
    Ok(pipeline)
}

/// Weights and TorchScript files must exist before a run starts.
fn check_model_files(ctx: &Ctx, models: &[ModelSpec]) -> Result<(), PipelineError> {
    for m in models {
        let Some(file) = m.source.file() else {
            continue;
        };
        if !file.is_file() {
            return Err(PipelineError::Config {
                file: ctx.path.display().to_string(),
                line: model_line(ctx.text, &format!("'{}'", m.name)),
                key: "models".into(),
                message: format!("model '{}': file {} does not exist", m.name, file.display()),
            });
        }
    }
    Ok(())
}

/// With `save_embeddings` each model's name is a folder name (`embeddings/MODEL/`).
fn check_folder_names(ctx: &Ctx, models: &[ModelSpec]) -> Result<(), PipelineError> {
    for m in models {
        let safe = m
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !m.name.starts_with('.');
        if !safe {
            return Err(PipelineError::Config {
                file: ctx.path.display().to_string(),
                line: model_line(ctx.text, &format!("'{}'", m.name)),
                key: "models".into(),
                message: format!(
                    "model '{}': with runtime.save_embeddings the name is a folder name \
                     (embeddings/NAME/): use letters, digits, '.', '_' or '-', not starting with '.'",
                    m.name
                ),
            });
        }
    }
    Ok(())
}

fn check_positive(ctx: &Ctx, r: &RuntimeSection) -> Result<(), PipelineError> {
    for (key, v) in [
        ("runtime.batch_size", r.batch_size),
        ("runtime.queue_batches", r.queue_batches),
        ("runtime.part_size", r.part_size),
        ("runtime.embed_block", r.embed_block),
        ("runtime.cpu_workers", r.cpu_workers.unwrap_or(1)),
        ("runtime.torch_threads", r.torch_threads.unwrap_or(1)),
    ] {
        if v == 0 {
            return ctx.err(0..0, key, "must be at least 1");
        }
    }
    Ok(())
}

/// The line of `name = "<model>"` for a model named in an error message.
fn model_line(text: &str, message: &str) -> Option<usize> {
    let name = message.split('\'').nth(1)?;
    let needle = format!("\"{name}\"");
    text.lines()
        .position(|l| l.trim_start().starts_with("name") && l.contains(&needle))
        .map(|i| i + 1)
}

fn corruption_list(ctx: &Ctx, v: &Spanned<toml::Value>) -> Result<Vec<Corruption>, PipelineError> {
    let key = "shifts.corruptions";
    match v.get_ref() {
        toml::Value::String(s) => match s.as_str() {
            "all" => Ok(Corruption::ALL.to_vec()),
            "benchmark15" => Ok(Corruption::BENCHMARK_15.to_vec()),
            "extra4" => Ok(Corruption::EXTRA_4.to_vec()),
            "none" => Ok(Vec::new()),
            name => name.parse::<Corruption>().map(|c| vec![c]).or_else(|e| {
                ctx.err(
                    v.span(),
                    key,
                    format!("{e}; or one of the sets all, benchmark15, extra4, none"),
                )
            }),
        },
        toml::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                let Some(name) = item.as_str() else {
                    return ctx.err(
                        v.span(),
                        key,
                        format!("expected corruption names (strings), found {item}"),
                    );
                };
                let c = name.parse::<Corruption>().or_else(|e| {
                    let hint = match name.parse::<SyntheticShift>() {
                        Ok(_) => {
                            format!("{name} is a synthetic shift: list it in shifts.synthetic")
                        }
                        Err(_) => e.to_string(),
                    };
                    ctx.err(v.span(), key, hint)
                })?;
                if out.contains(&c) {
                    return ctx.err(v.span(), key, format!("{name} is listed twice"));
                }
                out.push(c);
            }
            Ok(out)
        }
        other => ctx.err(
            v.span(),
            key,
            format!("expected \"all\", \"benchmark15\" or a list of names, found {other}"),
        ),
    }
}

/// `shifts.synthetic`: `"all"`, `"none"`, or shift and family names (a string or a list).
fn synthetic_list(
    ctx: &Ctx,
    v: &Spanned<toml::Value>,
) -> Result<Vec<SyntheticShift>, PipelineError> {
    let key = "shifts.synthetic";
    let names: Vec<&str> = match v.get_ref() {
        toml::Value::String(s) if s == "none" => return Ok(Vec::new()),
        toml::Value::String(s) => vec![s.as_str()],
        toml::Value::Array(items) => {
            let mut names = Vec::new();
            for item in items {
                let Some(name) = item.as_str() else {
                    return ctx.err(v.span(), key, format!("expected names, found {item}"));
                };
                names.push(name);
            }
            names
        }
        other => {
            let msg = format!("expected \"all\", \"none\" or a list of names, found {other}");
            return ctx.err(v.span(), key, msg);
        }
    };
    let mut out: Vec<SyntheticShift> = Vec::new();
    for name in names {
        let members = synthetic_members(name).or_else(|e| ctx.err(v.span(), key, e))?;
        for m in members {
            if out.contains(&m) {
                return ctx.err(v.span(), key, format!("{m} is selected twice"));
            }
            out.push(m);
        }
    }
    Ok(out)
}

/// The shifts a name selects: `all`, a family (`geometric`, ...) or one shift.
fn synthetic_members(name: &str) -> Result<Vec<SyntheticShift>, String> {
    if name == "all" {
        return Ok(SyntheticShift::ALL.to_vec());
    }
    if SyntheticShift::FAMILIES.contains(&name) {
        return Ok(SyntheticShift::ALL
            .into_iter()
            .filter(|s| s.family() == name)
            .collect());
    }
    name.parse::<SyntheticShift>()
        .map(|s| vec![s])
        .map_err(|e| {
            if name.parse::<Corruption>().is_ok() {
                format!("{name} is an ImageNet-C corruption: list it in shifts.corruptions")
            } else {
                format!(
                    "{e}; or all, or a family: {}",
                    SyntheticShift::FAMILIES.join(", ")
                )
            }
        })
}

/// Validates `[[targets]]`: unique names that do not clash with shift names, existing files.
fn target_list(
    ctx: &Ctx,
    raw: &[TargetSection],
    eval_split: &str,
) -> Result<Vec<Target>, PipelineError> {
    let mut out: Vec<Target> = Vec::new();
    for t in raw {
        let name = t.name.get_ref().trim();
        let reserved = name == "clean"
            || name.parse::<Corruption>().is_ok()
            || name.parse::<SyntheticShift>().is_ok();
        if name.is_empty() || reserved {
            let msg = format!("target name {name:?} is empty or the name of a shift");
            return ctx.err(t.name.span(), "targets.name", msg);
        }
        if out.iter().any(|o| o.name == name) {
            return ctx.err(
                t.name.span(),
                "targets.name",
                format!("{name} is used twice"),
            );
        }
        let dataset = t.dataset.get_ref();
        if !dataset.is_file() {
            let msg = format!(
                "target '{name}': {} does not exist (make it with `shiftlab ingest`)",
                dataset.display()
            );
            return ctx.err(t.dataset.span(), "targets.dataset", msg);
        }
        if let Some(map) = &t.label_map {
            if !map.get_ref().is_file() {
                let msg = format!(
                    "target '{name}': label map {} does not exist",
                    map.get_ref().display()
                );
                return ctx.err(map.span(), "targets.label_map", msg);
            }
        }
        out.push(Target {
            name: name.to_string(),
            dataset: dataset.clone(),
            split: t.split.clone().unwrap_or_else(|| eval_split.to_string()),
            limit: t.limit,
            label_map: t.label_map.as_ref().map(|m| m.get_ref().clone()),
            restrict: t.restrict,
        });
    }
    Ok(out)
}

fn severity_list(ctx: &Ctx, v: &Spanned<Vec<i64>>) -> Result<Vec<Severity>, PipelineError> {
    let mut out = Vec::new();
    for &s in v.get_ref() {
        let sev =
            Severity::new(s).or_else(|e| ctx.err(v.span(), "shifts.severities", e.to_string()))?;
        if out.contains(&sev) {
            return ctx.err(
                v.span(),
                "shifts.severities",
                format!("severity {s} is listed twice"),
            );
        }
        out.push(sev);
    }
    out.sort();
    Ok(out)
}

fn runtime_options(ctx: &Ctx, r: &RuntimeSection) -> Result<RuntimeOptions, PipelineError> {
    let device = match r.device.get_ref().as_str() {
        "" => DeviceSpec::default(),
        s => s
            .parse::<DeviceSpec>()
            .or_else(|e| ctx.err(r.device.span(), "runtime.device", e.to_string()))?,
    };
    let precision = match r.precision.get_ref().as_str() {
        "" => Precision::default(),
        s => s
            .parse::<Precision>()
            .or_else(|e| ctx.err(r.precision.span(), "runtime.precision", e.to_string()))?,
    };
    Ok(RuntimeOptions { device, precision })
}

/// Hash of the settings that decide the outputs. Runtime knobs (batch size, threads, queue
/// depth, device) are left out: they must not change results, so a resume may change them.
/// `save_embeddings` is in: it decides which tables the folder holds.
fn fingerprint(p: &Pipeline) -> String {
    let decisive = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{}",
        p.dataset,
        p.eval_split,
        p.fit_split,
        p.limit,
        p.fit_limit,
        p.filter,
        p.preset,
        p.shifts,
        p.resize,
        p.crop,
        p.models,
        p.probes,
        p.runtime.precision,
        p.seed,
        p.part_size,
        p.embed_block,
    );
    // Appended only when present, so pipelines without targets keep their fingerprint.
    let decisive = if p.targets.is_empty() {
        decisive
    } else {
        format!("{decisive}|{:?}", p.targets)
    };
    // An output table that a folder made without it lacks: appended (only when on) like targets.
    let decisive = if p.save_embeddings {
        format!("{decisive}|save_embeddings")
    } else {
        decisive
    };
    let digest = Sha256::digest(decisive.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl Pipeline {
    /// Probes evaluated per model.
    pub fn probes_count(&self) -> usize {
        usize::from(self.probes.linear.is_some())
            + usize::from(self.probes.knn.is_some())
            + usize::from(self.probes.head)
    }
}
