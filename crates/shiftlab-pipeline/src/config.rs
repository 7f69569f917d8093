//! Pipeline files in TOML: parsed strictly (unknown keys are errors), then validated into a
//! [`Pipeline`] before anything runs, so a mistake is reported with its key and line at once.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use shiftlab_corrupt::{Corruption, Preset, Severity, SyntheticShift};
use shiftlab_model::config::{validate_models_at, ModelConfig, ModelSpec};
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
    /// Spanned, so a model's message points at its entry.
    pub models: Vec<Spanned<ModelConfig>>,
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

/// `[shifts]`: every value is parsed into its type while the file is read (the errors carry the
/// key and the value's line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftsSection {
    #[serde(default, deserialize_with = "de_preset")]
    pub preset: Preset,
    /// `"all"`, `"benchmark15"`, `"extra4"`, `"none"` or a list of names.
    #[serde(default = "default_corruptions", deserialize_with = "de_corruptions")]
    pub corruptions: Vec<Corruption>,
    /// Synthetic shifts: `"all"`, `"none"` (default), a family, or a list of shift or family
    /// names.
    #[serde(default, deserialize_with = "de_synthetic")]
    pub synthetic: Vec<SyntheticShift>,
    /// Distinct, sorted.
    #[serde(default = "default_severities", deserialize_with = "de_severities")]
    pub severities: Vec<Severity>,
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
            preset: Preset::default(),
            corruptions: default_corruptions(),
            synthetic: Vec::new(),
            severities: default_severities(),
            resize: None,
            crop: None,
            frost_dir: None,
        }
    }
}

fn default_corruptions() -> Vec<Corruption> {
    Corruption::ALL.to_vec()
}
fn default_severities() -> Vec<Severity> {
    Severity::ALL.to_vec()
}

/// A serde error naming the setting; toml adds the value's span (so the line).
fn keyed<E: serde::de::Error>(key: &str, message: impl Display) -> E {
    E::custom(format!("{key}: {message}"))
}

/// A string setting parsed by its type's `FromStr`.
fn parsed<'de, D, T>(d: D, key: &str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let s = String::deserialize(d)?;
    s.parse().map_err(|e| keyed(key, e))
}

fn de_preset<'de, D: Deserializer<'de>>(d: D) -> Result<Preset, D::Error> {
    parsed(d, "shifts.preset")
}

fn de_corruptions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Corruption>, D::Error> {
    let v = toml::Value::deserialize(d)?;
    corruption_list(&v).map_err(|e| keyed("shifts.corruptions", e))
}

fn de_synthetic<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SyntheticShift>, D::Error> {
    let v = toml::Value::deserialize(d)?;
    synthetic_list(&v).map_err(|e| keyed("shifts.synthetic", e))
}

