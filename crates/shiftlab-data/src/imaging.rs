//! Validating and normalising one image to the stored form.
//!
//! Policy (see also the crate docs):
//! - 8-bit gray or RGB PNG and baseline 8-bit 1/3-component JPEG are stored byte for byte.
//! - Everything else that decodes is converted and re-encoded losslessly as PNG: palette -> RGB,
//!   16-bit -> 8-bit (rounded, `(v*255 + 32767) / 65535`), CMYK/YCCK JPEG -> RGB (by the
//!   decoder), other containers (BMP, TIFF, WebP, PNM) -> PNG of the same pixels.
//! - Alpha: an alpha channel that is fully opaque is dropped; any transparent pixel rejects the
//!   image, since compositing would have to invent a background colour.
//! - Dimensions are checked from the header before decoding ([`MAX_SIDE`], [`MAX_PIXELS`]).

use std::io::Cursor;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{
    DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageFormat, ImageReader,
};

use crate::error::{Reason, MAX_PIXELS, MAX_SIDE};

/// An image ready for the `image.bytes` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// PNG or JPEG bytes.
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// 1 (gray) or 3 (RGB).
    pub channels: u8,
}

/// Checks declared dimensions against the limits.
pub fn check_dimensions(width: u64, height: u64) -> Result<(), Reason> {
    let too_big =
        width > MAX_SIDE as u64 || height > MAX_SIDE as u64 || width * height > MAX_PIXELS;
    if too_big || width == 0 || height == 0 {
        return Err(Reason::AbsurdDimensions { width, height });
    }
    Ok(())
}

