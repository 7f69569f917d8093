//! The frost photos (from the `imagecorruptions` wheel) and their resizing/cropping.
//!
//! The photos are embedded in the library at build time (build.rs), so frost works from any
//! folder and in an installed binary; a folder given explicitly or by `$SHIFTLAB_FROST_DIR`
//! overrides them. Either way the same decoder reads the same bytes: the pixels agree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use image::RgbImage;

use crate::{params, CorruptionError, Preset};

/// The five frost photos the reference chooses from (frost1.png .. frost5.jpg; the sixth is
/// never picked by the reference, so it is not needed).
#[derive(Debug, Default)]
pub struct FrostAssets {
    photos: Vec<RgbImage>,
    /// Photos pre-shrunk for tiny64 (x0.3) and cifar32 (x0.2), made on first use.
    tiny: OnceLock<Vec<RgbImage>>,
    cifar: OnceLock<Vec<RgbImage>>,
    /// Photos enlarged for a given image size, (preset, photo, width, height) -> photo: the
    /// bicubic resize is deterministic, so it is done once per size rather than per image.
    resized: Mutex<HashMap<FittedKey, Arc<RgbImage>>>,
}

/// (preset, photo index, image width, image height)
type FittedKey = (Preset, usize, usize, usize);

/// At most this many enlarged photos are kept (the cache is emptied when it is full).
const RESIZED_CACHE: usize = 40;

/// File names inside the frost directory, in the reference's order.
pub const FROST_FILES: [&str; 5] = [
    "frost1.png",
    "frost2.png",
    "frost3.png",
    "frost4.jpg",
    "frost5.jpg",
];

/// The environment variable naming a folder of frost photos to use instead of the embedded ones.
pub const FROST_DIR_VAR: &str = "SHIFTLAB_FROST_DIR";

/// [`FROST_FILES`] as build.rs found them (`assets/frost`, from scripts/setup-assets.sh).
const EMBEDDED: [&[u8]; 5] = [
    include_bytes!(concat!(env!("SHIFTLAB_FROST_EMBED_DIR"), "/frost1.png")),
    include_bytes!(concat!(env!("SHIFTLAB_FROST_EMBED_DIR"), "/frost2.png")),
    include_bytes!(concat!(env!("SHIFTLAB_FROST_EMBED_DIR"), "/frost3.png")),
    include_bytes!(concat!(env!("SHIFTLAB_FROST_EMBED_DIR"), "/frost4.jpg")),
    include_bytes!(concat!(env!("SHIFTLAB_FROST_EMBED_DIR"), "/frost5.jpg")),
];

impl FrostAssets {
    /// No photos: every corruption but frost works; frost returns [`CorruptionError::FrostNotLoaded`].
    pub fn none() -> FrostAssets {
        FrostAssets::default()
    }

