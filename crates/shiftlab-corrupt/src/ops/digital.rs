//! contrast, elastic_transform, pixelate.

use image::RgbImage;

use crate::filters::{
    gauss_kernel, map_index, per_plane, sep_filter, to_planes, trunc01, trunc01_f64, Border, Plane,
};
use crate::params::ElasticParams;
use crate::rng::Rng;

/// `(x - mean) * c + mean` with per-channel means over the whole image.
#[inline(always)]
pub fn contrast(img: &RgbImage, c: f64) -> RgbImage {
    let mut sums = [0f64; 3];
    for px in img.as_raw().chunks_exact(3) {
        for k in 0..3 {
            sums[k] += px[k] as f64 / 255.0;
        }
    }
    let n = (img.width() * img.height()) as f64;
    let means = sums.map(|s| s / n);
    // The result depends on the value and channel only: one table per channel.
    let mut lut = [[0u8; 256]; 3];
    for (k, t) in lut.iter_mut().enumerate() {
        for (v, o) in t.iter_mut().enumerate() {
            let x = v as f64 / 255.0;
            *o = trunc01_f64((x - means[k]) * c + means[k]);
        }
    }
    let mut raw = img.as_raw().clone();
    for px in raw.chunks_exact_mut(3) {
        for k in 0..3 {
            px[k] = lut[k][px[k] as usize];
        }
    }
    RgbImage::from_raw(img.width(), img.height(), raw).expect("same size")
}

/// Taps of scipy `map_coordinates(order=1, mode='reflect')` at one coordinate: the two
/// sample indices (reflected into 0..n) and the weight of the second.
#[inline(always)]
fn taps(c: f32, n: usize) -> (usize, usize, f32) {
    let f = crate::filters::floor_f32(c);
    let t = c - f;
    let i = f as isize;
    if i >= 0 && i + 1 < n as isize {
        (i as usize, i as usize + 1, t)
    } else {
        (
            map_index(i, n, Border::Reflect),
            map_index(i + 1, n, Border::Reflect),
            t,
        )
    }
}

/// Uniform noise, gaussian-smoothed (scipy, mode 'reflect', truncate 3), times alpha.
#[inline(always)]
fn displacement(
    w: usize,
    h: usize,
    amp: f64,
    sy: f64,
    sx: f64,
    alpha: f64,
    rng: &mut Rng,
) -> Plane {
    let mut p = Plane::new(w, h);
    for v in &mut p.d {
        *v = rng.uniform_range(-amp, amp) as f32;
    }
    let ky = gauss_kernel(sy, 3.0);
    let kx = gauss_kernel(sx, 3.0);
    let mut out = sep_filter(&p, &kx, &ky, Border::Reflect);
    for v in &mut out.d {
        *v *= alpha as f32;
    }
    out
}

/// Solves the 2x3 affine matrix mapping three points `a` onto `b` (cv2.getAffineTransform).
#[inline(always)]
fn affine_from_points(a: &[[f64; 2]; 3], b: &[[f64; 2]; 3]) -> [[f64; 3]; 2] {
    // Rows of M satisfy [x y 1] . m = x' (and y'); Cramer's rule on the 3x3 system.
    let det3 = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let base = [
        [a[0][0], a[0][1], 1.0],
        [a[1][0], a[1][1], 1.0],
        [a[2][0], a[2][1], 1.0],
    ];
    let d = det3(base);
    let mut m = [[0.0; 3]; 2];
    for (r, row) in m.iter_mut().enumerate() {
        for (col, mv) in row.iter_mut().enumerate() {
            let mut t = base;
            for i in 0..3 {
                t[i][col] = b[i][r];
            }
            *mv = det3(t) / d;
        }
    }
    m
}

