//! The one decoder of evaluation images: encoded bytes -> 8-bit grey or RGB, then the
//! pre-shift geometry (resize of the shorter side, centre crop). The pipeline and
//! `shiftlab shift-dataset` both call it, so a shifted table and an on-the-fly run see the same
//! pixels; and the sample key that seeds each image's corruption stream.

use image::{DynamicImage, GenericImageView};

/// Resize (shorter side) and centre crop applied to every image before any shift.
#[derive(Debug, Clone, Copy, Default)]
pub struct Geometry {
    pub resize: Option<u32>,
    pub crop: Option<u32>,
}

/// Decodes an encoded image to 8-bit gray or RGB and applies the geometry.
pub fn decode(bytes: &[u8], geometry: Geometry) -> Result<DynamicImage, String> {
    let img = image::load_from_memory(bytes).map_err(|e| format!("cannot decode image: {e}"))?;
    let img = if img.color().has_color() {
        DynamicImage::ImageRgb8(img.to_rgb8())
    } else {
        DynamicImage::ImageLuma8(img.to_luma8())
    };
    Ok(apply_geometry(img, geometry))
}

fn apply_geometry(mut img: DynamicImage, g: Geometry) -> DynamicImage {
    if let Some(target) = g.resize {
        let (w, h) = img.dimensions();
        let short = w.min(h).max(1);
        if short != target {
            let scale = target as f64 / short as f64;
            let nw = ((w as f64 * scale).round() as u32).max(1);
            let nh = ((h as f64 * scale).round() as u32).max(1);
            img = img.resize_exact(nw, nh, image::imageops::FilterType::Triangle);
        }
    }
    if let Some(c) = g.crop {
        let (w, h) = img.dimensions();
        if w > c || h > c {
            let cw = c.min(w);
            let ch = c.min(h);
            img = img.crop_imm((w - cw) / 2, (h - ch) / 2, cw, ch);
        }
    }
    img
}

/// Stable 64-bit key of a sample id (FNV-1a): the corruption streams depend on it, not on order.
pub fn sample_key(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
