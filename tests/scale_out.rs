//! Many invocations on one run folder, and a run that stops at its first fatal error:
//! four shards started at the same instant (five times over), a shard killed with SIGKILL and
//! rerun, `status` and `finish`, the fit phase once per folder, a full disk under one part file,
//! a model that fails on its third call. Metrics are compared with a single-process run
//! (tests/python/check_run.py --same-metrics); the `runs` records are read with pyarrow.
// Runs pipelines: needs the libtorch build (`shiftlab-torch`).
#![cfg(feature = "torch")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pipelines::{check_run, pipeline, run_dir, FEW_SHIFTS};
use common::{fails, fmnist, ok, python, python_script, root, shiftlab, text};

const RUNTIME: &str =
    "[runtime]\nbatch_size = 4\npart_size = 4\ncpu_workers = 1\ntorch_threads = 1";

fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shiftlab"))
        .current_dir(root())
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shiftlab")
}

/// `fit_embeddings` of every invocation recorded in the folder's `runs` table, sorted.
fn fit_records(run: &Path) -> String {
    let script = "import sys, pyarrow.parquet as pq\n\
                  t = pq.read_table(sys.argv[1] + '/runs')\n\
                  print(','.join(sorted(t.column('fit_embeddings').to_pylist())))";
    python_script(script, &[utf8(run)]).trim().to_string()
}

/// Hidden temporaries anywhere in the folder.
fn temporaries(run: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![run.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                stack.push(e.path());
            } else if name.ends_with(".tmp") {
                found.push(e.path().display().to_string());
            }
        }
    }
    found
}

#[test]
fn four_shards_started_together_five_times_equal_one_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = pipeline(dir.path(), "one", fmnist(), FEW_SHIFTS, RUNTIME, 16);
    ok(&["run", "--quiet", utf8(&whole)]);
    for rep in 0..5 {
        let file = pipeline(
            dir.path(),
            &format!("rep{rep}"),
            fmnist(),
            FEW_SHIFTS,
            RUNTIME,
            16,
        );
        // All four start before any is waited for: what a job array does on a fresh folder.
        let children: Vec<Child> = (1..=4)
            .map(|k| {
                let shard = format!("{k}/4");
                spawn(&["run", "--quiet", "--shard", &shard, utf8(&file)], &[])
            })
            .collect();
        for (k, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "rep {rep}, shard {}/4 failed:\n{}",
                k + 1,
                text(&out)
            );
        }
        let run = run_dir(&file);
        assert!(
            run.join("metrics.parquet").is_file(),
            "rep {rep}: no metrics"
        );
        check_run(&run, &["--same-metrics", utf8(&run_dir(&whole))]);
        // The fit phase ran once for the folder; the other three shards reused its cache.
        assert_eq!(
            fit_records(&run),
            "computed,reused,reused,reused",
            "rep {rep}"
        );
        assert_eq!(temporaries(&run), Vec::<String>::new(), "rep {rep}");
    }
}

#[test]
fn a_killed_shard_is_named_by_status_and_its_rerun_completes_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = pipeline(dir.path(), "whole", fmnist(), FEW_SHIFTS, RUNTIME, 32);
    ok(&["run", "--quiet", utf8(&whole)]);
    let file = pipeline(dir.path(), "kill", fmnist(), FEW_SHIFTS, RUNTIME, 32);
    let run = run_dir(&file);
    // 8 parts; shard 2/4 owns parts 1 and 5 and is slowed so it is killed in the middle.
    let mut victim = spawn(
        &[
            "run",
            "--quiet",
            "--shard",
            "2/4",
            "--sink-delay-ms",
            "150",
            utf8(&file),
        ],
        &[],
    );
    let others: Vec<Child> = [1, 3, 4]
        .iter()
        .map(|k| {
            let shard = format!("{k}/4");
            spawn(&["run", "--quiet", "--shard", &shard, utf8(&file)], &[])
        })
        .collect();
    let first = run.join("manifest").join("part-00001.json");
    let t = Instant::now();
    while !first.exists() && t.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(20));
    }
    victim.kill().expect("SIGKILL");
    victim.wait().expect("reap");
    for child in others {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", text(&out));
    }
    assert!(!run.join("manifest").join("part-00005.json").exists());
    assert!(!run.join("metrics.parquet").exists());

    let status = shiftlab(&["status", utf8(&run)]);
    let said = text(&status);
    assert!(
        !status.status.success(),
        "status of an incomplete run: {said}"
    );
    assert!(
        said.contains("7 of 8 parts finished, 1 missing")
            && said.contains("part 5 (shard 2/4)")
            && said.contains("killed"),
        "{said}"
    );
    let finish = fails(&["finish", utf8(&run)]);
    assert!(
        finish.contains("1 of 8 parts are not finished") && finish.contains("part 5 (shard 2/4)"),
        "{finish}"
    );

    let rerun = ok(&["run", "--quiet", "--shard", "2/4", utf8(&file)]);
    assert!(rerun.contains("0 of 8 missing"), "{rerun}");
    check_run(&run, &["--same-metrics", utf8(&run_dir(&whole))]);
    // The killed writer's temporaries were removed by the rerun (its process is gone).
    assert_eq!(temporaries(&run), Vec::<String>::new());
    let status = shiftlab(&["status", utf8(&run)]);
    assert!(status.status.success(), "{}", text(&status));
    // finish on a complete folder writes the same metrics again.
    std::fs::remove_file(run.join("metrics.parquet")).expect("remove metrics");
    let done = ok(&["finish", utf8(&run)]);
    assert!(done.contains("metrics:"), "{done}");
    check_run(&run, &["--same-metrics", utf8(&run_dir(&whole))]);
}

