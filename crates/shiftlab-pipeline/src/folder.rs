//! The run folder: the only coordination point between invocations of one pipeline (shards,
//! reruns, requeued tasks), on one machine or many over a shared file system.
//!
//! Layout: `run.json` (fingerprint, part count, the pipeline), `predictions/part-NNNNN.parquet`,
//! `errors/part-NNNNN.parquet`, with `runtime.save_embeddings` also
//! `embeddings/MODEL/part-NNNNN.parquet`, `manifest/part-NNNNN.json` (a part is finished exactly when its
//! manifest entry exists: it is written after the part's files), `cache/` (fit-split embeddings
//! and the fit lock), `invocations/` (one JSON record per invocation, written when it starts and
//! again when it ends), `runs/` and `stages/` (Parquet records of ended invocations), and
//! `metrics.parquet` once every part is finished.
//!
//! Invariants, with nothing but create-exclusive and rename (atomic on NFS too; no `flock`):
//! - `run.json` is created by exactly one invocation (a hard link of a whole temporary, which
//!   fails when the name exists); every other one reads it and refuses other settings.
//! - Every file is written under a temporary name unique to its writer and renamed when whole
//!   (`shiftlab_common::AtomicFile`); temporaries are removed only when their writer is provably
//!   gone, so a late starter never deletes a running shard's half-written part.
//! - Two invocations writing the same part (a rerun beside a requeued task) write the same rows
//!   (determinism; their order within the file follows the shift workers' timing), and the last
//!   rename wins: the part is whole either way, and `metrics` sums sorted values.
//! - The fit phase runs once per folder: the invocation that creates `cache/fit.lock` (exclusive)
//!   computes the embeddings; the others wait for the cache, and take over when the holder is gone
//!   (provably, or its heartbeat stopped). Two waiters that judge a dead holder gone at the same
//!   moment can both take over and both compute the cache: wasted work, never a wrong result,
//!   since both write the same cache through the atomic writer.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use shiftlab_common::{remove_stale_temporaries, AtomicFile, Invocation};

use crate::config::Pipeline;
use crate::error::PipelineError;
use crate::stage::StageStats;
use crate::tables::{self, ErrorRows, RunRow};

/// Subfolders of a run folder.
const SUBFOLDERS: [&str; 7] = [
    "predictions",
    "errors",
    "manifest",
    "cache",
    "invocations",
    "runs",
    "stages",
];

/// Holds one folder per model when `runtime.save_embeddings` is on.
const EMBEDDINGS: &str = "embeddings";

/// Written by `shiftlab submit` before the prepare job creates the run.
const SCHEDULER_FOLDERS: [&str; 2] = ["slurm", "k8s"];

/// What `run.json` records: enough to check a joining invocation and to finish the run without
/// the pipeline file at hand.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub name: String,
    pub fingerprint: String,
    pub parts_total: u32,
    /// The pipeline file (absolute) and the folder its relative paths are taken from.
    pub pipeline_file: PathBuf,
    pub workdir: PathBuf,
    /// The pipeline file's text when the folder was created.
    pub config: String,
}

