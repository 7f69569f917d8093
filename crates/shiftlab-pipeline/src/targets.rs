//! Dataset-level shifts: how a target dataset's labels become the source's, and which source
//! classes its predictions may take.
//!
//! Benchmarks such as ImageNet-R (200 classes) or ImageNet-A score a 1000-class classifier only
//! among the classes the target covers, so a target that covers a subset has its probe outputs
//! restricted to that subset (scores renormalised over it) before prediction, top-5 and
//! confidence are read.
//!
//! A target's rows may name an ImageNet-C corruption and severity in their own columns (an
//! ingested ImageNet-C folder, CIFAR-10-C arrays): those rows are released corruptions and take
//! the corruption's name, group and severity with family [`FAMILY_RELEASED`], so the corruption
//! views count them as they count on-the-fly ones (their clean reference is the source's clean
//! rows), told apart by the family; every other row is a plain dataset-level shift.

use shiftlab_corrupt::Corruption;
use shiftlab_data::reader::DatasetInfo;

use crate::config::{Target, FAMILY_DATASET, FAMILY_RELEASED};
use crate::error::PipelineError;

/// A target with its labels resolved against the source's classes.
#[derive(Debug, Clone)]
pub struct ResolvedTarget {
    pub target: Target,
    /// Target label -> source label (`None`: the class is not mapped; its samples are skipped).
    pub map: Vec<Option<i64>>,
    /// The target's class names (for messages).
    pub class_names: Vec<String>,
    /// Source classes predictions are restricted to (`None`: all).
    pub allowed: Option<Vec<i64>>,
    /// Rows of the target's split (before its limit).
    pub rows: u64,
}

impl ResolvedTarget {
    /// Reads the target's table info and label map; `source` names the source's classes.
    pub fn resolve(target: &Target, source: &[String]) -> Result<Self, PipelineError> {
        let err = |message: String| PipelineError::Target {
            name: target.name.clone(),
            message,
        };
        let info: DatasetInfo = shiftlab_data::reader::read_info(&target.dataset)
            .map_err(|e| err(format!("{}: {e}", target.dataset.display())))?;
        let rows = info.splits.get(&target.split).copied().unwrap_or(0);
        if rows == 0 {
            let have: Vec<&String> = info.splits.keys().collect();
            return Err(err(format!(
                "{} has no rows in split '{}' (it has {have:?})",
                target.dataset.display(),
                target.split
            )));
        }
        let map = match &target.label_map {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
                parse_label_map(&text, &info.class_names, source)
                    .map_err(|e| err(format!("{}: {e}", path.display())))?
            }
            None => match_by_name(&info.class_names, source).map_err(err)?,
        };
        let allowed = allowed_classes(&map, source.len(), target.restrict);
        Ok(ResolvedTarget {
            target: target.clone(),
            map,
            class_names: info.class_names,
            allowed,
            rows,
        })
    }

    /// Rows evaluated: the split's rows, at most `limit`.
    pub fn eval_rows(&self) -> u64 {
        self.target.limit.map_or(self.rows, |l| l.min(self.rows))
    }

    /// The source label of a target label, or why the sample cannot be scored.
    pub fn source_label(&self, label: i64) -> Result<i64, String> {
        let name = |l: i64| {
            usize::try_from(l)
                .ok()
                .and_then(|i| self.class_names.get(i))
                .map_or(String::new(), |n| format!(" ({n})"))
        };
        match usize::try_from(label).ok().and_then(|i| self.map.get(i)) {
            Some(Some(s)) => Ok(*s),
            Some(None) => Err(format!(
                "target label {label}{} has no source class in the label map",
                name(label)
            )),
            None => Err(format!(
                "label {label} outside the target's {} classes",
                self.map.len()
            )),
        }
    }
}

/// (shift, shift_group, shift_family, severity) of a row of target `target` whose own
/// `corruption` / `severity` columns hold `corruption` and `severity`: an ImageNet-C corruption
/// (any spelling [`Corruption`]'s parser takes) at severity 1..=5 is a released corruption under
/// its canonical name and group; anything else stays a dataset-level shift named by its
/// corruption column (else the target), grouped under the target, severity 0 when absent.
pub fn row_columns(
    target: &str,
    corruption: Option<&str>,
    severity: Option<i32>,
) -> (String, String, &'static str, i32) {
    let released = corruption
        .and_then(|c| c.parse::<Corruption>().ok())
        .zip(severity.filter(|s| (1..=5).contains(s)));
    match released {
        Some((c, s)) => (
            c.name().to_string(),
            c.group().name().to_string(),
            FAMILY_RELEASED,
            s,
        ),
        None => (
            corruption.unwrap_or(target).to_string(),
            target.to_string(),
            FAMILY_DATASET,
            severity.unwrap_or(0),
        ),
    }
}

/// The source classes a map reaches, when fewer than all and restriction is on.
pub fn allowed_classes(
    map: &[Option<i64>],
    source_classes: usize,
    restrict: bool,
) -> Option<Vec<i64>> {
    let mut allowed: Vec<i64> = map.iter().flatten().copied().collect();
    allowed.sort_unstable();
    allowed.dedup();
    (restrict && allowed.len() < source_classes).then_some(allowed)
}

/// Without a label map: every target class must have a source class of the same name.
pub fn match_by_name(target: &[String], source: &[String]) -> Result<Vec<Option<i64>>, String> {
    let mut map = Vec::with_capacity(target.len());
    for name in target {
        let Some(i) = source.iter().position(|s| s == name) else {
            return Err(format!(
                "target class '{name}' has no source class of that name; give a label_map \
                 (CSV target,source) to map the class sets"
            ));
        };
        map.push(Some(i as i64));
    }
    Ok(map)
}

