//! spatter: water (Canny edges -> distance transform -> equalised, embossed mask) or mud.

use image::RgbImage;

use crate::filters::{gaussian, map_index, trunc01, Border, Plane};
use crate::params::SpatterParams;
use crate::rng::Rng;

/// `cv2.blur(src, (3, 3))` on f32 (reflect-101 borders).
fn box3(src: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut s = 0f32;
            for dy in -1..=1isize {
                let sy = map_index(y as isize + dy, h, Border::Reflect101);
                for dx in -1..=1isize {
                    let sx = map_index(x as isize + dx, w, Border::Reflect101);
                    s += src[sy * w + sx];
                }
            }
            out[y * w + x] = s / 9.0;
        }
    }
    out
}

/// `cv2.Canny(img, low, high)` (3x3 Sobel with replicated borders, L1 magnitude, OpenCV's
/// non-maximum suppression and 8-connected hysteresis). Returns true on edges.
fn canny(img: &[u8], w: usize, h: usize, low: i32, high: i32) -> Vec<bool> {
    let px = |x: isize, y: isize| -> i32 {
        img[map_index(y, h, Border::Nearest) * w + map_index(x, w, Border::Nearest)] as i32
    };
    let mut dxs = vec![0i32; w * h];
    let mut dys = vec![0i32; w * h];
    let mut mag = vec![0i32; (w + 2) * (h + 2)];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let dx = (px(x + 1, y - 1) + 2 * px(x + 1, y) + px(x + 1, y + 1))
                - (px(x - 1, y - 1) + 2 * px(x - 1, y) + px(x - 1, y + 1));
            let dy = (px(x - 1, y + 1) + 2 * px(x, y + 1) + px(x + 1, y + 1))
                - (px(x - 1, y - 1) + 2 * px(x, y - 1) + px(x + 1, y - 1));
            let i = y as usize * w + x as usize;
            dxs[i] = dx;
            dys[i] = dy;
            mag[(y as usize + 1) * (w + 2) + x as usize + 1] = dx.abs() + dy.abs();
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
/// nearest zero pixel; the outside counts as far away.
fn distance_transform(zero: &[bool], w: usize, h: usize) -> Vec<f32> {
    const A: f32 = 1.0;
    const B: f32 = 1.4;
    const C: f32 = 2.1969;
    const INF: f32 = 1e20;
    let mut d: Vec<f32> = zero.iter().map(|&z| if z { 0.0 } else { INF }).collect();
    let fwd: [(isize, isize, f32); 8] = [
        (-1, -2, C),
        (1, -2, C),
        (-2, -1, C),
        (-1, -1, B),
        (0, -1, A),
        (1, -1, B),
        (2, -1, C),
        (-1, 0, A),
    ];
    let pass = |d: &mut Vec<f32>, offs: &[(isize, isize, f32); 8], ys: &mut dyn Iterator<Item = usize>, rev: bool| {
        for y in ys {
            let xs: Box<dyn Iterator<Item = usize>> = if rev { Box::new((0..w).rev()) } else { Box::new(0..w) };
            for x in xs {
                let mut best = d[y * w + x];
                for &(ox, oy, c) in offs {
                    let (nx, ny) = (x as isize + ox, y as isize + oy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let v = d[ny as usize * w + nx as usize] + c;
                    if v < best {
                        best = v;
                    }
                }
                d[y * w + x] = best;
            }
        }
    };
    pass(&mut d, &fwd, &mut (0..h), false);
    let bwd = fwd.map(|(ox, oy, c)| (-ox, -oy, c));
    pass(&mut d, &bwd, &mut (0..h).rev(), true);
    d
}

/// `cv2.equalizeHist` on u8.
fn equalize_hist(src: &mut [u8]) {
    let mut hist = [0usize; 256];
    for &v in src.iter() {
        hist[v as usize] += 1;
    }
    let total = src.len();
    let Some(i0) = hist.iter().position(|&c| c > 0) else { return };
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

pub fn spatter(img: &RgbImage, c: SpatterParams, rng: &mut Rng) -> RgbImage {
    let (loc, scale, sigma, thr, intensity, mode) = c;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut liquid = Plane::new(w, h);
    for v in &mut liquid.d {
        *v = (loc + scale * rng.normal()) as f32;
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
        let lu8: Vec<u8> = liquid.d.iter().map(|&v| ((v * 255.0) as i64 & 255) as u8).collect();
        let edges = canny(&lu8, w, h, 50, 150);
        let dist = distance_transform(&edges, w, h);
        let dist: Vec<f32> = dist.iter().map(|&v| v.min(20.0)).collect();
        let mut d8: Vec<u8> = box3(&dist, w, h).iter().map(|&v| v as u8).collect();
        equalize_hist(&mut d8);
        const KER: [[i32; 3]; 3] = [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]];
        let mut emb = vec![0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0i32;
                for (ky, krow) in KER.iter().enumerate() {
                    let sy = map_index(y as isize + ky as isize - 1, h, Border::Reflect101);
                    for (kx, &kv) in krow.iter().enumerate() {
                        let sx = map_index(x as isize + kx as isize - 1, w, Border::Reflect101);
                        s += kv * d8[sy * w + sx] as i32;
                    }
                }
                emb[y * w + x] = s.clamp(0, 255) as f32;
            }
        }
        // cv2.blur on uint8 keeps uint8 (rounded).
        let dist2: Vec<f32> = box3(&emb, w, h).iter().map(|&v| v.round()).collect();
        let mut m: Vec<f32> = lu8.iter().zip(&dist2).map(|(&l, &d)| l as f32 * d).collect();
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
