//! snow, frost, fog, brightness (and saturate, which shares the HSV code).

use image::RgbImage;

use crate::filters::{clipped_zoom, motion_blur_plane, trunc01_f64, trunc255, Plane};
use crate::frost::FrostAssets;
use crate::params::SnowParams;
use crate::rng::Rng;
use crate::{CorruptionError, Preset};

/// skimage `rgb2hsv` for one pixel (ties: blue beats green beats red, as in its masks).
#[inline(always)]
pub fn rgb2hsv(r: f64, g: f64, b: f64) -> (f64, f64, f64) {
    let v = r.max(g).max(b);
    let delta = v - r.min(g).min(b);
    if delta == 0.0 {
        return (0.0, 0.0, v);
    }
    let s = delta / v;
    let mut h = 0.0;
    if r == v {
        h = (g - b) / delta;
    }
    if g == v {
        h = 2.0 + (b - r) / delta;
    }
    if b == v {
        h = 4.0 + (r - g) / delta;
    }
    // NumPy's `(h / 6) % 1.0` for h / 6 in [-1/6, 5/6]: x itself, or x + 1 when negative.
    let mut hm = h / 6.0;
    if hm < 0.0 {
        hm += 1.0;
    }
    (hm, s, v)
}

/// skimage `hsv2rgb` for one pixel.
#[inline(always)]
pub fn hsv2rgb(h: f64, s: f64, v: f64) -> (f64, f64, f64) {
    let hi = crate::filters::floor_f64(h * 6.0);
    let f = h * 6.0 - hi;
    let p = v * (1.0 - s);
    let q = v * (1.0 - f * s);
    let t = v * (1.0 - (1.0 - f) * s);
    match (hi as i64 as u8) % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[inline(always)]
fn map_hsv(img: &RgbImage, f: impl Fn(f64, f64, f64) -> (f64, f64, f64)) -> RgbImage {
    let mut unit = [0f64; 256];
    for (i, u) in unit.iter_mut().enumerate() {
        *u = i as f64 / 255.0;
    }
    let mut raw = img.as_raw().clone();
    for px in raw.chunks_exact_mut(3) {
        let (h, s, v) = rgb2hsv(
            unit[px[0] as usize],
            unit[px[1] as usize],
            unit[px[2] as usize],
        );
        let (h, s, v) = f(h, s, v);
        let (r, g, b) = hsv2rgb(h, s, v);
        px[0] = trunc01_f64(r);
        px[1] = trunc01_f64(g);
        px[2] = trunc01_f64(b);
    }
    RgbImage::from_raw(img.width(), img.height(), raw).expect("same size")
}

/// HSV value + c, clipped, through skimage's rgb2hsv/hsv2rgb.
#[inline(always)]
pub fn brightness(img: &RgbImage, c: f64) -> RgbImage {
    map_hsv(img, |h, s, v| (h, s, (v + c).clamp(0.0, 1.0)))
}

/// HSV saturation * a + b, clipped. Gray pixels have hue 0, so an offset b tints them red,
/// exactly as in the reference.
#[inline(always)]
pub fn saturate(img: &RgbImage, (a, b): (f64, f64)) -> RgbImage {
    map_hsv(img, |h, s, v| (h, (s * a + b).clamp(0.0, 1.0), v))
}

/// Diamond-square plasma (imagecorruptions' `plasma_fractal`), values in [0, 1].
#[inline(always)]
pub fn plasma_fractal(mapsize: usize, wibbledecay: f64, rng: &mut Rng) -> Vec<f64> {
    let n = mapsize;
    let mut m = vec![0f64; n * n];
    let mut step = n;
    let mut wibble = 100.0f64;
    let idx = |y: usize, x: usize| y * n + x;
    while step >= 2 {
        let cs = n / step;
        let half = step / 2;
        // fillsquares
        let corner = |m: &Vec<f64>, i: usize, j: usize| m[idx(i * step, j * step)];
        let mut vals = vec![0f64; cs * cs];
        for i in 0..cs {
            for j in 0..cs {
                let i1 = (i + 1) % cs;
                let j1 = (j + 1) % cs;
                let sq = corner(&m, i, j) + corner(&m, i1, j);
                let sq1 = corner(&m, i, j1) + corner(&m, i1, j1);
                vals[i * cs + j] = sq + sq1;
            }
        }
        for i in 0..cs {
            for j in 0..cs {
                let u = rng.uniform_range(-wibble, wibble);
                m[idx(half + i * step, half + j * step)] = vals[i * cs + j] / 4.0 + wibble * u;
            }
        }
        // filldiamonds
        let dr = |m: &Vec<f64>, i: usize, j: usize| m[idx(half + i * step, half + j * step)];
        let ul = |m: &Vec<f64>, i: usize, j: usize| m[idx(i * step, j * step)];
        let mut lt = vec![0f64; cs * cs];
        let mut tt = vec![0f64; cs * cs];
        for i in 0..cs {
            for j in 0..cs {
                let im1 = (i + cs - 1) % cs;
                let jm1 = (j + cs - 1) % cs;
                let ip1 = (i + 1) % cs;
                let jp1 = (j + 1) % cs;
                lt[i * cs + j] = (dr(&m, i, j) + dr(&m, im1, j)) + (ul(&m, i, j) + ul(&m, i, jp1));
                tt[i * cs + j] = (dr(&m, i, j) + dr(&m, i, jm1)) + (ul(&m, i, j) + ul(&m, ip1, j));
            }
        }
        for i in 0..cs {
            for j in 0..cs {
                let u = rng.uniform_range(-wibble, wibble);
                m[idx(i * step, half + j * step)] = lt[i * cs + j] / 4.0 + wibble * u;
            }
        }
        for i in 0..cs {
            for j in 0..cs {
                let u = rng.uniform_range(-wibble, wibble);
                m[idx(half + i * step, j * step)] = tt[i * cs + j] / 4.0 + wibble * u;
            }
        }
        step /= 2;
        wibble /= wibbledecay;
    }
    let mn = m.iter().cloned().fold(f64::INFINITY, f64::min);
    for v in &mut m {
        *v -= mn;
    }
    let mx = m.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if mx > 0.0 {
        for v in &mut m {
            *v /= mx;
        }
    }
    m
}

/// `x + c0 * plasma`, rescaled by max / (max + c0); plasma map side = next power of two of the
/// longer image side, cropped to the image.
#[inline(always)]
pub fn fog(img: &RgbImage, (amp, decay): (f64, f64), rng: &mut Rng) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let map_size = w.max(h).next_power_of_two();
    let plasma = plasma_fractal(map_size, decay, rng);
    let max_val = img.as_raw().iter().copied().max().unwrap_or(0) as f64 / 255.0;
    let scale = max_val / (max_val + amp);
    let mut unit = [0f64; 256];
    for (i, u) in unit.iter_mut().enumerate() {
        *u = i as f64 / 255.0;
    }
    let mut raw = img.as_raw().clone();
    for y in 0..h {
        let prow = &plasma[y * map_size..y * map_size + w];
        for (px, &pv) in raw[y * w * 3..(y + 1) * w * 3]
            .chunks_exact_mut(3)
            .zip(prow)
        {
            let add = amp * pv;
            for v in px.iter_mut() {
                *v = trunc01_f64((unit[*v as usize] + add) * scale);
            }
        }
    }
    RgbImage::from_raw(w as u32, h as u32, raw).expect("same size")
}