#[test]
fn a_full_disk_under_one_part_stops_the_run_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = pipeline(dir.path(), "ok", fmnist(), FEW_SHIFTS, RUNTIME, 40);
    ok(&["run", "--quiet", utf8(&whole)]);
    let file = pipeline(dir.path(), "full", fmnist(), FEW_SHIFTS, RUNTIME, 40);
    let run = run_dir(&file);
    let out = spawn(
        &["run", "--quiet", utf8(&file)],
        &[("SHIFTLAB_FAIL_WRITES", "predictions/part-00003.parquet")],
    )
    .wait_with_output()
    .expect("wait");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    // The first error, with the file and the OS error; not a later one.
    assert!(
        said.contains("part-00003.parquet") && said.contains("No space left on device"),
        "{said}"
    );
    let finished: Vec<String> = std::fs::read_dir(run.join("manifest"))
        .expect("manifest")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !finished.contains(&"part-00003.json".to_string()),
        "{finished:?}"
    );
    // 10 parts, in order; the run stopped within two parts of the failing one.
    let late: Vec<&String> = finished
        .iter()
        .filter(|n| n.as_str() > "part-00005.json")
        .collect();
    assert!(late.is_empty(), "finished after the failure: {finished:?}");
    assert!(!run.join("predictions/part-00003.parquet").exists());
    assert_eq!(temporaries(&run), Vec::<String>::new());
    let records = python_script(
        "import sys, pyarrow.parquet as pq\n\
         print(pq.read_table(sys.argv[1] + '/runs').column('outcome').to_pylist()[0])",
        &[utf8(&run)],
    );
    assert!(records.contains("No space left on device"), "{records}");

    let rerun = ok(&["run", "--quiet", utf8(&file)]);
    assert!(rerun.contains("0 of 10 missing"), "{rerun}");
    check_run(&run, &["--same-metrics", utf8(&run_dir(&whole))]);
}

/// A TorchScript encoder that raises on its third call.
fn flaky_model(dir: &Path) -> PathBuf {
    let path = dir.join("flaky.pt");
    let script = r#"
import sys, torch
class Flaky(torch.nn.Module):
    calls: int
    def __init__(self):
        super().__init__()
        self.calls = 0
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls >= 3:
            raise RuntimeError("flaky encoder broke on call 3")
        return x.flatten(1)[:, :16]
torch.jit.script(Flaky()).save(sys.argv[1])
"#;
    // TorchScript reads the class's source: it must come from a file, not `python -c`.
    let source = dir.join("make_flaky.py");
    std::fs::write(&source, script).expect("write the script");
    let out = Command::new(python())
        .arg(&source)
        .arg(&path)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", text(&out));
    path
}

#[test]
fn a_model_that_fails_on_its_third_call_stops_the_run_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = flaky_model(dir.path());
    let out = dir.path().join("run-flaky");
    let text_toml = format!(
        r#"[pipeline]
name = "flaky"
output = "{out}"

[source]
dataset = "{dataset}"
limit = 40
fit_limit = 8

[shifts]
preset = "cifar32"
corruptions = ["gaussian_noise"]
severities = [1]
resize = 32

[[models]]
name = "flaky-encoder"
torchscript = "{model}"
input_size = 32
channels = 1
normalize = {{ mean = [0.5], std = [0.5] }}

[probes.knn]
k = 3

[runtime]
batch_size = 8
part_size = 8
embed_block = 8
"#,
        out = out.display(),
        dataset = fmnist().display(),
        model = model.display()
    );
    let file = dir.path().join("flaky.toml");
    std::fs::write(&file, text_toml).expect("write pipeline");
    let t = Instant::now();
    let said = fails(&["run", "--quiet", utf8(&file)]);
    assert!(
        said.contains("model flaky-encoder") && said.contains("flaky encoder broke on call 3"),
        "{said}"
    );
    assert!(!out.join("metrics.parquet").exists());
    assert!(t.elapsed() < Duration::from_secs(120));
}

#[test]
fn the_shiftlab_program_links_no_libtorch() {
    let out = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_shiftlab")])
        .output()
        .expect("readelf (binutils) runs");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(!needed.is_empty(), "{dynamic}");
    assert!(
        needed
            .iter()
            .all(|l| !l.contains("libtorch") && !l.contains("libc10")),
        "shiftlab links libtorch:\n{needed:#?}"
    );
    // And the commands that need it are handed to shiftlab-torch.
    let info = ok(&["info"]);
    assert!(info.contains("libtorch (loaded)"), "{info}");
}