impl RunInfo {
    fn from_json(v: &Value) -> Option<RunInfo> {
        Some(RunInfo {
            name: v["name"].as_str()?.to_string(),
            fingerprint: v["fingerprint"].as_str()?.to_string(),
            parts_total: v["parts_total"].as_u64()? as u32,
            pipeline_file: PathBuf::from(v["pipeline_file"].as_str().unwrap_or_default()),
            workdir: PathBuf::from(v["workdir"].as_str().unwrap_or_default()),
            config: v["config"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// The pipeline as it was when the folder was created. Its relative paths resolve from the
    /// current folder, as when it ran: call this from [`RunInfo::workdir`].
    pub fn pipeline(&self) -> Result<Pipeline, PipelineError> {
        crate::config::parse(&self.pipeline_file, &self.config)
    }
}

/// The run folder.
pub struct RunFolder {
    pub root: PathBuf,
}

impl RunFolder {
    /// Creates the folder for `p` with `parts_total` parts, or joins the run already there (same
    /// fingerprint). Safe when any number of invocations do this at the same moment.
    pub fn create_or_join(p: &Pipeline, parts_total: u32) -> Result<RunFolder, PipelineError> {
        let root = p.output.clone();
        let folder_err = |message: String| PipelineError::RunFolder {
            path: root.display().to_string(),
            message,
        };
        std::fs::create_dir_all(&root).map_err(|e| PipelineError::io(&root, e))?;
        let folder = RunFolder { root: root.clone() };
        let info = match folder.read_info_if_any()? {
            Some(info) => info,
            None => {
                folder.refuse_foreign_content()?;
                folder.publish_info(p, parts_total)?
            }
        };
        if info.fingerprint != p.fingerprint {
            return Err(folder_err(format!(
                "it holds a run of different settings (fingerprint {}, this file {}); \
                 choose another pipeline.output or remove the folder",
                info.fingerprint, p.fingerprint
            )));
        }
        if info.parts_total != parts_total {
            return Err(folder_err(format!(
                "it was created with {} parts and this pipeline now has {parts_total} (did the \
                 dataset change?); remove the folder to start again",
                info.parts_total
            )));
        }
        let model_dirs = p
            .models
            .iter()
            .filter(|_| p.runtime.save_embeddings)
            .map(|m| folder.embeddings_dir(&m.name));
        for d in SUBFOLDERS
            .iter()
            .map(|sub| root.join(sub))
            .chain(model_dirs)
        {
            std::fs::create_dir_all(&d).map_err(|e| PipelineError::io(&d, e))?;
            remove_stale_temporaries(&d);
        }
        remove_stale_temporaries(&root);
        Ok(folder)
    }

    /// An existing run folder (for `status` and `finish`).
    pub fn open(root: &Path) -> Result<(RunFolder, RunInfo), PipelineError> {
        let folder = RunFolder {
            root: root.to_path_buf(),
        };
        match folder.read_info_if_any()? {
            Some(info) => Ok((folder, info)),
            None => Err(PipelineError::RunFolder {
                path: root.display().to_string(),
                message: "not a shiftlab run folder (no run.json)".into(),
            }),
        }
    }

    fn read_info_if_any(&self) -> Result<Option<RunInfo>, PipelineError> {
        let path = self.root.join("run.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PipelineError::io(&path, e)),
        };
        let bad = |why: String| PipelineError::RunFolder {
            path: self.root.display().to_string(),
            message: format!("run.json {why}"),
        };
        let v: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("is not valid JSON: {e}")))?;
        RunInfo::from_json(&v)
            .map(Some)
            .ok_or_else(|| bad("lacks name, fingerprint or parts_total".into()))
    }

    /// A folder with files but no `run.json` is someone else's: refuse it. Temporaries of
    /// invocations creating this run at the same moment do not count.
    fn refuse_foreign_content(&self) -> Result<(), PipelineError> {
        let entries =
            std::fs::read_dir(&self.root).map_err(|e| PipelineError::io(&self.root, e))?;
        let foreign = entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            shiftlab_common::atomic::temporary_writer(&name).is_none()
                && name != "run.json"
                && !SUBFOLDERS.contains(&name.as_str())
                && name != EMBEDDINGS
                && !SCHEDULER_FOLDERS.contains(&name.as_str())
        });
        if foreign {
            return Err(PipelineError::RunFolder {
                path: self.root.display().to_string(),
                message: "exists, is not empty and is not a shiftlab run (no run.json)".into(),
            });
        }
        Ok(())
    }

