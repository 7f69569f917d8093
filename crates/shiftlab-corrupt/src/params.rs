//! Corruption constants per preset, from the reference page (`imagenet-c.md`):
//! `imagecorruptions` 1.1.2 for `imagenet224`, make_tinyimagenet_c.py / make_cifar_c.py
//! for `tiny64` / `cifar32`.

use crate::Preset;

/// How elastic_transform is parameterised.
#[derive(Clone, Copy, Debug)]
pub enum ElasticParams {
    /// imagecorruptions: sigma = 0.01 x side, displacements U(-0.005 H, 0.005 H) x alpha, no affine.
    Ic { alpha: f64 },
    /// Original scripts (pixel units, already multiplied by the preset size): random affine then elastic.
    Orig { alpha: f64, sigma: f64, affine: f64 },
}

/// (loc, scale, zoom, threshold, blur radius, blur sigma, blend)
pub type SnowParams = (f64, f64, f64, f64, i64, f64, f64);
/// (loc, scale, sigma, threshold, intensity, mode 0=water 1=mud)
pub type SpatterParams = (f64, f64, f64, f64, f64, u8);

pub fn gaussian_noise(p: Preset, s: usize) -> f64 {
    let t = match p {
        Preset::Imagenet224 => [0.08, 0.12, 0.18, 0.26, 0.38],
        Preset::Tiny64 => [0.04, 0.08, 0.12, 0.15, 0.18],
        Preset::Cifar32 => [0.04, 0.06, 0.08, 0.09, 0.10],
    };
    t[s]
}

pub fn shot_noise(p: Preset, s: usize) -> f64 {
    let t = match p {
        Preset::Imagenet224 => [60.0, 25.0, 12.0, 5.0, 3.0],
        Preset::Tiny64 => [250.0, 100.0, 50.0, 30.0, 15.0],
        Preset::Cifar32 => [500.0, 250.0, 100.0, 75.0, 50.0],
    };
    t[s]
}

pub fn impulse_noise(p: Preset, s: usize) -> f64 {
    let t = match p {
        Preset::Imagenet224 => [0.03, 0.06, 0.09, 0.17, 0.27],
        Preset::Tiny64 => [0.01, 0.02, 0.05, 0.08, 0.14],
        Preset::Cifar32 => [0.01, 0.02, 0.03, 0.05, 0.07],
    };
    t[s]
}

pub fn speckle_noise(p: Preset, s: usize) -> f64 {
    let t = match p {
        Preset::Imagenet224 => [0.15, 0.2, 0.35, 0.45, 0.6],
        Preset::Tiny64 => [0.15, 0.2, 0.25, 0.3, 0.35],
        Preset::Cifar32 => [0.06, 0.1, 0.12, 0.16, 0.2],
    };
    t[s]
}

pub fn gaussian_blur(p: Preset, s: usize) -> f64 {
    let t = match p {
        Preset::Imagenet224 => [1.0, 2.0, 3.0, 4.0, 6.0],
        Preset::Tiny64 => [0.5, 0.75, 1.0, 1.25, 1.5],
        Preset::Cifar32 => [0.4, 0.6, 0.7, 0.8, 1.0],
    };
    t[s]
}

/// (sigma, max shift, iterations)
pub fn glass_blur(p: Preset, s: usize) -> (f64, i64, usize) {
    let t = match p {
        Preset::Imagenet224 => [
            (0.7, 1, 2),
            (0.9, 2, 1),
            (1.0, 2, 3),
            (1.1, 3, 2),
            (1.5, 4, 2),
        ],
        Preset::Tiny64 => [
            (0.1, 1, 1),
            (0.5, 1, 1),
            (0.6, 1, 2),
            (0.7, 2, 1),
            (0.9, 2, 2),
        ],
        Preset::Cifar32 => [
            (0.05, 1, 1),
            (0.25, 1, 1),
            (0.4, 1, 1),
            (0.25, 1, 2),
            (0.4, 1, 2),
        ],
    };
    t[s]
}

/// (disk radius, alias-blur sigma)
pub fn defocus_blur(p: Preset, s: usize) -> (f64, f64) {
    let t = match p {
        Preset::Imagenet224 => [(3.0, 0.1), (4.0, 0.5), (6.0, 0.5), (8.0, 0.5), (10.0, 0.5)],
        Preset::Tiny64 => [(0.5, 0.6), (1.0, 0.1), (1.5, 0.1), (2.5, 0.01), (3.0, 0.1)],
        Preset::Cifar32 => [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)],
    };
    t[s]
}

