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

/// Orthonormal 8-point DCT-II matrix: C[u][x] = c(u) cos((2x+1) u pi / 16).
#[inline(always)]
fn dct_matrix() -> [[f32; 8]; 8] {
    let mut m = [[0f32; 8]; 8];
    for (u, row) in m.iter_mut().enumerate() {
        let cu = if u == 0 { (1.0f64 / 8.0).sqrt() } else { (2.0f64 / 8.0).sqrt() };
        for (x, v) in row.iter_mut().enumerate() {
            *v = (cu * (((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI) / 16.0).cos()) as f32;
        }
    }
    m
}

/// Quantises and dequantises one component plane (dimensions multiples of 8), in place:
/// samples -> DCT -> round(F / Q) * Q -> IDCT -> round, clamp to 0..=255.
/// Loops are written as 8-wide row updates so they vectorise.
#[inline(always)]
fn roundtrip_plane(p: &mut [u8], w: usize, h: usize, q: &[f32; 64], c: &[[f32; 8]; 8]) {
    let mut ct = [[0f32; 8]; 8];
    for u in 0..8 {
        for x in 0..8 {
            ct[x][u] = c[u][x];
        }
    }
    let mut inv_q = [0f32; 64];
    for (i, v) in inv_q.iter_mut().zip(q) {
        *i = 1.0 / v;
    }
    let mut blk = [[0f32; 8]; 8];
    let mut tmp = [[0f32; 8]; 8];
    for by in (0..h).step_by(8) {
        for bx in (0..w).step_by(8) {
            for y in 0..8 {
                let row = &p[(by + y) * w + bx..(by + y) * w + bx + 8];
                for x in 0..8 {
                    blk[y][x] = row[x] as f32 - 128.0;
                }
            }
            // tmp = C * blk
            for u in 0..8 {
                let mut acc = [0f32; 8];
                for y in 0..8 {
                    let cv = c[u][y];
                    for x in 0..8 {
                        acc[x] += cv * blk[y][x];
                    }
                }
                tmp[u] = acc;
            }
            // F = tmp * C^T, quantised and dequantised in place (libjpeg: sign * floor(|F|/Q + 1/2)).
            for u in 0..8 {
                let mut acc = [0f32; 8];
                for x in 0..8 {
                    let t = tmp[u][x];
                    for v in 0..8 {
                        acc[v] += t * ct[x][v];
                    }
                }
                // Branch-free so it vectorises: |F|/Q + 1/2 > 0, so truncation is floor.
                for v in 0..8 {
                    let s = acc[v];
                    let r = ((s.abs() * inv_q[u * 8 + v] + 0.5) as i32) as f32 * q[u * 8 + v];
                    blk[u][v] = r.copysign(s);
                }
            }
            // tmp = C^T * F
            for y in 0..8 {
                let mut acc = [0f32; 8];
                for u in 0..8 {
                    let cv = c[u][y];
                    for v in 0..8 {
                        acc[v] += cv * blk[u][v];
                    }
                }
                tmp[y] = acc;
            }
            // out = tmp * C
            for y in 0..8 {
                let mut acc = [0f32; 8];
                for v in 0..8 {
                    let t = tmp[y][v];
                    for x in 0..8 {
                        acc[x] += t * c[v][x];
                    }
                }
                let row = &mut p[(by + y) * w + bx..(by + y) * w + bx + 8];
                for x in 0..8 {
                    // Clamp, then round half up (values are non-negative).
                    row[x] = ((acc[x] + 128.0).clamp(0.0, 255.0) + 0.5) as i32 as u8;
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
            let s = r0[2 * x] as u16 + r0[2 * x + 1] as u16 + r1[2 * x] as u16 + r1[2 * x + 1] as u16;
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
    for y in 0..chh {
        for v in 0..2 {
            let ny = if v == 0 { y.saturating_sub(1) } else { (y + 1).min(chh - 1) };
            let (r0, r1) = (&d[y * cwp..y * cwp + cw], &d[ny * cwp..ny * cwp + cw]);
            for ((c, &a), &b) in colsum.iter_mut().zip(r0).zip(r1) {
                *c = a as i32 * 3 + b as i32;
            }
            let orow = &mut out[(2 * y + v) * ow..(2 * y + v + 1) * ow];
            for x in 0..cw {
                let this = colsum[x];
                let last = if x == 0 { this } else { colsum[x - 1] };
                let next = if x + 1 == cw { this } else { colsum[x + 1] };
                orow[2 * x] = ((this * 3 + last + 8) >> 4) as u8;
                orow[2 * x + 1] = ((this * 3 + next + 7) >> 4) as u8;
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
        for (x, px) in src.chunks_exact(3).enumerate() {
            let (r, g, b) = (px[0] as i32, px[1] as i32, px[2] as i32);
            yr[x] = ((YR * r + YG * g + YB * b + HALF) >> 16) as u8;
            cbr[x] = ((-CBR * r - CBG * g + CR_HALF * b + OFF + HALF - 1) >> 16) as u8;
            crr[x] = ((CR_HALF * r - CRG * g - CRB * b + OFF + HALF - 1) >> 16) as u8;
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
    let c = dct_matrix();
    roundtrip_plane(&mut yl, yw, yh, &quant_table(&LUMA, quality), &c);
    let qc = quant_table(&CHROMA, quality);
    roundtrip_plane(&mut cbd, cwp, chp, &qc, &c);
    roundtrip_plane(&mut crd, cwp, chp, &qc, &c);
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
        for (x, o) in orow.chunks_exact_mut(3).enumerate() {
            let yv = yrow[x] as i32;
            let cbv = cbrow[x] as i32 - 128;
            let crv = crrow[x] as i32 - 128;
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
