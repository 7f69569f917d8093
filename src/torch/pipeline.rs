//! `shiftlab validate`, `run`, `status` and `finish`: pipeline files and their run folders.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use shiftlab_pipeline::folder::InvocationRecord;
use shiftlab_pipeline::{Pipeline, PipelineError, RowFilter, RunFolder, RunOptions, RunSummary};
use shiftlab_results::output::DEFAULT_PRECISION;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// The pipeline TOML file.
    pub file: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The pipeline TOML file.
    pub file: PathBuf,
    /// Run one deterministic slice: parts p with p mod n = k - 1 (e.g. 2/4).
    #[arg(long, value_name = "K/N", default_value = "1/1")]
    pub shard: String,
    /// Stop after this many parts (the run can be resumed).
    #[arg(long, hide = true)]
    pub max_parts: Option<usize>,
    /// Milliseconds of delay per sink item (to observe backpressure).
    #[arg(long, hide = true)]
    pub sink_delay_ms: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Device for the models, overriding `runtime.device` (cpu, cuda, cuda:N; results do not
    /// depend on it beyond floating-point rounding, and resume accepts a change).
    #[arg(long)]
    pub device: Option<String>,
    /// Threads for libtorch and the CPU stages, overriding `runtime.torch_threads` and
    /// `runtime.cpu_workers` (a cluster job passes its allocation).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Only create (or join) the run folder and run the fit phase, then stop.
    #[arg(long)]
    pub prepare_only: bool,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// A run folder.
    pub run: PathBuf,
    /// Name each missing part's shard for this many shards (default: the count the last
    /// invocation used).
    #[arg(long)]
    pub shards: Option<u32>,
}

#[derive(clap::Args, Debug)]
pub struct FinishArgs {
    /// A run folder.
    pub run: PathBuf,
    /// Name each missing part's shard for this many shards (default: the count the last
    /// invocation used).
    #[arg(long)]
    pub shards: Option<u32>,
}

pub fn run_validate(args: &ValidateArgs) -> Result<()> {
    let p = shiftlab_pipeline::load(&args.file)?;
    let targets = shiftlab_pipeline::run::check_targets(&p)
        .with_context(|| format!("pipeline {}", args.file.display()))?;
    for t in &targets {
        let restricted = t
            .allowed
            .as_ref()
            .map_or("all source classes".to_string(), |a| {
                format!("restricted to {} source classes", a.len())
            });
        println!(
            "target '{}': {} rows of split '{}', {} of {} classes mapped, {restricted}",
            t.target.name,
            t.eval_rows(),
            t.target.split,
            t.map.iter().flatten().count(),
            t.map.len()
        );
    }
    let shifts = &p.shifts.list;
    let count = |family: &str| shifts.iter().filter(|s| s.family() == family).count();
    let synthetic = shifts.len() - 1 - count("corruption");
    println!(
        "{}: ok: pipeline '{}', {} model(s), {} probe(s), {} shifts (clean + {} corruption x severity + {} synthetic x severity), {} target dataset(s), preset {}, output {}",
        args.file.display(),
        p.name,
        p.models.len(),
        p.probes_count(),
        shifts.len(),
        count("corruption"),
        synthetic,
        p.shifts.targets.len(),
        p.shifts.preset.name(),
        p.output.display()
    );
    Ok(())
}