/// (radius, sigma)
pub fn motion_blur(p: Preset, s: usize) -> (i64, f64) {
    let t = match p {
        Preset::Imagenet224 => [(10, 3.0), (15, 5.0), (15, 8.0), (15, 12.0), (20, 15.0)],
        Preset::Tiny64 => [(10, 1.0), (10, 1.5), (10, 2.0), (10, 2.5), (12, 3.0)],
        Preset::Cifar32 => [(6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5)],
    };
    t[s]
}

/// Zoom factors `np.arange(start, stop, step)`: ceil((stop - start) / step) values in f64.
pub fn zoom_blur(p: Preset, s: usize) -> Vec<f64> {
    let t = match p {
        Preset::Imagenet224 => [
            (1.0, 1.11, 0.01),
            (1.0, 1.16, 0.01),
            (1.0, 1.21, 0.02),
            (1.0, 1.26, 0.02),
            (1.0, 1.31, 0.03),
        ],
        Preset::Tiny64 | Preset::Cifar32 => [
            (1.0, 1.06, 0.01),
            (1.0, 1.11, 0.01),
            (1.0, 1.16, 0.01),
            (1.0, 1.21, 0.01),
            (1.0, 1.26, 0.01),
        ],
    };
    let (start, stop, step): (f64, f64, f64) = t[s];
    let n = ((stop - start) / step).ceil() as usize;
    (0..n).map(|i| start + i as f64 * step).collect()
}

pub fn snow(p: Preset, s: usize) -> SnowParams {
    let t = match p {
        Preset::Imagenet224 => [
            (0.1, 0.3, 3.0, 0.5, 10, 4.0, 0.8),
            (0.2, 0.3, 2.0, 0.5, 12, 4.0, 0.7),
            (0.55, 0.3, 4.0, 0.9, 12, 8.0, 0.7),
            (0.55, 0.3, 4.5, 0.85, 12, 8.0, 0.65),
            (0.55, 0.3, 2.5, 0.85, 12, 12.0, 0.55),
        ],
        Preset::Tiny64 => [
            (0.1, 0.2, 1.0, 0.6, 8, 3.0, 0.8),
            (0.1, 0.2, 1.0, 0.5, 10, 4.0, 0.8),
            (0.15, 0.3, 1.75, 0.55, 10, 4.0, 0.7),
            (0.25, 0.3, 2.25, 0.6, 12, 6.0, 0.65),
            (0.3, 0.3, 1.25, 0.65, 14, 12.0, 0.6),
        ],
        Preset::Cifar32 => [
            (0.1, 0.2, 1.0, 0.6, 8, 3.0, 0.95),
            (0.1, 0.2, 1.0, 0.5, 10, 4.0, 0.9),
            (0.15, 0.3, 1.75, 0.55, 10, 4.0, 0.9),
            (0.25, 0.3, 2.25, 0.6, 12, 6.0, 0.85),
            (0.3, 0.3, 1.25, 0.65, 14, 12.0, 0.8),
        ],
    };
    t[s]
}

/// (image weight, frost weight)
pub fn frost(p: Preset, s: usize) -> (f64, f64) {
    let t = match p {
        Preset::Imagenet224 => [(1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)],
        Preset::Tiny64 => [
            (1.0, 0.3),
            (0.9, 0.4),
            (0.8, 0.45),
            (0.75, 0.5),
            (0.7, 0.55),
        ],
        Preset::Cifar32 => [
            (1.0, 0.2),
            (1.0, 0.3),
            (0.9, 0.4),
            (0.85, 0.4),
            (0.75, 0.45),
        ],
    };
    t[s]
}

/// Factor the frost photo is resized by before cropping (1 = imagecorruptions' fit-and-1.1 rule).
pub fn frost_prescale(p: Preset) -> f64 {
    match p {
        Preset::Imagenet224 => 1.0,
        Preset::Tiny64 => 0.3,
        Preset::Cifar32 => 0.2,
    }
}

/// (plasma amplitude, wibble decay)
pub fn fog(p: Preset, s: usize) -> (f64, f64) {
    let t = match p {
        Preset::Imagenet224 => [(1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)],
        Preset::Tiny64 => [(0.4, 3.0), (0.7, 3.0), (1.0, 2.5), (1.5, 2.0), (2.0, 1.75)],
        Preset::Cifar32 => [(0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75)],
    };
    t[s]
}