    /// Writes `run.json` create-exclusive; when another invocation won the race, reads theirs.
    fn publish_info(&self, p: &Pipeline, parts_total: u32) -> Result<RunInfo, PipelineError> {
        let path = self.root.join("run.json");
        let workdir = std::env::current_dir().map_err(|e| PipelineError::io(Path::new("."), e))?;
        let info = RunInfo {
            name: p.name.clone(),
            fingerprint: p.fingerprint.clone(),
            parts_total,
            pipeline_file: absolute(&workdir, &p.file),
            workdir,
            config: p.text.clone(),
        };
        let v = json!({
            "name": info.name,
            "fingerprint": info.fingerprint,
            "parts_total": parts_total,
            "part_size": p.runtime.part_size,
            "preset": p.shifts.preset.name(),
            "shifts": p.shifts.list.len(),
            "targets": p.shifts.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            "models": p.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            "pipeline_file": info.pipeline_file.display().to_string(),
            "workdir": info.workdir.display().to_string(),
            "config": info.config,
            "created_by": Invocation::current().tag(),
        });
        let mut file = AtomicFile::create(&path).map_err(|e| PipelineError::io(&path, e))?;
        file.write_all(v.to_string().as_bytes())
            .map_err(|e| PipelineError::io(&path, e))?;
        let committed = file.commit_exclusive().map(|_| ());
        settle_publish(committed, info, &path, || self.read_info_if_any())
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Parts whose manifest entry exists.
    pub fn finished_parts(&self) -> Result<BTreeSet<u32>, PipelineError> {
        let dir = self.root.join("manifest");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(PipelineError::io(&dir, e)),
        };
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

    /// Parts `0..parts_total` without a manifest entry.
    pub fn missing_parts(&self, parts_total: u32) -> Result<Vec<u32>, PipelineError> {
        let done = self.finished_parts()?;
        Ok((0..parts_total).filter(|p| !done.contains(p)).collect())
    }

    pub fn part_path(&self, table: &str, part: u32) -> PathBuf {
        self.root
            .join(table)
            .join(format!("part-{part:05}.parquet"))
    }

    /// `embeddings/MODEL/`: one folder per model, as each has its own embedding dimension.
    pub fn embeddings_dir(&self, model: &str) -> PathBuf {
        self.root.join(EMBEDDINGS).join(model)
    }

    pub fn embeddings_path(&self, model: &str, part: u32) -> PathBuf {
        self.embeddings_dir(model)
            .join(format!("part-{part:05}.parquet"))
    }

    pub fn manifest_path(&self, part: u32) -> PathBuf {
        self.root
            .join("manifest")
            .join(format!("part-{part:05}.json"))
    }

    /// Finishes a part whose predictions (and other part files) are committed: writes its
    /// `errors` file, then its manifest entry, after which the part counts as finished.
    pub fn write_manifest(
        &self,
        run: &str,
        part: u32,
        rows: u64,
        errors: ErrorRows,
    ) -> Result<(), PipelineError> {
        let batch = errors
            .to_batch(run)
            .map_err(|e| PipelineError::io(&self.root, e))?;
        tables::write_parquet(&self.part_path("errors", part), &batch)?;
        let entry = json!({
            "part": part,
            "rows": rows,
            "errors": errors.len(),
            "finished_us": crate::run::now_us(),
        });
        tables::write_atomic(&self.manifest_path(part), entry.to_string().as_bytes())
    }

    pub fn part_files(&self, table: &str, parts_total: u32) -> Vec<PathBuf> {
        (0..parts_total)
            .map(|part| self.part_path(table, part))
            .collect()
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.parquet")
    }

    /// Records an invocation (its start, and again its end): `invocations/ID.json`.
    pub fn record_invocation(&self, record: &InvocationRecord) -> Result<(), PipelineError> {
        let path = self
            .root
            .join("invocations")
            .join(format!("{}.json", record.id));
        tables::write_atomic(&path, record.to_json().to_string().as_bytes())
    }

    /// Every invocation record, oldest first.
    pub fn invocations(&self) -> Vec<InvocationRecord> {
        let dir = self.root.join("invocations");
        let mut out: Vec<InvocationRecord> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
            .filter_map(|v| InvocationRecord::from_json(&v))
            .collect();
        out.sort_by_key(|r| (r.started_us, r.id.clone()));
        out
    }

    /// The `runs` and `stages` rows of an ended invocation.
    pub fn write_run_records(
        &self,
        p: &Pipeline,
        row: &RunRow,
        stats: &[StageStats],
        wall_s: f64,
    ) -> Result<(), PipelineError> {
        let err = |e: arrow::error::ArrowError| PipelineError::io(&self.root, e);
        let runs = tables::runs_batch(row).map_err(err)?;
        let name = format!("{}.parquet", row.invocation);
        tables::write_parquet(&self.root.join("runs").join(&name), &runs)?;
        let st = tables::stages_batch(&p.name, &row.invocation, stats, wall_s).map_err(err)?;
        tables::write_parquet(&self.root.join("stages").join(&name), &st)
    }
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// One invocation of `shiftlab run` on a folder, as `status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationRecord {
    /// `START_US-HOST~PID`: unique, and sorts by start.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// `k/n`.
    pub shard: String,
    pub device: String,
    pub started_us: i64,
    pub finished_us: Option<i64>,
    /// `None` while running (or when the process died without a word); `ok` or the error.
    pub outcome: Option<String>,
    pub parts_done: u64,
    /// Slurm's job id and array task, when it ran under Slurm.
    pub slurm_job: Option<String>,
}

impl InvocationRecord {
    pub fn start(shard: (u32, u32), device: &str, started_us: i64) -> InvocationRecord {
        let me = Invocation::current();
        let slurm_job = std::env::var("SLURM_JOB_ID").ok().map(|job| {
            match std::env::var("SLURM_ARRAY_TASK_ID") {
                Ok(task) => format!(
                    "{}_{task}",
                    std::env::var("SLURM_ARRAY_JOB_ID").unwrap_or(job)
                ),
                Err(_) => job,
            }
        });
        InvocationRecord {
            id: format!("{started_us}-{}", me.tag()),
            host: me.host.clone(),
            pid: me.pid,
            shard: format!("{}/{}", shard.0, shard.1),
            device: device.to_string(),
            started_us,
            finished_us: None,
            outcome: None,
            parts_done: 0,
            slurm_job,
        }
    }

