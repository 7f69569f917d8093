//! Counter-free, per-call seeded random numbers.
//!
//! Every corruption call gets its own stream: SplitMix64 mixes
//! (seed, key, corruption, severity) into one 64-bit value, which seeds a
//! xoshiro256++ generator (state filled by four SplitMix64 outputs, as its
//! authors recommend). Nothing is shared between calls, so results never depend
//! on thread count, batch size or order. Normals come from a ziggurat, Poisson variates from
//! inversion (small means) or Hörmann's PTRS (large means).

/// One SplitMix64 step (Steele, Lea & Flood 2014): used for seeding and key mixing; the
/// workspace's one seeder.
pub use shiftlab_common::splitmix64;

/// Mixes the call's identity into one seed; each field passes through a full SplitMix64 round.
pub fn stream_seed(seed: u64, key: u64, corruption: u64, severity: u64) -> u64 {
    let mut s = seed;
    let a = splitmix64(&mut s);
    let mut s = a ^ key;
    let b = splitmix64(&mut s);
    let mut s = b ^ (corruption << 8 | severity);
    splitmix64(&mut s)
}

/// xoshiro256++ (Blackman & Vigna 2019) with uniform, normal and Poisson samplers.
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi), like `np.random.uniform`.
    #[inline]
    pub fn uniform_range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Integer in [lo, hi) like `np.random.randint`; Lemire's multiply-shift (bias < 2^-32 here).
    #[inline]
    pub fn randint(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(hi > lo);
        let n = (hi - lo) as u64;
        lo + ((self.next_u64() as u128 * n as u128) >> 64) as i64
    }

    /// Standard normal by the ziggurat method (Marsaglia & Tsang 2000, 128 layers, with
    /// Doornik's ZIGNOR layout): one 64-bit draw in ~99% of cases, exact tail by Marsaglia's method.
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let z = zig();
        loop {
            let bits = self.next_u64();
            let i = (bits & 0x7F) as usize;
            // u uniform in [-1, 1) from the top 53 bits.
            let u = 2.0 * ((bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) - 1.0;
            if u.abs() < z.r[i] {
                return u * z.x[i];
            }
            if i == 0 {
                return self.normal_tail(u < 0.0);
            }
            let x = u * z.x[i];
            let f0 = (-0.5 * (z.x[i] * z.x[i] - x * x)).exp();
            let f1 = (-0.5 * (z.x[i + 1] * z.x[i + 1] - x * x)).exp();
            if f1 + self.uniform() * (f0 - f1) < 1.0 {
                return x;
            }
        }
    }

    /// Fills `out` with standard normals: the same ziggurat in f32 with 24-bit uniforms, two
    /// candidates per 64-bit draw; the rare wedge/tail cases finish in f64 as in [`Rng::normal`]
    /// (a rejected wedge restarts with a complete fresh sample, as the method prescribes).
    pub fn fill_normal_f32(&mut self, out: &mut [f32]) {
        let z = zig();
        let z32 = zig32();
        let mut i = 0;
        let n = out.len();
        while i < n {
            let bits = self.next_u64();
            for half in [bits as u32, (bits >> 32) as u32] {
                if i == n {
                    break;
                }
                let layer = (half & 0x7F) as usize;
                let u = (half >> 8) as f32 * (2.0 / 16_777_216.0) - 1.0;
                out[i] = if u.abs() < z32.r[layer] {
                    u * z32.x[layer]
                } else if (u.abs() as f64) < z.r[layer] {
                    (u as f64 * z.x[layer]) as f32
                } else if layer == 0 {
                    self.normal_tail(u < 0.0) as f32
                } else {
                    let x = u as f64 * z.x[layer];
                    let f0 = (-0.5 * (z.x[layer] * z.x[layer] - x * x)).exp();
                    let f1 = (-0.5 * (z.x[layer + 1] * z.x[layer + 1] - x * x)).exp();
                    if f1 + self.uniform() * (f0 - f1) < 1.0 {
                        x as f32
                    } else {
                        self.normal() as f32
                    }
                };
                i += 1;
            }
        }
    }

    #[cold]
    fn normal_tail(&mut self, negative: bool) -> f64 {
        loop {
            let x = (1.0 - self.uniform()).ln() / ZIG_R;
            let y = (1.0 - self.uniform()).ln();
            if -2.0 * y >= x * x {
                return if negative { x - ZIG_R } else { ZIG_R - x };
            }
        }
    }

    /// Poisson with mean `lam`: exact inversion (sequential search) below 10, Hörmann's PTRS above.
    pub fn poisson(&mut self, lam: f64) -> u32 {
        if lam <= 0.0 {
            return 0;
        }
        if lam < 10.0 {
            // Inversion by sequential search of the CDF.
            let u = self.uniform();
            let mut k = 0u32;
            let mut p = (-lam).exp();
            let mut cdf = p;
            while u >= cdf {
                k += 1;
                p *= lam / k as f64;
                cdf += p;
                if p < 1e-300 && cdf >= u {
                    break;
                }
                if k > 1000 {
                    break;
                }
            }
            return k;
        }
        self.poisson_ptrs(lam)
    }

    /// PTRS, transformed rejection with squeeze (Hörmann 1993), as in NumPy for lam >= 10.
    fn poisson_ptrs(&mut self, lam: f64) -> u32 {
        let slam = lam.sqrt();
        let loglam = lam.ln();
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.02483 * b;
        let invalpha = 1.1239 + 1.1328 / (b - 3.4);
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lam + 0.43).floor();
            if us >= 0.07 && v <= vr {
                return k as u32;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            if v.ln() + invalpha.ln() - (a / (us * us) + b).ln()
                <= -lam + k * loglam - loggam(k + 1.0)
            {
                return k as u32;
            }
        }
    }
}

