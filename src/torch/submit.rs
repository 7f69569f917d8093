//! `shiftlab submit`: one pipeline's run split over a cluster by its own scheduler.
//!
//! Slurm: a prepare job (creates the run folder, runs the fit phase once), a job array of the
//! shards (each `shiftlab run P --shard K/N`, requeue-safe: a requeued task resumes), and a
//! finish job (`afterany`: it runs even when a task failed, and `shiftlab finish` then names what
//! is missing). The scripts and job ids land in `RUN/slurm/`; they call this installation's
//! `shiftlab` and the pipeline by absolute paths and enter the folder `submit` ran in, so they
//! run from any node that shares the file system.
//!
//! Kubernetes: an Indexed Job manifest (completion index -> shard), written for `kubectl apply`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use shiftlab_pipeline::{Pipeline, RunFolder, RunOptions};

#[derive(Subcommand, Debug)]
pub enum SubmitCommand {
    /// Slurm: a prepare job, a job array of the shards and a finish job.
    Slurm(SlurmArgs),
    /// Kubernetes: an Indexed Job manifest of the shards (written, not applied).
    K8s(K8sArgs),
}

/// What every scheduler needs to know about the job.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// The pipeline TOML file.
    pub pipeline: PathBuf,
    /// Number of shards (array tasks / completion indexes).
    #[arg(long)]
    pub shards: u32,
    /// GPUs per shard (0: CPU only). A shard uses device 0 of the GPUs it is given.
    #[arg(long, default_value_t = 0)]
    pub gpus_per_shard: u32,
    /// CPU cores per shard (its libtorch and CPU-stage threads).
    #[arg(long, default_value_t = 1)]
    pub cpus_per_shard: u32,
    /// Memory per shard (scheduler syntax, e.g. 16G).
    #[arg(long)]
    pub mem: Option<String>,
    /// At most this many shards at once.
    #[arg(long)]
    pub max_parallel: Option<u32>,
    /// Print what would be submitted; write and submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The shiftlab program the jobs run (default: this installation's).
    #[arg(long, value_name = "PATH")]
    pub shiftlab: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct SlurmArgs {
    #[command(flatten)]
    pub common: Common,
    /// Time limit per job (Slurm syntax, e.g. 04:00:00).
    #[arg(long)]
    pub time: Option<String>,
    #[arg(long)]
    pub partition: Option<String>,
    /// One more `#SBATCH` line for every job (repeatable), e.g. --sbatch-arg=--account=lab.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Block until the finish job ends; exit 0 only if the run is complete.
    #[arg(long)]
    pub wait: bool,
    /// Submit only the shards that still have unfinished parts.
    #[arg(long)]
    pub missing_only: bool,
}

#[derive(clap::Args, Debug)]
pub struct K8sArgs {
    #[command(flatten)]
    pub common: Common,
    /// The container image (with shiftlab installed and on PATH as `shiftlab`, unless
    /// --shiftlab names it).
    #[arg(long)]
    pub image: String,
    /// The PersistentVolumeClaim that holds the working folder (data, models, runs), mounted at
    /// the same path as here.
    #[arg(long, default_value = "shiftlab-work")]
    pub pvc: String,
    /// Retries per index before it counts as failed.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
}

pub fn run_submit(cmd: &SubmitCommand) -> Result<ExitCode> {
    match cmd {
        SubmitCommand::Slurm(args) => slurm(args),
        SubmitCommand::K8s(args) => k8s(args),
    }
}

/// A checked job: the pipeline, its run folder and what the scripts name.
struct Plan {
    p: Pipeline,
    parts_total: u32,
    shards: u32,
    /// Absolute paths.
    pipeline: PathBuf,
    workdir: PathBuf,
    run: PathBuf,
    shiftlab: PathBuf,
}

