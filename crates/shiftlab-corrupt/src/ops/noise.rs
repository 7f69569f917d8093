//! gaussian_noise, shot_noise, impulse_noise, speckle_noise (per value, f64 like NumPy).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use image::RgbImage;

use crate::filters::trunc01_f64;
use crate::rng::Rng;

/// `v / 255.` for every byte, as NumPy computes it.
#[inline(always)]
fn unit_lut() -> [f64; 256] {
    let mut t = [0f64; 256];
    for (i, v) in t.iter_mut().enumerate() {
        *v = i as f64 / 255.0;
    }
    t
}

#[inline(always)]
fn map_values(img: &RgbImage, mut f: impl FnMut(u8, f64) -> u8) -> RgbImage {
    let lut = unit_lut();
    let raw: Vec<u8> = img
        .as_raw()
        .iter()
        .map(|&v| f(v, lut[v as usize]))
        .collect();
    RgbImage::from_raw(img.width(), img.height(), raw).expect("same size")
}

/// `np.uint8(clip(x, 0, 1) * 255)` in f32, branch-free (NaN maps to 0).
#[inline(always)]
#[allow(clippy::manual_clamp)] // max/min, unlike clamp, map NaN into range
fn trunc01_fast(x: f32) -> u8 {
    let v = x.max(0.0).min(1.0) * 255.0;
    // SAFETY: v is finite and in [0, 255] (max/min discard NaN).
    unsafe { v.to_int_unchecked::<i32>() as u8 }
}

/// Applies `f(x, z)` with z ~ N(0, 1) to every value x = v / 255 (normals drawn in bulk).
#[inline(always)]
fn with_normals(img: &RgbImage, rng: &mut Rng, f: impl Fn(f32, f32) -> f32) -> RgbImage {
    let src = img.as_raw();
    let mut z = vec![0f32; src.len()];
    rng.fill_normal_f32(&mut z);
    let mut raw = vec![0u8; src.len()];
    for ((o, &v), &zv) in raw.iter_mut().zip(src).zip(&z) {
        *o = trunc01_fast(f(v as f32 * (1.0 / 255.0), zv));
    }
    RgbImage::from_raw(img.width(), img.height(), raw).expect("same size")
}

/// `clip(x + N(0, c), 0, 1)` (in f32: the noise dwarfs the rounding).
#[inline(always)]
pub fn gaussian_noise(img: &RgbImage, c: f64, rng: &mut Rng) -> RgbImage {
    let c = c as f32;
    with_normals(img, rng, |x, z| x + z * c)
}

/// `clip(x + x * N(0, c), 0, 1)`.
#[inline(always)]
pub fn speckle_noise(img: &RgbImage, c: f64, rng: &mut Rng) -> RgbImage {
    let c = c as f32;
    with_normals(img, rng, |x, z| x + x * (z * c))
}

/// Inversion table for one Poisson mean: the CDF in 32-bit fixed point and a guide table
/// (Chen & Asau 1974) indexed by the top bits of the uniform.
struct PoissonTable {
    cdf: Vec<u32>,
    guide: Vec<u32>,
    shift: u32,
}

impl PoissonTable {
    fn new(lam: f64) -> PoissonTable {
        let mut p = (-lam).exp();
        let mut c = p;
        let scale = 4_294_967_296.0;
        let mut cdf = vec![(c * scale).min(u32::MAX as f64) as u32];
        let mut k = 0u32;
        while (c * scale < u32::MAX as f64 || (k as f64) < lam) && k < 100_000 {
            k += 1;
            p *= lam / k as f64;
            c += p;
            cdf.push((c * scale).min(u32::MAX as f64) as u32);
            if p == 0.0 && (k as f64) > lam {
                break;
            }
        }
        let bits = (cdf.len().next_power_of_two().trailing_zeros()).max(1);
        let g = 1usize << bits;
        let mut guide = Vec::with_capacity(g);
        let mut k = 0usize;
        for j in 0..g {
            let t = (j as u64) << (32 - bits);
            while k + 1 < cdf.len() && (cdf[k] as u64) <= t {
                k += 1;
            }
            guide.push(k as u32);
        }
        PoissonTable {
            cdf,
            guide,
            shift: 32 - bits,
        }
    }

