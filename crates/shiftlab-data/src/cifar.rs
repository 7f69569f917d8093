//! CIFAR-10 (binary or python batches, detected) and CIFAR-10-C (`.npy` arrays).
//!
//! - binary: `data_batch_1.bin`..`data_batch_5.bin` (train), `test_batch.bin` (test), records
//!   of 1 label byte + 3072 bytes (R, G, B planes of 32x32); names from `batches.meta.txt`.
//! - python: pickled dicts `data_batch_1`..`5`, `test_batch` with `data` (N x 3072 uint8, planes
//!   as above) and `labels`; names from `batches.meta` (`label_names`).
//! - CIFAR-10-C: `<corruption>.npy` (N x 32 x 32 x 3 uint8, the 5 severities stacked in order)
//!   and `labels.npy` (N labels, or N/5 repeated per severity).
//!
//! `input` may be the batch folder or its parent holding `cifar-10-batches-bin`/`-py`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{DataError, Reason, Rejected};
use crate::npy::{self, NpyHeader, Records};
use crate::pickle;
use crate::source::{array_id, Entry, Item, Payload, Source};

/// CIFAR-10's class names, in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const SIDE: usize = 32;
const IMAGE_BYTES: usize = SIDE * SIDE * 3;
const SEVERITIES: usize = 5;

/// One split's batch files.
fn batches(split: &str) -> Vec<String> {
    match split {
        "train" => (1..=5).map(|i| format!("data_batch_{i}")).collect(),
        _ => vec!["test_batch".to_string()],
    }
}

/// Opens CIFAR-10 under `input`; `only` restricts to `train` or `test`.
pub fn open_cifar10(input: &Path, only: Option<&str>) -> Result<Source, DataError> {
    let splits: Vec<&str> = match only {
        None => vec!["train", "test"],
        Some(s @ ("train" | "test")) => vec![s],
        Some(s) => {
            return Err(DataError::layout(
                input,
                format!("no split '{s}' in CIFAR-10 (train, test)"),
            ))
        }
    };
    let (dir, binary) = locate(input)?;
    let class_names = if binary {
        binary_meta(&dir)?
    } else {
        python_meta(&dir)?
    };
    let mut parts = Vec::new();
    for split in splits {
        let mut labels = Vec::new();
        let mut pixels = Vec::new();
        for name in batches(split) {
            let (l, p) = if binary {
                read_binary(&dir.join(format!("{name}.bin")))?
            } else {
                read_python(&dir.join(name))?
            };
            labels.extend(l);
            pixels.extend(p);
        }
        parts.push((split.to_string(), Arc::new(labels), Arc::new(pixels)));
    }
    let total = parts.iter().map(|(_, l, _)| l.len() as u64).sum();
    let entries = parts.into_iter().flat_map(|(split, labels, pixels)| {
        (0..labels.len()).map(move |i| {
            Ok(Entry::Item(planar_item(
                &split,
                i,
                labels[i],
                &pixels[i * IMAGE_BYTES..],
            )))
        })
    });
    Ok(Source {
        class_names,
        total: Some(total),
        entries: Box::new(entries),
        notes: Vec::new(),
    })
}

/// Finds the batch folder and whether it holds the binary version.
fn locate(input: &Path) -> Result<(PathBuf, bool), DataError> {
    for dir in [
        input.to_path_buf(),
        input.join("cifar-10-batches-bin"),
        input.join("cifar-10-batches-py"),
    ] {
        if dir.join("data_batch_1.bin").is_file() || dir.join("test_batch.bin").is_file() {
            return Ok((dir, true));
        }
        if dir.join("data_batch_1").is_file() || dir.join("test_batch").is_file() {
            return Ok((dir, false));
        }
    }
    Err(DataError::layout(
        input,
        "no CIFAR-10 batches (data_batch_1[.bin], test_batch[.bin]) found",
    ))
}

fn default_names() -> Vec<String> {
    CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect()
}

