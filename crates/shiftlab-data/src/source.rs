//! What every input format yields: a stream of items (or rejections) in a deterministic order,
//! plus the class names. Items are cheap to produce; reading and encoding happen in
//! [`process`], which ingest runs in parallel.

use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{DataError, Reason, Rejected};
use crate::imaging::{encode_png, normalise};
use crate::writer::Row;

/// One input of an ingest: a path and, when given as `NAME=PATH`, the split its rows get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub split: Option<String>,
    pub path: PathBuf,
}

impl Input {
    /// An input without a split name.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self {
            split: None,
            path: path.into(),
        }
    }
}

impl FromStr for Input {
    type Err = String;

    /// `NAME=PATH` when the text before the first `=` has no `/`, else a plain path (so a path
    /// with `=` in its first component is written `./a=b`).
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((name, path)) = s.split_once('=').filter(|(n, _)| !n.contains('/')) else {
            return Ok(Input::path(s));
        };
        if name.is_empty() {
            return Err(format!(
                "'{s}': the split name before '=' is empty (write NAME=PATH, e.g. train=DIR)"
            ));
        }
        if path.is_empty() {
            return Err(format!(
                "'{s}': no path after '{name}=' (write {name}=PATH)"
            ));
        }
        Ok(Input {
            split: Some(name.to_string()),
            path: PathBuf::from(path),
        })
    }
}

/// Where an item's pixels come from.
#[derive(Debug)]
pub enum Payload {
    /// An image file, read during processing.
    File(PathBuf),
    /// Encoded image bytes (from a Parquet export).
    Encoded(Vec<u8>),
    /// Raw interleaved 8-bit pixels (IDX, CIFAR, .npy), encoded to PNG.
    Raw {
        width: u32,
        height: u32,
        channels: u8,
        pixels: Vec<u8>,
    },
}

/// One input item before validation.
#[derive(Debug)]
pub struct Item {
    pub id: String,
    pub split: String,
    pub label: i64,
    pub payload: Payload,
    /// Value for `image.path`.
    pub path: Option<String>,
    pub corruption: Option<String>,
    pub severity: Option<i32>,
}

/// An item to process or an input already known to be bad.
#[derive(Debug)]
pub enum Entry {
    Item(Item),
    Reject(Rejected),
}

/// The boxed entry stream of a [`Source`].
pub type Entries = Box<dyn Iterator<Item = Result<Entry, DataError>> + Send>;

/// An opened input: class names, the entry stream and, when cheap to know, its length.
pub struct Source {
    pub class_names: Vec<String>,
    pub total: Option<u64>,
    pub entries: Entries,
    /// What the user should know about the input that is not an error (e.g. a class folder in
    /// only one split): printed with the summary and kept in the table's metadata.
    pub notes: Vec<String>,
}

/// Validates one item and turns it into a table row; runs on the rayon pool.
pub fn process(item: Item, classes: usize) -> Result<Row, Rejected> {
    let reject = |reason| Rejected::new(item.id.clone(), reason);
    if item.label < 0 || item.label as u64 >= classes as u64 {
        return Err(reject(Reason::LabelOutOfRange {
            label: item.label,
            classes,
        }));
    }
    let image = match item.payload {
        Payload::File(ref path) => {
            let bytes =
                std::fs::read(path).map_err(|e| reject(Reason::Unreadable(e.to_string())))?;
            normalise(bytes).map_err(reject)?
        }
        Payload::Encoded(bytes) => normalise(bytes).map_err(reject)?,
        Payload::Raw {
            width,
            height,
            channels,
            ref pixels,
        } => {
            let bytes = encode_png(width, height, channels, pixels).map_err(reject)?;
            crate::imaging::StoredImage {
                bytes,
                width,
                height,
                channels,
            }
        }
    };
    Ok(Row {
        id: item.id,
        split: item.split,
        label: item.label,
        image,
        path: item.path,
        corruption: item.corruption,
        severity: item.severity,
    })
}

/// Zero-padded array ids (`train/00042`), stable across re-ingests.
pub fn array_id(prefix: &str, index: usize) -> String {
    format!("{prefix}/{index:05}")
}
