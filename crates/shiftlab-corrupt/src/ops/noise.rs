//! gaussian_noise, shot_noise, impulse_noise, speckle_noise (per-value, f64 like NumPy).

use image::RgbImage;

use crate::filters::trunc01_f64;
use crate::rng::Rng;

fn map_values(img: &RgbImage, mut f: impl FnMut(f64) -> u8) -> RgbImage {
    let raw: Vec<u8> = img.as_raw().iter().map(|&v| f(v as f64 / 255.0)).collect();
    RgbImage::from_raw(img.width(), img.height(), raw).expect("same size")
}

/// `clip(x + N(0, c), 0, 1)`.
pub fn gaussian_noise(img: &RgbImage, c: f64, rng: &mut Rng) -> RgbImage {
    map_values(img, |x| trunc01_f64(x + rng.normal() * c))
}

/// `clip(x + x * N(0, c), 0, 1)`.
pub fn speckle_noise(img: &RgbImage, c: f64, rng: &mut Rng) -> RgbImage {
    map_values(img, |x| trunc01_f64(x + x * (rng.normal() * c)))
}

/// `clip(poisson(x * lam) / lam, 0, 1)`.
pub fn shot_noise(img: &RgbImage, lam: f64, rng: &mut Rng) -> RgbImage {
    map_values(img, |x| trunc01_f64(rng.poisson(x * lam) as f64 / lam))
}

/// skimage `random_noise(mode='s&p', amount=c)`: each value independently flips with
/// probability c, to 1 or 0 with equal odds.
pub fn impulse_noise(img: &RgbImage, amount: f64, rng: &mut Rng) -> RgbImage {
    map_values(img, |x| {
        let flipped = rng.uniform() <= amount;
        let salted = rng.uniform() <= 0.5;
        let v = if flipped {
            if salted {
                1.0
            } else {
                0.0
            }
        } else {
            x
        };
        trunc01_f64(v)
    })
}