/// Elastic transform. imagenet224 follows imagecorruptions (no affine, sigma = 0.01 x side);
/// the small presets follow make_cifar_c.py / make_tinyimagenet_c.py: a random affine warp
/// (bilinear, reflect-101) first, then the elastic displacement.
#[inline(always)]
pub fn elastic(img: &RgbImage, p: ElasticParams, rng: &mut Rng) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut planes = to_planes(img, |v| v as f32 / 255.0);
    let (dx, dy) = match p {
        ElasticParams::Ic { alpha } => {
            let amp = h as f64 * 0.005;
            let (sy, sx) = (h as f64 * 0.01, w as f64 * 0.01);
            let dx = displacement(w, h, amp, sy, sx, alpha, rng);
            let dy = displacement(w, h, amp, sy, sx, alpha, rng);
            (dx, dy)
        }
        ElasticParams::Orig {
            alpha,
            sigma,
            affine,
        } => {
            let cs = [(h / 2) as f64, (w / 2) as f64];
            let ss = (h.min(w) / 3) as f64;
            let pts1 = [
                [cs[0] + ss, cs[1] + ss],
                [cs[0] + ss, cs[1] - ss],
                [cs[0] - ss, cs[1] - ss],
            ];
            let mut pts2 = pts1;
            for pt in &mut pts2 {
                for v in pt.iter_mut() {
                    *v += rng.uniform_range(-affine, affine) as f32 as f64;
                }
            }
            // warpAffine samples src at M^-1 (dst): map dst points back with the inverse transform.
            let inv = affine_from_points(&pts2, &pts1);
            planes = per_plane!(planes, |pl| {
                let mut out = Plane::new(w, h);
                for y in 0..h {
                    for x in 0..w {
                        let sx = inv[0][0] * x as f64 + inv[0][1] * y as f64 + inv[0][2];
                        let sy = inv[1][0] * x as f64 + inv[1][1] * y as f64 + inv[1][2];
                        let (x0, y0) = (sx.floor(), sy.floor());
                        let (tx, ty) = ((sx - x0) as f32, (sy - y0) as f32);
                        let (x0, y0) = (x0 as isize, y0 as isize);
                        let g = |xx: isize, yy: isize| {
                            pl.at(
                                map_index(xx, w, Border::Reflect101),
                                map_index(yy, h, Border::Reflect101),
                            )
                        };
                        let top = g(x0, y0) * (1.0 - tx) + g(x0 + 1, y0) * tx;
                        let bot = g(x0, y0 + 1) * (1.0 - tx) + g(x0 + 1, y0 + 1) * tx;
                        out.d[y * w + x] = top * (1.0 - ty) + bot * ty;
                    }
                }
                out
            });
            let dx = displacement(w, h, 1.0, sigma, sigma, alpha, rng);
            let dy = displacement(w, h, 1.0, sigma, sigma, alpha, rng);
            (dx, dy)
        }
    };
    let mut raw = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (ra, rb, tr) = taps(y as f32 + dy.d[i], h);
            let (ca, cb, tc) = taps(x as f32 + dx.d[i], w);
            for (k, pl) in planes.iter().enumerate() {
                let top = pl.d[ra * w + ca] * (1.0 - tc) + pl.d[ra * w + cb] * tc;
                let bot = pl.d[rb * w + ca] * (1.0 - tc) + pl.d[rb * w + cb] * tc;
                raw[i * 3 + k] = trunc01(top * (1.0 - tr) + bot * tr);
            }
        }
    }
    RgbImage::from_raw(w as u32, h as u32, raw).expect("size")
}

/// PIL's resampling coefficients (`precompute_coeffs` + `normalize_coeffs_8bpc`) for BOX:
/// per output sample the first input index and `ksize` fixed-point weights (zero-padded).
#[inline(always)]
fn pil_box_coeffs(in_size: usize, out_size: usize) -> (Vec<usize>, Vec<i32>, usize) {
    const PRECISION_BITS: i32 = 32 - 8 - 2;
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 0.5 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut starts = Vec::with_capacity(out_size);
    let mut coeffs = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax - xmin;
        let mut ww = 0.0;
        for (x, kv) in k.iter_mut().enumerate().take(n) {
            let v = (x as f64 + xmin as f64 - center + 0.5) * ss;
            *kv = if v > -0.5 && v <= 0.5 { 1.0 } else { 0.0 };
            ww += *kv;
        }
        for (x, &kv) in k.iter().enumerate().take(n) {
            let kv = if ww != 0.0 { kv / ww } else { kv };
            let sc = kv * (1i64 << PRECISION_BITS) as f64;
            coeffs[xx * ksize + x] = if kv < 0.0 {
                (-0.5 + sc) as i32
            } else {
                (0.5 + sc) as i32
            };
        }
        // Keep the window inside the input: shift it left if it would run past the end
        // (the extra weights are zero).
        let start = xmin.min(in_size.saturating_sub(ksize));
        if start != xmin {
            let shift = xmin - start;
            let row = &mut coeffs[xx * ksize..(xx + 1) * ksize];
            row.rotate_right(shift);
        }
        starts.push(start);
    }
    (starts, coeffs, ksize)
}

#[inline(always)]
fn pil_clip8(v: i32) -> u8 {
    // PIL's clip8: >= 256 << 22 -> 255, <= 0 -> 0, else v >> 22 (branch-free form).
    const PRECISION_BITS: i32 = 32 - 8 - 2;
    (v.clamp(0, (256 << PRECISION_BITS) - 1) >> PRECISION_BITS) as u8
}

/// One row of PIL's horizontal BOX pass with a fixed window of `N` taps.
#[inline(always)]
fn box_row<const N: usize>(srow: &[u8], trow: &mut [u8], starts: &[usize], k: &[i32]) {
    const HALF: i32 = 1 << (32 - 8 - 2 - 1);
    for ((o, &st), kk) in trow.chunks_exact_mut(3).zip(starts).zip(k.chunks_exact(N)) {
        let src = &srow[st * 3..(st + N) * 3];
        let kk: &[i32; N] = kk.try_into().expect("taps");
        let (mut r, mut g, mut b) = (HALF, HALF, HALF);
        for i in 0..N {
            r += src[3 * i] as i32 * kk[i];
            g += src[3 * i + 1] as i32 * kk[i];
            b += src[3 * i + 2] as i32 * kk[i];
        }
        o[0] = pil_clip8(r);
        o[1] = pil_clip8(g);
        o[2] = pil_clip8(b);
    }
}