const ZIG_C: usize = 128;
const ZIG_R: f64 = 3.442_619_855_899;
const ZIG_V: f64 = 9.912_563_035_262_17e-3;

struct Zig {
    x: [f64; ZIG_C + 1],
    r: [f64; ZIG_C],
}

/// Ziggurat layer tables, computed once.
fn zig() -> &'static Zig {
    static Z: std::sync::OnceLock<Zig> = std::sync::OnceLock::new();
    Z.get_or_init(|| {
        let mut x = [0f64; ZIG_C + 1];
        let mut f = (-0.5 * ZIG_R * ZIG_R).exp();
        x[0] = ZIG_V / f;
        x[1] = ZIG_R;
        x[ZIG_C] = 0.0;
        for i in 2..ZIG_C {
            x[i] = (-2.0 * (ZIG_V / x[i - 1] + f).ln()).sqrt();
            f = (-0.5 * x[i] * x[i]).exp();
        }
        let mut r = [0f64; ZIG_C];
        for i in 0..ZIG_C {
            r[i] = x[i + 1] / x[i];
        }
        Zig { x, r }
    })
}

struct Zig32 {
    x: [f32; ZIG_C + 1],
    r: [f32; ZIG_C],
}

fn zig32() -> &'static Zig32 {
    static Z: std::sync::OnceLock<Zig32> = std::sync::OnceLock::new();
    Z.get_or_init(|| {
        let z = zig();
        let mut x = [0f32; ZIG_C + 1];
        let mut r = [0f32; ZIG_C];
        for i in 0..=ZIG_C {
            x[i] = z.x[i] as f32;
        }
        for i in 0..ZIG_C {
            // Rounded down so the fast test never accepts outside the f64 layer.
            r[i] = (z.r[i] as f32).min(f32::from_bits((z.r[i] as f32).to_bits().saturating_sub(1)));
        }
        Zig32 { x, r }
    })
}

