//! defocus_blur, glass_blur, motion_blur, zoom_blur, gaussian_blur.

use image::RgbImage;

use crate::filters::{
    axpy, clipped_zoom, from_planes, fused_rows, gauss_kernel, gaussian, map_index,
    motion_blur_plane, per_plane, sep_filter, to_planes, trunc01, trunc255, zip3_8, Border, Plane,
};
use crate::rng::Rng;

/// skimage `gaussian(x / 255, sigma)` (mode 'nearest', truncate 4) per channel.
#[inline(always)]
pub fn gaussian_blur(img: &RgbImage, sigma: f64) -> RgbImage {
    let p = to_planes(img, |v| v as f32 / 255.0);
    let k = gauss_kernel(sigma, 4.0);
    let out = per_plane!(p, |pl| sep_filter(pl, &k, &k, Border::Nearest));
    from_planes(&out, trunc01)
}

/// Blur, then `iters` passes of the reference's bottom-right-to-top-left pixel loop in which
/// each pixel takes the value of a random neighbour within [-d, d) (the reference's "swap" acts
/// on NumPy views, so it is a copy), then blur again.
#[inline(always)]
pub fn glass_blur(img: &RgbImage, (sigma, d, iters): (f64, i64, usize), rng: &mut Rng) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let k = gauss_kernel(sigma, 4.0);
    let p = to_planes(img, |v| v as f32 / 255.0);
    let b = per_plane!(p, |pl| sep_filter(pl, &k, &k, Border::Nearest));
    // np.uint8(gaussian(...) * 255): truncation.
    let mut x = vec![0u8; w * h * 3];
    for (i, px) in x.chunks_exact_mut(3).enumerate() {
        for c in 0..3 {
            px[c] = (b[c].d[i] * 255.0) as u8;
        }
    }
    let (wi, hi) = (w as i64, h as i64);
    for _ in 0..iters {
        let mut yy = hi - d;
        while yy > d {
            let mut xx = wi - d;
            while xx > d {
                let dx = rng.randint(-d, d);
                let dy = rng.randint(-d, d);
                let (sy, sx) = (yy + dy, xx + dx);
                let src = (sy as usize * w + sx as usize) * 3;
                let dst = (yy as usize * w + xx as usize) * 3;
                x.copy_within(src..src + 3, dst);
                xx -= 1;
            }
            yy -= 1;
        }
    }
    let x = RgbImage::from_raw(w as u32, h as u32, x).expect("same size");
    let p = to_planes(&x, |v| v as f32 / 255.0);
    let out = per_plane!(p, |pl| sep_filter(pl, &k, &k, Border::Nearest));
    from_planes(&out, trunc01)
}

