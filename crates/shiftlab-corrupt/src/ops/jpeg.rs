//! jpeg_compression without the entropy coder: what PIL (libjpeg-turbo) does to the pixels.
//!
//! Entropy coding is lossless, so a JPEG round trip is: libjpeg's fixed-point RGB->YCbCr,
//! 4:2:0 chroma downsampling (PIL's default; libjpeg's 1,2,1,2 rounding bias), 8x8 DCT,
//! quantisation with the IJG tables scaled for `quality` (baseline: clamped to 255), the
//! inverse DCT, libjpeg's "fancy" (triangle) chroma upsampling and fixed-point YCbCr->RGB.
//! The DCTs are exact (f32) rather than libjpeg's 13-bit integer ones, so a coefficient can
//! round differently at an exact tie; the parity test measures the effect (MAD well below 1).

use image::RgbImage;

const LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// libjpeg `jpeg_set_quality(.., force_baseline=TRUE)`.
#[inline(always)]
fn quant_table(base: &[u16; 64], quality: u8) -> [f32; 64] {
    let q = quality.clamp(1, 100) as i64;
    let scale = if q < 50 { 5000 / q } else { 200 - q * 2 };
    let mut t = [0f32; 64];
    for (o, &b) in t.iter_mut().zip(base) {
        let v = ((b as i64 * scale + 50) / 100).clamp(1, 255);
        *o = v as f32;
    }
    t
}

#[cfg(test)]
/// Orthonormal 8-point DCT-II matrix (test oracle for the AAN DCTs): C[u][x] = c(u) cos((2x+1) u pi / 16).
#[inline(always)]
fn dct_matrix() -> [[f32; 8]; 8] {
    let mut m = [[0f32; 8]; 8];
    for (u, row) in m.iter_mut().enumerate() {
        let cu = if u == 0 {
            (1.0f64 / 8.0).sqrt()
        } else {
            (2.0f64 / 8.0).sqrt()
        };
        for (x, v) in row.iter_mut().enumerate() {
            *v =
                (cu * (((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI) / 16.0).cos()) as f32;
        }
    }
    m
}

/// libjpeg's AAN scale factors: the float AAN DCT's output k is the true coefficient times
/// `8 * AAN[u] * AAN[v]` (forward) and expects input pre-scaled by `AAN[u] * AAN[v]` (inverse).
const AAN: [f32; 8] = [
    1.0,
    1.387_039_8,
    1.306_563,
    1.175_875_6,
    1.0,
    0.785_694_96,
    0.541_196_1,
    0.275_899_38,
];

type Rows = [[f32; 8]; 8];

/// One pass of libjpeg's float AAN forward DCT (jfdctflt.c) over the row index, done on all 8
/// columns at once (each line is one 8-wide vector operation).
#[inline(always)]
fn fdct_pass(d: &Rows) -> Rows {
    let mut o = [[0f32; 8]; 8];
    for x in 0..8 {
        let tmp0 = d[0][x] + d[7][x];
        let tmp7 = d[0][x] - d[7][x];
        let tmp1 = d[1][x] + d[6][x];
        let tmp6 = d[1][x] - d[6][x];
        let tmp2 = d[2][x] + d[5][x];
        let tmp5 = d[2][x] - d[5][x];
        let tmp3 = d[3][x] + d[4][x];
        let tmp4 = d[3][x] - d[4][x];
        let tmp10 = tmp0 + tmp3;
        let tmp13 = tmp0 - tmp3;
        let tmp11 = tmp1 + tmp2;
        let tmp12 = tmp1 - tmp2;
        o[0][x] = tmp10 + tmp11;
        o[4][x] = tmp10 - tmp11;
        let z1 = (tmp12 + tmp13) * 0.707_106_77;
        o[2][x] = tmp13 + z1;
        o[6][x] = tmp13 - z1;
        let tmp10 = tmp4 + tmp5;
        let tmp11 = tmp5 + tmp6;
        let tmp12 = tmp6 + tmp7;
        let z5 = (tmp10 - tmp12) * 0.382_683_43;
        let z2 = 0.541_196_1 * tmp10 + z5;
        let z4 = 1.306_563 * tmp12 + z5;
        let z3 = tmp11 * 0.707_106_77;
        let z11 = tmp7 + z3;
        let z13 = tmp7 - z3;
        o[5][x] = z13 + z2;
        o[3][x] = z13 - z2;
        o[1][x] = z11 + z4;
        o[7][x] = z11 - z4;
    }
    o
}

/// One pass of libjpeg's float AAN inverse DCT (jidctflt.c) over the row index, 8 columns at once.
#[inline(always)]
fn idct_pass(d: &Rows) -> Rows {
    let mut o = [[0f32; 8]; 8];
    for x in 0..8 {
        let tmp10 = d[0][x] + d[4][x];
        let tmp11 = d[0][x] - d[4][x];
        let tmp13 = d[2][x] + d[6][x];
        let tmp12 = (d[2][x] - d[6][x]) * std::f32::consts::SQRT_2 - tmp13;
        let tmp0 = tmp10 + tmp13;
        let tmp3 = tmp10 - tmp13;
        let tmp1 = tmp11 + tmp12;
        let tmp2 = tmp11 - tmp12;
        let z13 = d[5][x] + d[3][x];
        let z10 = d[5][x] - d[3][x];
        let z11 = d[1][x] + d[7][x];
        let z12 = d[1][x] - d[7][x];
        let tmp7 = z11 + z13;
        let tmp11 = (z11 - z13) * std::f32::consts::SQRT_2;
        let z5 = (z10 + z12) * 1.847_759;
        let tmp10 = z5 - z12 * 1.082_392_2;
        let tmp12 = z5 - z10 * 2.613_126;
        let tmp6 = tmp12 - tmp7;
        let tmp5 = tmp11 - tmp6;
        let tmp4 = tmp10 - tmp5;
        o[0][x] = tmp0 + tmp7;
        o[7][x] = tmp0 - tmp7;
        o[1][x] = tmp1 + tmp6;
        o[6][x] = tmp1 - tmp6;
        o[2][x] = tmp2 + tmp5;
        o[5][x] = tmp2 - tmp5;
        o[3][x] = tmp3 + tmp4;
        o[4][x] = tmp3 - tmp4;
    }
    o
}

#[inline(always)]
fn transpose(m: &Rows) -> Rows {
    let mut t = [[0f32; 8]; 8];
    for (i, row) in m.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            t[j][i] = v;
        }
    }
    t
}

