//! Reading a dataset table for training: split, limit, planar layout, channels, bad input.

use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};
use shiftlab_data::imaging::StoredImage;
use shiftlab_data::writer::{DatasetWriter, Row};
use shiftlab_train::data::load;

/// A PNG of `w`x`h`, grey or RGB, whose pixel (x, y) channel c is `10·i + x + 2y + 50c`.
fn png(i: u8, w: u32, h: u32, rgb: bool) -> StoredImage {
    let img = RgbImage::from_fn(w, h, |x, y| {
        let v = |c: u32| 10 * u32::from(i) + x + 2 * y + if rgb { 50 * c } else { 0 };
        Rgb([v(0) as u8, v(1) as u8, v(2) as u8])
    });
    let dynimg = if rgb {
        image::DynamicImage::ImageRgb8(img)
    } else {
        image::DynamicImage::ImageLuma8(image::DynamicImage::ImageRgb8(img).to_luma8())
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    dynimg
        .write_to(&mut bytes, ImageFormat::Png)
        .expect("PNG encodes");
    StoredImage {
        bytes: bytes.into_inner(),
        width: w,
        height: h,
        channels: if rgb { 3 } else { 1 },
    }
}

fn table(path: &Path, rows: &[(u8, &str, StoredImage)]) {
    let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let mut w = DatasetWriter::create(path, &classes, "test").expect("writer");
    for (i, split, image) in rows {
        w.push(Row {
            id: format!("r{i}"),
            split: split.to_string(),
            label: i64::from(*i % 3),
            image: image.clone(),
            path: None,
            corruption: None,
            severity: None,
        })
        .expect("row");
    }
    w.finish(serde_json::json!({})).expect("finish");
}

#[test]
fn loads_the_train_split_in_planar_layout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.parquet");
    let rows: Vec<_> = (0..5u8)
        .map(|i| (i, if i == 1 { "test" } else { "train" }, png(i, 4, 3, true)))
        .collect();
    table(&path, &rows);
    let d = load(&path, "train", Some(3)).expect("loads");
    assert_eq!(d.images.size(), [3, 3, 3, 4]);
    assert_eq!((d.channels, d.side, d.classes), (3, 3, 3));
    assert_eq!(Vec::<i64>::try_from(&d.labels).expect("labels"), [0, 2, 0]);
    // Row r2, channel 1, y 2, x 3: 20 + 3 + 4 + 50.
    assert_eq!(d.images.int64_value(&[1, 1, 2, 3]), 77);
    assert!(d.mean.len() == 3 && d.mean[2] > d.mean[0]);
    let grey = dir.path().join("g.parquet");
    table(
        &grey,
        &[
            (0, "train", png(0, 4, 4, false)),
            (1, "train", png(1, 4, 4, false)),
        ],
    );
    let d = load(&grey, "train", None).expect("loads");
    assert_eq!(d.images.size(), [2, 1, 4, 4]);
}

#[test]
fn mixed_sizes_and_empty_splits_are_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.parquet");
    table(
        &path,
        &[
            (0, "train", png(0, 4, 4, false)),
            (1, "train", png(1, 5, 4, false)),
        ],
    );
    let err = format!("{:#}", load(&path, "train", None).unwrap_err());
    assert!(err.contains("r1") && err.contains("5x4"), "{err}");
    let err = format!("{:#}", load(&path, "test", None).unwrap_err());
    assert!(err.contains("no 'test' rows"), "{err}");
}
