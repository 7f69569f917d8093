//! ImageNet-C corruptions: a fast, deterministic Rust port of `imagecorruptions` 1.1.2.
//!
//! All 19 corruptions (15 benchmark + 4 extra) at severities 1..=5 in three presets
//! ([`Preset::Imagenet224`], [`Preset::Tiny64`], [`Preset::Cifar32`]). The algorithms follow
//! `imagecorruptions` (see the crate README for where and why they differ from the original
//! `make_imagenet_c.py`); the constants follow the reference page for each preset.
//!
//! * **Determinism.** Each call draws from its own xoshiro256++ stream seeded by SplitMix64 from
//!   `(seed, key, corruption, severity)` ([`rng`]); output never depends on thread count, batch
//!   size or order. [`corrupt_batch`] gives exactly what [`corrupt`] gives.
//! * **Sizes.** Any size of at least [`MIN_SIDE`] x [`MIN_SIDE`] works. Like the reference, the
//!   preset's constants are used unchanged (pixel-valued constants such as blur radii are absolute,
//!   not rescaled to the image size); size-dependent steps follow `imagecorruptions`: the fog map is
//!   the next power of two >= the longer side, the frost photo is enlarged (bicubic) when it is
//!   smaller than the image, elastic_transform (imagenet224) scales sigma and displacement with
//!   the image side, zoom crops are `ceil(side / zoom)`.
//! * **Grayscale.** [`corrupt_dynamic`] replicates a one-channel image to RGB (as
//!   `imagecorruptions.corrupt` does), corrupts it, and returns a `Luma8` image (ITU-R 601 luma of
//!   the result, rounded) so the caller gets back the colour type it gave; other inputs return RGB.
//! * **Output.** Like the reference, the float result is clipped to [0, 255] and cast to `u8`
//!   by truncation.

// Pixel kernels index several arrays with one loop counter; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

use std::fmt;
use std::str::FromStr;

use image::{DynamicImage, RgbImage};
use rayon::prelude::*;

pub mod families;
mod filters;
mod font;
mod frost;
mod gallery;
mod ops;
pub mod params;
pub mod rng;
mod transform;

pub use families::{shift, shift_dynamic, SyntheticShift, UnknownShift};
pub use frost::FrostAssets;
pub use gallery::{gallery, gallery_rows, gallery_thumbnails, GalleryRows, UnknownRows};
pub use transform::{Transform, UnknownTransform};

/// The smallest width and height accepted (the same limit as `imagecorruptions.corrupt`).
pub const MIN_SIDE: u32 = 32;

/// Errors of the corruption engine; messages name the offending value and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum CorruptionError {
    #[error("unknown corruption {name:?}; valid names: {}", Corruption::ALL.map(|c| c.name()).join(", "))]
    UnknownCorruption { name: String },
    #[error("unknown preset {name:?}; valid presets: imagenet224, tiny64, cifar32")]
    UnknownPreset { name: String },
    #[error("severity {0} is out of range; severities are 1..=5")]
    BadSeverity(i64),
    #[error("image is {width}x{height}; the minimum size is {min}x{min}", min = MIN_SIDE)]
    TooSmall { width: u32, height: u32 },
    #[error("frost photo {path} could not be read ({reason}); run `make setup` (or scripts/setup-assets.sh) to extract the frost photos")]
    FrostAsset { path: String, reason: String },
    #[error("frost needs the frost photos, but no FrostAssets were loaded; use FrostAssets::default_location() (run `make setup` first)")]
    FrostNotLoaded,
    #[error("batch has {images} images but {keys} keys")]
    BatchLength { images: usize, keys: usize },
}

/// The 19 corruptions, in the order of `imagecorruptions.get_corruption_names('all')`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Corruption {
    GaussianNoise,
    ShotNoise,
    ImpulseNoise,
    DefocusBlur,
    GlassBlur,
    MotionBlur,
    ZoomBlur,
    Snow,
    Frost,
    Fog,
    Brightness,
    Contrast,
    ElasticTransform,
    Pixelate,
    JpegCompression,
    SpeckleNoise,
    GaussianBlur,
    Spatter,
    Saturate,
}

/// The corruption family of the ImageNet-C paper; the four held-out ones are `Extra`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    Noise,
    Blur,
    Weather,
    Digital,
    Extra,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Noise => "noise",
            Group::Blur => "blur",
            Group::Weather => "weather",
            Group::Digital => "digital",
            Group::Extra => "extra",
        }
    }
}