    /// Where the invocation stands: its outcome, `running`, or `gone` (same host, process dead,
    /// no end recorded: killed), or `unknown` (another host, no end recorded).
    pub fn state(&self) -> String {
        if let Some(o) = &self.outcome {
            return o.clone();
        }
        let who = Invocation {
            host: self.host.clone(),
            pid: self.pid,
        };
        if who.is_gone() {
            "killed (the process ended without recording an outcome)".into()
        } else if who.host == Invocation::current().host {
            "running".into()
        } else {
            "running or killed (on another host)".into()
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "shard": self.shard,
            "device": self.device,
            "started_us": self.started_us,
            "finished_us": self.finished_us,
            "outcome": self.outcome,
            "parts_done": self.parts_done,
            "slurm_job": self.slurm_job,
        })
    }

    fn from_json(v: &Value) -> Option<InvocationRecord> {
        Some(InvocationRecord {
            id: v["id"].as_str()?.to_string(),
            host: v["host"].as_str()?.to_string(),
            pid: v["pid"].as_u64()? as u32,
            shard: v["shard"].as_str().unwrap_or_default().to_string(),
            device: v["device"].as_str().unwrap_or_default().to_string(),
            started_us: v["started_us"].as_i64()?,
            finished_us: v["finished_us"].as_i64(),
            outcome: v["outcome"].as_str().map(str::to_string),
            parts_done: v["parts_done"].as_u64().unwrap_or(0),
            slurm_job: v["slurm_job"].as_str().map(str::to_string),
        })
    }
}

