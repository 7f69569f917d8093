//! A run folder written by `shiftlab run`: its `run.json`, which parts are finished, and the
//! Parquet files of each table. Checked up front so that a wrong or half-finished folder is
//! reported in words instead of as an empty or failing query.

use std::path::{Path, PathBuf};

use crate::ResultsError;

/// The tables a run folder holds, each as `TABLE/part-*.parquet` or `TABLE/*.parquet`
/// (`metrics` is the single file `metrics.parquet`).
pub const RUN_TABLES: [&str; 5] = ["predictions", "metrics", "runs", "errors", "stages"];

/// The facts `run.json` records about a run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    pub name: String,
    pub fingerprint: String,
    pub parts_total: u64,
    pub part_size: u64,
    pub preset: String,
    pub shifts: u64,
    pub models: Vec<String>,
}

/// One opened run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The folder, made absolute.
    pub path: PathBuf,
    pub info: RunInfo,
    /// Parts with no `manifest/part-NNNNN.json` yet (not finished).
    pub missing_parts: Vec<u64>,
}

impl RunDir {
    /// Opens `path`, refusing folders without a readable `run.json`.
    pub fn open(path: &Path) -> Result<Self, ResultsError> {
        let input = |cause: String| ResultsError::Input {
            path: path.display().to_string(),
            cause,
        };
        if !path.is_dir() {
            return Err(input(
                "not a folder (expected a run folder written by `shiftlab run`)".into(),
            ));
        }
        let json = path.join("run.json");
        let text = std::fs::read_to_string(&json).map_err(|_| {
            input(
                "not a run folder: it has no run.json (written by `shiftlab run` at its start)"
                    .into(),
            )
        })?;
        let info = parse_run_json(&text).map_err(|e| input(format!("run.json: {e}")))?;
        let path = std::path::absolute(path).map_err(|e| input(e.to_string()))?;
        let missing_parts = (0..info.parts_total)
            .filter(|p| !path.join(format!("manifest/part-{p:05}.json")).is_file())
            .collect();
        Ok(Self {
            path,
            info,
            missing_parts,
        })
    }

    /// Whether every part is finished and `metrics.parquet` exists.
    pub fn is_complete(&self) -> bool {
        self.missing_parts.is_empty() && self.metrics_file().is_some()
    }

    fn metrics_file(&self) -> Option<PathBuf> {
        let file = self.path.join("metrics.parquet");
        file.is_file().then_some(file)
    }

    /// The whole Parquet files of `table`, sorted; hidden temporaries are skipped.
    pub fn table_files(&self, table: &str) -> Vec<PathBuf> {
        if table == "metrics" {
            return self.metrics_file().into_iter().collect();
        }
        let Ok(entries) = std::fs::read_dir(self.path.join(table)) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_visible_parquet(p))
            .collect();
        files.sort();
        files
    }

    /// Models with a folder under `embeddings/` (written with `runtime.save_embeddings`), sorted.
    pub fn embedding_models(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.path.join("embeddings")) else {
            return Vec::new();
        };
        let mut models: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        models.sort();
        models
    }

    /// Sentences about what is missing, for the user; empty when the run is complete.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let name = format!("run {:?} ({})", self.info.name, self.path.display());
        if !self.missing_parts.is_empty() {
            notes.push(format!(
                "{name} is not finished: {} of {} parts missing ({}); predictions hold only the finished parts",
                self.missing_parts.len(),
                self.info.parts_total,
                list_parts(&self.missing_parts)
            ));
        }
        if self.metrics_file().is_none() {
            notes.push(format!(
                "{name} has no metrics.parquet (written when the last part finishes): its metrics and metric views are absent"
            ));
        }
        notes
    }
}

fn is_visible_parquet(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && name.ends_with(".parquet") && p.is_file()
}

/// "0, 3, 7" or "0, 1, 2, ... (40 parts)" when long.
fn list_parts(parts: &[u64]) -> String {
    let shown: Vec<String> = parts.iter().take(10).map(u64::to_string).collect();
    if parts.len() == 1 {
        format!("part {}", shown.join(""))
    } else if parts.len() > 10 {
        format!("parts {}, ...", shown.join(", "))
    } else {
        format!("parts {}", shown.join(", "))
    }
}

fn parse_run_json(text: &str) -> Result<RunInfo, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("missing text field {k:?}"))
    };
    let n = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_u64())
            .ok_or_else(|| format!("missing number field {k:?}"))
    };
    let models = v
        .get("models")
        .and_then(|m| m.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(RunInfo {
        name: s("name")?,
        fingerprint: s("fingerprint")?,
        parts_total: n("parts_total")?,
        part_size: n("part_size")?,
        preset: s("preset")?,
        shifts: n("shifts")?,
        models,
    })
}
