//! spatter: water (Canny edges -> distance transform -> equalised, embossed mask) or mud.

use image::RgbImage;

use crate::filters::{gaussian, map_index, trunc01, Border, Plane};
use crate::params::SpatterParams;
use crate::rng::Rng;

/// `cv2.blur(src, (3, 3))` on f32 (reflect-101 borders): padded, then row and column sums.
#[inline(always)]
fn box3(src: &[f32], w: usize, h: usize) -> Vec<f32> {
    let (pw, ph) = (w + 2, h + 2);
    let mut pad = vec![0f32; pw * ph];
    for py in 0..ph {
        let sy = map_index(py as isize - 1, h, Border::Reflect101);
        let srow = &src[sy * w..(sy + 1) * w];
        let prow = &mut pad[py * pw..(py + 1) * pw];
        prow[1..w + 1].copy_from_slice(srow);
        prow[0] = srow[map_index(-1, w, Border::Reflect101)];
        prow[w + 1] = srow[map_index(w as isize, w, Border::Reflect101)];
    }
    let mut hs = vec![0f32; w * ph];
    for py in 0..ph {
        let prow = &pad[py * pw..(py + 1) * pw];
        let hrow = &mut hs[py * w..(py + 1) * w];
        for x in 0..w {
            hrow[x] = prow[x] + prow[x + 1] + prow[x + 2];
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        let (a, b, c) = (
            &hs[y * w..(y + 1) * w],
            &hs[(y + 1) * w..(y + 2) * w],
            &hs[(y + 2) * w..(y + 3) * w],
        );
        let o = &mut out[y * w..(y + 1) * w];
        for x in 0..w {
            o[x] = (a[x] + b[x] + c[x]) * (1.0 / 9.0);
        }
    }
    out
}

/// `cv2.Canny(img, low, high)` (3x3 Sobel with replicated borders, L1 magnitude, OpenCV's
/// non-maximum suppression and 8-connected hysteresis). Returns true on edges.
#[inline(always)]
fn canny(img: &[u8], w: usize, h: usize, low: i32, high: i32) -> Vec<bool> {
    // Replicated 1-pixel border, then the 3x3 Sobel pair.
    let pw = w + 2;
    let mut pad = vec![0i32; pw * (h + 2)];
    for py in 0..h + 2 {
        let sy = (py as isize - 1).clamp(0, h as isize - 1) as usize;
        for px in 0..pw {
            let sx = (px as isize - 1).clamp(0, w as isize - 1) as usize;
            pad[py * pw + px] = img[sy * w + sx] as i32;
        }
    }
    let mut dxs = vec![0i32; w * h];
    let mut dys = vec![0i32; w * h];
    let mut mag = vec![0i32; (w + 2) * (h + 2)];
    for y in 0..h {
        let (r0, r1, r2) = (&pad[y * pw..], &pad[(y + 1) * pw..], &pad[(y + 2) * pw..]);
        for x in 0..w {
            let dx = (r0[x + 2] + 2 * r1[x + 2] + r2[x + 2]) - (r0[x] + 2 * r1[x] + r2[x]);
            let dy = (r2[x] + 2 * r2[x + 1] + r2[x + 2]) - (r0[x] + 2 * r0[x + 1] + r0[x + 2]);
            let i = y * w + x;
            dxs[i] = dx;
            dys[i] = dy;
            mag[(y + 1) * (w + 2) + x + 1] = dx.abs() + dy.abs();
        }
    }
    // 0: not an edge, 1: weak candidate, 2: edge.
    let mut state = vec![0u8; w * h];
    let mut stack = Vec::new();
    const TG22: i64 = 13573; // tan(22.5 deg) * 2^15
    let m_at = |x: usize, y: usize| mag[(y + 1) * (w + 2) + x + 1];
    let mp = |x: isize, y: isize| mag[((y + 1) as usize) * (w + 2) + (x + 1) as usize];
    for y in 0..h {
        for x in 0..w {
            let m = m_at(x, y);
            if m <= low {
                continue;
            }
            let i = y * w + x;
            let (xs, ys) = (dxs[i] as i64, dys[i] as i64);
            let ax = xs.abs();
            let ay = ys.abs() << 15;
            let tg22x = ax * TG22;
            let (xi, yi) = (x as isize, y as isize);
            let is_max = if ay < tg22x {
                m > mp(xi - 1, yi) && m >= mp(xi + 1, yi)
            } else {
                let tg67x = tg22x + (ax << 16);
                if ay > tg67x {
                    m > mp(xi, yi - 1) && m >= mp(xi, yi + 1)
                } else {
                    let s: isize = if (xs ^ ys) < 0 { -1 } else { 1 };
                    m > mp(xi - s, yi - 1) && m > mp(xi + s, yi + 1)
                }
            };
            if is_max {
                if m > high {
                    state[i] = 2;
                    stack.push(i);
                } else {
                    state[i] = 1;
                }
            }
        }
    }
    while let Some(i) = stack.pop() {
        let (x, y) = ((i % w) as isize, (i / w) as isize);
        for dy in -1..=1isize {
            for dx in -1..=1isize {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if state[j] == 1 {
                    state[j] = 2;
                    stack.push(j);
                }
            }
        }
    }
    state.iter().map(|&s| s == 2).collect()
}

/// `cv2.distanceTransform(src, DIST_L2, 5)`: 5x5 chamfer (1, 1.4, 2.1969) distance to the
/// nearest zero pixel; the outside counts as far away (a 2-pixel border of "infinity").
#[inline(always)]
fn distance_transform(zero: &[bool], w: usize, h: usize) -> Vec<f32> {
    const A: f32 = 1.0;
    const B: f32 = 1.4;
    const C: f32 = 2.1969;
    const INF: f32 = 1e20;
    let pw = w + 4;
    let mut d = vec![INF; pw * (h + 4)];
    for y in 0..h {
        for x in 0..w {
            if zero[y * w + x] {
                d[(y + 2) * pw + x + 2] = 0.0;
            }
        }
    }
    let pwi = pw as isize;
    let fwd: [(isize, f32); 8] = [
        (-2 * pwi - 1, C),
        (-2 * pwi + 1, C),
        (-pwi - 2, C),
        (-pwi - 1, B),
        (-pwi, A),
        (-pwi + 1, B),
        (-pwi + 2, C),
        (-1, A),
    ];
    for y in 2..h + 2 {
        for x in 2..w + 2 {
            let i = (y * pw + x) as isize;
            let mut best = d[i as usize];
            for &(o, c) in &fwd {
                best = best.min(d[(i + o) as usize] + c);
            }
            d[i as usize] = best;
        }
    }
    for y in (2..h + 2).rev() {
        for x in (2..w + 2).rev() {
            let i = (y * pw + x) as isize;
            let mut best = d[i as usize];
            for &(o, c) in &fwd {
                best = best.min(d[(i - o) as usize] + c);
            }
            d[i as usize] = best;
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        out[y * w..(y + 1) * w].copy_from_slice(&d[(y + 2) * pw + 2..(y + 2) * pw + 2 + w]);
    }
    out
}

/// `cv2.equalizeHist` on u8.
#[inline(always)]
fn equalize_hist(src: &mut [u8]) {
    let mut hist = [0usize; 256];
    for &v in src.iter() {
        hist[v as usize] += 1;
    }
    let total = src.len();
    let Some(i0) = hist.iter().position(|&c| c > 0) else {
        return;
    };
    if hist[i0] == total {
        src.fill(i0 as u8);
        return;
    }
    let scale = 255.0f32 / (total - hist[i0]) as f32;
    let mut lut = [0u8; 256];
    let mut sum = 0usize;
    for j in i0 + 1..256 {
        sum += hist[j];
        lut[j] = ((sum as f32 * scale).round_ties_even()).clamp(0.0, 255.0) as u8;
    }
    for v in src.iter_mut() {
        *v = lut[*v as usize];
    }
}

#[inline(always)]
pub fn spatter(img: &RgbImage, c: SpatterParams, rng: &mut Rng) -> RgbImage {
    let (loc, scale, sigma, thr, intensity, mode) = c;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut liquid = Plane::new(w, h);
    rng.fill_normal_f32(&mut liquid.d);
    let (loc, scale) = (loc as f32, scale as f32);
    for v in &mut liquid.d {
        *v = loc + scale * *v;
    }
    let mut liquid = gaussian(&liquid, sigma, Border::Nearest);
    let thr32 = thr as f32;
    for v in &mut liquid.d {
        if *v < thr32 {
            *v = 0.0;
        }
    }
    let mut raw = img.as_raw().clone();
    if mode == 0 {
        // Water.
        let lu8: Vec<u8> = liquid
            .d
            .iter()
            .map(|&v| ((v * 255.0) as i64 & 255) as u8)
            .collect();
        let edges = canny(&lu8, w, h, 50, 150);
        let dist = distance_transform(&edges, w, h);
        let dist: Vec<f32> = dist.iter().map(|&v| v.min(20.0)).collect();
        let mut d8: Vec<u8> = box3(&dist, w, h).iter().map(|&v| v as u8).collect();
        equalize_hist(&mut d8);
        const KER: [[i32; 3]; 3] = [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]];
        let pw = w + 2;
        let mut pad = vec![0i32; pw * (h + 2)];
        for py in 0..h + 2 {
            let sy = map_index(py as isize - 1, h, Border::Reflect101);
            for px in 0..pw {
                let sx = map_index(px as isize - 1, w, Border::Reflect101);
                pad[py * pw + px] = d8[sy * w + sx] as i32;
            }
        }
        let mut emb = vec![0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0i32;
                for (ky, krow) in KER.iter().enumerate() {
                    let prow = &pad[(y + ky) * pw + x..(y + ky) * pw + x + 3];
                    for (kv, pv) in krow.iter().zip(prow) {
                        s += kv * pv;
                    }
                }
                emb[y * w + x] = s.clamp(0, 255) as f32;
            }
        }
        // cv2.blur on uint8 keeps uint8 (rounded).
        let dist2: Vec<f32> = box3(&emb, w, h)
            .iter()
            .map(|&v| crate::filters::round_f32(v))
            .collect();
        let mut m: Vec<f32> = lu8
            .iter()
            .zip(&dist2)
            .map(|(&l, &d)| l as f32 * d)
            .collect();
        let mx = m.iter().cloned().fold(0f32, f32::max);
        let k = if mx > 0.0 { intensity as f32 / mx } else { 0.0 };
        for v in &mut m {
            *v *= k;
        }
        let color = [175.0f32 / 255.0, 238.0 / 255.0, 238.0 / 255.0];
        for (i, px) in raw.chunks_exact_mut(3).enumerate() {
            for ch in 0..3 {
                let x = px[ch] as f32 / 255.0;
                px[ch] = trunc01(x + m[i] * color[ch]);
            }
        }
    } else {
        // Mud.
        let mut mask = Plane::new(w, h);
        for (o, &v) in mask.d.iter_mut().zip(&liquid.d) {
            *o = if v > thr32 { 1.0 } else { 0.0 };
        }
        let mut m = gaussian(&mask, intensity, Border::Nearest);
        for v in &mut m.d {
            if *v < 0.8 {
                *v = 0.0;
            }
        }
        let color = [63.0f32 / 255.0, 42.0 / 255.0, 20.0 / 255.0];
        for (i, px) in raw.chunks_exact_mut(3).enumerate() {
            let mv = m.d[i];
            for ch in 0..3 {
                let x = px[ch] as f32 / 255.0 * (1.0 - mv);
                px[ch] = trunc01(x + color[ch] * mv);
            }
        }
    }
    RgbImage::from_raw(w as u32, h as u32, raw).expect("same size")
}