/// The fit phase's lock: held by the one invocation that computes the fit-split embeddings.
/// A heartbeat thread touches the lock file while it is held, so that waiters on other hosts can
/// tell a live holder from a dead one.
pub struct FitLock {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

/// How often the holder touches the lock, and how long a waiter on another host waits without
/// seeing it change before it takes the lock over.
const HEARTBEAT: Duration = Duration::from_secs(5);
const HEARTBEAT_LOST: Duration = Duration::from_secs(90);

impl FitLock {
    /// Waits until either the cache is complete (`None`) or this invocation holds the lock.
    /// `cache_complete` is asked before each attempt; `waiting` is told whom we wait for.
    pub fn acquire_or_wait(
        cache_dir: &Path,
        cache_complete: impl Fn() -> bool,
        waiting: impl Fn(&str),
    ) -> Result<Option<FitLock>, PipelineError> {
        let path = cache_dir.join("fit.lock");
        let mut seen: Option<(SystemTime, Instant)> = None;
        loop {
            if cache_complete() {
                return Ok(None);
            }
            match std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let tag = Invocation::current().tag();
                    f.write_all(tag.as_bytes())
                        .and_then(|()| f.sync_all())
                        .map_err(|e| PipelineError::io(&path, e))?;
                    if cache_complete() {
                        let _ = std::fs::remove_file(&path);
                        return Ok(None);
                    }
                    return Ok(Some(FitLock::hold(path)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(PipelineError::io(&path, e)),
            }
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            waiting(&holder);
            if holder_is_gone(&path, &holder, &mut seen) {
                let _ = std::fs::remove_file(&path);
                seen = None;
                continue;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn hold(path: PathBuf) -> FitLock {
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (path.clone(), stop.clone());
        let heartbeat = std::thread::Builder::new()
            .name("shiftlab-fit-lock".into())
            .spawn(move || {
                let mut last = Instant::now();
                while !s.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() >= HEARTBEAT {
                        last = Instant::now();
                        if let Ok(f) = std::fs::File::options().write(true).open(&p) {
                            let _ = f.set_modified(SystemTime::now());
                        }
                    }
                }
            })
            .ok();
        FitLock {
            path,
            stop,
            heartbeat,
        }
    }
}

impl Drop for FitLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        // Only our own lock: a waiter that judged us gone may have replaced it with its own.
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|t| t.trim() == Invocation::current().tag());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The holder is gone when it provably is (same host, no such process), or when the lock's
/// modification time has not changed for [`HEARTBEAT_LOST`] of our own clock (another host: no
/// clock of theirs is compared with ours).
fn holder_is_gone(path: &Path, holder: &str, seen: &mut Option<(SystemTime, Instant)>) -> bool {
    if let Some(who) = Invocation::from_tag(holder.trim()) {
        if who.is_gone() {
            return true;
        }
        if who.host == Invocation::current().host {
            return false;
        }
    }
    let Ok(modified) = std::fs::metadata(path).and_then(|m| m.modified()) else {
        return false;
    };
    match seen {
        Some((m, since)) if *m == modified => since.elapsed() >= HEARTBEAT_LOST,
        _ => {
            *seen = Some((modified, Instant::now()));
            false
        }
    }
}

/// The outcome of publishing `run.json` create-exclusive: ours (`Ok`), theirs when another
/// invocation won the race (`AlreadyExists`: read back through `theirs`), or the OS error.
fn settle_publish(
    committed: std::io::Result<()>,
    ours: RunInfo,
    path: &Path,
    theirs: impl FnOnce() -> Result<Option<RunInfo>, PipelineError>,
) -> Result<RunInfo, PipelineError> {
    match committed {
        Ok(()) => Ok(ours),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            theirs()?.ok_or_else(|| PipelineError::io(path, "vanished right after it was created"))
        }
        Err(e) => Err(PipelineError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> RunInfo {
        RunInfo {
            name: name.into(),
            fingerprint: "f".into(),
            parts_total: 1,
            pipeline_file: "p.toml".into(),
            workdir: "/".into(),
            config: String::new(),
        }
    }

    #[test]
    fn publishing_run_json_keeps_ours_reads_theirs_and_reports_other_errors_as_they_are() {
        let path = Path::new("/runs/x/run.json");
        let never = || -> Result<Option<RunInfo>, PipelineError> { panic!("not read") };
        let ours = settle_publish(Ok(()), info("ours"), path, never).unwrap();
        assert_eq!(ours.name, "ours");
        let exists = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
        let won = settle_publish(Err(exists), info("ours"), path, || Ok(Some(info("theirs"))));
        assert_eq!(won.unwrap().name, "theirs");
        let exists = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
        let gone = settle_publish(Err(exists), info("ours"), path, || Ok(None)).unwrap_err();
        assert!(chain(&gone).contains("vanished"), "{}", chain(&gone));
        // Any other failure (here EPERM, as a file system without hard links gives) is the OS
        // error itself, not a race: the message must not claim the file vanished.
        let denied = std::io::Error::from_raw_os_error(1);
        let err = settle_publish(Err(denied), info("ours"), path, never).unwrap_err();
        let text = chain(&err);
        assert!(text.contains("/runs/x/run.json"), "{text}");
        assert!(!text.contains("vanished"), "{text}");
        assert!(text.contains("not permitted"), "{text}");
    }

    /// An error's message followed by its sources'.
    fn chain(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }

    /// A `cache_complete` that says no to its first `polls` questions and yes from then on.
    fn complete_after(polls: u32) -> impl Fn() -> bool {
        let asked = std::cell::Cell::new(0);
        move || {
            asked.set(asked.get() + 1);
            asked.get() > polls
        }
    }

    fn tag_of_gone_process() -> String {
        // pid_max is at most 2^22 on Linux: this pid cannot exist.
        Invocation {
            host: Invocation::current().host.clone(),
            pid: u32::MAX - 1,
        }
        .tag()
    }

    #[test]
    fn a_lock_left_by_a_gone_process_is_taken_over_and_removed_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fit.lock");
        std::fs::write(&path, tag_of_gone_process()).unwrap();
        // Bounded: a waiter that never takes over ends with no lock instead of hanging.
        let lock = FitLock::acquire_or_wait(dir.path(), complete_after(20), |_| {}).unwrap();
        let lock = lock.expect("the stale lock is taken over");
        let holder = std::fs::read_to_string(&path).unwrap();
        assert_eq!(holder, Invocation::current().tag());
        drop(lock);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_holder_on_this_host_is_waited_for_until_the_cache_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fit.lock");
        // This process's parent is alive: its lock is never taken over.
        let parent = Invocation {
            host: Invocation::current().host.clone(),
            pid: std::os::unix::process::parent_id(),
        };
        std::fs::write(&path, parent.tag()).unwrap();
        let lock = FitLock::acquire_or_wait(dir.path(), complete_after(3), |_| {}).unwrap();
        assert!(lock.is_none(), "the cache was completed by the holder");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), parent.tag());
    }

