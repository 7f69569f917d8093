//! Turning a batch of u8 images into the float tensor a model expects, the same way on every
//! device, so that embeddings depend on the pixels and the stated preprocessing only.
//!
//! Order (torchvision's eval transforms on tensors): u8 → float in [0, 1] → channel handling →
//! resize shorter side (bilinear, antialias, in float: no rounding back to u8) → centre crop →
//! normalise → precision.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{ModelError, Result};

/// ImageNet channel means, the torchvision convention.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations.
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];
/// Luma weights of torchvision's `rgb_to_grayscale` (ITU-R 601-2).
const LUMA: [f64; 3] = [0.2989, 0.587, 0.114];

/// Preprocessing of one model, stated in config and recorded with the run.
///
/// `input_size` is a shorthand for `resize = crop = input_size`: the model sees an
/// `input_size`² image whatever the source size. Set `resize` and `crop` apart for the
/// torchvision ImageNet convention (`resize = 256`, `crop = 224`). Neither: native size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<u32>,
    /// Target length of the shorter side; the longer side keeps the aspect ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<u32>,
    /// Side of the square centre crop taken after resizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<u32>,
    /// Per-channel mean subtracted from [0, 1] pixels (one value per model channel).
    pub mean: Vec<f64>,
    /// Per-channel standard deviation divided by (one value per model channel).
    pub std: Vec<f64>,
    /// Channels the model takes: 3 (grey images repeated) or 1 (RGB images to luma).
    #[serde(default = "three")]
    pub channels: u8,
}

fn three() -> u8 {
    3
}

impl Default for Preprocess {
    /// ImageNet normalisation at native size, three channels.
    fn default() -> Self {
        Preprocess {
            input_size: None,
            resize: None,
            crop: None,
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
            channels: 3,
        }
    }
}

impl Preprocess {
    /// Effective shorter-side resize target.
    pub fn resize_to(&self) -> Option<i64> {
        self.resize.or(self.input_size).map(i64::from)
    }

    /// Effective centre-crop side.
    pub fn crop_to(&self) -> Option<i64> {
        self.crop.or(self.input_size).map(i64::from)
    }

    /// Checks the fields agree with each other; the message is for a config error.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.channels != 1 && self.channels != 3 {
            return Err(format!("channels must be 1 or 3, not {}", self.channels));
        }
        let n = usize::from(self.channels);
        if self.mean.len() != n || self.std.len() != n {
            return Err(format!(
                "normalize needs {n} mean and {n} std values for {n} channel(s), got {} and {}",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some(bad) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(format!("std values must be positive, got {bad}"));
        }
        if [self.input_size, self.resize, self.crop].contains(&Some(0)) {
            return Err("input_size, resize and crop must be at least 1".to_string());
        }
        match (self.resize_to(), self.crop_to()) {
            (Some(r), Some(c)) if c > r => Err(format!("crop {c} is larger than resize {r}")),
            _ => Ok(()),
        }
    }

    /// Spatial size the model sees for a `height` x `width` source image.
    pub fn output_size(&self, height: i64, width: i64) -> (i64, i64) {
        let (h, w) = self
            .resize_to()
            .map_or((height, width), |r| resized(height, width, r));
        self.crop_to().map_or((h, w), |c| (c, c))
    }

    /// One line for descriptions and logs.
    pub fn summary(&self) -> String {
        let size = |v: Option<i64>| v.map_or("none".to_string(), |v| v.to_string());
        format!(
            "channels {}, resize {}, crop {}, mean {:?}, std {:?}",
            self.channels,
            size(self.resize_to()),
            size(self.crop_to()),
            self.mean,
            self.std
        )
    }

    /// Preprocesses a `[N, H, W, C]` u8 batch (C = 1 or 3) into `[N, channels, h, w]` of `kind`
    /// on `device`. Pixels move to the device as u8 (4x less traffic than float).
    pub fn apply(&self, batch: &Tensor, device: Device, kind: Kind) -> Result<Tensor> {
        let (_, height, width, _) = check_batch(batch)?;
        // Multiplying by 1/255 (not dividing by 255) is torchvision's rounding, bit for bit.
        let x = batch
            .to_device(device)
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            * (1.0 / 255.0);
        let x = self.convert_channels(x);
        let x = match self.resize_to() {
            Some(r) => resize_shorter(&x, height, width, r)?,
            None => x,
        };
        let x = match self.crop_to() {
            Some(c) => center_crop(&x, c)?,
            None => x,
        };
        // Contiguous NCHW, the layout TorchScript modules are traced with; the native trunk
        // switches to channels-last itself (`InferenceResNet`).
        Ok(self.normalize(&x).to_kind(kind).contiguous())
    }

    /// Preprocesses images given as contiguous bytes `[n, height, width, channels]` (HWC each).
    pub fn apply_bytes(
        &self,
        pixels: &[u8],
        dims: [usize; 4],
        device: Device,
        kind: Kind,
    ) -> Result<Tensor> {
        Preprocess::apply(self, &batch_from_bytes(pixels, dims)?, device, kind)
    }

    fn convert_channels(&self, x: Tensor) -> Tensor {
        match (x.size()[1], self.channels) {
            (1, 3) => x.expand([-1, 3, -1, -1], false),
            (3, 1) => {
                let c = |i: i64| x.narrow(1, i, 1);
                c(0) * LUMA[0] + c(1) * LUMA[1] + c(2) * LUMA[2]
            }
            _ => x,
        }
    }

    fn normalize(&self, x: &Tensor) -> Tensor {
        let n = self.mean.len() as i64;
        let stats = |v: &[f64]| {
            Tensor::from_slice(v)
                .to_kind(Kind::Float)
                .to_device(x.device())
                .view([1, n, 1, 1])
        };
        (x - stats(&self.mean)) / stats(&self.std)
    }
}