/// Parses a label map: CSV with the header `target,source`, one row per target class, each side a
/// class name or a 0-based index; `#` comments and blank lines are skipped. Target classes not
/// listed are unmapped (their samples are recorded as errors and skipped).
pub fn parse_label_map(
    text: &str,
    target: &[String],
    source: &[String],
) -> Result<Vec<Option<i64>>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some((_, h)) if header_ok(h) => {}
        Some((n, h)) => {
            return Err(format!(
                "line {n}: expected the header target,source, found {h:?}"
            ))
        }
        None => return Err("empty label map (expected the header target,source)".into()),
    }
    let mut map = vec![None; target.len()];
    for (n, line) in lines {
        let Some((t, s)) = line.split_once(',') else {
            return Err(format!("line {n}: expected target,source, found {line:?}"));
        };
        let t = class_index(t, target).map_err(|e| format!("line {n}: target {e}"))?;
        let s = class_index(s, source).map_err(|e| format!("line {n}: source {e}"))?;
        if map[t].is_some() {
            return Err(format!("line {n}: target class {t} is mapped twice"));
        }
        map[t] = Some(s as i64);
    }
    if map.iter().all(Option::is_none) {
        return Err("the label map maps no class".into());
    }
    Ok(map)
}

fn header_ok(h: &str) -> bool {
    let cols: Vec<String> = h.split(',').map(|c| c.trim().to_lowercase()).collect();
    cols == ["target", "source"]
}

/// A class given by name (exact) or by 0-based index.
fn class_index(field: &str, names: &[String]) -> Result<usize, String> {
    let field = field.trim().trim_matches('"');
    if let Some(i) = names.iter().position(|n| n == field) {
        return Ok(i);
    }
    match field.parse::<usize>() {
        Ok(i) if i < names.len() => Ok(i),
        Ok(i) => Err(format!("index {i} is outside the {} classes", names.len())),
        Err(_) => Err(format!("class {field:?} is not a class name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn label_map_by_hand() -> Result<(), String> {
        // Source: 5 classes; target: 3 classes, mapped by name and by index, one left out.
        let source = names(&["tee", "trouser", "pullover", "dress", "coat"]);
        let target = names(&["t-shirt", "dress", "jacket"]);
        let text = "# comment\ntarget,source\nt-shirt,tee\n1,3\n";
        let map = parse_label_map(text, &target, &source)?;
        assert_eq!(map, vec![Some(0), Some(3), None]);
        // Only source classes 0 and 3 can be predicted.
        assert_eq!(allowed_classes(&map, 5, true), Some(vec![0, 3]));
        assert_eq!(allowed_classes(&map, 5, false), None);
        Ok(())
    }

    #[test]
    fn label_map_errors_name_the_line() {
        let source = names(&["a", "b"]);
        let target = names(&["x"]);
        let e = parse_label_map("target,source\nx,zz\n", &target, &source).unwrap_err();
        assert!(e.contains("line 2") && e.contains("zz"), "{e}");
        let e = parse_label_map("from,to\nx,a\n", &target, &source).unwrap_err();
        assert!(e.contains("header"), "{e}");
        let e = parse_label_map("target,source\nx,a\n0,b\n", &target, &source).unwrap_err();
        assert!(e.contains("mapped twice"), "{e}");
        let e = parse_label_map("target,source\nx,7\n", &target, &source).unwrap_err();
        assert!(e.contains("outside"), "{e}");
    }

    #[test]
    fn released_corruptions_are_told_from_dataset_rows() {
        let col = |c: Option<&str>, s: Option<i32>| row_columns("cifar10c", c, s);
        let released =
            |name: &str, group: &str, s| (name.to_string(), group.to_string(), FAMILY_RELEASED, s);
        assert_eq!(
            col(Some("gaussian_noise"), Some(3)),
            released("gaussian_noise", "noise", 3)
        );
        // ImageNet-C folder names and CIFAR-10-C file stems, as the corruption parser reads them.
        assert_eq!(
            col(Some("JPEG-compression"), Some(5)),
            released("jpeg_compression", "digital", 5)
        );
        assert_eq!(
            col(Some("saturate"), Some(1)),
            released("saturate", "extra", 1)
        );
        let dataset =
            |shift: &str, s| (shift.to_string(), "cifar10c".to_string(), FAMILY_DATASET, s);
        // Not ImageNet-C, no severity, or a severity outside 1..5: a dataset-level shift.
        assert_eq!(col(Some("rotation"), Some(3)), dataset("rotation", 3));
        assert_eq!(col(Some("fog"), None), dataset("fog", 0));
        assert_eq!(col(Some("fog"), Some(6)), dataset("fog", 6));
        assert_eq!(col(None, None), dataset("cifar10c", 0));
    }

    #[test]
    fn names_match_or_fail() {
        let source = names(&["a", "b", "c"]);
        assert_eq!(
            match_by_name(&names(&["c", "a"]), &source),
            Ok(vec![Some(2), Some(0)])
        );
        assert!(match_by_name(&names(&["d"]), &source)
            .unwrap_err()
            .contains("'d'"));
        // Every source class covered: no restriction.
        assert_eq!(allowed_classes(&[Some(2), Some(0), Some(1)], 3, true), None);
    }
}