/// `PIL.Image.resize(size, Image.BOX)` on RGB8: horizontal pass, then vertical, 8-bit between;
/// PIL's 32-bit fixed-point arithmetic (22 fractional bits, rounding offset 2^21).
#[inline(always)]
pub fn pil_resize_box(img: &RgbImage, nw: usize, nh: usize) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    const HALF: i32 = 1 << (32 - 8 - 2 - 1);
    let tmp: Vec<u8> = if nw != w {
        let (starts, k, ks) = pil_box_coeffs(w, nw);
        let mut t = vec![0u8; nw * h * 3];
        for y in 0..h {
            let srow = &raw[y * w * 3..(y + 1) * w * 3];
            let trow = &mut t[y * nw * 3..(y + 1) * nw * 3];
            match ks {
                3 => {
                    box_row::<3>(srow, trow, &starts, &k);
                    continue;
                }
                5 => {
                    box_row::<5>(srow, trow, &starts, &k);
                    continue;
                }
                _ => {}
            }
            for (x, o) in trow.chunks_exact_mut(3).enumerate() {
                let kk = &k[x * ks..(x + 1) * ks];
                let src = &srow[starts[x] * 3..(starts[x] + ks) * 3];
                let (mut r, mut g, mut b) = (HALF, HALF, HALF);
                for (&kv, px) in kk.iter().zip(src.chunks_exact(3)) {
                    r += px[0] as i32 * kv;
                    g += px[1] as i32 * kv;
                    b += px[2] as i32 * kv;
                }
                o[0] = pil_clip8(r);
                o[1] = pil_clip8(g);
                o[2] = pil_clip8(b);
            }
        }
        t
    } else {
        raw.clone()
    };
    let out: Vec<u8> = if nh != h {
        let (starts, k, ks) = pil_box_coeffs(h, nh);
        let rl = nw * 3;
        let mut o = vec![0u8; rl * nh];
        let mut acc = vec![0i32; rl];
        for y in 0..nh {
            acc.fill(HALF);
            for i in 0..ks {
                let kv = k[y * ks + i];
                if kv == 0 {
                    continue;
                }
                let trow = &tmp[(starts[y] + i) * rl..(starts[y] + i + 1) * rl];
                for (a, &t) in acc.iter_mut().zip(trow) {
                    *a += t as i32 * kv;
                }
            }
            for (ov, &a) in o[y * rl..(y + 1) * rl].iter_mut().zip(&acc) {
                *ov = pil_clip8(a);
            }
        }
        o
    } else {
        tmp
    };
    RgbImage::from_raw(nw as u32, nh as u32, out).expect("size")
}

/// `PIL.Image.resize(size, Image.NEAREST)`: Pillow's `ImagingScaleAffine` index tables
/// (source coordinate accumulated in f64 from a half-pixel start, truncated).
#[inline(always)]
pub fn pil_resize_nearest(img: &RgbImage, nw: usize, nh: usize) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let table = |n_in: usize, n_out: usize| -> Vec<usize> {
        let a = n_in as f64 / n_out as f64;
        let mut o = a * 0.5;
        (0..n_out)
            .map(|_| {
                let i = if o < 0.0 {
                    0
                } else {
                    (o as usize).min(n_in - 1)
                };
                o += a;
                i
            })
            .collect()
    };
    let xt = table(w, nw);
    let yt = table(h, nh);
    let raw = img.as_raw();
    let row_len = nw * 3;
    let mut out = vec![0u8; row_len * nh];
    for (y, &sy) in yt.iter().enumerate() {
        if y > 0 && yt[y - 1] == sy {
            out.copy_within((y - 1) * row_len..y * row_len, y * row_len);
            continue;
        }
        let srow = &raw[sy * w * 3..(sy + 1) * w * 3];
        let orow = &mut out[y * row_len..(y + 1) * row_len];
        for (o, &sx) in orow.chunks_exact_mut(3).zip(&xt) {
            o.copy_from_slice(&srow[sx * 3..sx * 3 + 3]);
        }
    }
    RgbImage::from_raw(nw as u32, nh as u32, out).expect("size")
}

/// imagecorruptions' pixelate: PIL BOX down to `int(side * c)`, NEAREST back up.
#[inline(always)]
pub fn pixelate(img: &RgbImage, c: f64) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let nw = ((w as f64 * c) as usize).max(1);
    let nh = ((h as f64 * c) as usize).max(1);
    let small = pil_resize_box(img, nw, nh);
    pil_resize_nearest(&small, w, h)
}
