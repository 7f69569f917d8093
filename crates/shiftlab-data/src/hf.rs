//! Hugging Face `datasets` Parquet exports as they come: one file, several, or a folder of shards
//! (`train-00000-of-00003.parquet`, ..., or the hub's Parquet conversion `default/train/0000.parquet`),
//! read as one table. Each file has an `image` column (struct<bytes, path>) and an integer
//! `label`; class names come from the `huggingface` schema-metadata key (every file that has it
//! must agree), else `0..=max` label over all files. `split`, `id`, `corruption` and `severity`
//! columns are carried over when present (so a canonical table re-ingests to itself).
//!
//! - Files are read in input order; a folder's `*.parquet` files (below it too) in sorted path
//!   order, skipping names that start with `.`.
//! - A row's split: its input's name (`NAME=PATH`, `--split`), else its `split` column, else a
//!   `train`, `test`, `validation` or `val` token of the file name, else of its folders (up to
//!   and with the input folder; a file input's own folder), else `test`.
//! - Ids: the `id` column, else `<split>/<n>`, `n` the row's index in its split counted over the
//!   files in order, so shards get the ids one file holding all their rows would give.
//! - A row with null image bytes is read from `image.path` (absolute, or relative to the Parquet
//!   file's folder), which is how `datasets` stores images loaded from files; a path that names
//!   no file rejects that row, naming the path.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, BinaryArray, LargeBinaryArray, RecordBatch, StructArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::error::{DataError, Reason, Rejected};
use crate::folder::MAX_DEPTH;
use crate::source::{array_id, Entry, Input, Item, Payload, Source};