fn de_severities<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Severity>, D::Error> {
    let v = Vec::<i64>::deserialize(d)?;
    severity_list(&v).map_err(|e| keyed("shifts.severities", e))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesSection {
    #[serde(default)]
    pub linear: Option<LinearProbeConfig>,
    #[serde(default, deserialize_with = "de_knn")]
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
/// `[probes.knn]`, checked while it is read (the error carries the table's line).
fn de_knn<'de, D: Deserializer<'de>>(d: D) -> Result<Option<KnnConfig>, D::Error> {
    let knn = KnnConfig::deserialize(d)?;
    if knn.k == 0 || knn.temperature <= 0.0 {
        return Err(keyed("probes.knn", "k must be >= 1 and temperature > 0"));
    }
    Ok(Some(knn))
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
    #[serde(default, deserialize_with = "de_device")]
    pub device: DeviceSpec,
    #[serde(default, deserialize_with = "de_precision")]
    pub precision: Precision,
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
            device: DeviceSpec::default(),
            precision: Precision::default(),
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

/// `runtime.device`; an empty string means the default (`auto`).
fn de_device<'de, D: Deserializer<'de>>(d: D) -> Result<DeviceSpec, D::Error> {
    or_default_when_empty(d, "runtime.device")
}

/// `runtime.precision`; an empty string means the default (`fp32`).
fn de_precision<'de, D: Deserializer<'de>>(d: D) -> Result<Precision, D::Error> {
    or_default_when_empty(d, "runtime.precision")
}

/// Like [`parsed`], but `""` (what the fields held before they were typed) is the default.
fn or_default_when_empty<'de, D, T>(d: D, key: &str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + Default,
    T::Err: Display,
{
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(T::default());
    }
    s.parse().map_err(|e| keyed(key, e))
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

impl Probes {
    /// The configured probes' names (the `probe` column), in the order `probes::build` builds them.
    pub fn names(&self) -> Vec<&'static str> {
        [
            self.linear.as_ref().map(|_| "linear"),
            self.knn.as_ref().map(|_| "knn"),
            self.head.then_some("head"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// A validated pipeline, ready to run: the run's identity at the top, then one section per part
/// of the file; each stage takes only the sections it needs.
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
    pub source: Source,
    pub shifts: Shifts,
    pub models: Vec<ModelSpec>,
    pub probes: Probes,
    pub runtime: Runtime,
}

/// `[source]`: which rows are evaluated and which fit the probes.
#[derive(Debug, Clone)]
pub struct Source {
    pub dataset: PathBuf,
    pub eval_split: String,
    pub fit_split: String,
    pub limit: Option<u64>,
    pub fit_limit: Option<u64>,
    pub filter: Option<String>,
}

/// `[shifts]` and `[[targets]]`: what every evaluation image goes through.
#[derive(Debug, Clone)]
pub struct Shifts {
    pub preset: Preset,
    /// Clean first, then every corruption x severity, then every synthetic shift x severity.
    pub list: Vec<Shift>,
    /// Dataset-level shifts, evaluated after the source's parts.
    pub targets: Vec<Target>,
    pub resize: Option<u32>,
    pub crop: Option<u32>,
    /// `shifts.frost_dir`; unset: `$SHIFTLAB_FROST_DIR`, else the photos built into the binary.
    pub frost_dir: Option<PathBuf>,
}

impl Shifts {
    /// Resize and crop applied when decoding (before any shift).
    pub fn geometry(&self) -> crate::source::Geometry {
        crate::source::Geometry {
            resize: self.resize,
            crop: self.crop,
        }
    }
}

/// `[runtime]`: where and how fast; only `precision`, `part_size` and `embed_block` can change
/// results (they are in the fingerprint).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub device: DeviceSpec,
    pub precision: Precision,
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

impl Runtime {
    /// Device and precision, as the model crate takes them.
    pub fn options(&self) -> RuntimeOptions {
        RuntimeOptions {
            device: self.device,
            precision: self.precision,
        }
    }
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
    let PipelineFile {
        pipeline,
        source,
        shifts,
        models,
        probes,
        runtime,
        targets,
    } = raw;
    let mut list = vec![Shift::Clean];
    for &c in &shifts.corruptions {
        list.extend(shifts.severities.iter().map(|&s| Shift::Corruption(c, s)));
    }
    for &c in &shifts.synthetic {
        list.extend(shifts.severities.iter().map(|&s| Shift::Synthetic(c, s)));
    }
    let targets = target_list(ctx, &targets, &source.eval_split)?;
    check_positive(ctx, &runtime)?;
    let base = std::env::current_dir().unwrap_or_default();
    let specs = validate_models_at(models.iter().map(|m| m.get_ref()), &base)
        .or_else(|(i, e)| ctx.err(models[i].span(), "models", e.to_string()))?;
    check_model_files(ctx, &models, &specs)?;
    if runtime.save_embeddings {
        check_folder_names(ctx, &models, &specs)?;
    }
    let dataset_path = source.dataset.get_ref();
    if !dataset_path.is_file() {
        return ctx.err(
            source.dataset.span(),
            "source.dataset",
            format!(
                "{} does not exist (make it with `shiftlab ingest`)",
                dataset_path.display()
            ),
        );
    }
    if specs.is_empty() {
        return ctx.err(0..0, "models", "at least one [[models]] entry is needed");
    }
    let probes = Probes {
        linear: probes.linear,
        knn: probes.knn,
        head: probes.head.is_some(),
    };
    if probes.linear.is_none() && probes.knn.is_none() && !probes.head {
        return ctx.err(
            0..0,
            "probes",
            "no probe configured: add [probes.linear], [probes.knn] or [probes.head]",
        );
    }
    let mut pipeline = Pipeline {
        name: pipeline.name,
        file: ctx.path.to_path_buf(),
        text: ctx.text.to_string(),
        fingerprint: String::new(),
        output: pipeline.output.into_inner(),
        seed: pipeline.seed,
        source: Source {
            dataset: source.dataset.into_inner(),
            eval_split: source.eval_split,
            fit_split: source.fit_split,
            limit: source.limit,
            fit_limit: source.fit_limit,
            filter: source.filter.map(Spanned::into_inner),
        },
        shifts: Shifts {
            preset: shifts.preset,
            list,
            targets,
            resize: shifts.resize,
            crop: shifts.crop,
            frost_dir: shifts.frost_dir,
        },
        models: specs,
        probes,
        runtime: Runtime {
            device: runtime.device,
            precision: runtime.precision,
            batch_size: runtime.batch_size,
            queue_batches: runtime.queue_batches,
            cpu_workers: runtime
                .cpu_workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            torch_threads: runtime.torch_threads,
            part_size: runtime.part_size,
            embed_block: runtime.embed_block,
            save_embeddings: runtime.save_embeddings,
        },
    };
    pipeline.fingerprint = fingerprint(&pipeline);
    Ok(pipeline)
}

/// Weights and TorchScript files must exist before a run starts.
fn check_model_files(
    ctx: &Ctx,
    raw: &[Spanned<ModelConfig>],
    models: &[ModelSpec],
) -> Result<(), PipelineError> {
    for (entry, m) in raw.iter().zip(models) {
        let Some(file) = m.source.file() else {
            continue;
        };
        if !file.is_file() {
            let msg = format!("model '{}': file {} does not exist", m.name, file.display());
            return ctx.err(entry.span(), "models", msg);
        }
    }
    Ok(())
}

/// With `save_embeddings` each model's name is a folder name (`embeddings/MODEL/`).
fn check_folder_names(
    ctx: &Ctx,
    raw: &[Spanned<ModelConfig>],
    models: &[ModelSpec],
) -> Result<(), PipelineError> {
    for (entry, m) in raw.iter().zip(models) {
        let safe = m
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !m.name.starts_with('.');
        if !safe {
            let msg = format!(
                "model '{}': with runtime.save_embeddings the name is a folder name \
                 (embeddings/NAME/): use letters, digits, '.', '_' or '-', not starting with '.'",
                m.name
            );
            return ctx.err(entry.span(), "models", msg);
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

/// `shifts.corruptions`: a set name, one corruption, or a list of distinct corruptions.
fn corruption_list(v: &toml::Value) -> Result<Vec<Corruption>, String> {
    match v {
        toml::Value::String(s) => match s.as_str() {
            "all" => Ok(Corruption::ALL.to_vec()),
            "benchmark15" => Ok(Corruption::BENCHMARK_15.to_vec()),
            "extra4" => Ok(Corruption::EXTRA_4.to_vec()),
            "none" => Ok(Vec::new()),
            name => name
                .parse::<Corruption>()
                .map(|c| vec![c])
                .map_err(|e| format!("{e}; or one of the sets all, benchmark15, extra4, none")),
        },
        toml::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                let Some(name) = item.as_str() else {
                    return Err(format!("expected corruption names (strings), found {item}"));
                };
                let c = name.parse::<Corruption>().map_err(|e| {
                    match name.parse::<SyntheticShift>() {
                        Ok(_) => {
                            format!("{name} is a synthetic shift: list it in shifts.synthetic")
                        }
                        Err(_) => e.to_string(),
                    }
                })?;
                if out.contains(&c) {
                    return Err(format!("{name} is listed twice"));
                }
                out.push(c);
            }
            Ok(out)
        }
        other => Err(format!(
            "expected \"all\", \"benchmark15\" or a list of names, found {other}"
        )),
    }
}

/// `shifts.synthetic`: `"all"`, `"none"`, or shift and family names (a string or a list).
fn synthetic_list(v: &toml::Value) -> Result<Vec<SyntheticShift>, String> {
    let names: Vec<&str> = match v {
        toml::Value::String(s) if s == "none" => return Ok(Vec::new()),
        toml::Value::String(s) => vec![s.as_str()],
        toml::Value::Array(items) => {
            let mut names = Vec::new();
            for item in items {
                let Some(name) = item.as_str() else {
                    return Err(format!("expected names, found {item}"));
                };
                names.push(name);
            }
            names
        }
        other => {
            return Err(format!(
                "expected \"all\", \"none\" or a list of names, found {other}"
            ))
        }
    };
    let mut out: Vec<SyntheticShift> = Vec::new();
    for name in names {
        for m in synthetic_members(name)? {
            if out.contains(&m) {
                return Err(format!("{m} is selected twice"));
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

/// `shifts.severities`: distinct levels 1..=5, sorted.
fn severity_list(v: &[i64]) -> Result<Vec<Severity>, String> {
    let mut out = Vec::new();
    for &s in v {
        let sev = Severity::new(s).map_err(|e| e.to_string())?;
        if out.contains(&sev) {
            return Err(format!("severity {s} is listed twice"));
        }
        out.push(sev);
    }
    out.sort();
    Ok(out)
}

/// Hash of the settings that decide the outputs. The fields and their order are fixed: existing
/// run folders are checked against it. Runtime knobs (batch size, threads, queue
/// depth, device) are left out: they must not change results, so a resume may change them.
/// `save_embeddings` is in: it decides which tables the folder holds.
fn fingerprint(p: &Pipeline) -> String {
    let decisive = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{}",
        p.source.dataset,
        p.source.eval_split,
        p.source.fit_split,
        p.source.limit,
        p.source.fit_limit,
        p.source.filter,
        p.shifts.preset,
        p.shifts.list,
        p.shifts.resize,
        p.shifts.crop,
        ModelsDecisive(&p.models),
        p.probes,
        p.runtime.precision,
        p.seed,
        p.runtime.part_size,
        p.runtime.embed_block,
    );
    // Appended only when present, so pipelines without targets keep their fingerprint.
    let decisive = if p.shifts.targets.is_empty() {
        decisive
    } else {
        format!("{decisive}|{:?}", p.shifts.targets)
    };
    // An output table that a folder made without it lacks: appended (only when on) like targets.
    let decisive = if p.runtime.save_embeddings {
        format!("{decisive}|save_embeddings")
    } else {
        decisive
    };
    let digest = Sha256::digest(decisive.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The models' part of the fingerprint, in the `Debug` list form fingerprints always had.
struct ModelsDecisive<'a>(&'a [ModelSpec]);

impl std::fmt::Debug for ModelsDecisive<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|m| Verbatim(m.decisive())))
            .finish()
    }
}

/// Text that `Debug` writes as is.
struct Verbatim(String);

impl std::fmt::Debug for Verbatim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Pipeline {
    /// Probes evaluated per model.
    pub fn probes_count(&self) -> usize {
        self.probes.names().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_follow_the_build_order_and_skip_unconfigured_probes() {
        let linear: LinearProbeConfig = toml::from_str("").expect("linear defaults");
        let knn: KnnConfig = toml::from_str("").expect("knn defaults");
        let all = Probes {
            linear: Some(linear),
            knn: Some(knn.clone()),
            head: true,
        };
        assert_eq!(all.names(), ["linear", "knn", "head"]);
        let knn_only = Probes {
            linear: None,
            knn: Some(knn),
            head: false,
        };
        assert_eq!(knn_only.names(), ["knn"]);
    }

    /// Every kind of decisive setting; paths are relative (the crate folder is the tests' current
    /// folder) so the fingerprint does not depend on where the checkout lies.
    const FULL: &str = r#"
[pipeline]
name = "golden"
output = "runs/golden"
seed = 7

[source]
dataset = "Cargo.toml"
eval_split = "test"
fit_split = "train"
limit = 50
fit_limit = 80
filter = "label < 5"

[shifts]
preset = "cifar32"
corruptions = ["gaussian_noise", "frost"]
synthetic = ["rotation", "photometric"]
severities = [3, 1]
resize = 32
crop = 30

[[models]]
name = "random-a"
architecture = "resnet18-small"
input_size = 32
channels = 1
normalize = { mean = [0.5], std = [0.25] }
seed = 3

[[models]]
name = "random-b"
architecture = "vit-ti16"
input_size = 32
pool = "mean"

[probes.linear]
epochs = 5
[probes.knn]
k = 4
[probes.head]

[runtime]
device = "cpu"
precision = "bf16"
batch_size = 9
part_size = 17
embed_block = 8

[[targets]]
name = "other"
dataset = "Cargo.toml"
split = "val"
limit = 4
label_map = "Cargo.toml"
restrict = false
"#;

    /// The fingerprint keys existing run folders: these values were computed by the code before
    /// the pipeline was split into sections, so a change here breaks every resume.
    #[test]
    fn fingerprint_is_stable_for_existing_run_folders() {
        let fp = |text: &str| {
            parse(Path::new("golden.toml"), text)
                .map(|p| p.fingerprint)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(fp(FULL), "be3828c88e9911d5");
        let no_targets = FULL.split("[[targets]]").next().unwrap_or_default();
        assert_eq!(fp(no_targets), "d4d2664924d384ed");
    }

    /// `text` with `from` replaced by `to`, its error message, and the 1-based line holding
    /// `needle` in the new text (counted here by hand).
    fn error_at(from: &str, to: &str, needle: &str) -> (String, usize) {
        assert!(FULL.contains(from), "{from}");
        let text = FULL.replacen(from, to, 1);
        let line = text
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle}"));
        match parse(Path::new("golden.toml"), &text) {
            Ok(_) => panic!("{to:?} was accepted"),
            Err(e) => (e.to_string(), line),
        }
    }

    #[test]
    fn typed_values_are_reported_with_their_key_and_line() {
        let cases = [
            (
                "device = \"cpu\"",
                "device = \"tpu\"",
                "\"tpu\"",
                "runtime.device",
            ),
            (
                "precision = \"bf16\"",
                "precision = \"fp8\"",
                "fp8",
                "runtime.precision",
            ),
            (
                "preset = \"cifar32\"",
                "preset = \"cifar\"",
                "\"cifar\"",
                "shifts.preset",
            ),
            ("\"frost\"]", "\"frosty\"]", "frosty", "shifts.corruptions"),
            (
                "\"frost\"]",
                "\"rotation\"]",
                "corruptions =",
                "shifts.corruptions",
            ),
            (
                "\"photometric\"]",
                "\"gaussian_noise\"]",
                "synthetic =",
                "shifts.synthetic",
            ),
            ("[3, 1]", "[3, 3]", "[3, 3]", "shifts.severities"),
            ("[3, 1]", "[3, 6]", "[3, 6]", "shifts.severities"),
            ("k = 4", "k = 0", "k = 0", "probes.knn"),
        ];
        for (from, to, needle, key) in cases {
            let (msg, line) = error_at(from, to, needle);
            let want = format!("golden.toml:{line}: {key}: ");
            // The knn table's span starts at its header, the line above `k`.
            let want_knn = format!("golden.toml:{}: {key}: ", line - 1);
            assert!(
                msg.starts_with(&want) || (key == "probes.knn" && msg.starts_with(&want_knn)),
                "{to}: {msg}"
            );
        }
    }

    #[test]
    fn a_model_error_points_at_its_entry() {
        let (msg, line) = error_at(
            "pool = \"mean\"",
            "pool = \"mean\"\nweights = \"no/such.safetensors\"",
            "name = \"random-b\"",
        );
        assert!(
            msg.contains("model 'random-b'") && msg.contains("no/such.safetensors"),
            "{msg}"
        );
        // The entry's span starts at its `[[models]]` header, the line above its name.
        assert!(
            msg.starts_with(&format!("golden.toml:{}: models: ", line - 1)),
            "{msg}"
        );
        let (msg, line) = error_at(
            "name = \"random-b\"",
            "name = \"random-a\"",
            "pool = \"mean\"",
        );
        assert!(
            msg.contains("'random-a'") && msg.contains("used by another model"),
            "{msg}"
        );
        // The second entry's header: four lines above its `pool`.
        assert!(
            msg.starts_with(&format!("golden.toml:{}: models: ", line - 4)),
            "{msg}"
        );
    }
}