/// Quantises and dequantises one component plane (dimensions multiples of 8), in place:
/// samples -> DCT -> round(F / Q) -> * Q -> IDCT -> round, clamp to 0..=255.
/// Uses libjpeg's float AAN DCTs (jfdctflt.c / jidctflt.c), vectorised over 8 columns.
#[inline(always)]
fn roundtrip_plane(p: &mut [u8], w: usize, h: usize, q: &[f32; 64]) {
    // After fdct_pass, transpose, fdct_pass the block holds F^T scaled: entry [v][u].
    // Forward multiplier 1 / (8 Q[u][v] AAN[u] AAN[v]); inverse Q[u][v] AAN[u] AAN[v] / 8
    // (libjpeg's final descale by 8 folded in).
    let mut fwd = [[0f32; 8]; 8];
    let mut inv = [[0f32; 8]; 8];
    for v in 0..8 {
        for u in 0..8 {
            let qv = q[u * 8 + v];
            let s = AAN[u] * AAN[v];
            fwd[v][u] = 1.0 / (8.0 * qv * s);
            inv[v][u] = qv * s / 8.0;
        }
    }
    let mut blk = [[0f32; 8]; 8];
    for by in (0..h).step_by(8) {
        for bx in (0..w).step_by(8) {
            for (y, brow) in blk.iter_mut().enumerate() {
                let row = &p[(by + y) * w + bx..(by + y) * w + bx + 8];
                for (b, &v) in brow.iter_mut().zip(row) {
                    *b = v as f32 - 128.0;
                }
            }
            let mut f = fdct_pass(&transpose(&fdct_pass(&blk)));
            // Branch-free so it vectorises: |F|/Q + 1/2 > 0, so truncation is floor.
            for v in 0..8 {
                for u in 0..8 {
                    let s = f[v][u];
                    // SAFETY: finite and far inside i32 (|F| <= 8 * 1024 * 8 before scaling).
                    let k = unsafe { (s.abs() * fwd[v][u] + 0.5).to_int_unchecked::<i32>() } as f32;
                    f[v][u] = (k * inv[v][u]).copysign(s);
                }
            }
            let out = idct_pass(&transpose(&idct_pass(&f)));
            for (y, orow) in out.iter().enumerate() {
                let row = &mut p[(by + y) * w + bx..(by + y) * w + bx + 8];
                for (r, &v) in row.iter_mut().zip(orow) {
                    // Clamp, then round half up (values are non-negative).
                    // SAFETY: clamped to [0.5, 255.5], finite (built from bytes).
                    *r = unsafe { ((v + 128.0).clamp(0.0, 255.0) + 0.5).to_int_unchecked::<i32>() }
                        as u8;
                }
            }
        }
    }
}