    /// Loads frost1.png .. frost5.jpg from `dir` (alpha is dropped, as `cv2.imread` does).
    pub fn load(dir: impl AsRef<Path>) -> Result<FrostAssets, CorruptionError> {
        let dir = dir.as_ref();
        let mut photos = Vec::with_capacity(5);
        for name in FROST_FILES {
            let path = dir.join(name);
            let img = image::open(&path).map_err(|e| CorruptionError::FrostAsset {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            photos.push(img.to_rgb8());
        }
        Ok(FrostAssets {
            photos,
            ..Default::default()
        })
    }

    /// The photos embedded in the library at build time (build.rs finds them in
    /// `assets/frost`): the same bytes as the files, so the same pixels, from any folder.
    pub fn embedded() -> Result<FrostAssets, CorruptionError> {
        let mut photos = Vec::with_capacity(EMBEDDED.len());
        for (name, bytes) in FROST_FILES.iter().zip(EMBEDDED) {
            let img = image::load_from_memory(bytes).map_err(|e| CorruptionError::FrostAsset {
                path: format!("{name} (embedded)"),
                reason: e.to_string(),
            })?;
            photos.push(img.to_rgb8());
        }
        Ok(FrostAssets {
            photos,
            ..Default::default()
        })
    }

    /// `$SHIFTLAB_FROST_DIR`, when set (and not empty): a folder that overrides the embedded
    /// photos.
    pub fn env_dir() -> Option<PathBuf> {
        std::env::var_os(FROST_DIR_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    /// The photos from `dir` if given, else from `$SHIFTLAB_FROST_DIR`, else the embedded ones.
    pub fn locate(dir: Option<&Path>) -> Result<FrostAssets, CorruptionError> {
        match dir.map(Path::to_path_buf).or_else(FrostAssets::env_dir) {
            Some(d) => FrostAssets::load(d),
            None => FrostAssets::embedded(),
        }
    }

    /// [`FrostAssets::locate`] without a folder: `$SHIFTLAB_FROST_DIR`, else the embedded photos.
    pub fn default_location() -> Result<FrostAssets, CorruptionError> {
        FrostAssets::locate(None)
    }

    pub fn is_loaded(&self) -> bool {
        self.photos.len() == FROST_FILES.len()
    }

    /// Photo `idx` (0..5) as the preset uses it (pre-shrunk for the small presets).
    pub(crate) fn photo(&self, preset: Preset, idx: usize) -> Result<&RgbImage, CorruptionError> {
        if !self.is_loaded() {
            return Err(CorruptionError::FrostNotLoaded);
        }
        let f = params::frost_prescale(preset);
        let set = match preset {
            Preset::Imagenet224 => return Ok(&self.photos[idx]),
            Preset::Tiny64 => &self.tiny,
            Preset::Cifar32 => &self.cifar,
        };
        let v = set.get_or_init(|| self.photos.iter().map(|p| resize_linear_fx(p, f)).collect());
        Ok(&v[idx])
    }

    /// The photo as the frost corruption crops it for a `w` x `h` image (see [`fit_photo`]).
    pub(crate) fn fitted(
        &self,
        preset: Preset,
        idx: usize,
        w: usize,
        h: usize,
    ) -> Result<Arc<RgbImage>, CorruptionError> {
        let key = (preset, idx, w, h);
        if let Some(p) = self
            .resized
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        let photo = self.photo(preset, idx)?;
        let fitted = Arc::new(fit_photo(photo, w, h, preset));
        let mut cache = self.resized.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= RESIZED_CACHE {
            cache.clear();
        }
        cache.insert(key, fitted.clone());
        Ok(fitted)
    }
}

/// `cv2.resize(img, (0, 0), fx=f, fy=f)` with INTER_LINEAR (half-pixel centres, replicate).
#[inline(always)]
fn resize_linear_fx(src: &RgbImage, f: f64) -> RgbImage {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let dw = ((sw as f64 * f).round() as usize).max(1);
    let dh = ((sh as f64 * f).round() as usize).max(1);
    let inv = 1.0 / f;
    let taps = |d: usize, n: usize| -> (usize, usize, f32) {
        let fx = (d as f64 + 0.5) * inv - 0.5;
        let mut s = fx.floor();
        let mut t = fx - s;
        if s < 0.0 {
            s = 0.0;
            t = 0.0;
        }
        if s as usize >= n - 1 {
            s = (n - 1) as f64;
            t = 0.0;
        }
        let s = s as usize;
        (s, (s + 1).min(n - 1), t as f32)
    };
    let xs: Vec<_> = (0..dw).map(|d| taps(d, sw)).collect();
    let ys: Vec<_> = (0..dh).map(|d| taps(d, sh)).collect();
    let raw = src.as_raw();
    let mut out = vec![0u8; dw * dh * 3];
    for (y, &(y0, y1, ty)) in ys.iter().enumerate() {
        for (x, &(x0, x1, tx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let p = |xx: usize, yy: usize| raw[(yy * sw + xx) * 3 + c] as f32;
                let top = p(x0, y0) * (1.0 - tx) + p(x1, y0) * tx;
                let bot = p(x0, y1) * (1.0 - tx) + p(x1, y1) * tx;
                out[(y * dw + x) * 3 + c] =
                    (top * (1.0 - ty) + bot * ty).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    RgbImage::from_raw(dw as u32, dh as u32, out).expect("size")
}

/// OpenCV's bicubic weights (A = -0.75) for fraction t.
#[inline(always)]
fn cubic_weights(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let x = t;
    let w0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let w1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let w2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// imagecorruptions' frost sizing: if the photo is smaller than the image in a dimension, scale
/// it up to fit; for imagenet224 always scale by a further 1.1 (bicubic, `cv2.resize` INTER_CUBIC).
/// The small presets (whose photos are pre-shrunk, as make_cifar_c.py does) only resize when the
/// photo does not fit.
#[inline(always)]
fn fit_photo(photo: &RgbImage, w: usize, h: usize, preset: Preset) -> RgbImage {
    let (fw, fh) = (photo.width() as usize, photo.height() as usize);
    let (hf, wf) = (h as f64, w as f64);
    let (fhf, fwf) = (fh as f64, fw as f64);
    let fits = fh >= h && fw >= w;
    let mut sf = if fits {
        1.0
    } else if fh < h && fw >= w {
        hf / fhf
    } else if fh >= h && fw < w {
        wf / fwf
    } else {
        (hf / fhf).max(wf / fwf)
    };
    if fits && preset != Preset::Imagenet224 {
        return photo.clone();
    }
    sf *= 1.1;
    let (nw, nh) = ((fwf * sf).ceil() as usize, (fhf * sf).ceil() as usize);
    resize_cubic(photo, nw, nh)
}

/// `cv2.resize(.., (nw, nh), interpolation=INTER_CUBIC)`: half-pixel centres, A = -0.75,
/// replicated borders; separable (rows, then columns), rounded to u8.
#[inline(always)]
fn resize_cubic(photo: &RgbImage, nw: usize, nh: usize) -> RgbImage {
    let (fw, fh) = (photo.width() as usize, photo.height() as usize);
    let (sx, sy) = (fw as f64 / nw as f64, fh as f64 / nh as f64);
    let taps = |d: usize, scale: f64, n: usize| -> ([usize; 4], [f32; 4]) {
        let f = (d as f64 + 0.5) * scale - 0.5;
        let i = crate::filters::floor_f64(f);
        let t = (f - i) as f32;
        let i = i as i64;
        let idx = [-1i64, 0, 1, 2].map(|o| (i + o).clamp(0, n as i64 - 1) as usize);
        (idx, cubic_weights(t))
    };
    let xt: Vec<_> = (0..nw).map(|d| taps(d, sx, fw)).collect();
    let yt: Vec<_> = (0..nh).map(|d| taps(d, sy, fh)).collect();
    let raw = photo.as_raw();
    // Horizontal pass on every source row.
    let rl = nw * 3;
    let mut tmp = vec![0f32; fh * rl];
    for r in 0..fh {
        let srow = &raw[r * fw * 3..(r + 1) * fw * 3];
        let trow = &mut tmp[r * rl..(r + 1) * rl];
        for (o, (ix, wx)) in trow.chunks_exact_mut(3).zip(&xt) {
            for c in 0..3 {
                let mut s = 0f32;
                for k in 0..4 {
                    s += wx[k] * srow[ix[k] * 3 + c] as f32;
                }
                o[c] = s;
            }
        }
    }
    let mut out = vec![0u8; nh * rl];
    for (y, (iy, wy)) in yt.iter().enumerate() {
        let orow = &mut out[y * rl..(y + 1) * rl];
        let rows = iy.map(|r| &tmp[r * rl..(r + 1) * rl]);
        for (i, o) in orow.iter_mut().enumerate() {
            let s =
                wy[0] * rows[0][i] + wy[1] * rows[1][i] + wy[2] * rows[2][i] + wy[3] * rows[3][i];
            *o = crate::filters::round_f32(s).clamp(0.0, 255.0) as u8;
        }
    }
    RgbImage::from_raw(nw as u32, nh as u32, out).expect("size")
}