/// log Gamma(x) by the Stirling series used in NumPy's `random_loggam` (its constants verbatim).
#[allow(clippy::excessive_precision)]
fn loggam(x: f64) -> f64 {
    const A: [f64; 10] = [
        8.333333333333333e-02,
        -2.777777777777778e-03,
        7.936507936507937e-04,
        -5.952380952380952e-04,
        8.417508417508418e-04,
        -1.917526917526918e-03,
        6.410256410256410e-03,
        -2.955065359477124e-02,
        1.796443723688307e-01,
        -1.39243221690590e+00,
    ];
    if x == 1.0 || x == 2.0 {
        return 0.0;
    }
    let n = if x < 7.0 { (7.0 - x) as i64 } else { 0 };
    let mut x0 = x + n as f64;
    let x2 = (1.0 / x0) * (1.0 / x0);
    let lg2pi = 1.837_877_066_409_345_3;
    let mut gl0 = A[9];
    for k in (0..9).rev() {
        gl0 *= x2;
        gl0 += A[k];
    }
    let mut gl = gl0 / x0 + 0.5 * lg2pi + (x0 - 0.5) * x0.ln() - x0;
    if x < 7.0 {
        for _ in 1..=n {
            gl -= (x0 - 1.0).ln();
            x0 -= 1.0;
        }
    }
    gl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_moments() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let z = r.normal();
            s += z;
            s2 += z * z;
        }
        let m = s / n as f64;
        let v = s2 / n as f64 - m * m;
        assert!(m.abs() < 0.01, "mean {m}");
        assert!((v - 1.0).abs() < 0.02, "var {v}");
    }

    #[test]
    fn normal_tails() {
        // P(|z| > 3) = 0.0027, P(z > 3.5) = 2.33e-4 (exercises the tail).
        let mut r = Rng::new(7);
        let n = 2_000_000;
        let (mut a, mut b, mut k4) = (0usize, 0usize, 0.0);
        for _ in 0..n {
            let z = r.normal();
            a += (z.abs() > 3.0) as usize;
            b += (z > 3.5) as usize;
            k4 += z * z * z * z;
        }
        let pa = a as f64 / n as f64;
        let pb = b as f64 / n as f64;
        assert!((pa - 0.0027).abs() < 0.0003, "{pa}");
        assert!((pb - 2.33e-4).abs() < 0.5e-4, "{pb}");
        assert!((k4 / n as f64 - 3.0).abs() < 0.05);
    }

    #[test]
    fn normal_f32_moments_and_tails() {
        let mut r = Rng::new(8);
        let mut buf = vec![0f32; 2_000_001];
        r.fill_normal_f32(&mut buf);
        let n = buf.len() as f64;
        let m: f64 = buf.iter().map(|&z| z as f64).sum::<f64>() / n;
        let v: f64 = buf.iter().map(|&z| (z as f64 - m).powi(2)).sum::<f64>() / n;
        let k4: f64 = buf.iter().map(|&z| (z as f64).powi(4)).sum::<f64>() / n;
        let pa = buf.iter().filter(|z| z.abs() > 3.0).count() as f64 / n;
        let pb = buf.iter().filter(|&&z| z > 3.5).count() as f64 / n;
        assert!(m.abs() < 0.003, "{m}");
        assert!((v - 1.0).abs() < 0.005, "{v}");
        assert!((k4 - 3.0).abs() < 0.05, "{k4}");
        assert!((pa - 0.0027).abs() < 0.0003, "{pa}");
        assert!((pb - 2.33e-4).abs() < 0.5e-4, "{pb}");
    }

    #[test]
    fn poisson_moments() {
        let mut r = Rng::new(2);
        for &lam in &[0.3, 3.0, 9.9, 10.0, 37.5, 500.0] {
            let n = 100_000;
            let (mut s, mut s2) = (0.0, 0.0);
            for _ in 0..n {
                let k = r.poisson(lam) as f64;
                s += k;
                s2 += k * k;
            }
            let m = s / n as f64;
            let v = s2 / n as f64 - m * m;
            let se = (lam / n as f64).sqrt();
            assert!((m - lam).abs() < 5.0 * se, "lam {lam} mean {m}");
            assert!((v / lam - 1.0).abs() < 0.05, "lam {lam} var {v}");
        }
    }

    #[test]
    fn loggam_matches_factorials() {
        let mut f = 1.0f64;
        for k in 1..20 {
            f *= k as f64;
            assert!((loggam(k as f64 + 1.0) - f.ln()).abs() < 1e-9, "k {k}");
        }
    }

    #[test]
    fn randint_range() {
        let mut r = Rng::new(3);
        let mut seen = [0u32; 8];
        for _ in 0..10_000 {
            let v = r.randint(-4, 4);
            assert!((-4..4).contains(&v));
            seen[(v + 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 1000));
    }
}