/// libjpeg's h2v2 downsampling (2x2 mean, alternating rounding bias 1, 2) of a plane `sw`
/// wide into `cwp` x `chp`.
#[inline(always)]
fn downsample_h2v2(src: &[u8], sw: usize, cwp: usize, chp: usize) -> Vec<u8> {
    let mut d = vec![0u8; cwp * chp];
    for y in 0..chp {
        let (r0, r1) = (&src[2 * y * sw..], &src[(2 * y + 1) * sw..]);
        let drow = &mut d[y * cwp..(y + 1) * cwp];
        for (x, dv) in drow.iter_mut().enumerate() {
            let s =
                r0[2 * x] as u16 + r0[2 * x + 1] as u16 + r1[2 * x] as u16 + r1[2 * x + 1] as u16;
            *dv = ((s + 1 + (x as u16 & 1)) >> 2) as u8;
        }
    }
    d
}

/// libjpeg's "fancy" h2v2 upsampling (triangle filter, edges replicated) of the `cw` x `chh`
/// valid samples of a plane `cwp` wide; output `2 cw` x `2 chh`.
#[inline(always)]
fn upsample_h2v2_fancy(d: &[u8], cw: usize, chh: usize, cwp: usize) -> Vec<u8> {
    let ow = 2 * cw;
    let mut out = vec![0u8; ow * 2 * chh];
    let mut colsum = vec![0i32; cw];
    let mut even = vec![0u8; cw];
    let mut odd = vec![0u8; cw];
    for y in 0..chh {
        for v in 0..2 {
            let ny = if v == 0 {
                y.saturating_sub(1)
            } else {
                (y + 1).min(chh - 1)
            };
            let (r0, r1) = (&d[y * cwp..y * cwp + cw], &d[ny * cwp..ny * cwp + cw]);
            for ((c, &a), &b) in colsum.iter_mut().zip(r0).zip(r1) {
                *c = a as i32 * 3 + b as i32;
            }
            let orow = &mut out[(2 * y + v) * ow..(2 * y + v + 1) * ow];
            // Even outputs lean left, odd ones right; edges use the sample itself.
            let last = cw - 1;
            even[0] = ((colsum[0] * 4 + 8) >> 4) as u8;
            odd[last] = ((colsum[last] * 4 + 7) >> 4) as u8;
            if cw > 1 {
                for ((e, &t), &l) in even[1..].iter_mut().zip(&colsum[1..]).zip(&colsum[..last]) {
                    *e = ((t * 3 + l + 8) >> 4) as u8;
                }
                for ((o, &t), &n) in odd[..last]
                    .iter_mut()
                    .zip(&colsum[..last])
                    .zip(&colsum[1..])
                {
                    *o = ((t * 3 + n + 7) >> 4) as u8;
                }
            }
            for ((o, &e), &d) in orow.chunks_exact_mut(2).zip(&even).zip(&odd) {
                o[0] = e;
                o[1] = d;
            }
        }
    }
    out
}

const fn fix(x: f64) -> i32 {
    (x * 65536.0 + 0.5) as i32
}