fn binary_meta(dir: &Path) -> Result<Vec<String>, DataError> {
    let path = dir.join("batches.meta.txt");
    if !path.is_file() {
        return Ok(default_names());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn python_meta(dir: &Path) -> Result<Vec<String>, DataError> {
    let path = dir.join("batches.meta");
    if !path.is_file() {
        return Ok(default_names());
    }
    let value = load_pickle(&path)?;
    let names = value.get("label_names").and_then(|v| match v {
        pickle::Value::List(items) => items.iter().map(pickle::Value::as_text).collect(),
        _ => None,
    });
    names.ok_or_else(|| DataError::layout(&path, "no list 'label_names' in the pickle"))
}

fn load_pickle(path: &Path) -> Result<pickle::Value, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    pickle::loads(&bytes).map_err(|e| DataError::layout(path, e.to_string()))
}

/// Labels and planar pixel records of one binary batch.
fn read_binary(path: &Path) -> Result<(Vec<i64>, Vec<u8>), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let record = 1 + IMAGE_BYTES;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(DataError::layout(
            path,
            format!(
                "{} bytes is not a whole number of {record}-byte records",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / record;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    for rec in bytes.chunks_exact(record) {
        labels.push(rec[0] as i64);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok((labels, pixels))
}

/// Labels and planar pixel rows of one python batch.
fn read_python(path: &Path) -> Result<(Vec<i64>, Vec<u8>), DataError> {
    let value = load_pickle(path)?;
    let data = value.get("data").and_then(pickle::Value::ndarray);
    let Some(data) = data else {
        return Err(DataError::layout(
            path,
            "no numpy array 'data' in the pickle",
        ));
    };
    if data.dtype != "u1" || data.fortran || data.shape.len() != 2 || data.shape[1] != IMAGE_BYTES {
        return Err(DataError::layout(
            path,
            format!(
                "'data' must be C-ordered uint8 N x {IMAGE_BYTES}, found {} {:?}{}",
                data.dtype,
                data.shape,
                if data.fortran { " (Fortran order)" } else { "" }
            ),
        ));
    }
    let labels = value
        .get("labels")
        .and_then(|v| v.as_ints().or_else(|| ndarray_ints(v)));
    let Some(labels) = labels else {
        return Err(DataError::layout(
            path,
            "no integer list 'labels' in the pickle",
        ));
    };
    if labels.len() != data.shape[0] || data.data.len() != data.shape[0] * IMAGE_BYTES {
        return Err(DataError::layout(
            path,
            format!("{} labels for {} images", labels.len(), data.shape[0]),
        ));
    }
    Ok((labels, data.data))
}

fn ndarray_ints(v: &pickle::Value) -> Option<Vec<i64>> {
    let a = v.ndarray()?;
    let size: usize = a.dtype.get(1..)?.parse().ok()?;
    if a.byteorder == '>' || ![1, 2, 4, 8].contains(&size) || a.shape.len() != 1 {
        return None;
    }
    let signed = a.dtype.starts_with('i');
    Some(
        a.data
            .chunks_exact(size)
            .map(|c| {
                let mut buf = if signed && c[size - 1] & 0x80 != 0 {
                    [0xff; 8]
                } else {
                    [0; 8]
                };
                buf[..size].copy_from_slice(c);
                i64::from_le_bytes(buf)
            })
            .collect(),
    )
}

/// An item from planar R, G, B bytes.
fn planar_item(split: &str, i: usize, label: i64, planes: &[u8]) -> Item {
    let plane = SIDE * SIDE;
    let pixels = (0..plane)
        .flat_map(|p| [planes[p], planes[plane + p], planes[2 * plane + p]])
        .collect();
    raw_item(array_id(split, i), split, label, pixels, None)
}

fn raw_item(
    id: String,
    split: &str,
    label: i64,
    pixels: Vec<u8>,
    cs: Option<(String, i32)>,
) -> Item {
    let (corruption, severity) = cs.map_or((None, None), |(c, s)| (Some(c), Some(s)));
    Item {
        id,
        split: split.to_string(),
        label,
        payload: Payload::Raw {
            width: SIDE as u32,
            height: SIDE as u32,
            channels: 3,
            pixels,
        },
        path: None,
        corruption,
        severity,
    }
}

/// Opens CIFAR-10-C under `dir`: every `<corruption>.npy` except `labels.npy`, sorted by name.
pub fn open_cifar10c(dir: &Path, split: &str) -> Result<Source, DataError> {
    let labels_path = dir.join("labels.npy");
    if !labels_path.is_file() {
        return Err(DataError::layout(dir, "missing labels.npy"));
    }
    let labels = Arc::new(npy::read_ints(&labels_path)?);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        let stem = path.file_stem().and_then(|s| s.to_str()).map(String::from);
        if path.extension().is_some_and(|e| e == "npy") && stem.as_deref() != Some("labels") {
            files.push((stem.unwrap_or_default(), path));
        }
    }
    if files.is_empty() {
        return Err(DataError::layout(dir, "no <corruption>.npy arrays"));
    }
    files.sort();
    let mut total = 0;
    let mut parts = Vec::new();
    for (name, path) in files {
        let part = corruption_entries(&name, &path, &labels, split)?;
        total += part.1;
        parts.push(part.0);
    }
    let entries = parts.into_iter().flatten();
    Ok(Source {
        class_names: default_names(),
        total: Some(total),
        entries: Box::new(entries),
        notes: Vec::new(),
    })
}

type Entries = Box<dyn Iterator<Item = Result<Entry, DataError>> + Send>;

/// Entries of one corruption array, or a single rejection when its dtype/shape is wrong.
fn corruption_entries(
    name: &str,
    path: &Path,
    labels: &Arc<Vec<i64>>,
    split: &str,
) -> Result<(Entries, u64), DataError> {
    let h = npy::read_header(path)?;
    if let Err(reason) = check_array(&h, labels.len()) {
        let rej = Rejected::new(format!("{name}.npy"), reason);
        return Ok((Box::new(std::iter::once(Ok(Entry::Reject(rej)))), 1));
    }
    let n = h.shape[0];
    let per = n / SEVERITIES;
    let records = Records::open(path, &h, IMAGE_BYTES, n)?;
    let (name, split, labels) = (name.to_string(), split.to_string(), labels.clone());
    let entries = records.enumerate().map(move |(i, rec)| {
        let (severity, index) = ((i / per) as i32 + 1, i % per);
        let label = labels[if labels.len() == n { i } else { index }];
        let id = format!("{name}/{severity}/{index:05}");
        Ok(Entry::Item(raw_item(
            id,
            &split,
            label,
            rec?,
            Some((name.clone(), severity)),
        )))
    });
    Ok((Box::new(entries), n as u64))
}

/// A CIFAR-10-C array must be C-ordered uint8 N x 32 x 32 x 3 with N = 5 x (labels or labels/5).
fn check_array(h: &NpyHeader, labels: usize) -> Result<(), Reason> {
    if !matches!(h.descr.as_str(), "|u1" | "u1" | "<u1") || h.fortran_order {
        return Err(Reason::UnsupportedPixelFormat(format!(
            "array dtype {}{} but expected C-ordered uint8 (|u1)",
            h.descr,
            if h.fortran_order {
                " in Fortran order"
            } else {
                ""
            }
        )));
    }
    let n = h.shape.first().copied().unwrap_or(0);
    if h.shape.get(1..) != Some(&[SIDE, SIDE, 3][..]) || n == 0 || n % SEVERITIES != 0 {
        return Err(Reason::Misplaced(format!(
            "shape {:?}, expected (5*K, 32, 32, 3)",
            h.shape
        )));
    }
    if labels != n && labels * SEVERITIES != n {
        return Err(Reason::Misplaced(format!(
            "{n} images but labels.npy has {labels} labels"
        )));
    }
    Ok(())
}