pub fn brightness(p: Preset, s: usize) -> f64 {
    let t = match p {
        Preset::Imagenet224 | Preset::Tiny64 => [0.1, 0.2, 0.3, 0.4, 0.5],
        Preset::Cifar32 => [0.05, 0.1, 0.15, 0.2, 0.3],
    };
    t[s]
}

pub fn contrast(p: Preset, s: usize) -> f64 {
    let t = match p {
        Preset::Imagenet224 | Preset::Tiny64 => [0.4, 0.3, 0.2, 0.1, 0.05],
        Preset::Cifar32 => [0.75, 0.5, 0.4, 0.3, 0.15],
    };
    t[s]
}

pub fn elastic(p: Preset, s: usize) -> ElasticParams {
    let orig = |n: f64, t: [(f64, f64, f64); 5]| {
        let (a, sg, af) = t[s];
        ElasticParams::Orig {
            alpha: n * a,
            sigma: n * sg,
            affine: n * af,
        }
    };
    match p {
        Preset::Imagenet224 => ElasticParams::Ic {
            alpha: 250.0 * [0.05, 0.065, 0.085, 0.1, 0.12][s],
        },
        Preset::Tiny64 => orig(
            64.0,
            [
                (0.0, 0.0, 0.08),
                (0.05, 0.3, 0.06),
                (0.1, 0.08, 0.06),
                (0.1, 0.03, 0.03),
                (0.16, 0.03, 0.02),
            ],
        ),
        Preset::Cifar32 => orig(
            32.0,
            [
                (0.0, 0.0, 0.08),
                (0.05, 0.2, 0.07),
                (0.08, 0.06, 0.06),
                (0.1, 0.04, 0.05),
                (0.1, 0.03, 0.03),
            ],
        ),
    }
}

pub fn pixelate(p: Preset, s: usize) -> f64 {
    let t = match p {
        Preset::Imagenet224 => [0.6, 0.5, 0.4, 0.3, 0.25],
        Preset::Tiny64 => [0.9, 0.8, 0.7, 0.6, 0.5],
        Preset::Cifar32 => [0.95, 0.9, 0.85, 0.75, 0.65],
    };
    t[s]
}

pub fn jpeg_quality(p: Preset, s: usize) -> u8 {
    let t = match p {
        Preset::Imagenet224 => [25, 18, 15, 10, 7],
        Preset::Tiny64 => [65, 58, 50, 40, 25],
        Preset::Cifar32 => [80, 65, 58, 50, 40],
    };
    t[s]
}

pub fn spatter(p: Preset, s: usize) -> SpatterParams {
    let t = match p {
        Preset::Imagenet224 => [
            (0.65, 0.3, 4.0, 0.69, 0.6, 0),
            (0.65, 0.3, 3.0, 0.68, 0.6, 0),
            (0.65, 0.3, 2.0, 0.68, 0.5, 0),
            (0.65, 0.3, 1.0, 0.65, 1.5, 1),
            (0.67, 0.4, 1.0, 0.65, 1.5, 1),
        ],
        Preset::Tiny64 => [
            (0.62, 0.1, 0.7, 0.7, 0.6, 0),
            (0.65, 0.1, 0.8, 0.7, 0.6, 0),
            (0.65, 0.3, 1.0, 0.69, 0.6, 0),
            (0.65, 0.1, 0.7, 0.68, 0.6, 1),
            (0.65, 0.1, 0.5, 0.67, 0.6, 1),
        ],
        Preset::Cifar32 => [
            (0.62, 0.1, 0.7, 0.7, 0.5, 0),
            (0.65, 0.1, 0.8, 0.7, 0.5, 0),
            (0.65, 0.3, 1.0, 0.69, 0.5, 0),
            (0.65, 0.1, 0.7, 0.69, 0.6, 1),
            (0.65, 0.1, 0.5, 0.68, 0.6, 1),
        ],
    };
    t[s]
}

/// (saturation multiplier, saturation offset)
pub fn saturate(p: Preset, s: usize) -> (f64, f64) {
    let t = match p {
        Preset::Imagenet224 => [(0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2)],
        Preset::Tiny64 => [(0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (30.0, 0.2)],
        Preset::Cifar32 => [(0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2)],
    };
    t[s]
}