/// Class names from a `huggingface` metadata value (`info.features.<label>.names`).
pub fn hf_class_names(meta: &str, label_column: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(meta).ok()?;
    let names = v
        .pointer(&format!("/info/features/{label_column}/names"))?
        .as_array()?;
    names.iter().map(|n| n.as_str().map(String::from)).collect()
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, DataError> {
    let f = File::open(path).map_err(|e| DataError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| DataError::parquet(path, e))
}

/// Largest label in the file, for exports without class names (one cheap column pass).
fn max_label(path: &Path) -> Result<i64, DataError> {
    let b = builder(path)?;
    let idx = b.schema().index_of("label")?;
    let mask = ProjectionMask::roots(b.parquet_schema(), [idx]);
    let reader = b
        .with_projection(mask)
        .build()
        .map_err(|e| DataError::parquet(path, e))?;
    let mut max = -1;
    for batch in reader {
        let labels = cast(batch?.column(0), &DataType::Int64)?;
        max = max.max(arrow::compute::max(labels.as_primitive::<Int64Type>()).unwrap_or(-1));
    }
    Ok(max)
}

/// Most classes assumed from labels alone (without class names in the metadata).
const MAX_UNNAMED_CLASSES: i64 = 100_000;

fn numbered_classes(path: &Path, max: i64) -> Result<Vec<String>, DataError> {
    if max >= MAX_UNNAMED_CLASSES {
        let msg = format!("no class names in the metadata and the largest label is {max}");
        return Err(DataError::layout(path, msg));
    }
    Ok((0..=max).map(|i| i.to_string()).collect())
}

/// Split names recognised in file and folder names, as the split they name.
const SPLIT_TOKENS: [&str; 4] = ["train", "test", "validation", "val"];

/// The first split token of `name` (split at every character that is not a letter or digit,
/// case-insensitive): `hf-train-00000-of-00001` -> `train`.
pub fn split_token(name: &str) -> Option<String> {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .find(|t| SPLIT_TOKENS.contains(&t.as_str()))
}

/// The split a file's name or folders name: its stem first, then its folders from the nearest
/// up to `root` (a folder input, included), or only its own folder without one.
pub fn split_from_path(file: &Path, root: Option<&Path>) -> Option<String> {
    let stem = file.file_stem().and_then(|s| s.to_str());
    let parent = file.parent().unwrap_or(Path::new(""));
    let folders: Vec<&str> = match root {
        Some(root) => {
            let rel = parent.strip_prefix(root).unwrap_or(Path::new(""));
            let mut v: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
            v.reverse();
            v.extend(root.file_name().and_then(|n| n.to_str()));
            v
        }
        None => parent
            .file_name()
            .and_then(|n| n.to_str())
            .into_iter()
            .collect(),
    };
    stem.into_iter().chain(folders).find_map(split_token)
}

/// One file to read: the split its input forces, and the one its path names.
struct Shard {
    path: PathBuf,
    forced: Option<String>,
    guess: Option<String>,
}

/// The files of the inputs, in order (a folder's sorted, below it too).
fn shards(inputs: &[Input]) -> Result<Vec<Shard>, DataError> {
    let mut out = Vec::new();
    for input in inputs {
        let shard = |path: PathBuf, root: Option<&Path>| Shard {
            guess: split_from_path(&path, root),
            forced: input.split.clone(),
            path,
        };
        if !input.path.is_dir() {
            out.push(shard(input.path.clone(), None));
            continue;
        }
        let mut files = Vec::new();
        parquet_files(&input.path, 0, &mut files)?;
        if files.is_empty() {
            let msg = "no .parquet files in this folder or below it";
            return Err(DataError::layout(&input.path, msg));
        }
        out.extend(files.into_iter().map(|f| shard(f, Some(&input.path))));
    }
    Ok(out)
}

/// `*.parquet` files under `dir` in sorted path order, names starting with `.` skipped.
fn parquet_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    if depth > MAX_DEPTH {
        let msg = format!("folders nested deeper than {MAX_DEPTH} levels (symlink loop?)");
        return Err(DataError::layout(dir, msg));
    }
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let e = e.map_err(|e| DataError::io(dir, e))?;
        if !e.file_name().to_string_lossy().starts_with('.') {
            entries.push(e.path());
        }
    }
    entries.sort();
    for p in entries {
        if p.is_dir() {
            parquet_files(&p, depth + 1, out)?;
        } else if p
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("parquet"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// What a file's footer says: its class names (if any) and its row count.
fn footer(path: &Path) -> Result<(Option<Vec<String>>, u64), DataError> {
    let b = builder(path)?;
    let schema = b.schema().clone();
    for col in ["image", "label"] {
        if schema.column_with_name(col).is_none() {
            return Err(DataError::layout(path, format!("no '{col}' column")));
        }
    }
    let names = schema
        .metadata()
        .get("huggingface")
        .and_then(|m| hf_class_names(m, "label"));
    Ok((names, b.metadata().file_metadata().num_rows() as u64))
}

/// The class names every named file agrees on, else `0..=max` label over all files.
fn class_names(shards: &[Shard], named: &[Option<Vec<String>>]) -> Result<Vec<String>, DataError> {
    let mut first: Option<(&Path, &Vec<String>)> = None;
    for (s, n) in shards.iter().zip(named) {
        let Some(n) = n else { continue };
        match first {
            None => first = Some((&s.path, n)),
            Some((p, f)) if f != n => {
                let msg = format!(
                    "its class names ({}) differ from those of {} ({})",
                    n.join(", "),
                    p.display(),
                    f.join(", ")
                );
                return Err(DataError::layout(&s.path, msg));
            }
            Some(_) => {}
        }
    }
    if let Some((_, names)) = first {
        return Ok(names.clone());
    }
    let mut max = -1;
    for s in shards {
        max = max.max(max_label(&s.path)?);
    }
    let path = shards.first().map_or(Path::new(""), |s| s.path.as_path());
    numbered_classes(path, max)
}

/// Opens the Parquet exports of `inputs` (files or folders of shards) as one source.
pub fn open(inputs: &[Input]) -> Result<Source, DataError> {
    let shards = shards(inputs)?;
    let mut named = Vec::with_capacity(shards.len());
    let mut total = 0;
    for s in &shards {
        let (names, rows) = footer(&s.path)?;
        named.push(names);
        total += rows;
    }
    let class_names = class_names(&shards, &named)?;
    let rows = Rows {
        shards: shards.into_iter(),
        current: None,
        counts: HashMap::new(),
    };
    let entries = rows.flat_map(|r| match r {
        Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    });
    Ok(Source {
        class_names,
        total: Some(total),
        entries: Box::new(entries),
        notes: Vec::new(),
    })
}

/// Batch-wise conversion of the files' rows to entries, one file after the other.
struct Rows {
    shards: std::vec::IntoIter<Shard>,
    current: Option<(Shard, ParquetRecordBatchReader)>,
    /// Rows seen per split so far, for the `<split>/<n>` ids.
    counts: HashMap<String, usize>,
}

impl Iterator for Rows {
    type Item = Result<Vec<Entry>, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((shard, reader)) = self.current.as_mut() {
                match reader.next() {
                    Some(Ok(batch)) => return Some(entries(shard, &batch, &mut self.counts)),
                    Some(Err(e)) => return Some(Err(DataError::Arrow(e))),
                    None => self.current = None,
                }
            }
            let shard = self.shards.next()?;
            let reader = builder(&shard.path).and_then(|b| {
                b.with_batch_size(256)
                    .build()
                    .map_err(|e| DataError::parquet(&shard.path, e))
            });
            match reader {
                Ok(r) => self.current = Some((shard, r)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

fn entries(
    shard: &Shard,
    batch: &RecordBatch,
    counts: &mut HashMap<String, usize>,
) -> Result<Vec<Entry>, DataError> {
    let cols = Columns::of(batch).map_err(|m| DataError::layout(&shard.path, m))?;
    Ok((0..batch.num_rows())
        .map(|i| entry(shard, &cols, i, counts))
        .collect())
}

fn entry(shard: &Shard, c: &Columns, i: usize, counts: &mut HashMap<String, usize>) -> Entry {
    let split = match (&shard.forced, &c.split) {
        (Some(f), _) => f.clone(),
        (None, Some(s)) if s.is_valid(i) => s.value(i).to_string(),
        _ => shard.guess.clone().unwrap_or_else(|| "test".into()),
    };
    let n = counts.entry(split.clone()).or_default();
    let index = *n;
    *n += 1;
    let id = match &c.id {
        Some(a) if a.is_valid(i) => a.value(i).to_string(),
        _ => array_id(&split, index),
    };
    if !c.label.is_valid(i) {
        return Entry::Reject(Rejected::new(id, Reason::Missing("label (null)".into())));
    }
    let path = opt_string(&c.paths, i);
    let payload = match (c.image_bytes(i), &path) {
        (Some(bytes), _) => Payload::Encoded(bytes),
        (None, Some(p)) if !p.is_empty() => match image_file(shard, p) {
            Ok(file) => Payload::File(file),
            Err(reason) => return Entry::Reject(Rejected::new(id, reason)),
        },
        (None, _) => {
            let what = "image bytes and path (both null)".into();
            return Entry::Reject(Rejected::new(id, Reason::Missing(what)));
        }
    };
    Entry::Item(Item {
        path,
        payload,
        id,
        split,
        label: c.label.value(i),
        corruption: opt_string(&c.corruption, i),
        severity: c
            .severity
            .as_ref()
            .filter(|a| a.is_valid(i))
            .map(|a| a.value(i)),
    })
}

fn opt_string(a: &Option<arrow::array::StringArray>, i: usize) -> Option<String> {
    a.as_ref()
        .filter(|a| a.is_valid(i))
        .map(|a| a.value(i).to_string())
}

/// The file a path-only image names: absolute, or relative to the Parquet file's folder.
fn image_file(shard: &Shard, path: &str) -> Result<PathBuf, Reason> {
    let p = Path::new(path);
    let file = if p.is_absolute() {
        p.to_path_buf()
    } else {
        shard.path.parent().unwrap_or(Path::new("")).join(p)
    };
    if file.is_file() {
        Ok(file)
    } else {
        Err(Reason::MissingFile(file.display().to_string()))
    }
}

/// The typed columns of one batch.
struct Columns {
    image: StructArray,
    label: arrow::array::Int64Array,
    paths: Option<arrow::array::StringArray>,
    split: Option<arrow::array::StringArray>,
    id: Option<arrow::array::StringArray>,
    corruption: Option<arrow::array::StringArray>,
    severity: Option<arrow::array::Int32Array>,
}

impl Columns {
    fn of(batch: &RecordBatch) -> Result<Self, String> {
        let image = batch.column_by_name("image").ok_or("no 'image' column")?;
        let image = image
            .as_struct_opt()
            .ok_or("'image' is not a struct<bytes, path>")?
            .clone();
        if image.column_by_name("bytes").is_none() {
            return Err("'image' struct has no 'bytes' field".into());
        }
        let label = cast(
            batch.column_by_name("label").ok_or("no 'label' column")?,
            &DataType::Int64,
        )
        .map_err(|e| format!("'label' is not an integer column: {e}"))?;
        let utf8 = |a: Option<&arrow::array::ArrayRef>| {
            a.and_then(|a| cast(a, &DataType::Utf8).ok())
                .map(|a| a.as_string::<i32>().clone())
        };
        Ok(Self {
            paths: utf8(image.column_by_name("path")),
            label: label.as_primitive::<Int64Type>().clone(),
            split: utf8(batch.column_by_name("split")),
            id: utf8(batch.column_by_name("id")),
            corruption: utf8(batch.column_by_name("corruption")),
            severity: batch
                .column_by_name("severity")
                .and_then(|a| cast(a, &DataType::Int32).ok())
                .map(|a| a.as_primitive::<Int32Type>().clone()),
            image,
        })
    }

    fn image_bytes(&self, i: usize) -> Option<Vec<u8>> {
        let col = self.image.column_by_name("bytes")?;
        if !self.image.is_valid(i) || !col.is_valid(i) {
            return None;
        }
        if let Some(a) = col.as_any().downcast_ref::<BinaryArray>() {
            return Some(a.value(i).to_vec());
        }
        col.as_any()
            .downcast_ref::<LargeBinaryArray>()
            .map(|a| a.value(i).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::Int32Array;
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;

    /// A Parquet file with only a `label` column, one row group per slice of `groups`.
    fn labels_file(path: &Path, groups: &[&[Option<i32>]]) {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "label",
            DataType::Int32,
            true,
        )]));
        let batches: Vec<_> = groups
            .iter()
            .map(|g| {
                let col = Arc::new(Int32Array::from(g.to_vec()));
                RecordBatch::try_new(schema.clone(), vec![col]).expect("batch")
            })
            .collect();
        write_parquet(path, &batches);
    }

    /// A Parquet file of `batches` (one schema), one row group each.
    fn write_parquet(path: &Path, batches: &[RecordBatch]) {
        let file = File::create(path).expect("create");
        let mut w = ArrowWriter::try_new(file, batches[0].schema(), None).expect("writer");
        for b in batches {
            w.write(b).expect("write");
            w.flush().expect("row group");
        }
        w.close().expect("close");
    }

    #[test]
    fn the_largest_label_is_read_over_every_row_group() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("x.parquet");
        labels_file(&p, &[&[Some(3), Some(1)], &[Some(7), None], &[Some(2)]]);
        assert_eq!(max_label(&p).expect("reads"), 7);
        // One class, labelled 0: one numbered class, not two.
        labels_file(&p, &[&[Some(0), Some(0)]]);
        assert_eq!(max_label(&p).expect("reads"), 0);
        assert_eq!(numbered_classes(&p, 0).expect("fits"), ["0"]);
        // No label at all: no class.
        labels_file(&p, &[&[None]]);
        assert_eq!(max_label(&p).expect("reads"), -1);
        assert!(numbered_classes(&p, -1).expect("fits").is_empty());
    }

    #[test]
    fn unnamed_shards_get_classes_up_to_their_largest_label_and_named_ones_must_agree() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        labels_file(&a, &[&[Some(0), Some(0)]]);
        labels_file(&b, &[&[Some(0)]]);
        let shards: Vec<Shard> = [&a, &b]
            .iter()
            .map(|p| Shard {
                path: p.to_path_buf(),
                forced: None,
                guess: None,
            })
            .collect();
        // Every label 0: one class "0", not "0" and "1".
        assert_eq!(
            class_names(&shards, &[None, None]).expect("numbered"),
            ["0"]
        );
        let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let named = [names(&["cat", "dog"]), None];
        assert_eq!(class_names(&shards, &named).expect("named"), ["cat", "dog"]);
        let clash = [names(&["cat", "dog"]), names(&["dog", "cat"])];
        let err = class_names(&shards, &clash).unwrap_err().to_string();
        assert!(
            err.contains("b.parquet") && err.contains("differ from those of"),
            "{err}"
        );
    }

    #[test]
    fn shard_folders_are_searched_down_to_the_depth_limit_and_no_further() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut deep = dir.path().to_path_buf();
        for i in 0..MAX_DEPTH {
            deep.push(format!("d{i}"));
        }
        std::fs::create_dir_all(&deep).expect("mkdir");
        labels_file(&deep.join("x.parquet"), &[&[Some(1)]]);
        // The file sits in a folder MAX_DEPTH levels below: found.
        let mut found = Vec::new();
        parquet_files(dir.path(), 0, &mut found).expect("within the limit");
        assert_eq!(found, [deep.join("x.parquet")]);
        // One level more is refused.
        let deeper = deep.join("one-more");
        std::fs::create_dir(&deeper).expect("mkdir");
        labels_file(&deeper.join("y.parquet"), &[&[Some(1)]]);
        let err = parquet_files(dir.path(), 0, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 32"), "{err}");
    }

    #[test]
    fn too_many_unnamed_classes_are_refused_with_the_label() {
        let p = Path::new("big.parquet");
        assert_eq!(
            numbered_classes(p, MAX_UNNAMED_CLASSES - 1)
                .expect("fits")
                .len(),
            100_000
        );
        let err = numbered_classes(p, MAX_UNNAMED_CLASSES)
            .unwrap_err()
            .to_string();
        assert!(err.contains("largest label is 100000"), "{err}");
    }

    #[test]
    fn shard_folders_list_parquet_files_sorted_below_and_skip_dot_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::create_dir_all(root.join(".cache")).expect("mkdir");
        for name in [
            "b.parquet",
            "a.parquet",
            ".hidden.parquet",
            "sub/c.PARQUET",
            "notes.txt",
        ] {
            std::fs::write(root.join(name), b"").expect("write");
        }
        std::fs::write(root.join(".cache/d.parquet"), b"").expect("write");
        let mut out = Vec::new();
        parquet_files(root, 0, &mut out).expect("lists");
        let names: Vec<_> = out
            .iter()
            .map(|p| p.strip_prefix(root).expect("below"))
            .collect();
        let want = ["a.parquet", "b.parquet", "sub/c.PARQUET"].map(Path::new);
        assert_eq!(names, want);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_is_refused_not_followed_forever() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).expect("symlink");
        let err = parquet_files(dir.path(), 0, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("nested deeper than"), "{err}");
    }

    /// One HF export row: image bytes, image path, label, split, id.
    type HfRow<'a> = (
        Option<&'a [u8]>,
        Option<&'a str>,
        Option<i64>,
        Option<&'a str>,
        Option<&'a str>,
    );

    fn hf_file(path: &Path, rows: &[HfRow]) {
        use arrow::array::{ArrayRef, BinaryArray, Int64Array, StringArray};
        let bytes: BinaryArray = rows.iter().map(|r| r.0).collect();
        let paths: StringArray = rows.iter().map(|r| r.1).collect();
        let image = StructArray::from(vec![
            (
                Arc::new(Field::new("bytes", DataType::Binary, true)),
                Arc::new(bytes) as ArrayRef,
            ),
            (
                Arc::new(Field::new("path", DataType::Utf8, true)),
                Arc::new(paths) as ArrayRef,
            ),
        ]);
        let labels: Int64Array = rows.iter().map(|r| r.2).collect();
        let splits: StringArray = rows.iter().map(|r| r.3).collect();
        let ids: StringArray = rows.iter().map(|r| r.4).collect();
        let batch = RecordBatch::try_from_iter([
            ("image", Arc::new(image) as ArrayRef),
            ("label", Arc::new(labels) as ArrayRef),
            ("split", Arc::new(splits) as ArrayRef),
            ("id", Arc::new(ids) as ArrayRef),
        ])
        .expect("batch");
        write_parquet(path, &[batch]);
    }

    #[test]
    fn rows_take_bytes_else_the_path_and_their_split_and_id_else_numbered_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("data.parquet");
        std::fs::write(dir.path().join("img.png"), b"png").expect("write");
        hf_file(
            &file,
            &[
                (Some(b"x"), None, Some(1), Some("train"), Some("a")),
                (None, Some("img.png"), Some(2), None, None),
                (None, Some(""), Some(0), Some("train"), Some("c")),
                (Some(b"y"), None, None, Some("train"), Some("d")),
                (None, Some("gone.png"), Some(0), None, None),
            ],
        );
        let got: Vec<_> = open(&[Input::path(&file)])
            .expect("opens")
            .entries
            .map(|e| e.expect("entry"))
            .collect();
        assert_eq!(got.len(), 5);
        let item = |e: &Entry| match e {
            Entry::Item(i) => (i.split.clone(), i.id.clone(), i.label),
            Entry::Reject(r) => panic!("{} rejected: {:?}", r.item, r.reason),
        };
        assert_eq!(item(&got[0]), ("train".into(), "a".into(), 1));
        assert!(
            matches!(&got[0], Entry::Item(i) if matches!(&i.payload, Payload::Encoded(b) if b == b"x"))
        );
        // No split column value, no split token in the name: `test`, numbered in it.
        assert_eq!(item(&got[1]), ("test".into(), "test/00000".into(), 2));
        let want = dir.path().join("img.png");
        assert!(
            matches!(&got[1], Entry::Item(i) if matches!(&i.payload, Payload::File(f) if *f == want))
        );
        let reason = |e: &Entry| match e {
            Entry::Reject(r) => format!("{} {:?}", r.item, r.reason),
            Entry::Item(i) => panic!("{} not rejected", i.id),
        };
        assert!(reason(&got[2]).starts_with("c Missing(\"image bytes and path"));
        assert!(reason(&got[3]).starts_with("d Missing(\"label"));
        assert!(
            reason(&got[4]).contains("MissingFile"),
            "{}",
            reason(&got[4])
        );
        // A split named on the input overrides the column.
        let forced = Input {
            split: Some("val".into()),
            path: file.clone(),
        };
        let got = open(&[forced]).expect("opens");
        assert_eq!(got.total, Some(5));
        for e in got.entries {
            if let Entry::Item(i) = e.expect("entry") {
                assert_eq!(i.split, "val");
            }
        }
    }
}
