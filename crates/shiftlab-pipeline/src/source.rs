//! Reading samples from the dataset table, decoding them, and the pre-shift geometry.

use std::collections::HashSet;
use std::path::Path;

use image::{DynamicImage, GenericImageView};
use shiftlab_data::reader::DatasetReader;

use crate::error::PipelineError;

/// One evaluation or fit sample as read from the table.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Position in the selected sequence (after filter and limit).
    pub index: u64,
    pub id: String,
    pub label: i64,
    pub bytes: Vec<u8>,
    /// The row's `corruption` and `severity` (set in pre-corrupted tables).
    pub corruption: Option<String>,
    pub severity: Option<i32>,
}

/// Streams the selected samples of one split in file order: rows passing `filter` (their ids,
/// precomputed with SQL), at most `limit` of them.
pub struct SampleStream {
    reader: DatasetReader,
    selected: Option<HashSet<String>>,
    limit: u64,
    next_index: u64,
    pending: std::vec::IntoIter<Sample>,
    path: String,
}

impl SampleStream {
    pub fn open(
        dataset: &Path,
        split: &str,
        selected: Option<HashSet<String>>,
        limit: Option<u64>,
    ) -> Result<Self, PipelineError> {
        let reader =
            DatasetReader::open(dataset, 512, Some(split)).map_err(|e| PipelineError::Dataset {
                path: dataset.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(SampleStream {
            reader,
            selected,
            limit: limit.unwrap_or(u64::MAX),
            next_index: 0,
            pending: Vec::new().into_iter(),
            path: dataset.display().to_string(),
        })
    }
}

impl Iterator for SampleStream {
    type Item = Result<Sample, PipelineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.next_index >= self.limit {
                return None;
            }
            if let Some(mut s) = self.pending.next() {
                s.index = self.next_index;
                self.next_index += 1;
                return Some(Ok(s));
            }
            let batch = match self.reader.next()? {
                Ok(b) => b,
                Err(e) => {
                    return Some(Err(PipelineError::Dataset {
                        path: self.path.clone(),
                        message: e.to_string(),
                    }))
                }
            };
            let selected = self.selected.as_ref();
            let samples: Vec<Sample> = batch
                .ids
                .into_iter()
                .zip(batch.labels)
                .zip(batch.images)
                .zip(batch.corruptions.into_iter().zip(batch.severities))
                .filter(|(((id, _), _), _)| selected.is_none_or(|s| s.contains(id)))
                .map(|(((id, label), bytes), (corruption, severity))| Sample {
                    index: 0,
                    id,
                    label,
                    bytes,
                    corruption,
                    severity,
                })
                .collect();
            self.pending = samples.into_iter();
        }
    }
}

pub use shiftlab_data::decode::{decode, sample_key, Geometry};

/// Images of one batch packed as runs of equal size, ready to become `[N, H, W, C]` tensors.
#[derive(Debug, Clone, Default)]
pub struct PixelBatch {
    /// `(dims = [n, h, w, c], HWC bytes)`, in sample order.
    pub groups: Vec<([usize; 4], Vec<u8>)>,
}

impl PixelBatch {
    pub fn from_images<'a>(images: impl IntoIterator<Item = &'a DynamicImage>) -> Self {
        let mut groups: Vec<([usize; 4], Vec<u8>)> = Vec::new();
        for img in images {
            let (w, h) = img.dimensions();
            let c = if img.color().has_color() { 3 } else { 1 };
            let bytes: &[u8] = match img {
                DynamicImage::ImageLuma8(g) => g.as_raw(),
                DynamicImage::ImageRgb8(rgb) => rgb.as_raw(),
                _ => &[],
            };
            let dims = [1, h as usize, w as usize, c];
            match groups.last_mut() {
                Some((d, data)) if d[1..] == dims[1..] => {
                    d[0] += 1;
                    data.extend_from_slice(bytes);
                }
                _ => groups.push((dims, bytes.to_vec())),
            }
        }
        PixelBatch { groups }
    }

    /// One `[N, H, W, C]` u8 tensor per run of equal-size images, in sample order.
    pub fn tensors(&self) -> Vec<tch::Tensor> {
        self.groups
            .iter()
            .map(|(d, bytes)| {
                let shape = [d[0] as i64, d[1] as i64, d[2] as i64, d[3] as i64];
                tch::Tensor::from_slice(bytes).reshape(shape)
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.groups.iter().map(|(d, _)| d[0]).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
