//! `shiftlab submit slurm` on a real one-node Slurm cluster (Debian's slurm-wlm, started and
//! stopped by scripts/slurm-cluster.sh): a four-shard run submitted with --wait equals a
//! single-process run; with one array task cancelled mid-run (`scancel`), `status` names its
//! missing parts and exits non-zero, and `--missing-only --wait` completes the run.
//!
//! The cluster's packages are installed by `make test`'s set-up (scripts/slurm-cluster.sh
//! install); without them this test fails under CI and is skipped (with a message) elsewhere.
// Runs pipelines: needs the libtorch build (`shiftlab-torch`).
#![cfg(feature = "torch")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::pipelines::{check_run, pipeline, run_dir, FEW_SHIFTS};
use common::{fmnist, ok, root, text};

const RUNTIME: &str =
    "[runtime]\nbatch_size = 4\npart_size = 4\ncpu_workers = 1\ntorch_threads = 1";

fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The local cluster, stopped (by its pid files) when dropped.
struct Cluster {
    state: PathBuf,
    conf: String,
}

impl Cluster {
    fn start(state: &Path) -> Cluster {
        let out = cluster_script("start", state);
        assert!(
            out.status.success(),
            "slurm-cluster.sh start:\n{}",
            text(&out)
        );
        let env = std::fs::read_to_string(state.join("env")).expect("the cluster's env file");
        let conf = env
            .lines()
            .find_map(|l| l.trim().strip_prefix("export SLURM_CONF="))
            .map(|v| v.trim_matches(|c| c == '"' || c == '\'').to_string())
            .expect("SLURM_CONF in the env file");
        Cluster {
            state: state.to_path_buf(),
            conf,
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(root()).env("SLURM_CONF", &self.conf);
        c
    }

    fn shiftlab(&self, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_shiftlab"))
            .args(args)
            .output()
            .expect("shiftlab runs")
    }

    /// The job's state (`RUNNING`, `PENDING`, ...), or None once Slurm forgot it.
    fn job_state(&self, job: &str) -> Option<String> {
        let out = self
            .command("squeue")
            .args(["-h", "-j", job, "-o", "%T"])
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let t = Instant::now();
        while !done() {
            assert!(
                t.elapsed() < Duration::from_secs(240),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = cluster_script("stop", &self.state);
    }
}

fn cluster_script(command: &str, state: &Path) -> Output {
    Command::new("bash")
        .arg(root().join("scripts/slurm-cluster.sh"))
        .arg(command)
        .env("SHIFTLAB_SLURM_DIR", state)
        .output()
        .expect("bash runs")
}

fn have_slurm() -> bool {
    ["sbatch", "slurmctld", "slurmd", "munged"].iter().all(|p| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
    }) || Path::new("/usr/sbin/slurmctld").exists() && Path::new("/usr/bin/sbatch").exists()
}

/// The last submission's job ids in RUN/slurm/jobs.jsonl: (array, finish).
fn last_jobs(run: &Path) -> (String, String) {
    let text = std::fs::read_to_string(run.join("slurm/jobs.jsonl")).expect("jobs.jsonl");
    let last = text.lines().last().expect("a submission");
    let v: serde_json::Value = serde_json::from_str(last).expect("json");
    (
        v["array"].as_str().expect("array id").to_string(),
        v["finish"].as_str().expect("finish id").to_string(),
    )
}

#[test]
fn submit_wait_cancel_and_missing_only_on_a_local_cluster() {
    if !have_slurm() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Slurm is not installed: `make test` installs it (scripts/slurm-cluster.sh install)"
        );
        eprintln!("skipped: Slurm is not installed (bash scripts/slurm-cluster.sh install)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(&dir.path().join("slurm"));
    let whole = pipeline(dir.path(), "whole", fmnist(), FEW_SHIFTS, RUNTIME, 16);
    ok(&["run", "--quiet", utf8(&whole)]);

    // Nothing submitted on bad input.
    let zero = cluster.shiftlab(&["submit", "slurm", utf8(&whole), "--shards", "0"]);
    assert!(!zero.status.success() && text(&zero).contains("--shards 0"));
    let many = cluster.shiftlab(&["submit", "slurm", utf8(&whole), "--shards", "9"]);
    assert!(
        !many.status.success() && text(&many).contains("only 4 parts"),
        "{}",
        text(&many)
    );

    // The whole run through the scheduler.
    let file = pipeline(dir.path(), "cluster", fmnist(), FEW_SHIFTS, RUNTIME, 16);
    let out = cluster.shiftlab(&["submit", "slurm", utf8(&file), "--shards", "4", "--wait"]);
    assert!(out.status.success(), "submit --wait:\n{}", text(&out));
    check_run(&run_dir(&file), &["--same-metrics", utf8(&run_dir(&whole))]);

    // One array task cancelled while it runs.
    let file = pipeline(dir.path(), "cancel", fmnist(), FEW_SHIFTS, RUNTIME, 16);
    let run = run_dir(&file);
    let out = cluster
        .command(env!("CARGO_BIN_EXE_shiftlab"))
        .env("SHIFTLAB_SINK_DELAY_MS", "400")
        .args([
            "submit",
            "slurm",
            utf8(&file),
            "--shards",
            "4",
            "--max-parallel",
            "1",
        ])
        .output()
        .expect("submit");
    assert!(out.status.success(), "submit:\n{}", text(&out));
    let (array, finish) = last_jobs(&run);
    let task = format!("{array}_2");
    // RUNNING comes before the batch script's first line: wait for its `: start` too, or a
    // cold node's cancel can land before the line the requeue check below counts.
    let log = run.join("slurm/logs/shard-2.log");
    let started = || std::fs::read_to_string(&log).is_ok_and(|l| l.contains(": start"));
    cluster.wait_until("task 2 to run", || {
        cluster.job_state(&task).as_deref() == Some("RUNNING") && started()
    });
    let cancelled = cluster
        .command("scancel")
        .arg(&task)
        .status()
        .expect("scancel");
    assert!(cancelled.success());
    cluster.wait_until("the finish job to end", || {
        cluster.job_state(&finish).is_none()
    });
    let status = cluster.shiftlab(&["status", utf8(&run)]);
    let said = text(&status);
    assert!(!status.status.success(), "{said}");
    assert!(
        said.contains("3 of 4 parts finished, 1 missing") && said.contains("part 1 (shard 2/4)"),
        "{said}"
    );
    let out = cluster.shiftlab(&[
        "submit",
        "slurm",
        utf8(&file),
        "--shards",
        "4",
        "--missing-only",
        "--wait",
    ]);
    let said = text(&out);
    assert!(out.status.success(), "--missing-only --wait:\n{said}");
    assert!(said.contains("array 2"), "only shard 2 resubmitted: {said}");
    check_run(&run, &["--same-metrics", utf8(&run_dir(&whole))]);
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logs.matches(": start").count() >= 2,
        "the requeued shard's log is appended:\n{logs}"
    );
}