fn plan(c: &Common) -> Result<Plan> {
    if c.shards == 0 {
        bail!("--shards 0: give at least 1");
    }
    if c.cpus_per_shard == 0 {
        bail!("--cpus-per-shard 0: give at least 1");
    }
    if c.max_parallel == Some(0) {
        bail!("--max-parallel 0: give at least 1");
    }
    let p = shiftlab_pipeline::load(&c.pipeline)?;
    let parts_total = shiftlab_pipeline::run::parts_total(&p, &RunOptions::default())
        .with_context(|| format!("pipeline {}", c.pipeline.display()))?;
    if c.shards > parts_total {
        bail!(
            "--shards {}: the run has only {parts_total} parts (part_size {} over the evaluation \
             rows); use at most {parts_total} shards or a smaller runtime.part_size",
            c.shards,
            p.runtime.part_size
        );
    }
    let workdir = std::env::current_dir().context("cannot read the current folder")?;
    let run = workdir.join(&p.output);
    check_folder(&p, &run)?;
    let shiftlab = match &c.shiftlab {
        Some(s) => workdir.join(s),
        None => default_shiftlab()?,
    };
    Ok(Plan {
        pipeline: workdir.join(&c.pipeline),
        parts_total,
        shards: c.shards,
        workdir,
        run,
        shiftlab,
        p,
    })
}

/// A folder that holds another run's settings is refused before anything is submitted.
fn check_folder(p: &Pipeline, run: &Path) -> Result<()> {
    if !run.join("run.json").exists() {
        return Ok(());
    }
    let (_, info) = RunFolder::open(run)?;
    if info.fingerprint != p.fingerprint {
        bail!(
            "run folder {}: it holds a run of different settings (fingerprint {}, this file {}); \
             choose another pipeline.output or remove the folder",
            run.display(),
            info.fingerprint,
            p.fingerprint
        );
    }
    Ok(())
}

/// The `shiftlab` program beside this one (what users type), by absolute path.
fn default_shiftlab() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find where this program is")?;
    let beside = exe.with_file_name("shiftlab");
    let chosen = if beside.is_file() { beside } else { exe };
    Ok(chosen.canonicalize().unwrap_or(chosen))
}

/// Single-quoted for a POSIX shell.
fn sh(s: &Path) -> String {
    sh_str(&s.display().to_string())
}

fn sh_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shards whose parts are not all finished (all of them when the folder is new).
fn shards_to_run(plan: &Plan, missing_only: bool) -> Result<BTreeSet<u32>> {
    let all: BTreeSet<u32> = (1..=plan.shards).collect();
    if !missing_only || !plan.run.join("run.json").exists() {
        return Ok(all);
    }
    let (folder, info) = RunFolder::open(&plan.run)?;
    let missing = folder.missing_parts(info.parts_total)?;
    Ok(missing
        .iter()
        .map(|&p| shiftlab_pipeline::run::shard_of(p, plan.shards))
        .collect())
}