impl Corruption {
    /// All 19, benchmark set first.
    pub const ALL: [Corruption; 19] = [
        Corruption::GaussianNoise,
        Corruption::ShotNoise,
        Corruption::ImpulseNoise,
        Corruption::DefocusBlur,
        Corruption::GlassBlur,
        Corruption::MotionBlur,
        Corruption::ZoomBlur,
        Corruption::Snow,
        Corruption::Frost,
        Corruption::Fog,
        Corruption::Brightness,
        Corruption::Contrast,
        Corruption::ElasticTransform,
        Corruption::Pixelate,
        Corruption::JpegCompression,
        Corruption::SpeckleNoise,
        Corruption::GaussianBlur,
        Corruption::Spatter,
        Corruption::Saturate,
    ];

    /// The 15 benchmark corruptions used for mCE.
    pub const BENCHMARK_15: [Corruption; 15] = [
        Corruption::GaussianNoise,
        Corruption::ShotNoise,
        Corruption::ImpulseNoise,
        Corruption::DefocusBlur,
        Corruption::GlassBlur,
        Corruption::MotionBlur,
        Corruption::ZoomBlur,
        Corruption::Snow,
        Corruption::Frost,
        Corruption::Fog,
        Corruption::Brightness,
        Corruption::Contrast,
        Corruption::ElasticTransform,
        Corruption::Pixelate,
        Corruption::JpegCompression,
    ];

    /// The 4 extra (held-out) corruptions.
    pub const EXTRA_4: [Corruption; 4] = [
        Corruption::SpeckleNoise,
        Corruption::GaussianBlur,
        Corruption::Spatter,
        Corruption::Saturate,
    ];

    /// The reference's snake_case name, e.g. `"gaussian_noise"`.
    pub fn name(self) -> &'static str {
        match self {
            Corruption::GaussianNoise => "gaussian_noise",
            Corruption::ShotNoise => "shot_noise",
            Corruption::ImpulseNoise => "impulse_noise",
            Corruption::DefocusBlur => "defocus_blur",
            Corruption::GlassBlur => "glass_blur",
            Corruption::MotionBlur => "motion_blur",
            Corruption::ZoomBlur => "zoom_blur",
            Corruption::Snow => "snow",
            Corruption::Frost => "frost",
            Corruption::Fog => "fog",
            Corruption::Brightness => "brightness",
            Corruption::Contrast => "contrast",
            Corruption::ElasticTransform => "elastic_transform",
            Corruption::Pixelate => "pixelate",
            Corruption::JpegCompression => "jpeg_compression",
            Corruption::SpeckleNoise => "speckle_noise",
            Corruption::GaussianBlur => "gaussian_blur",
            Corruption::Spatter => "spatter",
            Corruption::Saturate => "saturate",
        }
    }

    pub fn group(self) -> Group {
        use Corruption::*;
        match self {
            GaussianNoise | ShotNoise | ImpulseNoise => Group::Noise,
            DefocusBlur | GlassBlur | MotionBlur | ZoomBlur => Group::Blur,
            Snow | Frost | Fog | Brightness => Group::Weather,
            Contrast | ElasticTransform | Pixelate | JpegCompression => Group::Digital,
            SpeckleNoise | GaussianBlur | Spatter | Saturate => Group::Extra,
        }
    }

    /// Whether the output depends on the seed (false: a pure function of the image).
    pub fn is_random(self) -> bool {
        use Corruption::*;
        !matches!(
            self,
            DefocusBlur
                | ZoomBlur
                | Brightness
                | Contrast
                | Pixelate
                | JpegCompression
                | GaussianBlur
                | Saturate
        )
    }

    /// Position in [`Corruption::ALL`] (also mixed into the RNG seed).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names from config files: case ignored, `-` accepted for `_` (corruptions and synthetic shifts).
pub(crate) fn normalise_name(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace('-', "_")
}

impl FromStr for Corruption {
    type Err = CorruptionError;
    /// Exact snake_case names; `-` is accepted for `_` and case is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = normalise_name(s);
        Corruption::ALL
            .into_iter()
            .find(|c| c.name() == norm)
            .ok_or_else(|| CorruptionError::UnknownCorruption {
                name: s.to_string(),
            })
    }
}

