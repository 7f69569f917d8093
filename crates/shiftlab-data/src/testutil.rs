//! Hand-crafted fixtures the `image` crate cannot write (palette PNGs, lying headers).

use std::io::Write;

use flate2::write::ZlibEncoder;

/// Appends one PNG chunk with its CRC.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

fn ihdr(width: u32, height: u32, depth: u8, color: u8) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&width.to_be_bytes());
    d.extend_from_slice(&height.to_be_bytes());
    d.extend_from_slice(&[depth, color, 0, 0, 0]);
    d
}

/// A PNG whose valid IHDR claims `width x height` (8-bit RGB), followed by a tiny IDAT.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr(width, height, 8, 2));
    chunk(&mut out, b"IDAT", &zlib(&[0, 0, 0, 0]));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A PNG of `depth`-bit samples of colour type `color` (0 gray, 2 RGB), rows packed by the
/// caller (`rows`: one byte string per row, without the filter byte), with filter None and
/// zlib's default level: bytes unlike those of the `image` crate's encoder (fast, adaptive).
pub fn png_raw(width: u32, height: u32, depth: u8, color: u8, rows: &[&[u8]]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr(width, height, depth, color));
    let mut raw = Vec::new();
    for row in rows {
        raw.push(0); // filter type None
        raw.extend_from_slice(row);
    }
    chunk(&mut out, b"IDAT", &zlib(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// An 8-bit palette PNG (`indices` row-major, one byte each) with the given RGB palette.
pub fn palette_png(width: u32, height: u32, palette: &[[u8; 3]], indices: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr(width, height, 8, 3));
    chunk(&mut out, b"PLTE", &palette.concat());
    let mut raw = Vec::new();
    for row in indices.chunks(width as usize) {
        raw.push(0); // filter type None
        raw.extend_from_slice(row);
    }
    chunk(&mut out, b"IDAT", &zlib(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).expect("in-memory write");
    z.finish().expect("in-memory write")
}

/// A CMYK JPEG (8x8, Adobe APP14) written by Pillow; see tests/fixtures/make_fixtures.py.
pub const CMYK_JPEG: &[u8] = include_bytes!("../tests/fixtures/cmyk.jpg");

/// A version-1.0 `.npy` file of C-ordered `data` (the header padded to a multiple of 64 bytes,
/// as numpy writes it).
pub fn npy_file(path: &std::path::Path, descr: &str, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let comma = if shape.len() == 1 { "," } else { "" };
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}{comma}), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    std::fs::write(path, bytes).expect("write npy");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::normalise;

    #[test]
    fn palette_becomes_rgb_png() {
        let pal = [[255, 0, 0], [0, 0, 255]];
        let s = normalise(palette_png(2, 2, &pal, &[0, 1, 1, 0])).unwrap();
        assert_eq!(s.channels, 3);
        assert_eq!(crate::imaging::png_ihdr(&s.bytes).unwrap().color_type, 2);
        let px = image::load_from_memory(&s.bytes)
            .unwrap()
            .to_rgb8()
            .into_raw();
        assert_eq!(px, [255, 0, 0, 0, 0, 255, 0, 0, 255, 255, 0, 0]);
    }

    #[test]
    fn cmyk_jpeg_becomes_rgb_png() {
        assert_eq!(crate::imaging::jpeg_sof(CMYK_JPEG).unwrap().components, 4);
        let s = normalise(CMYK_JPEG.to_vec()).unwrap();
        assert_eq!((s.channels, s.width, s.height), (3, 8, 8));
        assert_eq!(&s.bytes[1..4], b"PNG", "CMYK JPEG must not be stored as is");
    }
}