/// OpenCV `getGaussianKernel(ksize, sigma)` for sigma > 0.
#[inline(always)]
fn cv_gauss_1d(ksize: usize, sigma: f64) -> Vec<f64> {
    let r = (ksize / 2) as i64;
    let k: Vec<f64> = (-r..=r)
        .map(|x| (-((x * x) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter().map(|v| v / s).collect()
}

/// The reference's `disk` kernel: an aliased disk on a (2R+1)^2 grid, normalised, then
/// `cv2.GaussianBlur` (ksize 3 or 5, reflect-101 borders).
struct DiskKernel {
    /// Grid half-size R.
    r: i64,
    /// Half-width of the disk's run in each row dy = -R..=R (None: empty row).
    runs: Vec<Option<i64>>,
    /// 1 / number of disk pixels.
    inv_n: f64,
    /// Separable smoothing kernel G (the alias blur).
    g: Vec<f64>,
    /// Sparse correction K_exact - (G * D) where the blur met the grid's border: (dy, dx, value).
    corr: Vec<(i64, i64, f64)>,
}

impl DiskKernel {
    fn new(radius: f64, alias: f64) -> DiskKernel {
        let (r, ks) = if radius <= 8.0 {
            (8i64, 3usize)
        } else {
            (radius as i64, 5)
        };
        let n = (2 * r + 1) as usize;
        let r2 = radius * radius;
        let mut disk = vec![0f64; n * n];
        let mut runs = Vec::with_capacity(n);
        let mut count = 0usize;
        for dy in -r..=r {
            let mut hw: Option<i64> = None;
            for dx in -r..=r {
                if ((dx * dx + dy * dy) as f64) <= r2 {
                    disk[((dy + r) as usize) * n + (dx + r) as usize] = 1.0;
                    count += 1;
                    hw = Some(hw.map_or(dx.abs(), |m: i64| m.max(dx.abs())));
                }
            }
            runs.push(hw);
        }
        let inv_n = 1.0 / count as f64;
        for v in &mut disk {
            *v *= inv_n;
        }
        let g = cv_gauss_1d(ks, alias);
        let gr = (ks / 2) as i64;
        // Exact kernel: separable blur of the n x n disk with reflect-101 borders.
        let blur = |src: &[f64], horiz: bool| -> Vec<f64> {
            let mut out = vec![0f64; n * n];
            for y in 0..n {
                for x in 0..n {
                    let mut s = 0.0;
                    for (k, gv) in g.iter().enumerate() {
                        let o = k as i64 - gr;
                        let (sx, sy) = if horiz {
                            (map_index(x as isize + o as isize, n, Border::Reflect101), y)
                        } else {
                            (x, map_index(y as isize + o as isize, n, Border::Reflect101))
                        };
                        s += gv * src[sy * n + sx];
                    }
                    out[y * n + x] = s;
                }
            }
            out
        };
        let exact = blur(&blur(&disk, true), false);
        // Full (zero-padded) G * D on the grid grown by gr on each side.
        let m = n + 2 * gr as usize;
        let mut full = vec![0f64; m * m];
        for y in 0..m as i64 {
            for x in 0..m as i64 {
                let mut s = 0.0;
                for (i, gi) in g.iter().enumerate() {
                    for (j, gj) in g.iter().enumerate() {
                        let dy = y - gr - (i as i64 - gr);
                        let dx = x - gr - (j as i64 - gr);
                        if (0..n as i64).contains(&dy) && (0..n as i64).contains(&dx) {
                            s += gi * gj * disk[dy as usize * n + dx as usize];
                        }
                    }
                }
                full[y as usize * m + x as usize] = s;
            }
        }
        let mut corr = Vec::new();
        for y in 0..m as i64 {
            for x in 0..m as i64 {
                let (ey, ex) = (y - gr, x - gr);
                let e = if (0..n as i64).contains(&ey) && (0..n as i64).contains(&ex) {
                    exact[ey as usize * n + ex as usize]
                } else {
                    0.0
                };
                let c = e - full[y as usize * m + x as usize];
                // Entries below 1e-7 change no output by more than ~0.003 grey levels in all.
                if c.abs() > 1e-7 {
                    corr.push((y - gr - r, x - gr - r, c));
                }
            }
        }
        DiskKernel {
            r,
            runs,
            inv_n,
            g,
            corr,
        }
    }
}

/// `cv2.filter2D` of each channel with the disk kernel (reflect-101), computed as
/// (image * disk) by row running sums, then the separable alias blur, plus a sparse
/// correction where the reference's blur of the kernel hit the kernel grid's border.
#[inline(always)]
pub fn defocus_blur(img: &RgbImage, (radius, alias): (f64, f64)) -> RgbImage {
    let kern = DiskKernel::new(radius, alias);
    let (w, h) = (img.width() as usize, img.height() as usize);
    let gr = kern.g.len() / 2;
    let pad = kern.r as usize + gr;
    let (pw, ph) = (w + 2 * pad, h + 2 * pad);
    let planes = to_planes(img, |v| v as f32 / 255.0);
    let xmap: Vec<usize> = (0..pw)
        .map(|i| map_index(i as isize - pad as isize, w, Border::Reflect101))
        .collect();
    let g32: Vec<f32> = kern.g.iter().map(|&v| v as f32).collect();
    let out = per_plane!(planes, |pl| {
        // Padded plane and its column prefix sums PV[r][x] = sum of rows < r (row-wise vector
        // adds; f32 errors stay below 1e-3 grey levels).
        let mut padded = vec![0f32; pw * ph];
        let mut pv = vec![0f32; pw * (ph + 1)];
        for py in 0..ph {
            let sy = map_index(py as isize - pad as isize, h, Border::Reflect101);
            let srow = pl.row(sy);
            let prow = &mut padded[py * pw..(py + 1) * pw];
            for (p, &sx) in prow.iter_mut().zip(&xmap) {
                *p = srow[sx];
            }
            let (done, next) = pv.split_at_mut((py + 1) * pw);
            zip3_8(&mut next[..pw], &done[py * pw..], prow, |_, l, p| l + p);
        }
        // A = image * disk on the output grown by gr on each side: the disk is a sum of
        // vertical runs (column dx spans rows -hv..=hv; the disk is symmetric, so hv = the
        // row half-widths), each a difference of two prefix rows.
        let (aw, ah) = (w + 2 * gr, h + 2 * gr);
        let mut a = Plane::new(aw, ah);
        let r = kern.r as usize;
        let inv = kern.inv_n as f32;
        let mut terms: Vec<(&[f32], f32)> = Vec::with_capacity(2 * kern.runs.len() + 64);
        for ay in 0..ah {
            terms.clear();
            for (ci, run) in kern.runs.iter().enumerate() {
                let Some(hv) = *run else { continue };
                let hv = hv as usize;
                // A(ay, ax) is centred at padded (ay + r, ax + r); column ax + ci.
                let hi = (ay + r + hv + 1) * pw + ci;
                let lo = (ay + r - hv) * pw + ci;
                terms.push((&pv[hi..hi + aw], inv));
                terms.push((&pv[lo..lo + aw], -inv));
            }
            fused_rows(&mut a.d[ay * aw..(ay + 1) * aw], &terms);
        }
        // B = A * G (separable), cropped to the output.
        let mut out = Plane::new(w, h);
        let mut tmp = vec![0f32; w * ah];
        for y in 0..ah {
            let arow = &a.d[y * aw..(y + 1) * aw];
            let t = &mut tmp[y * w..(y + 1) * w];
            for (k, &gv) in g32.iter().enumerate() {
                axpy(t, gv, &arow[k..k + w]);
            }
        }
        // Vertical alias blur and the sparse kernel correction, fused per output row.
        for y in 0..h {
            terms.clear();
            for (k, &gv) in g32.iter().enumerate() {
                terms.push((&tmp[(y + k) * w..(y + k + 1) * w], gv));
            }
            for &(dy, dx, c) in &kern.corr {
                let py = (y as i64 + pad as i64 + dy) as usize;
                let x0 = py * pw + (pad as i64 + dx) as usize;
                terms.push((&padded[x0..x0 + w], c as f32));
            }
            fused_rows(&mut out.d[y * w..(y + 1) * w], &terms);
        }
        out
    });
    from_planes(&out, trunc01)
}

/// imagecorruptions' motion blur: angle ~ U(-45, 45) degrees, shift-and-add line kernel on
/// the uint8 image; output `clip(., 0, 255)` truncated.
#[inline(always)]
pub fn motion_blur(img: &RgbImage, (radius, sigma): (i64, f64), rng: &mut Rng) -> RgbImage {
    let angle = rng.uniform_range(-45.0, 45.0);
    let p = to_planes(img, |v| v as f32);
    let out = per_plane!(p, |pl| motion_blur_plane(pl, radius, sigma, angle));
    from_planes(&out, |v| trunc255(v as f64))
}

/// Mean of the image and its centre zooms (scipy zoom, order 1) by each factor, in f32.
#[inline(always)]
pub fn zoom_blur(img: &RgbImage, zooms: &[f64]) -> RgbImage {
    let p = to_planes(img, |v| (v as f64 / 255.0) as f32);
    let (w, h) = (p[0].w, p[0].h);
    let n = zooms.len() as f32 + 1.0;
    let out = per_plane!(p, |pl| {
        let mut acc = Plane::new(w, h);
        for &z in zooms {
            let zl = clipped_zoom(pl, z);
            let (cw, chh) = (zl.w.min(w), zl.h.min(h));
            for y in 0..chh {
                let zrow = &zl.d[y * zl.w..y * zl.w + cw];
                zip3_8(&mut acc.d[y * w..y * w + cw], zrow, zrow, |a, z, _| a + z);
            }
        }
        zip3_8(&mut acc.d, &pl.d, &pl.d, |a, x, _| (x + a) / n);
        acc
    });
    from_planes(&out, trunc01)
}

#[allow(dead_code)]
#[inline(always)]
pub fn blur_plane(p: &Plane, sigma: f64) -> Plane {
    gaussian(p, sigma, Border::Nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_kernel_and_correction() {
        for (r, a) in [
            (3.0, 0.1),
            (4.0, 0.5),
            (6.0, 0.5),
            (8.0, 0.5),
            (10.0, 0.5),
            (1.5, 0.1),
        ] {
            let k = DiskKernel::new(r, a);
            let n: usize = k.runs.iter().flatten().map(|&hw| 2 * hw as usize + 1).sum();
            assert!((n as f64 * k.inv_n - 1.0).abs() < 1e-12);
            // cv2's reflect-101 blur of the kernel does not conserve its sum: the correction
            // carries that (small) excess, as the reference kernel does.
            let c: f64 = k.corr.iter().map(|c| c.2).sum();
            assert!(c.abs() < 0.05, "r {r}: correction mass {c}");
            // Only the kernels that reach the grid's border need a correction.
            assert_eq!(k.corr.is_empty(), r < 8.0, "r {r}: {} taps", k.corr.len());
        }
    }
}
