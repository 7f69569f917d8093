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
    python_batch(path, load_pickle(path)?)
}

/// Labels and pixel rows of a loaded python batch (`path` names it in errors).
fn python_batch(path: &Path, value: pickle::Value) -> Result<(Vec<i64>, Vec<u8>), DataError> {
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
            format!(
                "{} labels and {} bytes for {} images of {IMAGE_BYTES} bytes",
                labels.len(),
                data.data.len(),
                data.shape[0]
            ),
        ));
    }
    Ok((labels, data.data))
}

fn ndarray_ints(v: &pickle::Value) -> Option<Vec<i64>> {
    let a = v.ndarray()?;
    let (size, signed) = npy::le_int_layout(&format!("{}{}", a.byteorder, a.dtype))?;
    if a.shape.len() != 1 {
        return None;
    }
    Some(
        a.data
            .chunks_exact(size)
            .map(|c| npy::int_le(c, signed))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::npy_file;
    use pickle::Value;

    /// numpy's protocol-5 array pickle: `_frombuffer(data, dtype(code) + state, shape, 'C')`.
    fn frombuffer(data: Vec<u8>, code: &str, order: &str, shape: &[i64]) -> Value {
        frombuffer_in(data, code, order, shape, "C")
    }

    /// [`frombuffer`] in memory order `layout` (`C` or `F`).
    fn frombuffer_in(data: Vec<u8>, code: &str, order: &str, shape: &[i64], layout: &str) -> Value {
        let dtype = Value::Call {
            func: Box::new(Value::Global("numpy.dtype".into())),
            args: Box::new(Value::Tuple(vec![Value::Str(code.into())])),
            state: Some(Box::new(Value::Tuple(vec![
                Value::Int(3),
                Value::Str(order.into()),
            ]))),
        };
        let shape = Value::Tuple(shape.iter().map(|&d| Value::Int(d)).collect());
        Value::Call {
            func: Box::new(Value::Global("numpy.core.numeric._frombuffer".into())),
            args: Box::new(Value::Tuple(vec![
                Value::Bytes(data),
                dtype,
                shape,
                Value::Str(layout.into()),
            ])),
            state: None,
        }
    }

    #[test]
    fn label_arrays_of_every_integer_width_are_read_with_their_sign() {
        let le = |v: &[i64], size: usize| -> Vec<u8> {
            v.iter()
                .flat_map(|x| x.to_le_bytes()[..size].to_vec())
                .collect()
        };
        let a = frombuffer(le(&[-2, 300], 8), "i8", "<", &[2]);
        assert_eq!(ndarray_ints(&a), Some(vec![-2, 300]));
        let a = frombuffer(le(&[-1, 5], 2), "i2", "<", &[2]);
        assert_eq!(ndarray_ints(&a), Some(vec![-1, 5]));
        let a = frombuffer(le(&[-7], 4), "i4", "<", &[1]);
        assert_eq!(ndarray_ints(&a), Some(vec![-7]));
        // Unsigned: the top bit is a value, not a sign.
        let a = frombuffer(vec![255, 0], "u1", "|", &[2]);
        assert_eq!(ndarray_ints(&a), Some(vec![255, 0]));
        let a = frombuffer(vec![0xff, 0xff], "u2", "<", &[1]);
        assert_eq!(ndarray_ints(&a), Some(vec![65535]));
    }

    #[test]
    fn label_arrays_that_are_not_flat_little_endian_integers_are_not_labels() {
        assert_eq!(ndarray_ints(&frombuffer(vec![0, 1], "i2", ">", &[1])), None);
        assert_eq!(ndarray_ints(&frombuffer(vec![0; 3], "i3", "<", &[1])), None);
        assert_eq!(
            ndarray_ints(&frombuffer(vec![0; 4], "u1", "|", &[2, 2])),
            None
        );
        assert_eq!(ndarray_ints(&frombuffer(vec![0; 8], "f8", "<", &[1])), None);
        assert_eq!(ndarray_ints(&Value::Int(3)), None);
    }

    #[test]
    fn either_batch_file_locates_the_folder_in_its_form() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for (name, binary) in [
            ("test_batch", false),
            ("data_batch_1", false),
            ("test_batch.bin", true),
            ("data_batch_1.bin", true),
        ] {
            let sub = root.join(name.replace('.', "_"));
            std::fs::create_dir(&sub).expect("mkdir");
            std::fs::write(sub.join(name), b"").expect("write");
            assert_eq!(
                locate(&sub).expect("found"),
                (sub.clone(), binary),
                "{name}"
            );
        }
        let nested = root.join("download").join("cifar-10-batches-py");
        std::fs::create_dir_all(&nested).expect("mkdir");
        std::fs::write(nested.join("test_batch"), b"").expect("write");
        let found = locate(&root.join("download")).expect("found below");
        assert_eq!(found, (nested, false));
        let empty = root.join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        let err = locate(&empty).unwrap_err().to_string();
        assert!(err.contains("no CIFAR-10 batches"), "{err}");
    }

    #[test]
    fn class_names_come_from_batches_meta_else_the_cifar10_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(python_meta(dir.path()).expect("defaults"), default_names());
        assert_eq!(binary_meta(dir.path()).expect("defaults"), default_names());
        // `pickle.dumps({'label_names': ['cat', 'dog']}, protocol=2)`.
        let meta = b"\x80\x02}q\x00X\x0b\x00\x00\x00label_namesq\x01]q\x02(X\x03\x00\x00\x00catq\x03X\x03\x00\x00\x00dogq\x04es.";
        std::fs::write(dir.path().join("batches.meta"), meta).expect("write");
        assert_eq!(python_meta(dir.path()).expect("read"), ["cat", "dog"]);
        std::fs::write(dir.path().join("batches.meta.txt"), "cat\n\n dog \n").expect("write");
        assert_eq!(binary_meta(dir.path()).expect("read"), ["cat", "dog"]);
    }

    fn header(descr: &str, shape: &[usize]) -> NpyHeader {
        NpyHeader {
            descr: descr.into(),
            fortran_order: false,
            shape: shape.to_vec(),
            data_offset: 128,
        }
    }

    #[test]
    fn cifar10c_arrays_must_be_five_severities_of_32px_rgb_bytes() {
        let ok = |h: &NpyHeader, labels| check_array(h, labels).is_ok();
        assert!(ok(&header("|u1", &[10, 32, 32, 3]), 10));
        assert!(
            ok(&header("<u1", &[10, 32, 32, 3]), 2),
            "labels of one severity"
        );
        assert!(
            !ok(&header("|u1", &[10, 32, 32, 3]), 3),
            "labels that fit neither"
        );
        assert!(!ok(&header("|u1", &[0, 32, 32, 3]), 0), "no image");
        assert!(!ok(&header("|u1", &[7, 32, 32, 3]), 7), "not 5 x K");
        assert!(!ok(&header("|u1", &[10, 32, 32, 1]), 10), "grey");
        assert!(!ok(&header("|u1", &[10, 32, 32]), 10), "no channel axis");
        assert!(!ok(&header("<i8", &[10, 32, 32, 3]), 10), "not bytes");
        let mut fortran = header("|u1", &[10, 32, 32, 3]);
        fortran.fortran_order = true;
        let err = check_array(&fortran, 10).unwrap_err();
        assert!(format!("{err:?}").contains("Fortran"), "{err:?}");
    }

    #[test]
    fn cifar10c_reads_every_corruption_array_and_only_those() {
        let dir = tempfile::tempdir().expect("temp dir");
        let labels: Vec<u8> = [3i64, 7].iter().flat_map(|l| l.to_le_bytes()).collect();
        npy_file(&dir.path().join("labels.npy"), "<i8", &[2], &labels);
        let images = vec![9u8; 10 * IMAGE_BYTES];
        npy_file(
            &dir.path().join("fog.npy"),
            "|u1",
            &[10, 32, 32, 3],
            &images,
        );
        npy_file(
            &dir.path().join("snow.npy"),
            "|u1",
            &[5, 32, 32, 3],
            &images[..5 * IMAGE_BYTES],
        );
        std::fs::write(dir.path().join("README.txt"), "not an array").expect("write");
        let source = open_cifar10c(dir.path(), "test").expect("opens");
        // fog's 10 images, and snow (5 images for 2 labels) as one rejected item.
        assert_eq!(source.total, Some(11));
        let entries: Vec<_> = source.entries.map(|e| e.expect("entry")).collect();
        let rejects = entries
            .iter()
            .filter(|e| matches!(e, Entry::Reject(_)))
            .count();
        assert_eq!((entries.len(), rejects), (11, 1));
        // fog's rows are 5 severities of the 2 labelled images, in that order.
        let fog: Vec<(String, i64, Option<i32>)> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Item(i) if i.corruption.as_deref() == Some("fog") => {
                    Some((i.id.clone(), i.label, i.severity))
                }
                _ => None,
            })
            .collect();
        let want: Vec<(String, i64, Option<i32>)> = (0..10)
            .map(|i| {
                let (s, k) = (i / 2 + 1, i % 2);
                (format!("fog/{s}/{k:05}"), [3, 7][k], Some(s as i32))
            })
            .collect();
        assert_eq!(fog, want);
        std::fs::remove_file(dir.path().join("labels.npy")).expect("rm");
        let err = open_cifar10c(dir.path(), "test").err().expect("no labels");
        assert!(err.to_string().contains("missing labels.npy"), "{err}");
    }

    #[test]
    fn cifar10c_labels_for_every_row_are_taken_row_by_row() {
        // The released labels.npy has one label per row (5 x 10,000), not one per image.
        let dir = tempfile::tempdir().expect("temp dir");
        let labels: Vec<i64> = (0..10).collect();
        let bytes: Vec<u8> = labels.iter().flat_map(|l| l.to_le_bytes()).collect();
        npy_file(&dir.path().join("labels.npy"), "<i8", &[10], &bytes);
        let images = vec![1u8; 10 * IMAGE_BYTES];
        npy_file(
            &dir.path().join("fog.npy"),
            "|u1",
            &[10, 32, 32, 3],
            &images,
        );
        let source = open_cifar10c(dir.path(), "test").expect("opens");
        let got: Vec<(String, i64)> = source
            .entries
            .map(|e| match e.expect("entry") {
                Entry::Item(i) => (i.id, i.label),
                Entry::Reject(r) => panic!("rejected {r:?}"),
            })
            .collect();
        assert_eq!(got[3], ("fog/2/00001".to_string(), 3));
        assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), labels);
    }

    /// A python batch dict: `data` as given, `labels` a list.
    fn batch(data: Value, labels: &[i64]) -> Value {
        Value::Dict(vec![
            (Value::Str("data".into()), data),
            (
                Value::Str("labels".into()),
                Value::List(labels.iter().map(|&l| Value::Int(l)).collect()),
            ),
        ])
    }

    #[test]
    fn python_batches_must_be_c_ordered_bytes_of_3072_per_labelled_image() {
        let path = Path::new("data_batch_1");
        let px = IMAGE_BYTES as i64;
        let rows = |n: usize| vec![7u8; n * IMAGE_BYTES];
        let good = batch(frombuffer(rows(2), "u1", "|", &[2, px]), &[3, 9]);
        assert_eq!(
            python_batch(path, good).expect("a valid batch"),
            (vec![3, 9], rows(2))
        );
        // Each fault alone is refused, naming the file and what was found.
        let faults = [
            ("int8", frombuffer(rows(2), "i1", "|", &[2, px]), 2, "i1"),
            (
                "Fortran",
                frombuffer_in(rows(2), "u1", "|", &[2, px], "F"),
                2,
                "(Fortran order)",
            ),
            (
                "1-d",
                frombuffer(rows(2), "u1", "|", &[2 * px]),
                2,
                "[6144]",
            ),
            (
                "row width",
                frombuffer(rows(2), "u1", "|", &[4, px / 2]),
                4,
                "[4, 1536]",
            ),
            (
                "label count",
                frombuffer(rows(2), "u1", "|", &[2, px]),
                3,
                "3 labels and 6144 bytes for 2 images",
            ),
            (
                "short data",
                frombuffer(rows(1), "u1", "|", &[2, px]),
                2,
                "2 labels and 3072 bytes for 2 images",
            ),
        ];
        for (what, data, labels, says) in faults {
            let labels: Vec<i64> = (0..labels).collect();
            let err = python_batch(path, batch(data, &labels))
                .expect_err(what)
                .to_string();
            assert!(
                err.contains("data_batch_1") && err.contains(says),
                "{what}: {err}"
            );
        }
        let no_data = Value::Dict(vec![(Value::Str("labels".into()), Value::List(vec![]))]);
        let err = python_batch(path, no_data)
            .expect_err("no data")
            .to_string();
        assert!(err.contains("no numpy array 'data'"), "{err}");
    }
}