/// PIL `img.save(buf, 'JPEG', quality=q)` then `Image.open(buf)`, on the pixels.
#[inline(always)]
pub fn jpeg_roundtrip(img: &RgbImage, quality: u8) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    // Component geometry (4:2:0): chroma is ceil(side / 2); planes padded to whole blocks
    // (luma to 8, the chroma source to 16) by edge replication, as libjpeg does.
    let (cw, chh) = (w.div_ceil(2), h.div_ceil(2));
    let (cwp, chp) = (cw.div_ceil(8) * 8, chh.div_ceil(8) * 8);
    let (yw, yh) = (w.div_ceil(8) * 8, h.div_ceil(8) * 8);
    let (sw, sh) = ((2 * cwp).max(yw), (2 * chp).max(yh));
    let mut yp = vec![0u8; sw * sh];
    let mut cb = vec![0u8; sw * sh];
    let mut cr = vec![0u8; sw * sh];
    const HALF: i32 = 1 << 15;
    const OFF: i32 = 128 << 16;
    const YR: i32 = fix(0.29900);
    const YG: i32 = fix(0.58700);
    const YB: i32 = fix(0.11400);
    const CBR: i32 = fix(0.16874);
    const CBG: i32 = fix(0.33126);
    const CR_HALF: i32 = fix(0.5);
    const CRG: i32 = fix(0.41869);
    const CRB: i32 = fix(0.08131);
    for y in 0..h {
        let src = &raw[y * w * 3..(y + 1) * w * 3];
        let o = y * sw;
        let (yr, cbr, crr) = (&mut yp[o..o + sw], &mut cb[o..o + sw], &mut cr[o..o + sw]);
        for (((px, yv), bv), rv) in src
            .chunks_exact(3)
            .zip(yr.iter_mut())
            .zip(cbr.iter_mut())
            .zip(crr.iter_mut())
        {
            let (r, g, b) = (px[0] as i32, px[1] as i32, px[2] as i32);
            *yv = ((YR * r + YG * g + YB * b + HALF) >> 16) as u8;
            *bv = ((-CBR * r - CBG * g + CR_HALF * b + OFF + HALF - 1) >> 16) as u8;
            *rv = ((CR_HALF * r - CRG * g - CRB * b + OFF + HALF - 1) >> 16) as u8;
        }
        let (ly, lb, lr) = (yr[w - 1], cbr[w - 1], crr[w - 1]);
        yr[w..].fill(ly);
        cbr[w..].fill(lb);
        crr[w..].fill(lr);
    }
    for plane in [&mut yp, &mut cb, &mut cr] {
        for y in h..sh {
            plane.copy_within((h - 1) * sw..h * sw, y * sw);
        }
    }
    let mut cbd = downsample_h2v2(&cb, sw, cwp, chp);
    let mut crd = downsample_h2v2(&cr, sw, cwp, chp);
    let mut yl = vec![0u8; yw * yh];
    for y in 0..yh {
        yl[y * yw..(y + 1) * yw].copy_from_slice(&yp[y * sw..y * sw + yw]);
    }
    roundtrip_plane(&mut yl, yw, yh, &quant_table(&LUMA, quality));
    let qc = quant_table(&CHROMA, quality);
    roundtrip_plane(&mut cbd, cwp, chp, &qc);
    roundtrip_plane(&mut crd, cwp, chp, &qc);
    let cbu = upsample_h2v2_fancy(&cbd, cw, chh, cwp);
    let cru = upsample_h2v2_fancy(&crd, cw, chh, cwp);
    let ow = 2 * cw;
    const RCR: i32 = fix(1.40200);
    const BCB: i32 = fix(1.77200);
    const GCB: i32 = fix(0.34414);
    const GCR: i32 = fix(0.71414);
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        let yrow = &yl[y * yw..y * yw + w];
        let cbrow = &cbu[y * ow..y * ow + w];
        let crrow = &cru[y * ow..y * ow + w];
        let orow = &mut out[y * w * 3..(y + 1) * w * 3];
        for (((o, &yv), &cbv), &crv) in orow.chunks_exact_mut(3).zip(yrow).zip(cbrow).zip(crrow) {
            let yv = yv as i32;
            let cbv = cbv as i32 - 128;
            let crv = crv as i32 - 128;
            let r = yv + ((RCR * crv + HALF) >> 16);
            let b = yv + ((BCB * cbv + HALF) >> 16);
            let g = yv + ((-GCB * cbv + HALF - GCR * crv) >> 16);
            o[0] = r.clamp(0, 255) as u8;
            o[1] = g.clamp(0, 255) as u8;
            o[2] = b.clamp(0, 255) as u8;
        }
    }
    RgbImage::from_raw(w as u32, h as u32, out).expect("size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aan_dct_matches_the_exact_dct() {
        let c = dct_matrix();
        let mut blk = [[0f32; 8]; 8];
        for (y, row) in blk.iter_mut().enumerate() {
            for (x, v) in row.iter_mut().enumerate() {
                *v = ((x * 37 + y * 91 + x * y * 13) % 255) as f32 - 128.0;
            }
        }
        let f = fdct_pass(&transpose(&fdct_pass(&blk)));
        for u in 0..8 {
            for v in 0..8 {
                let mut exact = 0f64;
                for y in 0..8 {
                    for x in 0..8 {
                        exact += c[u][y] as f64 * c[v][x] as f64 * blk[y][x] as f64;
                    }
                }
                let got = f[v][u] as f64 / (8.0 * AAN[u] as f64 * AAN[v] as f64);
                assert!((got - exact).abs() < 1e-2, "F[{u}][{v}] {got} vs {exact}");
            }
        }
        // Inverse of the scaled coefficients returns the block.
        let mut g = f;
        for v in 0..8 {
            for u in 0..8 {
                g[v][u] /= 64.0 * AAN[u] * AAN[v];
                g[v][u] *= AAN[u] * AAN[v] / 8.0 * 8.0;
            }
        }
        let back = idct_pass(&transpose(&idct_pass(&g)));
        for y in 0..8 {
            for x in 0..8 {
                assert!(
                    (back[y][x] - blk[y][x]).abs() < 1e-2,
                    "({y},{x}) {} vs {}",
                    back[y][x],
                    blk[y][x]
                );
            }
        }
    }
}
