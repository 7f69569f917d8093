//! Planar f32 buffers and the separable filters the corruptions share.

use image::RgbImage;

/// `[f(p0), f(p1), f(p2)]` over three planes, with the body expanded in place (not a closure):
/// closures are compiled as separate functions and would miss the caller's AVX2 target feature.
macro_rules! per_plane {
    ($planes:expr, |$pl:ident| $body:expr) => {{
        let mut out = Vec::with_capacity(3);
        for $pl in $planes.iter() {
            out.push($body);
        }
        let arr: [_; 3] = match out.try_into() {
            Ok(a) => a,
            Err(_) => unreachable!("three planes in, three out"),
        };
        arr
    }};
}
pub(crate) use per_plane;

/// One channel, row-major.
#[derive(Clone, Debug)]
pub struct Plane {
    pub w: usize,
    pub h: usize,
    pub d: Vec<f32>,
}

impl Plane {
    pub fn new(w: usize, h: usize) -> Plane {
        Plane {
            w,
            h,
            d: vec![0.0; w * h],
        }
    }
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.d[y * self.w + x]
    }
    #[inline]
    pub fn row(&self, y: usize) -> &[f32] {
        &self.d[y * self.w..(y + 1) * self.w]
    }
}

/// Splits an RGB image into three planes holding `f(v)` of each byte.
#[inline(always)]
pub fn to_planes(img: &RgbImage, f: impl Fn(u8) -> f32) -> [Plane; 3] {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let lut: Vec<f32> = (0..=255u8).map(&f).collect();
    let mut p = [Plane::new(w, h), Plane::new(w, h), Plane::new(w, h)];
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        p[0].d[i] = lut[px[0] as usize];
        p[1].d[i] = lut[px[1] as usize];
        p[2].d[i] = lut[px[2] as usize];
    }
    p
}

/// Joins three planes into an image with `f(v)` per value.
#[inline(always)]
pub fn from_planes(p: &[Plane; 3], f: impl Fn(f32) -> u8) -> RgbImage {
    let (w, h) = (p[0].w, p[0].h);
    let mut raw = vec![0u8; w * h * 3];
    for (i, px) in raw.chunks_exact_mut(3).enumerate() {
        px[0] = f(p[0].d[i]);
        px[1] = f(p[1].d[i]);
        px[2] = f(p[2].d[i]);
    }
    RgbImage::from_raw(w as u32, h as u32, raw).expect("buffer size matches")
}

/// The reference's final step for a value in [0, 1]: `np.uint8(np.clip(x, 0, 1) * 255)`.
#[inline(always)]
#[allow(clippy::manual_clamp)] // max/min, unlike clamp, map NaN into range
pub fn trunc01(v: f32) -> u8 {
    // max/min (not clamp) so NaN becomes 0 and the value is always in range.
    let v = v.max(0.0).min(1.0) * 255.0;
    // SAFETY: v is finite and in [0, 255].
    unsafe { v.to_int_unchecked::<i32>() as u8 }
}

/// `np.uint8(np.clip(x, 0, 1) * 255)` in f64.
#[inline(always)]
#[allow(clippy::manual_clamp)] // max/min, unlike clamp, map NaN into range
pub fn trunc01_f64(v: f64) -> u8 {
    let v = v.max(0.0).min(1.0) * 255.0;
    // SAFETY: finite and in [0, 255] (max/min discard NaN).
    unsafe { v.to_int_unchecked::<i32>() as u8 }
}

/// `np.uint8(np.clip(x, 0, 255))` (truncating).
#[inline(always)]
#[allow(clippy::manual_clamp)] // max/min, unlike clamp, map NaN into range
pub fn trunc255(v: f64) -> u8 {
    let v = v.max(0.0).min(255.0);
    // SAFETY: finite and in [0, 255] (max/min discard NaN).
    unsafe { v.to_int_unchecked::<i32>() as u8 }
}

// Rounding without libm calls: baseline x86-64 has no SSE4.1 `roundss`, so `f32::floor` and
// `f32::round` become function calls in hot loops. Exact for |x| < 2^31 (all uses here).