pub fn run_run(args: &RunArgs) -> Result<ExitCode> {
    let mut p = shiftlab_pipeline::load(&args.file)?;
    apply_overrides(&mut p, args)?;
    shiftlab_pipeline::interrupt::install();
    let opts = RunOptions {
        shard: parse_shard(&args.shard)?,
        progress: !args.quiet,
        max_parts: args.max_parts,
        sink_delay: sink_delay(args),
        prepare_only: args.prepare_only,
        row_filter: Some(Arc::new(SqlFilter)),
    };
    match shiftlab_pipeline::run(&p, &opts) {
        Ok(summary) if args.prepare_only => {
            println!(
                "prepared {}: {} parts, fit embeddings {}",
                summary.output.display(),
                summary.parts_total,
                summary.fit.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(summary) => {
            print_summary(&summary);
            Ok(ExitCode::SUCCESS)
        }
        Err(PipelineError::Interrupted) => {
            eprintln!(
                "error: pipeline {}: {}",
                args.file.display(),
                PipelineError::Interrupted
            );
            Ok(ExitCode::from(130))
        }
        Err(e) => Err(e).with_context(|| format!("pipeline {}", args.file.display())),
    }
}

/// `--sink-delay-ms`, or `SHIFTLAB_SINK_DELAY_MS` (tests slow the jobs a scheduler starts).
fn sink_delay(args: &RunArgs) -> Option<Duration> {
    args.sink_delay_ms
        .or_else(|| std::env::var("SHIFTLAB_SINK_DELAY_MS").ok()?.parse().ok())
        .map(Duration::from_millis)
}

/// `--device` and `--threads`: runtime knobs, outside the fingerprint.
fn apply_overrides(p: &mut Pipeline, args: &RunArgs) -> Result<()> {
    if let Some(d) = &args.device {
        p.runtime.device = d.parse().with_context(|| format!("--device {d:?}"))?;
    }
    if let Some(n) = args.threads {
        if n == 0 {
            bail!("--threads 0: give at least 1");
        }
        p.runtime.torch_threads = Some(n);
        p.runtime.cpu_workers = n;
    }
    Ok(())
}

/// `source.filter` through DataFusion (the pipeline crate has no SQL engine of its own).
struct SqlFilter;

impl RowFilter for SqlFilter {
    fn select(
        &self,
        dataset: &Path,
        split: &str,
        filter: &str,
    ) -> Result<HashSet<String>, Box<dyn std::error::Error + Send + Sync>> {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        Ok(rt.block_on(shiftlab_results::select_ids(dataset, split, filter))?)
    }
}

/// Shards of the last invocation (`k/n`), for naming a missing part's shard.
fn last_shard_count(invocations: &[InvocationRecord]) -> u32 {
    invocations
        .last()
        .and_then(|r| r.shard.split_once('/'))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1)
}

pub fn run_status(args: &StatusArgs) -> Result<ExitCode> {
    let (folder, info) = RunFolder::open(&args.run)?;
    let invocations = folder.invocations();
    let shards = args
        .shards
        .unwrap_or_else(|| last_shard_count(&invocations));
    let missing = folder.missing_parts(info.parts_total)?;
    let metrics = folder.metrics_path().exists();
    println!(
        "run {} ({}): {} of {} parts finished, {} missing; metrics {}",
        folder.root.display(),
        info.name,
        info.parts_total as usize - missing.len(),
        info.parts_total,
        missing.len(),
        if metrics { "written" } else { "not written" }
    );
    if !missing.is_empty() {
        println!(
            "missing: {}",
            shiftlab_pipeline::run::describe_missing(&missing, shards)
        );
    }
    println!("invocations ({}):", invocations.len());
    for r in &invocations {
        println!(
            "  {}  host {}  pid {}  shard {}  device {}  start {}  end {}  parts {}{}  {}",
            r.id,
            r.host,
            r.pid,
            r.shard,
            if r.device.is_empty() { "-" } else { &r.device },
            utc(r.started_us),
            r.finished_us.map_or("-".to_string(), utc),
            r.parts_done,
            r.slurm_job
                .as_ref()
                .map_or(String::new(), |j| format!("  slurm {j}")),
            r.state()
        );
    }
    Ok(if missing.is_empty() && metrics {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn run_finish(args: &FinishArgs) -> Result<()> {
    let (folder, info) = RunFolder::open(&args.run)?;
    let shards = args
        .shards
        .unwrap_or_else(|| last_shard_count(&folder.invocations()));
    // The pipeline's relative paths are the ones of the folder it ran from.
    std::env::set_current_dir(&info.workdir).with_context(|| {
        format!(
            "cannot enter the run's working folder {}",
            info.workdir.display()
        )
    })?;
    let p = info
        .pipeline()
        .with_context(|| format!("the pipeline recorded in {}/run.json", args.run.display()))?;
    let rows = shiftlab_pipeline::run::finish(&p, &folder, info.parts_total, shards)?;
    println!(
        "metrics: {} rows written to {}",
        rows.len(),
        folder.metrics_path().display()
    );
    print_errors_table(&rows);
    Ok(())
}

/// `2026-12-02 01:33:02` from microseconds since the epoch (UTC).
fn utc(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub fn parse_shard(s: &str) -> Result<(u32, u32)> {
    let parsed = s
        .split_once('/')
        .and_then(|(k, n)| Some((k.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((k, n)) if n >= 1 && (1..=n).contains(&k) => Ok((k, n)),
        _ => bail!("--shard {s:?}: expected K/N with 1 <= K <= N, e.g. 1/4"),
    }
}

fn print_summary(s: &RunSummary) {
    println!(
        "parts: {} finished now, {} of {} missing; {} evaluation images in {:.1} s ({:.0} images/s); {} input(s) skipped (see errors)",
        s.parts_done_now,
        s.parts_missing.len(),
        s.parts_total,
        s.samples,
        s.wall_s,
        s.images_per_s,
        s.errors
    );
    if let Some(b) = shiftlab_pipeline::stage::bottleneck(&s.stages) {
        println!(
            "bottleneck stage: {} ({:.1} s busy per worker)",
            b.name,
            b.busy_s / b.workers.max(1) as f64
        );
    }
    match &s.metrics {
        Some(rows) => print_errors_table(rows),
        None => println!(
            "metrics: not yet; parts still missing: {:?} (other shards, or run again to resume)",
            s.parts_missing
        ),
    }
    println!("outputs: {}", s.output.display());
}

/// Clean error and, per shift family present (corruption, the synthetic families, dataset), the
/// mean error over its shift x severity conditions, per model and probe.
fn print_errors_table(rows: &[shiftlab_pipeline::tables::MetricRow]) {
    let mut families: Vec<&str> = Vec::new();
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in rows {
        if r.shift_family != "clean" && !families.contains(&r.shift_family.as_str()) {
            families.push(&r.shift_family);
        }
        if !keys.contains(&(r.model.as_str(), r.probe.as_str())) {
            keys.push((&r.model, &r.probe));
        }
    }
    let mut header = format!("{:<24} {:<7} {:>8}", "model", "probe", "clean");
    let widths: Vec<usize> = families.iter().map(|f| f.len().max(11)).collect();
    for (f, w) in families.iter().zip(&widths) {
        header.push_str(&format!(" {f:>w$}"));
    }
    println!("error (%), mean over each family's shifts and severities:\n{header}");
    for (model, probe) in keys {
        let of = |family: &str| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| r.model == model && r.probe == probe && r.shift_family == family)
                .map(|r| r.error)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        // The digits `shiftlab query` and the report show (19.85 % = 0.1985).
        let fmt = |v: Option<f64>| match v {
            Some(_) => shiftlab_results::output::percent(v, DEFAULT_PRECISION),
            None => "-".to_string(),
        };
        let mut line = format!("{model:<24} {probe:<7} {:>8}", fmt(of("clean")));
        for (f, w) in families.iter().zip(&widths) {
            line.push_str(&format!(" {:>w$}", fmt(of(f))));
        }
        println!("{line}");
    }
}
