//! Fixture writers shared by the integration tests.
#![allow(dead_code)]

use std::fs;
use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Int64Array, StringArray, StructArray};
use arrow::datatypes::{DataType, Field, Fields, Schema};
use arrow::record_batch::RecordBatch;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, Rgba};
use shiftlab_data::testutil::{palette_png, png_claiming, CMYK_JPEG};
use shiftlab_data::{DatasetReader, Format, ImageBatch, IngestOptions};

pub fn opts(format: Format, input: &Path, output: &Path) -> IngestOptions {
    IngestOptions::new(format, input, output)
}

/// IDX images + labels for one split (`stem` = train or t10k).
pub fn write_idx(
    dir: &Path,
    stem: &str,
    imgs: &[Vec<u8>],
    labels: &[u8],
    rows: u32,
    cols: u32,
    gz: bool,
) {
    let mut i = vec![0, 0, 8, 3];
    for d in [imgs.len() as u32, rows, cols] {
        i.extend_from_slice(&d.to_be_bytes());
    }
    i.extend(imgs.concat());
    let mut l = vec![0, 0, 8, 1];
    l.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    l.extend_from_slice(labels);
    for (name, bytes) in [
        (format!("{stem}-images-idx3-ubyte"), i),
        (format!("{stem}-labels-idx1-ubyte"), l),
    ] {
        if gz {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).unwrap();
            fs::write(dir.join(format!("{name}.gz")), e.finish().unwrap()).unwrap();
        } else {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

pub fn rejects_of(output: &Path) -> String {
    fs::read_to_string(shiftlab_data::ingest::rejects_path(output)).unwrap()
}

/// All rows of a dataset table, concatenated.
pub fn read_all(path: &Path) -> ImageBatch {
    let mut all = ImageBatch::default();
    for b in DatasetReader::open(path, 1000, None).unwrap() {
        let b = b.unwrap();
        all.ids.extend(b.ids);
        all.splits.extend(b.splits);
        all.labels.extend(b.labels);
        all.images.extend(b.images);
        all.corruptions.extend(b.corruptions);
        all.severities.extend(b.severities);
    }
    all
}

/// Neither the output nor a temp file nor a rejects list exists.
pub fn assert_no_output(dir: &Path, out: &Path) {
    assert!(!out.exists(), "{} must not exist", out.display());
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            !name.ends_with(".tmp") && !name.ends_with(".csv"),
            "left behind: {name}"
        );
    }
}

fn encode(img: &DynamicImage, fmt: ImageFormat) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    img.write_to(&mut c, fmt).unwrap();
    c.into_inner()
}

pub fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = ImageBuffer::from_fn(w, h, |x, y| Rgb([x as u8 * 50, y as u8 * 60, 7]));
    encode(&DynamicImage::ImageRgb8(img), ImageFormat::Png)
}

pub fn write_png_rgb(path: &Path, w: u32, h: u32, v: u8) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = ImageBuffer::from_pixel(w, h, Rgb([v, v, v]));
    fs::write(
        path,
        encode(&DynamicImage::ImageRgb8(img), ImageFormat::Png),
    )
    .unwrap();
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