/// Which table of constants to use (see the reference page).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Preset {
    /// ImageNet-C, 224 px: `imagecorruptions` 1.1.2.
    #[default]
    Imagenet224,
    /// Tiny-ImageNet-C, 64 px.
    Tiny64,
    /// CIFAR-10-C, 32 px.
    Cifar32,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Imagenet224, Preset::Tiny64, Preset::Cifar32];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Imagenet224 => "imagenet224",
            Preset::Tiny64 => "tiny64",
            Preset::Cifar32 => "cifar32",
        }
    }

    /// The image side the preset's constants were made for.
    pub fn native_size(self) -> u32 {
        match self {
            Preset::Imagenet224 => 224,
            Preset::Tiny64 => 64,
            Preset::Cifar32 => 32,
        }
    }

    /// Parses `imagenet224`, `tiny64`, `cifar32` (case-insensitive).
    pub fn from_name(name: &str) -> Result<Preset, CorruptionError> {
        let n = name.trim().to_ascii_lowercase();
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == n)
            .ok_or_else(|| CorruptionError::UnknownPreset {
                name: name.to_string(),
            })
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = CorruptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::from_name(s)
    }
}

/// A severity level, 1..=5 (checked on construction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Severity(u8);

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity(1),
        Severity(2),
        Severity(3),
        Severity(4),
        Severity(5),
    ];

    pub fn new(s: i64) -> Result<Severity, CorruptionError> {
        if (1..=5).contains(&s) {
            Ok(Severity(s as u8))
        } else {
            Err(CorruptionError::BadSeverity(s))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// Index 0..=4 into the constant tables.
    pub fn index(self) -> usize {
        self.0 as usize - 1
    }
}

impl FromStr for Severity {
    type Err = CorruptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v: i64 = s
            .trim()
            .parse()
            .map_err(|_| CorruptionError::BadSeverity(-1))?;
        Severity::new(v)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Corrupts one RGB image. The output depends only on the arguments (never on threads).
///
/// `key` identifies the sample (e.g. its index in the dataset) so that every image of a run
/// gets an independent stream under one `seed`. `assets` is only read by [`Corruption::Frost`];
/// pass [`FrostAssets::none`] when frost is not used.
pub fn corrupt(
    image: &RgbImage,
    corruption: Corruption,
    severity: Severity,
    preset: Preset,
    seed: u64,
    key: u64,
    assets: &FrostAssets,
) -> Result<RgbImage, CorruptionError> {
    let mut rng = start(image, seed, key, corruption.index() as u64, severity)?;
    #[cfg(target_arch = "x86_64")]
    if simd_enabled() {
        // SAFETY: AVX2 support was detected at run time.
        return unsafe { apply_avx2(image, corruption, severity, preset, &mut rng, assets) };
    }
    apply(image, corruption, severity, preset, &mut rng, assets)
}

/// What every corruption and synthetic shift starts with: the size check, then the image's own
/// random stream for (seed, key, stream, severity).
fn start(
    image: &RgbImage,
    seed: u64,
    key: u64,
    stream: u64,
    severity: Severity,
) -> Result<rng::Rng, CorruptionError> {
    let (w, h) = image.dimensions();
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(CorruptionError::TooSmall {
            width: w,
            height: h,
        });
    }
    let seed = rng::stream_seed(seed, key, stream, severity.get() as u64);
    Ok(rng::Rng::new(seed))
}

/// Whether the AVX2 build of the corruption code is used: detected once at run time, and off
/// when `SHIFTLAB_NO_SIMD` is set. Both builds give bit-identical results (no FMA contraction,
/// no reassociation: only the vector width differs), which the tests check.
#[cfg(target_arch = "x86_64")]
fn simd_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("SHIFTLAB_NO_SIMD").is_none() && std::is_x86_feature_detected!("avx2")
    })
}

/// [`apply`] compiled with AVX2 enabled (the ops are `#[inline(always)]` so they inherit it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn apply_avx2(
    image: &RgbImage,
    corruption: Corruption,
    severity: Severity,
    preset: Preset,
    rng: &mut rng::Rng,
    assets: &FrostAssets,
) -> Result<RgbImage, CorruptionError> {
    apply(image, corruption, severity, preset, rng, assets)
}

