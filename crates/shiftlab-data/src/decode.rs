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

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    /// A `w` x `h` grey image whose pixel (x, y) is `10 * x + y`, so a crop's offset shows.
    fn ramp(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| Luma([(10 * x + y) as u8])))
    }

    fn crop(c: u32) -> Geometry {
        Geometry {
            resize: None,
            crop: Some(c),
        }
    }

    #[test]
    fn the_crop_is_centred_on_either_long_side() {
        // Wider than tall, height already the crop: only the width is cut, 4 columns each side.
        let out = apply_geometry(ramp(16, 8), crop(8));
        assert_eq!(out.dimensions(), (8, 8));
        assert_eq!(out.to_luma8().get_pixel(0, 0).0, [40]);
        // Taller than wide.
        let out = apply_geometry(ramp(4, 10), crop(4));
        assert_eq!(out.dimensions(), (4, 4));
        assert_eq!(out.to_luma8().get_pixel(0, 0).0, [3]);
        // Both longer: both cut.
        let out = apply_geometry(ramp(6, 6), crop(2));
        assert_eq!(out.to_luma8().get_pixel(0, 0).0, [22]);
        // Smaller than the crop, or equal: kept as it is.
        let out = apply_geometry(ramp(5, 3), crop(8));
        assert_eq!(out.to_luma8().into_raw(), ramp(5, 3).to_luma8().into_raw());
    }

    #[test]
    fn the_shorter_side_is_resized_keeping_the_aspect_ratio() {
        let g = Geometry {
            resize: Some(8),
            crop: None,
        };
        assert_eq!(apply_geometry(ramp(16, 4), g).dimensions(), (32, 8));
        assert_eq!(apply_geometry(ramp(3, 6), g).dimensions(), (8, 16));
        // Already the size: the pixels are untouched (no resampling).
        let same = apply_geometry(ramp(8, 12), g).to_luma8().into_raw();
        assert_eq!(same, ramp(8, 12).to_luma8().into_raw());
        // Then the crop: 16 x 4 -> 32 x 8 -> 8 x 8.
        let both = Geometry {
            resize: Some(8),
            crop: Some(8),
        };
        assert_eq!(apply_geometry(ramp(16, 4), both).dimensions(), (8, 8));
    }

    #[test]
    fn images_decode_to_grey_or_rgb_and_garbage_is_named() {
        let mut png = Vec::new();
        let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([200, 10, 10, 255]));
        rgba.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encode");
        let img = decode(&png, Geometry::default()).expect("decodes");
        assert_eq!(img.color(), image::ColorType::Rgb8);
        let mut png = Vec::new();
        ramp(2, 2)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encode");
        let img = decode(&png, Geometry::default()).expect("decodes");
        assert_eq!(img.color(), image::ColorType::L8);
        let err = decode(b"not an image", Geometry::default()).unwrap_err();
        assert!(err.starts_with("cannot decode image"), "{err}");
    }

    #[test]
    fn sample_keys_are_fnv1a_64() {
        // The FNV-1a 64-bit test vectors (Fowler, Noll, Vo).
        assert_eq!(sample_key(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(sample_key("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(sample_key("foobar"), 0x8594_4171_f739_67e8);
    }
}