/// An ImageFolder with classes `B`, `a`, `b` and every kind of good and bad file; returns the
/// good files' ids and labels in the expected (torchvision) order.
pub fn build_messy_imagefolder(root: &Path) -> Vec<(&'static str, i64)> {
    let rgb = png_bytes(4, 3);
    put(root, "README.txt", b"about");
    put(root, "B/x.png", &rgb);
    put(root, "a/broken.png", &rgb[..rgb.len() - 20]);
    put(root, "a/empty.jpg", b"");
    let gray = ImageBuffer::from_fn(5, 5, |x, y| Luma([(x * 40 + y) as u8]));
    put(
        root,
        "a/gray.JPG",
        &encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Jpeg),
    );
    put(root, "a/huge.png", &png_claiming(100_000, 100_000));
    put(root, "a/notes.txt", b"hello");
    let wide = ImageBuffer::from_fn(2, 2, |_, _| Rgb([0u16, 32_896, 65_535]));
    put(
        root,
        "a/deep/deeper/wide16.png",
        &encode(&DynamicImage::ImageRgb16(wide), ImageFormat::Png),
    );
    put(root, "b/cmyk.jpeg", CMYK_JPEG);
    let float = ImageBuffer::from_pixel(2, 2, Rgb([0.5f32, 0.5, 0.5]));
    put(
        root,
        "b/float.tif",
        &encode(&DynamicImage::ImageRgb32F(float), ImageFormat::Tiff),
    );
    let glass = ImageBuffer::from_fn(2, 2, |x, _| Rgba([9, 9, 9, 200 + x as u8]));
    put(
        root,
        "b/glass.png",
        &encode(&DynamicImage::ImageRgba8(glass), ImageFormat::Png),
    );
    put(root, "b/noext", &rgb);
    let opaque = ImageBuffer::from_pixel(2, 2, Rgba([1, 2, 3, 255]));
    put(
        root,
        "b/opaque.png",
        &encode(&DynamicImage::ImageRgba8(opaque), ImageFormat::Png),
    );
    put(
        root,
        "b/palette.png",
        &palette_png(2, 1, &[[1, 2, 3], [4, 5, 6]], &[1, 0]),
    );
    let bmp = ImageBuffer::from_pixel(3, 3, Rgb([10, 20, 30]));
    put(
        root,
        "b/pic.bmp",
        &encode(&DynamicImage::ImageRgb8(bmp), ImageFormat::Bmp),
    );
    vec![
        ("B/x.png", 0),
        ("a/gray.JPG", 1),
        ("a/deep/deeper/wide16.png", 1),
        ("b/cmyk.jpeg", 2),
        ("b/opaque.png", 2),
        ("b/palette.png", 2),
        ("b/pic.bmp", 2),
    ]
}

/// A version-1 .npy file.
pub fn write_npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    fs::write(path, out).unwrap();
}

/// A Hugging Face style export: image struct<bytes, path> (path `img.png`), label int64,
/// optional class names.
pub fn write_hf_parquet(path: &Path, rows: &[(Option<Vec<u8>>, i64)], names: Option<&[&str]>) {
    let rows: Vec<HfRow> = rows
        .iter()
        .map(|(b, l)| (b.clone(), Some("img.png".to_string()), *l))
        .collect();
    write_hf_rows(path, &rows, names);
}

/// One row of a Hugging Face export: image bytes, image path, label.
pub type HfRow = (Option<Vec<u8>>, Option<String>, i64);

/// A Hugging Face style export with the given image bytes and paths.
pub fn write_hf_rows(path: &Path, rows: &[HfRow], names: Option<&[&str]>) {
    let image_fields = Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ]);
    let mut meta = std::collections::HashMap::new();
    if let Some(names) = names {
        let hf = serde_json::json!({"info": {"features": {
            "image": {"_type": "Image"}, "label": {"names": names, "_type": "ClassLabel"}}}});
        meta.insert("huggingface".to_string(), hf.to_string());
    }
    let schema = Arc::new(Schema::new_with_metadata(
        vec![
            Field::new("image", DataType::Struct(image_fields.clone()), true),
            Field::new("label", DataType::Int64, true),
        ],
        meta,
    ));
    let bytes = BinaryArray::from_iter(rows.iter().map(|r| r.0.as_deref()));
    let paths = StringArray::from_iter(rows.iter().map(|r| r.1.as_deref()));
    let image = StructArray::new(
        image_fields,
        vec![Arc::new(bytes) as ArrayRef, Arc::new(paths)],
        None,
    );
    let labels = Int64Array::from_iter_values(rows.iter().map(|r| r.2));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(image), Arc::new(labels)]).unwrap();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(fs::File::create(path).unwrap(), schema, None)
        .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}
