//! Training images in memory: a dataset table's split decoded once into a u8 tensor.
//! Why in memory: Fashion-MNIST/CIFAR-size sets are tens of MB; decoding PNGs every epoch
//! would cost more than the network on a small CPU.

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::{DynamicImage, GenericImageView};
use shiftlab_data::DatasetReader;
use tch::Tensor;

/// Decoded images `[N, C, H, W]` u8 and labels `[N]` i64, with their statistics.
#[derive(Debug)]
pub struct TrainData {
    pub images: Tensor,
    pub labels: Tensor,
    pub channels: i64,
    pub side: i64,
    pub classes: i64,
    /// Per-channel mean and std of the [0, 1] pixels (the encoder's `normalize`).
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl TrainData {
    pub fn len(&self) -> usize {
        self.images.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// From an in-memory `[N, C, H, W]` u8 tensor (tests, other sources).
    pub fn from_tensors(images: Tensor, labels: Tensor, classes: i64) -> TrainData {
        let (mean, std) = stats(&images);
        let s = images.size();
        TrainData {
            channels: s[1],
            side: s[2],
            images,
            labels,
            classes,
            mean,
            std,
        }
    }
}

/// Reads split `split` of a dataset table (at most `limit` rows, in file order).
pub fn load(path: &Path, split: &str, limit: Option<usize>) -> Result<TrainData> {
    let info = shiftlab_data::read_info(path)?;
    let reader = DatasetReader::open(path, 1024, Some(split))?;
    let limit = limit.unwrap_or(usize::MAX);
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    let mut shape: Option<(u32, u32, bool)> = None;
    'outer: for batch in reader {
        let batch = batch?;
        for (id, (bytes, label)) in batch.ids.iter().zip(batch.images.iter().zip(&batch.labels)) {
            if labels.len() >= limit {
                break 'outer;
            }
            let img =
                image::load_from_memory(bytes).with_context(|| format!("decoding image '{id}'"))?;
            let (w, h) = img.dimensions();
            let grey = *shape.get_or_insert((w, h, !img.color().has_color()));
            if (w, h) != (grey.0, grey.1) {
                bail!(
                    "image '{id}' is {w}x{h}, the first was {}x{}: training needs one size",
                    grey.0,
                    grey.1
                );
            }
            push_chw(&mut pixels, &img, grey.2);
            labels.push(*label);
        }
    }
    let Some((w, h, grey)) = shape else {
        bail!("no '{split}' rows in {}", path.display());
    };
    let c = if grey { 1 } else { 3 };
    let n = labels.len() as i64;
    let images = Tensor::from_slice(&pixels).view([n, c, i64::from(h), i64::from(w)]);
    let classes = (info.class_names.len() as i64).max(labels.iter().max().map_or(0, |m| m + 1));
    Ok(TrainData::from_tensors(
        images,
        Tensor::from_slice(&labels),
        classes,
    ))
}

/// Appends the image as planar (CHW) bytes.
fn push_chw(out: &mut Vec<u8>, img: &DynamicImage, grey: bool) {
    if grey {
        out.extend_from_slice(img.to_luma8().as_raw());
        return;
    }
    let rgb = img.to_rgb8();
    for c in 0..3 {
        out.extend(rgb.pixels().map(|p| p.0[c]));
    }
}

/// Per-channel mean and standard deviation of u8 images scaled to [0, 1].
fn stats(images: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let x = images.to_kind(tch::Kind::Double) / 255.0;
    let dims = [0i64, 2, 3];
    let mean = x.mean_dim(dims.as_slice(), false, tch::Kind::Double);
    let std = x.std_dim(dims.as_slice(), false, false);
    let v = |t: Tensor| Vec::<f64>::try_from(t).unwrap_or_default();
    (v(mean), v(std).into_iter().map(|s| s.max(1e-3)).collect())
}
