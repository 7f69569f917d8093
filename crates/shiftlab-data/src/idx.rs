//! MNIST and Fashion-MNIST in their IDX files (gzipped or not).
//!
//! `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
//! `t10k-labels-idx1-ubyte` (each optionally `.gz`, detected by content) give the splits `train`
//! and `test`. Bad magic, a short file and an image/label count mismatch are fatal: they mean
//! the wrong or a damaged file, not one bad item. Labels beyond the class list are rejected
//! per item.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::read::GzDecoder;

use crate::error::DataError;
use crate::source::{array_id, Entry, Item, Payload, Source};

/// Magic of an unsigned-byte IDX file with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an unsigned-byte IDX file with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Fashion-MNIST's class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// MNIST's class names: the digits.
pub fn mnist_classes() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

/// The (split, file stem) pairs of the IDX layout.
const SPLITS: [(&str, &str); 2] = [("train", "train"), ("test", "t10k")];

/// Decoded contents of one IDX file.
#[derive(Debug)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Opens the IDX splits under `dir`; `only` restricts to one split.
pub fn open(dir: &Path, class_names: Vec<String>, only: Option<&str>) -> Result<Source, DataError> {
    if let Some(s) = only {
        if !SPLITS.iter().any(|(name, _)| *name == s) {
            return Err(DataError::layout(
                dir,
                format!("no split '{s}' in IDX data (train, test)"),
            ));
        }
    }
    let mut parts = Vec::new();
    for (split, stem) in SPLITS.iter().filter(|(s, _)| only.is_none_or(|o| o == *s)) {
        let images = read_idx(
            &find(dir, &format!("{stem}-images-idx3-ubyte"))?,
            IMAGES_MAGIC,
        )?;
        let labels = read_idx(
            &find(dir, &format!("{stem}-labels-idx1-ubyte"))?,
            LABELS_MAGIC,
        )?;
        if images.dims[0] != labels.dims[0] {
            return Err(DataError::IdxCountMismatch {
                split: split.to_string(),
                images: images.dims[0],
                labels: labels.dims[0],
            });
        }
        parts.push((split.to_string(), Arc::new(images), Arc::new(labels)));
    }
    let total = parts.iter().map(|(_, i, _)| i.dims[0] as u64).sum();
    let entries = parts.into_iter().flat_map(|(split, images, labels)| {
        (0..images.dims[0]).map(move |i| Ok(Entry::Item(item(&split, &images, &labels, i))))
    });
    Ok(Source {
        class_names,
        total: Some(total),
        entries: Box::new(entries),
        notes: Vec::new(),
    })
}

fn item(split: &str, images: &Idx, labels: &Idx, i: usize) -> Item {
    let (rows, cols) = (images.dims[1], images.dims[2]);
    let size = rows * cols;
    Item {
        id: array_id(split, i),
        split: split.to_string(),
        label: labels.data[i] as i64,
        payload: Payload::Raw {
            width: cols as u32,
            height: rows as u32,
            channels: 1,
            pixels: images.data[i * size..(i + 1) * size].to_vec(),
        },
        path: None,
        corruption: None,
        severity: None,
    }
}

/// `stem` or `stem.gz` in `dir`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    [dir.join(stem), dir.join(format!("{stem}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::layout(dir, format!("missing {stem} (or {stem}.gz)")))
}

/// Reads a whole IDX file, gunzipping if it starts with the gzip magic, and checks its header.
pub fn read_idx(path: &Path, magic: u32) -> Result<Idx, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::io(path, e))?;
        out
    } else {
        raw
    };
    parse_idx(path, bytes, magic)
}

fn parse_idx(path: &Path, mut bytes: Vec<u8>, magic: u32) -> Result<Idx, DataError> {
    let what = if magic == IMAGES_MAGIC {
        "unsigned-byte images, 3 dims"
    } else {
        "unsigned-byte labels, 1 dim"
    };
    let found = bytes
        .get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if found != magic {
        return Err(DataError::BadIdxMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
            what,
        });
    }
    let ndims = (magic & 0xff) as usize;
    let header = 4 + 4 * ndims;
    let head = bytes
        .get(4..header)
        .ok_or_else(|| DataError::layout(path, "IDX header cut short"))?;
    let dims: Vec<usize> = head
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    // Checked: a corrupt header may declare more than fits in memory, let alone the file.
    let need = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .unwrap_or(usize::MAX);
    if bytes.len() - header != need {
        return Err(DataError::layout(
            path,
            format!(
                "IDX header {dims:?} needs {need} data bytes, file has {}",
                bytes.len() - header
            ),
        ));
    }
    bytes.drain(..header);
    Ok(Idx { dims, data: bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_magic_says_which_kind_of_file_was_expected() {
        let path = Path::new("train-images-idx3-ubyte");
        let labels_header = [0, 0, 8, 1, 0, 0, 0, 0].to_vec();
        let err = parse_idx(path, labels_header, IMAGES_MAGIC).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "bad IDX magic 0x00000801, expected 0x00000803 (unsigned-byte images, 3 dims)"
            ),
            "{text}"
        );
        let images_header = [0, 0, 8, 3, 0, 0, 0, 0].to_vec();
        let err = parse_idx(path, images_header, LABELS_MAGIC).unwrap_err();
        assert!(
            err.to_string().contains("(unsigned-byte labels, 1 dim)"),
            "{err}"
        );
    }

    #[test]
    fn dims_are_big_endian_and_the_data_must_fill_them() {
        let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3];
        bytes.extend([1, 2, 3, 4, 5, 6]);
        let idx = parse_idx(Path::new("x"), bytes.clone(), IMAGES_MAGIC).expect("valid");
        assert_eq!(
            (idx.dims, idx.data),
            (vec![2, 1, 3], vec![1, 2, 3, 4, 5, 6])
        );
        bytes.pop();
        let err = parse_idx(Path::new("x"), bytes, IMAGES_MAGIC).unwrap_err();
        assert!(
            err.to_string().contains("needs 6 data bytes, file has 5"),
            "{err}"
        );
    }
}
