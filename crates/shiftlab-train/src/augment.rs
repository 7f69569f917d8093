//! The standard SSL augmentations (SimCLR/BYOL recipe) on batched tensors, every random choice
//! drawn from our [`Rng`] on the CPU, so a run on the CPU is a function of its seed.
//!
//! Order: random resized crop + horizontal flip (one affine resampling), brightness/contrast
//! (and saturation for RGB) jitter in a fixed order, random greyscale (RGB only), gaussian
//! blur, normalisation. Differences from torchvision: jitter order is fixed, no hue jitter,
//! the crop is resampled bilinearly without antialiasing.

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::rng::Rng;

/// Luma weights of torchvision's `rgb_to_grayscale`.
const LUMA: [f64; 3] = [0.2989, 0.587, 0.114];

/// Augmentation parameters (recorded in the sidecar).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Augment {
    /// Output side in pixels.
    pub size: i64,
    /// Crop area fraction range (0.2–1: the small-image SimSiam/solo-learn value).
    pub scale: (f64, f64),
    pub flip: bool,
    pub jitter_p: f64,
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
    pub grey_p: f64,
    pub blur_p: f64,
    pub blur_sigma: (f64, f64),
    /// Per-channel normalisation of [0, 1] pixels; the encoder must use the same.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Augment {
    /// The contrastive recipe for `size`-pixel images.
    pub fn ssl(size: i64, mean: Vec<f64>, std: Vec<f64>) -> Augment {
        Augment {
            size,
            scale: (0.2, 1.0),
            flip: true,
            jitter_p: 0.8,
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            grey_p: 0.2,
            blur_p: 0.5,
            blur_sigma: (0.1, 2.0),
            mean,
            std,
        }
    }

    /// Supervised training: crop and flip only.
    pub fn supervised(size: i64, mean: Vec<f64>, std: Vec<f64>) -> Augment {
        Augment {
            scale: (0.5, 1.0),
            jitter_p: 0.0,
            grey_p: 0.0,
            blur_p: 0.0,
            ..Augment::ssl(size, mean, std)
        }
    }

    /// One augmented, normalised view `[B, C, size, size]` float of `[B, C, H, W]` u8 images.
    pub fn view(&self, images: &Tensor, rng: &mut Rng, device: Device) -> Tensor {
        let x = images.to_device(device).to_kind(Kind::Float) / 255.0;
        let x = self.crop_flip(&x, rng);
        let x = self.jitter(&x, rng);
        let x = self.blur(&x, rng);
        let c = x.size()[1];
        let mean = Tensor::from_slice(&self.mean[..c as usize]).to_kind(Kind::Float);
        let std = Tensor::from_slice(&self.std[..c as usize]).to_kind(Kind::Float);
        let shape = [1, c, 1, 1];
        (x - mean.view(shape).to_device(device)) / std.view(shape).to_device(device)
    }

    /// Random resized crop (torchvision's sampling) and flip as one affine grid per image.
    fn crop_flip(&self, x: &Tensor, rng: &mut Rng) -> Tensor {
        let s = x.size();
        let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
        let mut theta = Vec::with_capacity(b as usize * 6);
        for _ in 0..b {
            let (i, j, ch, cw) = crop_box(h, w, self.scale, rng);
            let flip = if self.flip && rng.chance(0.5) {
                -1.0
            } else {
                1.0
            };
            let (sx, sy) = (cw as f64 / w as f64, ch as f64 / h as f64);
            let cx = (2 * j + cw) as f64 / w as f64 - 1.0;
            let cy = (2 * i + ch) as f64 / h as f64 - 1.0;
            theta.extend([sx * flip, 0.0, cx, 0.0, sy, cy].map(|v| v as f32));
        }
        let theta = Tensor::from_slice(&theta)
            .view([b, 2, 3])
            .to_device(x.device());
        let grid = Tensor::affine_grid_generator(&theta, [b, c, self.size, self.size], false);
        x.grid_sampler(&grid, 0, 1, false)
    }

    /// Brightness, contrast (and saturation for RGB) with probability `jitter_p`, then
    /// greyscale with probability `grey_p` (RGB).
    fn jitter(&self, x: &Tensor, rng: &mut Rng) -> Tensor {
        let (b, c) = (x.size()[0], x.size()[1]);
        let mut f = vec![[1.0f32; 4]; b as usize];
        for row in f.iter_mut() {
            if rng.chance(self.jitter_p) {
                row[0] = rng.range(1.0 - self.brightness, 1.0 + self.brightness) as f32;
                row[1] = rng.range(1.0 - self.contrast, 1.0 + self.contrast) as f32;
                row[2] = rng.range(1.0 - self.saturation, 1.0 + self.saturation) as f32;
            }
            if c == 3 && rng.chance(self.grey_p) {
                row[3] = 0.0;
            }
        }
        let f = Tensor::from_slice(&f.concat())
            .view([b, 4, 1, 1])
            .to_device(x.device());
        let factor = |k: i64| f.narrow(1, k, 1);
        let x = (x * factor(0)).clamp(0.0, 1.0);
        let m = grey(&x).mean_dim([1i64, 2, 3].as_slice(), true, Kind::Float);
        let x = ((x - &m) * factor(1) + m).clamp(0.0, 1.0);
        if c != 3 {
            return x;
        }
        let g = grey(&x);
        let x = ((&x - &g) * factor(2) + &g).clamp(0.0, 1.0);
        let g = grey(&x);
        (&x - &g) * factor(3) + g
    }

    /// Separable gaussian blur with a per-image sigma (a delta kernel when not blurred).
    fn blur(&self, x: &Tensor, rng: &mut Rng) -> Tensor {
        let s = x.size();
        let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
        let k = ((self.size / 10) | 1).max(3);
        let r = k / 2;
        let mut kernels = Vec::with_capacity((b * k) as usize);
        for _ in 0..b {
            let sigma = rng
                .chance(self.blur_p)
                .then(|| rng.range(self.blur_sigma.0, self.blur_sigma.1));
            kernels.extend(gaussian(r, sigma));
        }
        let kern = Tensor::from_slice(&kernels)
            .view([b, 1, k])
            .repeat([1, c, 1])
            .view([b * c, 1, k])
            .to_device(x.device());
        let y = x.reshape([1, b * c, h, w]).reflection_pad2d([r, r, r, r]);
        let y = y.conv2d(
            &kern.unsqueeze(3),
            None::<Tensor>,
            [1, 1],
            [0, 0],
            [1, 1],
            b * c,
        );
        let y = y.conv2d(
            &kern.unsqueeze(2),
            None::<Tensor>,
            [1, 1],
            [0, 0],
            [1, 1],
            b * c,
        );
        y.view([b, c, h, w])
    }
}