/// `floor(x)` for |x| < 2^31.
#[inline(always)]
pub fn floor_f32(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// `floor(x)` for |x| < 2^63.
#[inline(always)]
pub fn floor_f64(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// `f32::round` (half away from zero) for |x| < 2^31.
#[inline(always)]
pub fn round_f32(x: f32) -> f32 {
    let t = x as i32 as f32;
    let d = x - t;
    if d >= 0.5 {
        t + 1.0
    } else if d <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

/// `np.round` (half to even) for |x| < 2^31.
#[inline(always)]
pub fn round_even_f32(x: f32) -> f32 {
    let r = round_f32(x);
    if (r - x).abs() == 0.5 {
        2.0 * round_f32(x * 0.5)
    } else {
        r
    }
}

/// Border rules, named as in scipy.ndimage / OpenCV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Border {
    /// scipy 'nearest' / OpenCV REPLICATE: aaa|abcd|ddd
    Nearest,
    /// scipy 'reflect' / OpenCV REFLECT: cba|abcd|dcb
    Reflect,
    /// scipy 'mirror' / OpenCV REFLECT_101 (OpenCV's default): dcb|abcd|cba
    Reflect101,
}

/// Maps an out-of-range index into 0..n by the border rule.
#[inline(always)]
pub fn map_index(i: isize, n: usize, b: Border) -> usize {
    let n_i = n as isize;
    if (0..n_i).contains(&i) {
        return i as usize;
    }
    match b {
        Border::Nearest => i.clamp(0, n_i - 1) as usize,
        Border::Reflect => {
            let p = 2 * n_i;
            let mut m = i.rem_euclid(p);
            if m >= n_i {
                m = p - 1 - m;
            }
            m as usize
        }
        Border::Reflect101 => {
            if n == 1 {
                return 0;
            }
            let p = 2 * n_i - 2;
            let mut m = i.rem_euclid(p);
            if m >= n_i {
                m = p - m;
            }
            m as usize
        }
    }
}

/// scipy.ndimage's gaussian kernel: radius `int(truncate * sigma + 0.5)`, normalised.
/// Returns `[1.0]` for sigma ~ 0 (scipy skips such axes).
#[inline(always)]
pub fn gauss_kernel(sigma: f64, truncate: f64) -> Vec<f32> {
    if sigma <= 1e-15 {
        return vec![1.0];
    }
    let r = (truncate * sigma + 0.5) as i64;
    let s2 = sigma * sigma;
    let k: Vec<f64> = (-r..=r)
        .map(|x| (-0.5 / s2 * (x * x) as f64).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    k.iter().map(|v| (v / sum) as f32).collect()
}

/// `out[i] = f(out[i], a[i], b[i])` in blocks of 8 with all loads before the stores, so it
/// vectorises even where LLVM cannot prove the buffers disjoint.
#[inline(always)]
pub fn zip3_8(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32, f32) -> f32) {
    let n = out.len().min(a.len()).min(b.len());
    let (out, a, b) = (&mut out[..n], &a[..n], &b[..n]);
    let mut oc = out.chunks_exact_mut(8);
    let mut ac = a.chunks_exact(8);
    let mut bc = b.chunks_exact(8);
    for ((o, a), b) in (&mut oc).zip(&mut ac).zip(&mut bc) {
        let av: [f32; 8] = a.try_into().expect("chunk of 8");
        let bv: [f32; 8] = b.try_into().expect("chunk of 8");
        let mut ov: [f32; 8] = (&*o).try_into().expect("chunk of 8");
        for j in 0..8 {
            ov[j] = f(ov[j], av[j], bv[j]);
        }
        o.copy_from_slice(&ov);
    }
    for ((o, &a), &b) in oc
        .into_remainder()
        .iter_mut()
        .zip(ac.remainder())
        .zip(bc.remainder())
    {
        *o = f(*o, a, b);
    }
}

/// `out[i] += k * a[i]` (see [`zip3_8`]).
#[inline(always)]
pub fn axpy(out: &mut [f32], k: f32, a: &[f32]) {
    zip3_8(out, a, a, |o, x, _| o + k * x);
}

/// `out[i] = sum_t c_t * s_t[i]` over many (slice, coefficient) terms, eight outputs at a time
/// held in registers: one store per output however many terms.
#[inline(always)]
pub fn fused_rows(out: &mut [f32], terms: &[(&[f32], f32)]) {
    let n = out.len();
    let mut x = 0;
    // 32 outputs per step: four independent accumulation chains hide the add latency
    // (each output still sums its terms in order).
    while x + 32 <= n {
        let mut acc = [[0f32; 8]; 4];
        for &(s, c) in terms {
            let v: &[f32; 32] = s[x..x + 32].try_into().expect("32 values");
            for (q, a) in acc.iter_mut().enumerate() {
                for j in 0..8 {
                    a[j] += c * v[q * 8 + j];
                }
            }
        }
        for (q, a) in acc.iter().enumerate() {
            out[x + q * 8..x + q * 8 + 8].copy_from_slice(a);
        }
        x += 32;
    }
    while x + 8 <= n {
        let mut acc = [0f32; 8];
        for &(s, c) in terms {
            let v: [f32; 8] = s[x..x + 8].try_into().expect("8 values");
            for j in 0..8 {
                acc[j] += c * v[j];
            }
        }
        out[x..x + 8].copy_from_slice(&acc);
        x += 8;
    }
    for (i, o) in out.iter_mut().enumerate().skip(x) {
        let mut a = 0f32;
        for &(s, c) in terms {
            a += c * s[i];
        }
        *o = a;
    }
}

/// Separable correlation with (odd-length, centred) kernels: `kx` along rows, then `ky`
/// along columns; each output row is one [`fused_rows`] pass over the shifted inputs.
#[inline(always)]
pub fn sep_filter(src: &Plane, kx: &[f32], ky: &[f32], border: Border) -> Plane {
    let (w, h) = (src.w, src.h);
    let rx = kx.len() / 2;
    let ry = ky.len() / 2;
    let mut tmp = Plane::new(w, h);
    if kx.len() == 1 {
        tmp.d.copy_from_slice(&src.d);
    } else {
        let pw = w + 2 * rx;
        let mut pad = vec![0f32; pw * h];
        for y in 0..h {
            let row = src.row(y);
            let prow = &mut pad[y * pw..(y + 1) * pw];
            prow[rx..rx + w].copy_from_slice(row);
            for i in 0..rx {
                prow[i] = row[map_index(i as isize - rx as isize, w, border)];
                prow[rx + w + i] = row[map_index((w + i) as isize, w, border)];
            }
        }
        let mut terms: Vec<(&[f32], f32)> = Vec::with_capacity(kx.len());
        for y in 0..h {
            terms.clear();
            for (i, &kv) in kx.iter().enumerate() {
                terms.push((&pad[y * pw + i..y * pw + i + w], kv));
            }
            fused_rows(&mut tmp.d[y * w..(y + 1) * w], &terms);
        }
    }
    if ky.len() == 1 {
        return tmp;
    }
    let mut out = Plane::new(w, h);
    let mut terms: Vec<(&[f32], f32)> = Vec::with_capacity(ky.len());
    for y in 0..h {
        terms.clear();
        for (i, &kv) in ky.iter().enumerate() {
            let sy = map_index(y as isize + i as isize - ry as isize, h, border);
            terms.push((tmp.row(sy), kv));
        }
        fused_rows(&mut out.d[y * w..(y + 1) * w], &terms);
    }
    out
}

/// `skimage.filters.gaussian(x, sigma)` per plane: scipy gaussian_filter, truncate 4.
#[inline(always)]
pub fn gaussian(src: &Plane, sigma: f64, border: Border) -> Plane {
    let k = gauss_kernel(sigma, 4.0);
    sep_filter(src, &k, &k, border)
}

/// scipy.ndimage.zoom(order=1, grid_mode=False, mode='constant') of the centre crop of
/// `imagecorruptions.clipped_zoom`: crop `ceil(side / z)` around the centre, zoom by z.
/// Returns the full zoomed plane (it can be a pixel larger than the input).
#[inline(always)]
pub fn clipped_zoom(src: &Plane, z: f64) -> Plane {
    let (w, h) = (src.w, src.h);
    let ch = (h as f64 / z).ceil() as usize;
    let cw = (w as f64 / z).ceil() as usize;
    let top = (h - ch) / 2;
    let left = (w - cw) / 2;
    let oh = (ch as f64 * z).round_ties_even() as usize;
    let ow = (cw as f64 * z).round_ties_even() as usize;
    let axis = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32, f32)> {
        let zoom = if n_out > 1 {
            (n_in as f64 - 1.0) / (n_out as f64 - 1.0)
        } else {
            1.0
        };
        (0..n_out)
            .map(|k| {
                let cc = k as f64 * zoom;
                if cc > n_in as f64 - 1.0 {
                    // mode='constant': no interpolation past the last sample; contributes cval 0.
                    return (0, 0, 0.0, 0.0);
                }
                let i0 = cc.floor() as usize;
                let t = cc - i0 as f64;
                let i1 = (i0 + 1).min(n_in - 1);
                (i0, i1, (1.0 - t) as f32, t as f32)
            })
            .collect()
    };
    let xs = axis(cw, ow);
    let ys = axis(ch, oh);
    // Horizontal pass over the crop rows, then vertical.
    let mut tmp = vec![0f32; ch * ow];
    for r in 0..ch {
        let srow = &src.d[(top + r) * w + left..(top + r) * w + left + cw];
        let trow = &mut tmp[r * ow..(r + 1) * ow];
        for (t, &(i0, i1, a, b)) in trow.iter_mut().zip(&xs) {
            *t = a * srow[i0] + b * srow[i1];
        }
    }
    let mut out = Plane::new(ow, oh);
    for (y, &(i0, i1, a, b)) in ys.iter().enumerate() {
        let r0 = &tmp[i0 * ow..(i0 + 1) * ow];
        let r1 = &tmp[i1 * ow..(i1 + 1) * ow];
        let o = &mut out.d[y * ow..(y + 1) * ow];
        zip3_8(o, r0, r1, |_, v0, v1| a * v0 + b * v1);
    }
    out
}

/// `imagecorruptions._motion_blur`: gaussian-weighted shift-and-add along a line at `angle`
/// degrees, shifts clamped at the borders (its `shift` helper).
#[inline(always)]
pub fn motion_blur_plane(src: &Plane, radius: i64, sigma: f64, angle: f64) -> Plane {
    let (w, h) = (src.w, src.h);
    let width = (radius * 2 + 1) as usize;
    let mut k: Vec<f64> = (0..width)
        .map(|x| {
            let x = x as f64;
            (-(x * x) / (2.0 * sigma * sigma)).exp() / ((2.0 * std::f64::consts::PI).sqrt() * sigma)
        })
        .collect();
    let z: f64 = k.iter().sum();
    for v in &mut k {
        *v /= z;
    }
    let rad = angle.to_radians();
    let point = (width as f64 * rad.sin(), width as f64 * rad.cos());
    let hypot = point.0.hypot(point.1);
    let mut out = Plane::new(w, h);
    for (i, &kv) in k.iter().enumerate() {
        let dy = -((i as f64 * point.0) / hypot - 0.5).ceil() as i64;
        let dx = -((i as f64 * point.1) / hypot - 0.5).ceil() as i64;
        if dy.unsigned_abs() as usize >= h || dx.unsigned_abs() as usize >= w {
            break;
        }
        let kv = kv as f32;
        // shifted[y][x] = src[clamp(y - dy)][clamp(x - dx)]
        let (lo, hi) = if dx >= 0 {
            (dx as usize, w)
        } else {
            (0, (w as i64 + dx) as usize)
        };
        for y in 0..h {
            let sy = (y as i64 - dy).clamp(0, h as i64 - 1) as usize;
            let srow = src.row(sy);
            let o = &mut out.d[y * w..(y + 1) * w];
            let first = srow[0] * kv;
            let last = srow[w - 1] * kv;
            for ov in &mut o[..lo] {
                *ov += first;
            }
            for ov in &mut o[hi..] {
                *ov += last;
            }
            let s0 = (lo as i64 - dx) as usize;
            let seg = &srow[s0..s0 + (hi - lo)];
            axpy(&mut o[lo..hi], kv, seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borders() {
        // n = 4: abcd
        let m = |i, b| map_index(i, 4, b);
        assert_eq!([m(-1, Border::Nearest), m(5, Border::Nearest)], [0, 3]);
        assert_eq!(
            [
                m(-1, Border::Reflect),
                m(-2, Border::Reflect),
                m(4, Border::Reflect)
            ],
            [0, 1, 3]
        );
        assert_eq!(
            [
                m(-1, Border::Reflect101),
                m(-2, Border::Reflect101),
                m(4, Border::Reflect101)
            ],
            [1, 2, 2]
        );
    }

    #[test]
    fn fast_rounding_matches_std() {
        for i in -40000..40000 {
            let x = i as f32 * 0.013 + 0.5 * (i % 3) as f32;
            assert_eq!(floor_f32(x), x.floor(), "{x}");
            assert_eq!(round_f32(x), x.round(), "{x}");
            assert_eq!(round_even_f32(x), x.round_ties_even(), "{x}");
            assert_eq!(floor_f64(x as f64), (x as f64).floor(), "{x}");
        }
        for x in [0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 254.5, 255.5] {
            assert_eq!(round_f32(x), x.round(), "{x}");
            assert_eq!(round_even_f32(x), x.round_ties_even(), "{x}");
        }
    }

    #[test]
    fn gauss_kernel_sums_to_one() {
        let k = gauss_kernel(2.0, 4.0);
        assert_eq!(k.len(), 17);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn zoom_identity() {
        let mut p = Plane::new(7, 5);
        for (i, v) in p.d.iter_mut().enumerate() {
            *v = i as f32;
        }
        let z = clipped_zoom(&p, 1.0);
        assert_eq!(z.d, p.d);
    }
}