/// Wraps HWC bytes as a `[n, height, width, channels]` u8 tensor after checking the length.
pub fn batch_from_bytes(pixels: &[u8], dims: [usize; 4]) -> Result<Tensor> {
    let expected = dims.iter().product::<usize>();
    if pixels.len() != expected {
        return Err(ModelError::Input(format!(
            "{} bytes do not make {dims:?} (n, height, width, channels) = {expected} bytes",
            pixels.len()
        )));
    }
    let shape: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    Ok(Tensor::from_slice(pixels).view(shape.as_slice()))
}

/// Checks rank, dtype and channels; returns (n, height, width, channels).
fn check_batch(batch: &Tensor) -> Result<(i64, i64, i64, i64)> {
    let size = batch.size();
    let [n, h, w, c] = size[..] else {
        return Err(ModelError::Input(format!(
            "expected [N, H, W, C], got shape {size:?}"
        )));
    };
    if batch.kind() != Kind::Uint8 {
        return Err(ModelError::Input(format!(
            "expected u8 pixels, got {:?}",
            batch.kind()
        )));
    }
    if c != 1 && c != 3 {
        return Err(ModelError::Input(format!(
            "expected 1 or 3 channels (HWC), got {c}"
        )));
    }
    if h < 1 || w < 1 {
        return Err(ModelError::Input(format!("empty images of {h}x{w} pixels")));
    }
    Ok((n, h, w, c))
}

/// torchvision's rule: shorter side to `target`, longer side `floor(target * long / short)`.
fn resized(height: i64, width: i64, target: i64) -> (i64, i64) {
    let long = |l: i64, s: i64| (target as f64 * l as f64 / s as f64) as i64;
    if width <= height {
        (long(height, width), target)
    } else {
        (target, long(width, height))
    }
}

/// Bilinear resize with antialiasing (torchvision's default for tensors since 0.17).
fn resize_shorter(x: &Tensor, height: i64, width: i64, target: i64) -> Result<Tensor> {
    let (h, w) = resized(height, width, target);
    if (h, w) == (height, width) {
        return Ok(x.shallow_clone());
    }
    Ok(x.f_internal_upsample_bilinear2d_aa([h, w], false, None, None)?)
}

/// Square centre crop; offsets rounded half to even like torchvision's `round`.
fn center_crop(x: &Tensor, side: i64) -> Result<Tensor> {
    let (h, w) = (x.size()[2], x.size()[3]);
    if side > h || side > w {
        return Err(ModelError::Input(format!(
            "crop {side} is larger than the {h}x{w} image"
        )));
    }
    let top = ((h - side) as f64 / 2.0).round_ties_even() as i64;
    let left = ((w - side) as f64 / 2.0).round_ties_even() as i64;
    Ok(x.narrow(2, top, side).narrow(3, left, side))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_aspect_like_torchvision() {
        assert_eq!(resized(28, 28, 224), (224, 224));
        assert_eq!(resized(375, 500, 256), (256, 341));
        assert_eq!(resized(500, 375, 256), (341, 256));
    }

    #[test]
    fn grey_is_repeated_and_normalised() {
        let p = Preprocess {
            mean: vec![0.5; 3],
            std: vec![0.5; 3],
            ..Default::default()
        };
        let batch = batch_from_bytes(&[0, 255, 255, 0], [1, 2, 2, 1]).unwrap();
        let x = p.apply(&batch, Device::Cpu, Kind::Float).unwrap();
        assert_eq!(x.size(), [1, 3, 2, 2]);
        let v: Vec<f32> = x.flatten(0, -1).try_into().unwrap();
        assert_eq!(&v[..4], &[-1.0, 1.0, 1.0, -1.0]);
        assert_eq!(&v[..4], &v[8..]);
    }

    #[test]
    fn centre_crop_and_output_size() {
        let p = Preprocess {
            input_size: Some(2),
            ..Default::default()
        };
        let pixels: Vec<u8> = (0..75).collect();
        let x = p.apply_bytes(&pixels, [1, 5, 5, 3], Device::Cpu, Kind::Float);
        assert_eq!(x.unwrap().size(), [1, 3, 2, 2]);
        assert_eq!(p.output_size(5, 10), (2, 2));
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let p = Preprocess::default();
        assert!(batch_from_bytes(&[0; 5], [1, 2, 2, 1]).is_err());
        let floats = Tensor::zeros([1, 2, 2, 3], (Kind::Float, Device::Cpu));
        assert!(p.apply(&floats, Device::Cpu, Kind::Float).is_err());
        let four = Tensor::zeros([1, 2, 2, 4], (Kind::Uint8, Device::Cpu));
        let err = p
            .apply(&four, Device::Cpu, Kind::Float)
            .unwrap_err()
            .to_string();
        assert!(err.contains("got 4"), "{err}");
    }

    #[test]
    fn check_names_the_problem() {
        let p = Preprocess {
            channels: 1,
            ..Default::default()
        };
        assert!(p.check().unwrap_err().contains("1 mean and 1 std"));
        let p = Preprocess {
            resize: Some(10),
            crop: Some(20),
            ..Default::default()
        };
        assert!(p.check().unwrap_err().contains("larger"));
    }
}