/// Snow: a zoomed, thresholded normal layer motion-blurred at U(-135, -45) degrees, rounded to
/// 8 bits, added twice (as is and rotated 180 degrees) to the image lightened towards its gray.
#[inline(always)]
pub fn snow(img: &RgbImage, c: SnowParams, rng: &mut Rng) -> RgbImage {
    let (loc, scale, zoom, thr, radius, sigma, blend) = c;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut layer = Plane::new(w, h);
    rng.fill_normal_f32(&mut layer.d);
    let (loc, scale) = (loc as f32, scale as f32);
    for v in &mut layer.d {
        *v = loc + scale * *v;
    }
    let mut layer = clipped_zoom(&layer, zoom);
    let thr = thr as f32;
    for v in &mut layer.d {
        if *v < thr {
            *v = 0.0;
        }
        *v = v.clamp(0.0, 1.0);
    }
    let angle = rng.uniform_range(-135.0, -45.0);
    let layer = motion_blur_plane(&layer, radius, sigma, angle);
    // np.round(layer * 255).astype(np.uint8) / 255, cropped to the image.
    let lw = layer.w;
    let mut q = vec![0f32; w * h];
    for y in 0..h {
        for (x, qv) in q[y * w..(y + 1) * w].iter_mut().enumerate() {
            let v = crate::filters::round_even_f32(layer.d[y * lw + x] * 255.0);
            *qv = (v as i64 as u8) as f32 / 255.0;
        }
    }
    // The layer plus itself rotated by 180 degrees.
    let snow2: Vec<f32> = (0..w * h).map(|i| q[i] + q[w * h - 1 - i]).collect();
    let mut raw = img.as_raw().clone();
    let blend32 = blend as f32;
    for (px, &s) in raw.chunks_exact_mut(3).zip(&snow2) {
        let r = px[0] as f32 / 255.0;
        let g = px[1] as f32 / 255.0;
        let b = px[2] as f32 / 255.0;
        // cv2 RGB2GRAY on float32.
        let lift = (0.299 * r + 0.587 * g + 0.114 * b) * 1.5 + 0.5;
        for (o, xv) in px.iter_mut().zip([r, g, b]) {
            let v = blend32 * xv + (1.0 - blend32) * xv.max(lift);
            *o = crate::filters::trunc01(v + s);
        }
    }
    RgbImage::from_raw(w as u32, h as u32, raw).expect("same size")
}

/// Frost: blend with a random crop of one of the first five frost photos.
#[inline(always)]
pub fn frost(
    img: &RgbImage,
    preset: Preset,
    (a, b): (f64, f64),
    assets: &FrostAssets,
    rng: &mut Rng,
) -> Result<RgbImage, CorruptionError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let idx = rng.randint(0, 5) as usize;
    let photo = assets.fitted(preset, idx, w, h)?;
    let (pw, ph) = (photo.width() as usize, photo.height() as usize);
    // Random crop: rows first, as the reference draws them (no draw when there is no slack).
    let y0 = if ph > h {
        rng.randint(0, (ph - h) as i64) as usize
    } else {
        0
    };
    let x0 = if pw > w {
        rng.randint(0, (pw - w) as i64) as usize
    } else {
        0
    };
    let praw = photo.as_raw();
    let mut raw = img.as_raw().clone();
    for y in 0..h {
        let frow = &praw[((y0 + y) * pw + x0) * 3..((y0 + y) * pw + x0 + w) * 3];
        let orow = &mut raw[y * w * 3..(y + 1) * w * 3];
        for (v, &f) in orow.iter_mut().zip(frow) {
            *v = trunc255(a * *v as f64 + b * f as f64);
        }
    }
    Ok(RgbImage::from_raw(w as u32, h as u32, raw).expect("same size"))
}