/// Luma `[B, 1, H, W]` (the image itself when grey).
fn grey(x: &Tensor) -> Tensor {
    if x.size()[1] != 3 {
        return x.shallow_clone();
    }
    let w = Tensor::from_slice(&LUMA.map(|v| v as f32))
        .view([1, 3, 1, 1])
        .to_device(x.device());
    (x * w).sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
}

/// A normalised gaussian of radius `r`, or a delta for `None`.
fn gaussian(r: i64, sigma: Option<f64>) -> Vec<f32> {
    let Some(sigma) = sigma else {
        return (-r..=r).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
    };
    let v: Vec<f64> = (-r..=r)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = v.iter().sum();
    v.iter().map(|x| (x / total) as f32).collect()
}

/// torchvision's `RandomResizedCrop.get_params`: (top, left, height, width).
fn crop_box(h: i64, w: i64, scale: (f64, f64), rng: &mut Rng) -> (i64, i64, i64, i64) {
    let area = (h * w) as f64;
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.range(scale.0, scale.1);
        let ratio = rng.range(lo, hi).exp();
        let cw = (target * ratio).sqrt().round() as i64;
        let ch = (target / ratio).sqrt().round() as i64;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            return (rng.below_incl(h - ch), rng.below_incl(w - cw), ch, cw);
        }
    }
    (0, 0, h, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(c: i64) -> Tensor {
        let v: Vec<u8> = (0..4 * c * 20 * 20).map(|i| (i * 37 % 251) as u8).collect();
        Tensor::from_slice(&v).view([4, c, 20, 20])
    }

    #[test]
    fn views_have_the_size_and_depend_only_on_the_seed() {
        for c in [1, 3] {
            let aug = Augment::ssl(16, vec![0.5; 3], vec![0.25; 3]);
            let a = aug.view(&images(c), &mut Rng::new(1), Device::Cpu);
            let b = aug.view(&images(c), &mut Rng::new(1), Device::Cpu);
            let d = aug.view(&images(c), &mut Rng::new(2), Device::Cpu);
            assert_eq!(a.size(), [4, c, 16, 16]);
            assert!(a.equal(&b) && !a.equal(&d));
        }
    }

    #[test]
    fn identity_settings_keep_the_image() {
        let mut aug = Augment::supervised(20, vec![0.0], vec![1.0]);
        aug.scale = (1.0, 1.0);
        aug.flip = false;
        let x = images(1);
        let y = aug.view(&x, &mut Rng::new(0), Device::Cpu);
        let want = x.to_kind(Kind::Float) / 255.0;
        assert!(y.allclose(&want, 1e-5, 1e-5, false));
    }
}