    #[test]
    fn releasing_a_lock_another_invocation_replaced_leaves_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fit.lock");
        let lock = FitLock::acquire_or_wait(dir.path(), || false, |_| {})
            .unwrap()
            .unwrap();
        std::fs::write(&path, "other-host~42").unwrap();
        drop(lock);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "other-host~42");
    }

    #[test]
    fn parts_are_finished_by_their_manifest_entry_only() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let folder = RunFolder {
            root: dir.path().to_path_buf(),
        };
        // No manifest folder yet: nothing finished, everything missing.
        assert_eq!(folder.missing_parts(3).ok(), Some(vec![0, 1, 2]));
        let manifest = dir.path().join("manifest");
        std::fs::create_dir_all(&manifest).expect("manifest folder");
        for name in [
            "part-00000.json",
            "part-00002.json",
            "part-00003.parquet",
            "notes.txt",
        ] {
            std::fs::write(manifest.join(name), b"{}").expect("manifest entry");
        }
        // A predictions file does not finish a part.
        std::fs::create_dir_all(dir.path().join("predictions")).expect("predictions folder");
        std::fs::write(folder.part_path("predictions", 1), b"").expect("predictions file");
        let done = folder.finished_parts().ok();
        assert_eq!(done, Some(BTreeSet::from([0, 2])));
        assert_eq!(folder.missing_parts(5).ok(), Some(vec![1, 3, 4]));
        assert_eq!(folder.missing_parts(2).ok(), Some(vec![1]));
    }

    fn folder_in(dir: &Path) -> RunFolder {
        RunFolder {
            root: dir.to_path_buf(),
        }
    }

    #[test]
    fn run_json_is_read_and_each_broken_one_is_named_with_its_cause() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let folder = folder_in(dir.path());
        assert!(folder.read_info_if_any().expect("no run.json").is_none());
        let err = RunFolder::open(dir.path())
            .err()
            .expect("open without run.json");
        assert!(err.to_string().contains("no run.json"), "{err}");

        let path = dir.path().join("run.json");
        // Unreadable (here a folder of that name): the OS error, not "no run yet".
        std::fs::create_dir(&path).expect("folder named run.json");
        let err = folder
            .read_info_if_any()
            .expect_err("a folder is not run.json");
        assert!(chain(&err).contains("run.json"), "{}", chain(&err));
        std::fs::remove_dir(&path).expect("remove folder");

        std::fs::write(&path, "{ not json").expect("write");
        let err = folder.read_info_if_any().expect_err("invalid JSON");
        assert!(err.to_string().contains("is not valid JSON"), "{err}");
        std::fs::write(&path, r#"{"name": "x", "fingerprint": "f"}"#).expect("write");
        let err = folder.read_info_if_any().expect_err("no parts_total");
        assert!(
            err.to_string()
                .contains("lacks name, fingerprint or parts_total"),
            "{err}"
        );

        let whole = json!({"name": "x", "fingerprint": "f", "parts_total": 7,
            "pipeline_file": "/w/p.toml", "workdir": "/w", "config": "[pipeline]"});
        std::fs::write(&path, whole.to_string()).expect("write");
        let (_, info) = RunFolder::open(dir.path()).expect("a run folder");
        assert_eq!((info.name.as_str(), info.fingerprint.as_str()), ("x", "f"));
        assert_eq!(info.parts_total, 7);
        assert_eq!(info.pipeline_file, Path::new("/w/p.toml"));
        assert_eq!(
            (info.workdir, info.config),
            (PathBuf::from("/w"), "[pipeline]".into())
        );
    }

    #[test]
    fn a_folder_is_refused_only_for_names_a_run_does_not_write() {
        let ours = SUBFOLDERS
            .iter()
            .chain([EMBEDDINGS, "run.json"].iter())
            .chain(SCHEDULER_FOLDERS.iter());
        for name in ours {
            let dir = tempfile::tempdir().expect("temporary folder");
            std::fs::create_dir(dir.path().join(name)).expect("entry");
            let outcome = folder_in(dir.path()).refuse_foreign_content();
            assert!(outcome.is_ok(), "{name} is a run's own: {outcome:?}");
        }
        // A writer's temporary (another invocation creating the run at this moment).
        let dir = tempfile::tempdir().expect("temporary folder");
        let pending = AtomicFile::create(&dir.path().join("run.json")).expect("temporary");
        assert!(pending.temporary_path().exists());
        assert!(folder_in(dir.path()).refuse_foreign_content().is_ok());
        drop(pending);

        std::fs::write(dir.path().join("notes.txt"), "mine").expect("foreign file");
        let err = folder_in(dir.path()).refuse_foreign_content().err();
        let err = err.expect("a folder with someone else's file");
        assert!(err.to_string().contains("is not a shiftlab run"), "{err}");
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn every_file_has_its_documented_place() {
        let folder = folder_in(Path::new("/runs/r"));
        assert_eq!(folder.cache_dir(), Path::new("/runs/r/cache"));
        assert_eq!(folder.metrics_path(), Path::new("/runs/r/metrics.parquet"));
        assert_eq!(
            folder.part_path("errors", 12),
            Path::new("/runs/r/errors/part-00012.parquet")
        );
        assert_eq!(
            folder.manifest_path(3),
            Path::new("/runs/r/manifest/part-00003.json")
        );
        assert_eq!(
            folder.embeddings_dir("r18"),
            Path::new("/runs/r/embeddings/r18")
        );
        assert_eq!(
            folder.embeddings_path("r18", 4),
            Path::new("/runs/r/embeddings/r18/part-00004.parquet")
        );
        let parts = folder.part_files("predictions", 2);
        assert_eq!(
            parts,
            [
                PathBuf::from("/runs/r/predictions/part-00000.parquet"),
                PathBuf::from("/runs/r/predictions/part-00001.parquet"),
            ]
        );
        assert_eq!(
            absolute(Path::new("/w"), Path::new("p.toml")),
            Path::new("/w/p.toml")
        );
        assert_eq!(
            absolute(Path::new("/w"), Path::new("/x/p.toml")),
            Path::new("/x/p.toml")
        );
    }

    #[test]
    fn an_unreadable_manifest_folder_is_an_error_not_zero_finished_parts() {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::write(dir.path().join("manifest"), "a file").expect("file named manifest");
        let err = folder_in(dir.path()).finished_parts().err();
        let err = err.expect("a file is not the manifest folder");
        assert!(chain(&err).contains("manifest"), "{}", chain(&err));
    }

    fn record(id: &str, host: &str, pid: u32, outcome: Option<&str>) -> InvocationRecord {
        InvocationRecord {
            id: id.into(),
            host: host.into(),
            pid,
            shard: "1/3".into(),
            device: "cpu".into(),
            started_us: id[..1].parse().expect("ids start with a digit"),
            finished_us: outcome.map(|_| 99),
            outcome: outcome.map(str::to_string),
            parts_done: 4,
            slurm_job: outcome.map(|_| "17_2".to_string()),
        }
    }

    #[test]
    fn invocation_records_round_trip_oldest_first_and_skip_what_is_not_one() {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::create_dir(dir.path().join("invocations")).expect("folder");
        let folder = folder_in(dir.path());
        assert!(folder_in(&dir.path().join("absent"))
            .invocations()
            .is_empty());
        let later = record("2-b", "h", 5, Some("ok"));
        let earlier = record("1-a", "h", 6, None);
        for r in [&later, &earlier] {
            folder.record_invocation(r).expect("recorded");
        }
        assert!(dir.path().join("invocations/2-b.json").exists());
        let inv = dir.path().join("invocations");
        std::fs::write(inv.join("broken.json"), "{").expect("write");
        std::fs::write(inv.join("partial.json"), r#"{"id": "3-c"}"#).expect("write");
        std::fs::write(inv.join("notes.txt"), "{}").expect("write");
        assert_eq!(folder.invocations(), [earlier.clone(), later.clone()]);
        // Optional fields default; the required ones (id, host, pid, started_us) do not.
        let minimal = json!({"id": "i", "host": "h", "pid": 3, "started_us": 8});
        let r = InvocationRecord::from_json(&minimal).expect("minimal record");
        assert_eq!(
            (r.shard, r.device, r.parts_done),
            (String::new(), String::new(), 0)
        );
        assert_eq!((r.finished_us, r.outcome, r.slurm_job), (None, None, None));
        for key in ["id", "host", "pid", "started_us"] {
            let mut v = minimal.clone();
            v.as_object_mut().expect("object").remove(key);
            assert!(InvocationRecord::from_json(&v).is_none(), "without {key}");
        }
    }

    #[test]
    fn an_invocation_state_is_its_outcome_or_what_its_process_shows() {
        let me = Invocation::current();
        assert_eq!(record("1", &me.host, 1, Some("ok")).state(), "ok");
        assert_eq!(record("1", &me.host, me.pid, None).state(), "running");
        let gone = Invocation::from_tag(&tag_of_gone_process()).expect("tag");
        assert!(record("1", &gone.host, gone.pid, None)
            .state()
            .starts_with("killed"));
        let elsewhere = record("1", "another-host-of-the-cluster", me.pid, None);
        assert_eq!(elsewhere.state(), "running or killed (on another host)");
    }

    #[test]
    fn a_fit_lock_that_cannot_be_created_is_an_error_not_a_wait() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let missing = dir.path().join("no-cache-folder");
        // Gives up after a few polls, so a loop that waits instead of failing ends too.
        let err = FitLock::acquire_or_wait(&missing, complete_after(3), |_| {}).err();
        let err = err.expect("the lock's folder does not exist");
        assert!(chain(&err).contains("fit.lock"), "{}", chain(&err));
    }

    #[test]
    fn the_fit_lock_heartbeat_touches_the_lock_every_heartbeat_not_more_often() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("fit.lock");
        let lock = FitLock::acquire_or_wait(dir.path(), || false, |_| {});
        let lock = lock.expect("acquired").expect("held");
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let set_old = || {
            let f = std::fs::File::options()
                .write(true)
                .open(&path)
                .expect("lock");
            f.set_modified(old).expect("set mtime");
        };
        let modified = || {
            std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .expect("mtime")
        };
        set_old();
        std::thread::sleep(HEARTBEAT / 5);
        assert_eq!(modified(), old, "touched before a heartbeat had passed");
        std::thread::sleep(HEARTBEAT + Duration::from_secs(2));
        assert_ne!(modified(), old, "not touched within a heartbeat");
        drop(lock);
    }

    #[test]
    fn a_holder_on_another_host_is_gone_only_after_its_lock_stood_still_a_heartbeat_loss() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("fit.lock");
        let holder = "another-host-of-the-cluster~42";
        std::fs::write(&path, holder).expect("lock");
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        let long_ago = Instant::now()
            .checked_sub(HEARTBEAT_LOST + Duration::from_secs(1))
            .expect("the clock has run longer than a heartbeat loss");
        // First sight: remembered, not gone.
        let mut seen = None;
        assert!(!holder_is_gone(&path, holder, &mut seen));
        assert_eq!(seen.map(|(m, _)| m), Some(mtime));
        // Unchanged for less than the loss: waiting; for longer: gone.
        assert!(!holder_is_gone(&path, holder, &mut seen));
        let mut stood_still = Some((mtime, long_ago));
        assert!(holder_is_gone(&path, holder, &mut stood_still));
        // It moved since we last looked (a heartbeat): alive, and the clock starts again.
        let earlier = mtime - Duration::from_secs(10);
        let mut moved = Some((earlier, long_ago));
        assert!(!holder_is_gone(&path, holder, &mut moved));
        let (m, since) = moved.expect("remembered");
        assert_eq!(m, mtime);
        assert!(since.elapsed() < HEARTBEAT_LOST);
        // A live holder on this host is never judged by its lock's age.
        let mut parent_seen = Some((mtime, long_ago));
        let parent = Invocation {
            host: Invocation::current().host.clone(),
            pid: std::os::unix::process::parent_id(),
        };
        assert!(!holder_is_gone(&path, &parent.tag(), &mut parent_seen));
        // A holder whose lock vanished is not gone: the next attempt creates the lock.
        std::fs::remove_file(&path).expect("remove lock");
        assert!(!holder_is_gone(&path, holder, &mut Some((mtime, long_ago))));
    }
}
