//! The CLI functions of the root crate's `src/commands/corrupt.rs`, compiled here so they are
//! tested even while the root package does not build.

#[path = "../../../src/commands/corrupt.rs"]
mod corrupt_cmd;

use std::path::PathBuf;

use corrupt_cmd::{run_corrupt, run_gallery, CorruptArgs, GalleryArgs};

fn frost_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/frost")
}

fn args(input: PathBuf, output: PathBuf, corruption: &str, severity: i64) -> CorruptArgs {
    CorruptArgs {
        corruption: corruption.into(),
        severity,
        seed: 3,
        preset: "cifar32".into(),
        frost_dir: Some(frost_dir()),
        input,
        output,
    }
}

#[test]
fn corrupt_png_and_jpeg_to_png() {
    let dir = tempfile::tempdir().unwrap();
    let img = image::RgbImage::from_fn(40, 36, |x, y| image::Rgb([x as u8 * 6, y as u8 * 7, 90]));
    let png = dir.path().join("in.png");
    let jpg = dir.path().join("in.jpg");
    img.save(&png).unwrap();
    img.save(&jpg).unwrap();
    for (inp, c) in [(&png, "frost"), (&jpg, "snow"), (&png, "jpeg_compression")] {
        let out = dir.path().join(format!("out_{c}.png"));
        run_corrupt(&args(inp.clone(), out.clone(), c, 2)).unwrap();
        let back = image::open(&out).unwrap();
        assert_eq!((back.width(), back.height()), (40, 36));
        assert!(!dir.path().join(format!("out_{c}.png.tmp")).exists());
        // Same arguments, same bytes.
        let out2 = dir.path().join(format!("again_{c}.png"));
        run_corrupt(&args(inp.clone(), out2.clone(), c, 2)).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    }
    // Grayscale stays grayscale.
    let gray = dir.path().join("gray.png");
    image::DynamicImage::ImageRgb8(img)
        .to_luma8()
        .save(&gray)
        .unwrap();
    let out = dir.path().join("gray_out.png");
    run_corrupt(&args(gray, out.clone(), "fog", 5)).unwrap();
    assert!(matches!(
        image::open(&out).unwrap(),
        image::DynamicImage::ImageLuma8(_)
    ));
}

#[test]
fn corrupt_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("in.png");
    image::RgbImage::new(40, 40).save(&png).unwrap();
    let out = dir.path().join("o.png");
    let e = run_corrupt(&args(png.clone(), out.clone(), "fogg", 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("valid names") && e.contains("zoom_blur"), "{e}");
    let e = run_corrupt(&args(png.clone(), out.clone(), "fog", 9))
        .unwrap_err()
        .to_string();
    assert!(e.contains("1..=5"), "{e}");
    let small = dir.path().join("small.png");
    image::RgbImage::new(20, 40).save(&small).unwrap();
    let e = format!(
        "{:#}",
        run_corrupt(&args(small, out.clone(), "fog", 1)).unwrap_err()
    );
    assert!(e.contains("20x40") && e.contains("32x32"), "{e}");
    let mut a = args(png, out.clone(), "frost", 1);
    a.frost_dir = Some(dir.path().join("nope"));
    let e = run_corrupt(&a).unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("make setup"), "{e}");
    assert!(!out.exists());
}

#[test]
fn gallery_writes_png() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("in.png");
    image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 128]))
        .save(&png)
        .unwrap();
    let out = dir.path().join("grid.png");
    run_gallery(&GalleryArgs {
        input: png,
        out: out.clone(),
        preset: "cifar32".into(),
        seed: 0,
        rows: "all".into(),
        tile: None,
        frost_dir: Some(frost_dir()),
    })
    .unwrap();
    let g = image::open(&out).unwrap();
    assert!(g.width() > 6 * 32 && g.height() > 28 * 32);
    let synth = dir.path().join("synth.png");
    run_gallery(&GalleryArgs {
        input: dir.path().join("in.png"),
        out: synth.clone(),
        preset: "cifar32".into(),
        seed: 0,
        rows: "synthetic".into(),
        tile: Some(16),
        frost_dir: Some(dir.path().join("no-frost-needed")),
    })
    .unwrap();
    let s = image::open(&synth).unwrap();
    assert!(
        s.height() > 9 * 16 && s.height() < 9 * 20 + 40,
        "{}",
        s.height()
    );
}

#[test]
fn corrupt_accepts_synthetic_shifts() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CorruptArgs,
    }
    let dir = tempfile::tempdir().unwrap();
    let img = image::RgbImage::from_fn(40, 36, |x, y| image::Rgb([x as u8 * 6, y as u8 * 7, 90]));
    let png = dir.path().join("in.png");
    img.save(&png).unwrap();
    let out = dir.path().join("rot.png");
    let p = |p: &PathBuf| p.to_str().unwrap().to_string();
    let cli = Cli::try_parse_from([
        "x",
        "--shift",
        "gamma",
        "--severity",
        "3",
        &p(&png),
        &p(&out),
    ])
    .unwrap();
    run_corrupt(&cli.args).unwrap();
    let want = shiftlab_corrupt::shift(
        &img,
        shiftlab_corrupt::SyntheticShift::Gamma,
        shiftlab_corrupt::Severity::new(3).unwrap(),
        0,
        0,
    )
    .unwrap();
    assert!(image::open(&out).unwrap().to_rgb8() == want);
    run_corrupt(&args(png.clone(), out.clone(), "Hue-Rotation", 5)).unwrap();
    let e = run_corrupt(&args(png, out, "rotate", 1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rotate") && e.contains("zoom_blur") && e.contains("color_temperature"),
        "{e}"
    );
}