#[inline(always)]
fn apply(
    image: &RgbImage,
    corruption: Corruption,
    severity: Severity,
    preset: Preset,
    rng: &mut rng::Rng,
    assets: &FrostAssets,
) -> Result<RgbImage, CorruptionError> {
    let s = severity.index();
    let p = preset;
    use Corruption::*;
    Ok(match corruption {
        GaussianNoise => ops::noise::gaussian_noise(image, params::gaussian_noise(p, s), rng),
        ShotNoise => ops::noise::shot_noise(image, params::shot_noise(p, s), rng),
        ImpulseNoise => ops::noise::impulse_noise(image, params::impulse_noise(p, s), rng),
        SpeckleNoise => ops::noise::speckle_noise(image, params::speckle_noise(p, s), rng),
        DefocusBlur => ops::blur::defocus_blur(image, params::defocus_blur(p, s)),
        GlassBlur => ops::blur::glass_blur(image, params::glass_blur(p, s), rng),
        MotionBlur => ops::blur::motion_blur(image, params::motion_blur(p, s), rng),
        ZoomBlur => ops::blur::zoom_blur(image, &params::zoom_blur(p, s)),
        GaussianBlur => ops::blur::gaussian_blur(image, params::gaussian_blur(p, s)),
        Snow => ops::weather::snow(image, params::snow(p, s), rng),
        Frost => ops::weather::frost(image, p, params::frost(p, s), assets, rng)?,
        Fog => ops::weather::fog(image, params::fog(p, s), rng),
        Brightness => ops::weather::brightness(image, params::brightness(p, s)),
        Saturate => ops::weather::saturate(image, params::saturate(p, s)),
        Contrast => ops::digital::contrast(image, params::contrast(p, s)),
        ElasticTransform => ops::digital::elastic(image, params::elastic(p, s), rng),
        Pixelate => ops::digital::pixelate(image, params::pixelate(p, s)),
        JpegCompression => ops::jpeg::jpeg_roundtrip(image, params::jpeg_quality(p, s)),
        Spatter => ops::spatter::spatter(image, params::spatter(p, s), rng),
    })
}

/// [`corrupt`] for any colour type: grayscale in, grayscale out (see the crate docs).
///
/// One-channel inputs (`Luma8`, `LumaA8`, 16-bit luma) are replicated to RGB, corrupted, and
/// returned as `Luma8`; everything else is converted to RGB8 (alpha dropped) and returned as RGB8.
pub fn corrupt_dynamic(
    image: &DynamicImage,
    corruption: Corruption,
    severity: Severity,
    preset: Preset,
    seed: u64,
    key: u64,
    assets: &FrostAssets,
) -> Result<DynamicImage, CorruptionError> {
    let gray = !image.color().has_color();
    let rgb = image.to_rgb8();
    let out = corrupt(&rgb, corruption, severity, preset, seed, key, assets)?;
    if gray {
        Ok(DynamicImage::ImageLuma8(rgb_to_luma601(&out)))
    } else {
        Ok(DynamicImage::ImageRgb8(out))
    }
}

/// ITU-R 601 luma (0.299, 0.587, 0.114), rounded: what PIL's `convert('L')` computes.
pub fn rgb_to_luma601(img: &RgbImage) -> image::GrayImage {
    let (w, h) = img.dimensions();
    let mut out = image::GrayImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(img.pixels()) {
        let [r, g, b] = p.0;
        // PIL: L = R * 299/1000 + G * 587/1000 + B * 114/1000, fixed point with rounding.
        let v = (r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16;
        o.0 = [v.min(255) as u8];
    }
    out
}

/// Corrupts many images on all rayon threads; `keys[i]` is the sample key of `images[i]`.
///
/// Each result equals `corrupt(&images[i], .., keys[i], ..)` exactly, whatever the pool size.
pub fn corrupt_batch(
    images: &[RgbImage],
    keys: &[u64],
    corruption: Corruption,
    severity: Severity,
    preset: Preset,
    seed: u64,
    assets: &FrostAssets,
) -> Result<Vec<RgbImage>, CorruptionError> {
    if images.len() != keys.len() {
        return Err(CorruptionError::BatchLength {
            images: images.len(),
            keys: keys.len(),
        });
    }
    images
        .par_iter()
        .zip(keys.par_iter())
        .map(|(img, &key)| corrupt(img, corruption, severity, preset, seed, key, assets))
        .collect()
}

/// One unit of work for [`corrupt_jobs`]: mixed corruptions/severities in one parallel call.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    pub image: &'a RgbImage,
    pub corruption: Corruption,
    pub severity: Severity,
    pub key: u64,
}

/// Runs heterogeneous jobs on all rayon threads; results in job order, identical to [`corrupt`].
pub fn corrupt_jobs(
    jobs: &[Job<'_>],
    preset: Preset,
    seed: u64,
    assets: &FrostAssets,
) -> Result<Vec<RgbImage>, CorruptionError> {
    jobs.par_iter()
        .map(|j| {
            corrupt(
                j.image,
                j.corruption,
                j.severity,
                preset,
                seed,
                j.key,
                assets,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