/// `1-4%2` or `2,4`.
fn array_spec(shards: &BTreeSet<u32>, total: u32, max_parallel: Option<u32>) -> String {
    let list = if shards.len() as u32 == total {
        format!("1-{total}")
    } else {
        shards
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    match max_parallel {
        Some(m) => format!("{list}%{m}"),
        None => list,
    }
}

struct Scripts {
    prepare: String,
    shards: String,
    finish: String,
}

fn slurm_scripts(plan: &Plan, args: &SlurmArgs, array: &str) -> Scripts {
    let c = &args.common;
    let logs = plan.run.join("slurm").join("logs");
    let name = format!("shiftlab-{}", plan.p.name);
    let header = |job: &str, log: &str, heavy: bool| {
        let mut h = String::from("#!/bin/bash\n");
        let mut line = |s: String| {
            let _ = writeln!(h, "#SBATCH {s}");
        };
        line(format!("--job-name={name}-{job}"));
        line(format!("--chdir={}", plan.workdir.display()));
        line(format!("--output={}", logs.join(log).display()));
        line("--open-mode=append".into());
        if heavy {
            line(format!("--cpus-per-task={}", c.cpus_per_shard));
            if c.gpus_per_shard > 0 {
                line(format!("--gres=gpu:{}", c.gpus_per_shard));
            }
            if let Some(m) = &c.mem {
                line(format!("--mem={m}"));
            }
        } else {
            line("--cpus-per-task=1".into());
        }
        if let Some(t) = &args.time {
            line(format!("--time={t}"));
        }
        if let Some(p) = &args.partition {
            line(format!("--partition={p}"));
        }
        for a in &args.sbatch_args {
            line(a.clone());
        }
        h
    };
    let device = if c.gpus_per_shard > 0 {
        // Slurm hides the other GPUs: device 0 is the first one this task was given.
        "cuda:0"
    } else {
        "cpu"
    };
    let run_cmd = |extra: &str| {
        format!(
            "exec {} run {} --quiet --device {device} --threads \"${{SLURM_CPUS_PER_TASK:-{}}}\" {extra}\n",
            sh(&plan.shiftlab),
            sh(&plan.pipeline),
            c.cpus_per_shard
        )
    };
    let body =
        "set -euo pipefail\necho \"[$(date -u +%FT%TZ)] $SLURM_JOB_ID on $(hostname): start\"\n";
    let prepare = format!(
        "{}{body}{}",
        header("prepare", "prepare.log", true),
        run_cmd("--prepare-only")
    );
    let mut shards_h = header("shard", "shard-%a.log", true);
    let _ = writeln!(shards_h, "#SBATCH --array={array}");
    shards_h.push_str("#SBATCH --requeue\n");
    let shards = format!(
        "{shards_h}{body}{}",
        run_cmd(&format!(
            "--shard \"${{SLURM_ARRAY_TASK_ID}}/{}\"",
            plan.shards
        ))
    );
    let finish = format!(
        "{}{body}exec {} finish {} --shards {}\n",
        header("finish", "finish.log", false),
        sh(&plan.shiftlab),
        sh(&plan.run),
        plan.shards
    );
    Scripts {
        prepare,
        shards,
        finish,
    }
}

fn slurm(args: &SlurmArgs) -> Result<ExitCode> {
    let plan = plan(&args.common)?;
    let todo = shards_to_run(&plan, args.missing_only)?;
    let complete = todo.is_empty() && plan.run.join("metrics.parquet").exists();
    if complete {
        println!("{}: complete; nothing to submit", plan.run.display());
        return Ok(ExitCode::SUCCESS);
    }
    let array = array_spec(&todo, plan.shards, args.common.max_parallel);
    let scripts = slurm_scripts(&plan, args, &array);
    let need_prepare = !plan.run.join("run.json").exists();
    if args.common.dry_run {
        print_dry_run(&scripts, need_prepare, !todo.is_empty());
        return Ok(ExitCode::SUCCESS);
    }
    let sbatch = find_program("sbatch").context(
        "sbatch was not found on PATH: submit from a Slurm login node (or load the slurm module)",
    )?;
    let dir = plan.run.join("slurm");
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        shiftlab_common::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    let prepare = write("prepare.sbatch", &scripts.prepare)?;
    let shards = write("shards.sbatch", &scripts.shards)?;
    let finish = write("finish.sbatch", &scripts.finish)?;
    let mut submitted: Vec<String> = Vec::new();
    let result = submit_all(
        &sbatch,
        &mut submitted,
        need_prepare.then_some(prepare.as_path()),
        (!todo.is_empty()).then_some(shards.as_path()),
        &finish,
        args.wait,
    );
    let ids = match result {
        Ok(ids) => ids,
        Err(e) => {
            cancel(&submitted);
            return Err(e.context("nothing was left submitted"));
        }
    };
    record_jobs(&dir, &ids, &array)?;
    println!(
        "submitted {}: prepare {}, shards {} (array {array}), finish {}; scripts and logs in {}",
        plan.p.name,
        ids.prepare.as_deref().unwrap_or("-"),
        ids.array.as_deref().unwrap_or("-"),
        ids.finish,
        dir.display()
    );
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let (folder, info) = RunFolder::open(&plan.run)?;
    let missing = folder.missing_parts(info.parts_total)?;
    if missing.is_empty() && folder.metrics_path().exists() && ids.finish_ok {
        println!(
            "run complete: metrics in {}",
            folder.metrics_path().display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: run {} is not complete: {} of {} parts missing ({}); resubmit with --missing-only",
            plan.run.display(),
            missing.len(),
            info.parts_total,
            shiftlab_pipeline::run::describe_missing(&missing, plan.shards)
        );
        Ok(ExitCode::FAILURE)
    }
}

fn print_dry_run(s: &Scripts, prepare: bool, shards: bool) {
    if prepare {
        println!("# prepare.sbatch (sbatch --parsable)\n{}", s.prepare);
    }
    if shards {
        println!(
            "# shards.sbatch (sbatch --parsable --kill-on-invalid-dep=yes --dependency=afterok:PREPARE)\n{}",
            s.shards
        );
    }
    println!(
        "# finish.sbatch (sbatch --parsable --dependency=afterany:SHARDS)\n{}",
        s.finish
    );
    println!("# dry run: nothing written, nothing submitted");
}

struct JobIds {
    prepare: Option<String>,
    array: Option<String>,
    finish: String,
    /// With --wait: the finish job exited 0.
    finish_ok: bool,
}

fn submit_all(
    sbatch: &Path,
    submitted: &mut Vec<String>,
    prepare: Option<&Path>,
    shards: Option<&Path>,
    finish: &Path,
    wait: bool,
) -> Result<JobIds> {
    let prepare_id = match prepare {
        Some(script) => Some(sbatch_submit(sbatch, script, &[])?),
        None => None,
    };
    submitted.extend(prepare_id.clone());
    let array_id = match shards {
        Some(script) => {
            let mut extra = vec!["--kill-on-invalid-dep=yes".to_string()];
            if let Some(id) = &prepare_id {
                extra.push(format!("--dependency=afterok:{id}"));
            }
            Some(sbatch_submit(sbatch, script, &extra)?)
        }
        None => None,
    };
    submitted.extend(array_id.clone());
    let after = array_id.as_ref().or(prepare_id.as_ref());
    let mut extra: Vec<String> = after
        .map(|id| vec![format!("--dependency=afterany:{id}")])
        .unwrap_or_default();
    if !wait {
        let finish_id = sbatch_submit(sbatch, finish, &extra)?;
        return Ok(JobIds {
            prepare: prepare_id,
            array: array_id,
            finish: finish_id,
            finish_ok: false,
        });
    }
    extra.push("--wait".into());
    let out = sbatch_output(sbatch, finish, &extra)?;
    let finish_id = parse_job_id(&String::from_utf8_lossy(&out.stdout)).unwrap_or_default();
    if finish_id.is_empty() && !out.status.success() {
        bail!(
            "sbatch refused {}: {}",
            finish.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(JobIds {
        prepare: prepare_id,
        array: array_id,
        finish: finish_id,
        finish_ok: out.status.success(),
    })
}

fn sbatch_output(sbatch: &Path, script: &Path, extra: &[String]) -> Result<std::process::Output> {
    Command::new(sbatch)
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .with_context(|| format!("cannot run {}", sbatch.display()))
}

/// Submits `script`; the job id, or Slurm's refusal as the error.
fn sbatch_submit(sbatch: &Path, script: &Path, extra: &[String]) -> Result<String> {
    let out = sbatch_output(sbatch, script, extra)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match parse_job_id(&stdout) {
        Some(id) if out.status.success() => Ok(id),
        _ => bail!(
            "sbatch refused {} (exit {}): {}",
            script.display(),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// `--parsable` prints `JOBID` or `JOBID;CLUSTER`.
fn parse_job_id(stdout: &str) -> Option<String> {
    let first = stdout.lines().find(|l| !l.trim().is_empty())?;
    let id = first.split(';').next()?.trim();
    id.chars()
        .all(|c| c.is_ascii_digit())
        .then(|| id.to_string())
        .filter(|s| !s.is_empty())
}

fn cancel(ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    if let Some(scancel) = find_program("scancel") {
        let _ = Command::new(scancel).args(ids).status();
    }
}

/// Appends this submission's job ids to `RUN/slurm/jobs.jsonl`.
fn record_jobs(dir: &Path, ids: &JobIds, array: &str) -> Result<()> {
    let path = dir.join("jobs.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    let line = serde_json::json!({
        "submitted_us": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64),
        "prepare": ids.prepare,
        "array": ids.array,
        "array_spec": array,
        "finish": ids.finish,
    });
    text.push_str(&line.to_string());
    text.push('\n');
    shiftlab_common::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn k8s(args: &K8sArgs) -> Result<ExitCode> {
    let plan = plan(&args.common)?;
    let c = &args.common;
    let shiftlab = match &c.shiftlab {
        Some(s) => s.display().to_string(),
        None => "shiftlab".to_string(),
    };
    let device = if c.gpus_per_shard > 0 {
        "cuda:0"
    } else {
        "cpu"
    };
    let mut limits = format!("              cpu: \"{}\"\n", c.cpus_per_shard);
    if let Some(m) = &c.mem {
        let _ = writeln!(limits, "              memory: \"{m}\"");
    }
    if c.gpus_per_shard > 0 {
        let _ = writeln!(limits, "              nvidia.com/gpu: {}", c.gpus_per_shard);
    }
    let command = format!(
        "exec {} run {} --quiet --device {device} --threads {} --shard $((JOB_COMPLETION_INDEX + 1))/{}",
        sh_str(&shiftlab),
        sh(&plan.pipeline),
        c.cpus_per_shard,
        plan.shards
    );
    let name = k8s_name(&plan.p.name);
    let manifest = format!(
        "# shiftlab {version}: {shards} shards of pipeline {pipeline} ({parts} parts).\n\
         # Apply with `kubectl apply -f`; every index runs `shiftlab run --shard K/N` and resumes\n\
         # when retried. When all indexes succeeded, run `shiftlab finish {run}` (or any shard's\n\
         # rerun) to write metrics. Not tested against a cluster: see docs/scale-out.md.\n\
         apiVersion: batch/v1\n\
         kind: Job\n\
         metadata:\n  name: {name}\n\
         spec:\n  completionMode: Indexed\n  completions: {shards}\n  parallelism: {parallel}\n  \
         backoffLimitPerIndex: {retries}\n  maxFailedIndexes: {shards}\n  backoffLimit: {backoff}\n  \
         template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: shard\n          \
         image: {image}\n          workingDir: {workdir}\n          command: [\"/bin/sh\", \"-c\"]\n          \
         args:\n            - {command_yaml}\n          resources:\n            limits:\n{limits}          \
         volumeMounts:\n            - name: work\n              mountPath: {workdir}\n      \
         volumes:\n        - name: work\n          persistentVolumeClaim:\n            claimName: {pvc}\n",
        version = env!("CARGO_PKG_VERSION"),
        shards = plan.shards,
        pipeline = plan.pipeline.display(),
        parts = plan.parts_total,
        run = plan.run.display(),
        parallel = c.max_parallel.unwrap_or(plan.shards).min(plan.shards),
        retries = args.retries,
        backoff = u64::from(args.retries + 1) * u64::from(plan.shards),
        image = yaml_str(&args.image),
        workdir = yaml_str(&plan.workdir.display().to_string()),
        command_yaml = yaml_str(&command),
        pvc = yaml_str(&args.pvc),
    );
    if c.dry_run {
        print!("{manifest}");
        println!("# dry run: nothing written");
        return Ok(ExitCode::SUCCESS);
    }
    let path = plan.run.join("k8s").join("indexed-job.yaml");
    shiftlab_common::write_atomic(&path, manifest.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "wrote {} (kubectl apply -f {})",
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A Kubernetes object name: lower-case alphanumerics and '-', at most 63 characters.
fn k8s_name(name: &str) -> String {
    let mut s: String = format!("shiftlab-{name}")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.truncate(63);
    s.trim_end_matches('-').to_string()
}

/// A double-quoted YAML scalar.
fn yaml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_and_array_specs() {
        assert_eq!(parse_job_id("1234\n"), Some("1234".into()));
        assert_eq!(parse_job_id("1234;cluster\n"), Some("1234".into()));
        assert_eq!(parse_job_id("sbatch: error\n"), None);
        let all: BTreeSet<u32> = (1..=4).collect();
        assert_eq!(array_spec(&all, 4, None), "1-4");
        assert_eq!(array_spec(&all, 4, Some(2)), "1-4%2");
        let some: BTreeSet<u32> = [2, 4].into_iter().collect();
        assert_eq!(array_spec(&some, 4, None), "2,4");
        assert_eq!(sh_str("a'b"), r"'a'\''b'");
        assert_eq!(k8s_name("Fashion_MNIST C"), "shiftlab-fashion-mnist-c");
    }
}