    /// Smallest k with u < CDF(k), u a 32-bit uniform (the last k if u is above the table).
    #[inline(always)]
    fn sample(&self, u: u32) -> u32 {
        let mut k = self.guide[(u >> self.shift) as usize] as usize;
        let last = self.cdf.len() - 1;
        while k < last && self.cdf[k] <= u {
            k += 1;
        }
        k as u32
    }
}

/// The 256 per-grey-level tables of one rate `lam`, built on first use and kept for the
/// process (the rates are the presets' constants, so there are at most 15 sets).
fn table_set(lam: f64) -> Arc<Vec<OnceLock<PoissonTable>>> {
    type Sets = Mutex<HashMap<u64, Arc<Vec<OnceLock<PoissonTable>>>>>;
    static CACHE: OnceLock<Sets> = OnceLock::new();
    let mut sets = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if sets.len() > 64 {
        sets.clear();
    }
    sets.entry(lam.to_bits())
        .or_insert_with(|| Arc::new((0..256).map(|_| OnceLock::new()).collect()))
        .clone()
}

/// `clip(poisson(x * lam) / lam, 0, 1)`. A pixel's mean is one of 256 values (x = v / 255), so
/// each distinct mean gets an inversion table (exact inversion at 32-bit resolution: two
/// draws per 64-bit random number); means above 700 (where exp(-mean) underflows) use
/// [`Rng::poisson`] (PTRS).
#[inline(always)]
pub fn shot_noise(img: &RgbImage, lam: f64, rng: &mut Rng) -> RgbImage {
    let src = img.as_raw();
    let set = table_set(lam);
    let mut tables: [Option<&PoissonTable>; 256] = [None; 256];
    let mut out_lut: Vec<u8> = Vec::new();
    let mut raw = vec![0u8; src.len()];
    let mut spare: Option<u32> = None;
    for (o, &v) in raw.iter_mut().zip(src) {
        let mean = v as f64 / 255.0 * lam;
        let k = if mean > 700.0 {
            rng.poisson(mean)
        } else {
            let t = *tables[v as usize]
                .get_or_insert_with(|| set[v as usize].get_or_init(|| PoissonTable::new(mean)));
            let u = match spare.take() {
                Some(u) => u,
                None => {
                    let b = rng.next_u64();
                    spare = Some((b >> 32) as u32);
                    b as u32
                }
            };
            t.sample(u)
        } as usize;
        if k >= out_lut.len() {
            let n = out_lut.len();
            out_lut.extend((n..=k + 64).map(|j| trunc01_f64(j as f64 / lam)));
        }
        *o = out_lut[k];
    }
    RgbImage::from_raw(img.width(), img.height(), raw).expect("same size")
}

/// skimage `random_noise(mode='s&p', amount=c)`: each value independently flips with
/// probability c, to 1 or 0 with equal odds (one 64-bit draw: 53 bits for the flip, one bit
/// for salt or pepper).
#[inline(always)]
pub fn impulse_noise(img: &RgbImage, amount: f64, rng: &mut Rng) -> RgbImage {
    let mut keep = [0u8; 256];
    for (v, k) in keep.iter_mut().enumerate() {
        *k = trunc01_f64(v as f64 / 255.0);
    }
    map_values(img, |v, _| {
        let bits = rng.next_u64();
        let u = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        if u <= amount {
            if bits & 1 == 1 {
                255
            } else {
                0
            }
        } else {
            keep[v as usize]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_table_matches_moments() {
        let mut r = Rng::new(11);
        for &lam in &[0.0, 0.5, 7.0, 60.0, 500.0] {
            let t = PoissonTable::new(lam);
            let n = 100_000;
            let (mut s, mut s2) = (0.0, 0.0);
            for _ in 0..n {
                let k = t.sample(r.next_u64() as u32) as f64;
                s += k;
                s2 += k * k;
            }
            let m = s / n as f64;
            let v = s2 / n as f64 - m * m;
            assert!(
                (m - lam).abs() < 5.0 * (lam / n as f64).sqrt() + 1e-9,
                "lam {lam}: mean {m}"
            );
            if lam > 0.0 {
                assert!((v / lam - 1.0).abs() < 0.05, "lam {lam}: var {v}");
            }
        }
    }
}
