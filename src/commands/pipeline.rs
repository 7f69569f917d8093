//! `shiftlab validate` and `shiftlab run`: pipeline files.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use shiftlab_pipeline::{RunOptions, RunSummary};
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
    let count = |family: &str| p.shifts.iter().filter(|s| s.family() == family).count();
    let synthetic = p.shifts.len() - 1 - count("corruption");
    println!(
        "{}: ok: pipeline '{}', {} model(s), {} probe(s), {} shifts (clean + {} corruption x severity + {} synthetic x severity), {} target dataset(s), preset {}, output {}",
        args.file.display(),
        p.name,
        p.models.len(),
        p.probes_count(),
        p.shifts.len(),
        count("corruption"),
        synthetic,
        p.targets.len(),
        p.preset.name(),
        p.output.display()
    );
    Ok(())
}

pub fn run_run(args: &RunArgs) -> Result<()> {
    let p = shiftlab_pipeline::load(&args.file)?;
    let opts = RunOptions {
        shard: parse_shard(&args.shard)?,
        progress: !args.quiet,
        max_parts: args.max_parts,
        sink_delay: args.sink_delay_ms.map(Duration::from_millis),
    };
    let summary = shiftlab_pipeline::run(&p, &opts)
        .with_context(|| format!("pipeline {}", args.file.display()))?;
    print_summary(&summary);
    Ok(())
}

fn parse_shard(s: &str) -> Result<(u32, u32)> {
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