/// Encodes interleaved 8-bit gray (1 channel) or RGB (3 channels) pixels as PNG.
pub fn encode_png(width: u32, height: u32, channels: u8, pixels: &[u8]) -> Result<Vec<u8>, Reason> {
    let color = match channels {
        1 => ExtendedColorType::L8,
        3 => ExtendedColorType::Rgb8,
        n => return Err(Reason::UnsupportedPixelFormat(format!("{n} channels"))),
    };
    let mut out = Vec::with_capacity(pixels.len() / 2 + 128);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(pixels, width, height, color)
        .map_err(|e| Reason::Undecodable(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// Decodes stored image bytes (as read from the dataset table) for the pipeline.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, Reason> {
    if bytes.is_empty() {
        return Err(Reason::EmptyFile);
    }
    image::load_from_memory(bytes).map_err(decode_reason)
}

/// Validates encoded image bytes and returns the stored form (original or re-encoded PNG).
pub fn normalise(bytes: Vec<u8>) -> Result<StoredImage, Reason> {
    if bytes.is_empty() {
        return Err(Reason::EmptyFile);
    }
    let mut reader = ImageReader::new(Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| Reason::Undecodable(e.to_string()))?;
    let format = reader
        .format()
        .ok_or_else(|| Reason::Undecodable("unrecognised image format".into()))?;
    precheck_header(format, &bytes)?;
    reader.no_limits();
    let decoder = reader.into_decoder().map_err(decode_reason)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width as u64, height as u64)?;
    let img = DynamicImage::from_decoder(decoder).map_err(decode_reason)?;
    if keeps_original(format, &bytes, &img) {
        let channels = if matches!(img, DynamicImage::ImageLuma8(_)) {
            1
        } else {
            3
        };
        return Ok(StoredImage {
            bytes,
            width,
            height,
            channels,
        });
    }
    let (pixels, channels) = to_gray_or_rgb8(img)?;
    let bytes = encode_png(width, height, channels, &pixels)?;
    Ok(StoredImage {
        bytes,
        width,
        height,
        channels,
    })
}

fn decode_reason(e: image::ImageError) -> Reason {
    match e {
        image::ImageError::Unsupported(u) => Reason::UnsupportedPixelFormat(u.to_string()),
        other => Reason::Undecodable(other.to_string()),
    }
}

/// Header checks the decoder would not do for us: absurd PNG/JPEG sizes (before any decoder
/// allocates) and JPEG truncation (the JPEG decoder pads a truncated scan with grey silently).
fn precheck_header(format: ImageFormat, bytes: &[u8]) -> Result<(), Reason> {
    match format {
        ImageFormat::Png => {
            let ihdr = png_ihdr(bytes)
                .ok_or_else(|| Reason::Undecodable("PNG header cut short".into()))?;
            check_dimensions(ihdr.width as u64, ihdr.height as u64)
        }
        ImageFormat::Jpeg => {
            let sof = jpeg_sof(bytes)
                .ok_or_else(|| Reason::Undecodable("JPEG has no frame header (SOF)".into()))?;
            check_dimensions(sof.width as u64, sof.height as u64)?;
            if !jpeg_has_eoi(bytes) {
                return Err(Reason::Undecodable(
                    "JPEG data ends before the end-of-image marker".into(),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether the original bytes can be stored as they are: plain 8-bit gray/RGB PNG or JPEG whose
/// decoded pixels are what any decoder (PIL, torchvision) would also produce.
fn keeps_original(format: ImageFormat, bytes: &[u8], img: &DynamicImage) -> bool {
    let plain = matches!(
        img,
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_)
    );
    plain
        && match format {
            ImageFormat::Png => png_ihdr(bytes)
                .is_some_and(|h| h.bit_depth == 8 && (h.color_type == 0 || h.color_type == 2)),
            ImageFormat::Jpeg => jpeg_sof(bytes)
                .is_some_and(|s| s.precision == 8 && (s.components == 1 || s.components == 3)),
            _ => false,
        }
}

/// Converts any supported decoded image to interleaved 8-bit gray or RGB, per the module policy.
fn to_gray_or_rgb8(img: DynamicImage) -> Result<(Vec<u8>, u8), Reason> {
    Ok(match img {
        DynamicImage::ImageLuma8(b) => (b.into_raw(), 1),
        DynamicImage::ImageRgb8(b) => (b.into_raw(), 3),
        DynamicImage::ImageLumaA8(b) => (strip_alpha(b.as_raw(), 2, u8::MAX)?, 1),
        DynamicImage::ImageRgba8(b) => (strip_alpha(b.as_raw(), 4, u8::MAX)?, 3),
        DynamicImage::ImageLuma16(b) => (round16(b.as_raw()), 1),
        DynamicImage::ImageRgb16(b) => (round16(b.as_raw()), 3),
        DynamicImage::ImageLumaA16(b) => (round16(&strip_alpha(b.as_raw(), 2, u16::MAX)?), 1),
        DynamicImage::ImageRgba16(b) => (round16(&strip_alpha(b.as_raw(), 4, u16::MAX)?), 3),
        other => {
            return Err(Reason::UnsupportedPixelFormat(format!(
                "{:?} (only 8/16-bit integer gray or RGB with opaque or no alpha is accepted)",
                other.color()
            )))
        }
    })
}

/// Drops the last channel of each pixel if it is everywhere `opaque`, else rejects.
fn strip_alpha<T: Copy + PartialEq>(px: &[T], stride: usize, opaque: T) -> Result<Vec<T>, Reason> {
    if px.chunks_exact(stride).any(|p| p[stride - 1] != opaque) {
        return Err(Reason::Transparent);
    }
    Ok(px
        .chunks_exact(stride)
        .flat_map(|p| p[..stride - 1].iter().copied())
        .collect())
}

/// 16-bit to 8-bit with rounding to nearest.
fn round16(px: &[u16]) -> Vec<u8> {
    px.iter()
        .map(|&v| ((v as u32 * 255 + 32_767) / 65_535) as u8)
        .collect()
}

/// The fields of a PNG IHDR chunk we care about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PngHeader {
    pub width: u32,
    pub height: u32,
    pub bit_depth: u8,
    pub color_type: u8,
}

/// Reads IHDR (always the first chunk) without decoding anything.
pub(crate) fn png_ihdr(b: &[u8]) -> Option<PngHeader> {
    if b.len() < 26 || &b[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Some(PngHeader {
        width: be(16),
        height: be(20),
        bit_depth: b[24],
        color_type: b[25],
    })
}

/// The fields of a JPEG frame header (SOFn) we care about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JpegFrame {
    pub precision: u8,
    pub width: u16,
    pub height: u16,
    pub components: u8,
}

/// Walks the JPEG marker segments up to the first SOFn.
pub(crate) fn jpeg_sof(b: &[u8]) -> Option<JpegFrame> {
    let (at, _) = jpeg_segments(b).find(|&(_, m)| is_sof(m))?;
    let s = b.get(at + 4..at + 10)?;
    Some(JpegFrame {
        precision: s[0],
        height: u16::from_be_bytes([s[1], s[2]]),
        width: u16::from_be_bytes([s[3], s[4]]),
        components: s[5],
    })
}

fn is_sof(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker)
}

/// (offset, marker) of each header segment, up to and including the first start-of-scan.
/// Walking segment lengths skips APPn payloads, e.g. an EXIF thumbnail's own markers.
fn jpeg_segments(b: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let mut i = 2;
    let mut done = false;
    std::iter::from_fn(move || {
        while !done && i + 4 <= b.len() && b[i] == 0xFF {
            let marker = b[i + 1];
            if marker == 0xFF {
                i += 1; // fill byte
                continue;
            }
            let at = i;
            i += 2 + u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
            done = marker == 0xDA;
            return Some((at, marker));
        }
        None
    })
}

/// True when an end-of-image marker follows the first scan. 0xFFD9 cannot occur inside
/// entropy-coded data (0xFF is byte-stuffed), so its absence means the file was cut short.
fn jpeg_has_eoi(b: &[u8]) -> bool {
    let Some((sos, _)) = jpeg_segments(b).find(|&(_, m)| m == 0xDA) else {
        return false;
    };
    // From the end: the marker is normally the last two bytes (or just before padding).
    let data = &b[sos..];
    let mut end = data.len();
    while let Some(i) = data[..end].iter().rposition(|&x| x == 0xD9) {
        if i > 0 && data[i - 1] == 0xFF {
            return true;
        }
        end = i;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba};

    fn save(img: &DynamicImage, fmt: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, fmt).unwrap();
        out.into_inner()
    }

    fn gradient_rgb(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 20) as u8, (y * 30) as u8, ((x + y) * 7) as u8])
        })
    }

    fn decode(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory(bytes).unwrap()
    }

    #[test]
    fn plain_png_and_jpeg_are_kept_byte_for_byte() {
        let png = save(
            &DynamicImage::ImageRgb8(gradient_rgb(5, 4)),
            ImageFormat::Png,
        );
        let s = normalise(png.clone()).unwrap();
        assert_eq!(
            (s.bytes == png, s.width, s.height, s.channels),
            (true, 5, 4, 3)
        );
        let gray = DynamicImage::ImageLuma8(GrayImage::from_fn(3, 3, |x, _| Luma([x as u8])));
        let jpg = save(&gray, ImageFormat::Jpeg);
        let s = normalise(jpg.clone()).unwrap();
        assert_eq!((s.bytes == jpg, s.channels), (true, 1));
    }

    /// Stored bytes must be the input's own, not a re-encoding of the same pixels: these PNGs
    /// are written by hand (filter None, zlib default), so any re-encoding changes the bytes.
    #[test]
    fn eight_bit_gray_and_rgb_png_are_kept_and_low_bit_depths_re_encoded() {
        use crate::testutil::png_raw;
        let gray = png_raw(3, 2, 8, 0, &[&[0, 100, 255], &[7, 8, 9]]);
        let s = normalise(gray.clone()).unwrap();
        assert_eq!(
            (s.bytes == gray, s.width, s.height, s.channels),
            (true, 3, 2, 1)
        );
        let rgb = png_raw(2, 1, 8, 2, &[&[1, 2, 3, 250, 251, 252]]);
        let s = normalise(rgb.clone()).unwrap();
        assert_eq!(
            (s.bytes == rgb, s.width, s.height, s.channels),
            (true, 2, 1, 3)
        );
        // 1-bit gray decodes to 8-bit gray too, but is not what a reader of "8-bit PNG"
        // expects: stored as an 8-bit re-encoding of the same pixels (0 -> 0, 1 -> 255).
        let one_bit = png_raw(4, 1, 1, 0, &[&[0b1010_0000]]);
        let s = normalise(one_bit.clone()).unwrap();
        assert!(s.bytes != one_bit);
        assert_eq!(png_ihdr(&s.bytes).unwrap().bit_depth, 8);
        assert_eq!(decode(&s.bytes).to_luma8().into_raw(), vec![255, 0, 255, 0]);
    }

    #[test]
    fn sixteen_bit_is_rounded_to_eight() {
        let img = ImageBuffer::<Luma<u16>, _>::from_raw(3, 1, vec![0u16, 32_896, 65_535]).unwrap();
        let s = normalise(save(&DynamicImage::ImageLuma16(img), ImageFormat::Png)).unwrap();
        assert_eq!(s.channels, 1);
        assert_ne!(png_ihdr(&s.bytes).unwrap().bit_depth, 16);
        // 32896/257 = 128.0 exactly; rounding keeps the ends exact too.
        assert_eq!(decode(&s.bytes).to_luma8().into_raw(), vec![0, 128, 255]);
        assert_eq!(round16(&[128, 129, 65_406, 65_407]), vec![0, 1, 254, 255]);
    }

    #[test]
    fn opaque_alpha_is_dropped_and_transparency_rejected() {
        let opaque = ImageBuffer::from_fn(2, 2, |x, _| Rgba([x as u8, 1, 2, 255]));
        let s = normalise(save(&DynamicImage::ImageRgba8(opaque), ImageFormat::Png)).unwrap();
        assert_eq!(s.channels, 3);
        assert_eq!(decode(&s.bytes).color(), image::ColorType::Rgb8);
        let see_through = ImageBuffer::from_fn(2, 2, |x, _| Rgba([0, 0, 0, 255 - x as u8]));
        let err = normalise(save(
            &DynamicImage::ImageRgba8(see_through),
            ImageFormat::Png,
        ));
        assert!(err.unwrap_err().to_string().contains("transparent pixels"));
    }

    #[test]
    fn absurd_png_header_is_rejected_before_decoding() {
        let err = normalise(crate::testutil::png_claiming(100_000, 100_000)).unwrap_err();
        assert_eq!(
            err,
            Reason::AbsurdDimensions {
                width: 100_000,
                height: 100_000
            }
        );
        assert!(err
            .to_string()
            .contains("absurd declared dimensions 100000x100000"));
        // Each side fine, the area not: 12000 x 12000 = 144 Mpx.
        let err = normalise(crate::testutil::png_claiming(12_000, 12_000)).unwrap_err();
        assert!(
            err.to_string().contains("absurd declared dimensions"),
            "{err}"
        );
    }

    #[test]
    fn a_png_cut_inside_its_header_is_named_so() {
        let png = crate::testutil::png_claiming(4, 4);
        // Signature (8), IHDR length and type (8), 5 of its 13 data bytes.
        let err = normalise(png[..21].to_vec()).unwrap_err();
        assert_eq!(err, Reason::Undecodable("PNG header cut short".into()));
    }

    #[test]
    fn stored_bytes_decode_to_their_image_and_empty_or_garbage_is_named() {
        let png = encode_png(3, 2, 1, &[0, 50, 100, 150, 200, 250]).expect("png");
        let img = crate::imaging::decode(&png).expect("decodes");
        assert_eq!((img.width(), img.height()), (3, 2));
        assert_eq!(img.to_luma8().into_raw(), [0, 50, 100, 150, 200, 250]);
        assert_eq!(crate::imaging::decode(&[]).unwrap_err(), Reason::EmptyFile);
        assert!(matches!(
            crate::imaging::decode(b"not an image"),
            Err(Reason::Undecodable(_)) | Err(Reason::UnsupportedPixelFormat(_))
        ));
    }

    #[test]
    fn truncated_images_are_rejected() {
        let jpg = save(
            &DynamicImage::ImageRgb8(gradient_rgb(64, 64)),
            ImageFormat::Jpeg,
        );
        let err = normalise(jpg[..jpg.len() * 2 / 3].to_vec()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("truncated or undecodable image"),
            "{err}"
        );
        let png = save(
            &DynamicImage::ImageRgb8(gradient_rgb(64, 64)),
            ImageFormat::Png,
        );
        let err = normalise(png[..png.len() / 2].to_vec()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("truncated or undecodable image"),
            "{err}"
        );
        let err = normalise(b"hello, not an image".to_vec()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("truncated or undecodable image"),
            "{err}"
        );
        assert_eq!(
            normalise(Vec::new()).unwrap_err().to_string(),
            "zero-byte file"
        );
    }

    #[test]
    fn truncated_jpeg_is_caught_despite_a_complete_exif_thumbnail() {
        let thumb = save(
            &DynamicImage::ImageRgb8(gradient_rgb(4, 4)),
            ImageFormat::Jpeg,
        );
        let main = save(
            &DynamicImage::ImageRgb8(gradient_rgb(64, 64)),
            ImageFormat::Jpeg,
        );
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&thumb);
        let mut jpg = vec![0xFF, 0xD8, 0xFF, 0xE1];
        jpg.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        jpg.extend_from_slice(&app1);
        jpg.extend_from_slice(&main[2..]);
        assert!(normalise(jpg.clone()).is_ok());
        let err = normalise(jpg[..jpg.len() - main.len() / 3].to_vec()).unwrap_err();
        assert!(err.to_string().contains("end-of-image marker"), "{err}");
    }

    #[test]
    fn float_pixels_are_an_unsupported_format() {
        let img = ImageBuffer::<Rgb<f32>, _>::from_raw(1, 1, vec![0.5f32, 0.25, 1.0]).unwrap();
        let tif = save(&DynamicImage::ImageRgb32F(img), ImageFormat::Tiff);
        let err = normalise(tif).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unsupported pixel format: Rgb32F"),
            "{err}"
        );
    }

    #[test]
    fn other_containers_become_png() {
        let bmp = save(
            &DynamicImage::ImageRgb8(gradient_rgb(4, 4)),
            ImageFormat::Bmp,
        );
        let s = normalise(bmp).unwrap();
        assert_eq!(&s.bytes[1..4], b"PNG");
        assert_eq!(decode(&s.bytes).to_rgb8(), gradient_rgb(4, 4));
    }

    #[test]
    fn dimension_limits_are_inclusive() {
        assert!(check_dimensions(16_384, 6_000).is_ok());
        assert!(check_dimensions(16_385, 1).is_err());
        assert!(check_dimensions(10_000, 10_001).is_err());
        assert!(check_dimensions(0, 5).is_err());
        // Each limit on its own, at and just past it: height, then the pixel count.
        assert!(check_dimensions(6_000, 16_384).is_ok());
        assert!(check_dimensions(1, 16_385).is_err());
        assert!(check_dimensions(10_000, 10_000).is_ok());
        assert!(check_dimensions(5, 0).is_err());
    }

    #[test]
    fn png_headers_need_the_whole_ihdr() {
        let png = save(
            &DynamicImage::ImageRgb8(gradient_rgb(3, 2)),
            ImageFormat::Png,
        );
        let h = png_ihdr(&png[..26]).expect("26 bytes hold IHDR up to the colour type");
        assert_eq!((h.width, h.height, h.bit_depth, h.color_type), (3, 2, 8, 2));
        assert!(png_ihdr(&png[..25]).is_none());
        assert!(png_ihdr(&png[..10]).is_none());
    }

    #[test]
    fn jpeg_segments_skip_fill_bytes_and_stop_at_the_scan() {
        // SOI, a fill byte, APP0 (length 4), SOS (length 2), then scan bytes that look like a
        // marker: after the scan starts nothing more is a segment.
        let b = [
            0xFF, 0xD8, 0xFF, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xDA, 0x00, 0x02, 0xFF,
            0xC0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10, 0x03,
        ];
        let segs: Vec<_> = jpeg_segments(&b).collect();
        assert_eq!(segs, [(3, 0xE0), (9, 0xDA)]);
        assert!(
            jpeg_sof(&b).is_none(),
            "a SOF inside the scan is not the frame header"
        );
    }
}
