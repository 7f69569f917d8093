//! gaussian_noise, shot_noise, impulse_noise, speckle_noise (per value, f64 like NumPy).

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

/// `clip(x + N(0, c), 0, 1)`.
#[inline(always)]
pub fn gaussian_noise(img: &RgbImage, c: f64, rng: &mut Rng) -> RgbImage {
    map_values(img, |_, x| trunc01_f64(x + rng.normal() * c))
}

/// `clip(x + x * N(0, c), 0, 1)`.
#[inline(always)]
pub fn speckle_noise(img: &RgbImage, c: f64, rng: &mut Rng) -> RgbImage {
    map_values(img, |_, x| trunc01_f64(x + x * (rng.normal() * c)))
}

/// Inversion table for one Poisson mean: the CDF and a guide table (Chen & Asau 1974).
struct PoissonTable {
    cdf: Vec<f64>,
    guide: Vec<u32>,
}

impl PoissonTable {
    fn new(lam: f64) -> PoissonTable {
        let mut p = (-lam).exp();
        let mut c = p;
        let mut cdf = vec![c];
        let mut k = 0u32;
        while (c < 1.0 - 1e-16 || (k as f64) < lam) && k < 100_000 {
            k += 1;
            p *= lam / k as f64;
            c += p;
            cdf.push(c);
            if p == 0.0 && (k as f64) > lam {
                break;
            }
        }
        let g = cdf.len();
        let mut guide = Vec::with_capacity(g);
        let mut k = 0usize;
        for j in 0..g {
            let t = j as f64 / g as f64;
            while k + 1 < cdf.len() && cdf[k] <= t {
                k += 1;
            }
            guide.push(k as u32);
        }
        PoissonTable { cdf, guide }
    }

    /// Smallest k with u < CDF(k) (the last k if rounding leaves u above the table).
    #[inline(always)]
    fn sample(&self, u: f64) -> u32 {
        let g = self.guide.len();
        let mut k = self.guide[((u * g as f64) as usize).min(g - 1)] as usize;
        let last = self.cdf.len() - 1;
        while k < last && self.cdf[k] <= u {
            k += 1;
        }
        k as u32
    }
}

/// `clip(poisson(x * lam) / lam, 0, 1)`. A pixel's mean is one of 256 values (x = v / 255), so
/// each distinct mean gets an inversion table (exact inversion up to f64 rounding of the CDF);
/// means above 700 (where exp(-mean) underflows) use [`Rng::poisson`] (PTRS).
#[inline(always)]
pub fn shot_noise(img: &RgbImage, lam: f64, rng: &mut Rng) -> RgbImage {
    let mut tables: Vec<Option<PoissonTable>> = (0..256).map(|_| None).collect();
    map_values(img, |v, x| {
        let mean = x * lam;
        let k = if mean > 700.0 {
            rng.poisson(mean)
        } else {
            let t = tables[v as usize].get_or_insert_with(|| PoissonTable::new(mean));
            t.sample(rng.uniform())
        };
        trunc01_f64(k as f64 / lam)
    })
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
                let k = t.sample(r.uniform()) as f64;
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
