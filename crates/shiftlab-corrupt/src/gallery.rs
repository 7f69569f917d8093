//! One labelled picture of every corruption at every severity.

use image::RgbImage;

use crate::font::{draw_text, text_width};
use crate::{corrupt_jobs, Corruption, CorruptionError, FrostAssets, Job, Preset, Severity};

const PAD: u32 = 4;
const SCALE: u32 = 2;

/// Rows = the 19 corruptions (name on the left), columns = clean, severity 1..5 (header on
/// top). Tiles are the image's own size; all tiles are computed in parallel with key 0.
pub fn gallery(
    image: &RgbImage,
    preset: Preset,
    seed: u64,
    assets: &FrostAssets,
) -> Result<RgbImage, CorruptionError> {
    gallery_thumbnails(image, preset, seed, assets, None)
}

/// [`gallery`] with every tile (corrupted at full size) shrunk to at most `tile` pixels on its
/// longer side, for compact overviews. `None` keeps full-size tiles.
pub fn gallery_thumbnails(
    image: &RgbImage,
    preset: Preset,
    seed: u64,
    assets: &FrostAssets,
    tile: Option<u32>,
) -> Result<RgbImage, CorruptionError> {
    let shrink = |img: &RgbImage| -> RgbImage {
        match tile {
            Some(t) if img.width().max(img.height()) > t => {
                let (w, h) = img.dimensions();
                let s = t as f64 / w.max(h) as f64;
                let (nw, nh) = (
                    ((w as f64 * s).round() as u32).max(1),
                    ((h as f64 * s).round() as u32).max(1),
                );
                image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle)
            }
            _ => img.clone(),
        }
    };
    let clean = shrink(image);
    let (tw, th) = clean.dimensions();
    let jobs: Vec<Job<'_>> = Corruption::ALL
        .iter()
        .flat_map(|&c| {
            Severity::ALL.iter().map(move |&s| Job {
                image,
                corruption: c,
                severity: s,
                key: 0,
            })
        })
        .collect();
    let tiles: Vec<RgbImage> = corrupt_jobs(&jobs, preset, seed, assets)?
        .iter()
        .map(shrink)
        .collect();
    let label_w = Corruption::ALL
        .iter()
        .map(|c| text_width(c.name(), SCALE))
        .max()
        .unwrap_or(0)
        + 2 * PAD;
    let header_h = 7 * SCALE + 2 * PAD;
    let cols = 6u32;
    let rows = Corruption::ALL.len() as u32;
    let gw = label_w + cols * (tw + PAD) + PAD;
    let gh = header_h + rows * (th + PAD) + PAD;
    let mut out = RgbImage::from_pixel(gw, gh, image::Rgb([255, 255, 255]));
    let black = [0, 0, 0];
    let heads = ["clean", "s1", "s2", "s3", "s4", "s5"];
    for (ci, head) in heads.iter().enumerate() {
        let x0 = label_w + ci as u32 * (tw + PAD);
        let tx = x0 + tw.saturating_sub(text_width(head, SCALE)) / 2;
        draw_text(&mut out, tx, PAD, head, SCALE, black);
    }
    let label = format!("{} seed {}", preset.name(), seed);
    draw_text(&mut out, PAD, PAD, &label, 1, black);
    for (ri, c) in Corruption::ALL.iter().enumerate() {
        let y0 = header_h + ri as u32 * (th + PAD);
        draw_text(
            &mut out,
            PAD,
            y0 + th.saturating_sub(7 * SCALE) / 2,
            c.name(),
            SCALE,
            black,
        );
        image::imageops::replace(&mut out, &clean, label_w as i64, y0 as i64);
        for si in 0..5 {
            let tile = &tiles[ri * 5 + si];
            let x0 = label_w + (si as u32 + 1) * (tw + PAD);
            image::imageops::replace(&mut out, tile, x0 as i64, y0 as i64);
        }
    }
    Ok(out)
}
