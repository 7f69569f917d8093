//! Tests of the synthetic shifts: names, sizes, determinism, and SSIM falling with severity
//! on real photographs.

use super::*;
use image::{Rgb, RgbImage};

fn test_image(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let r = (x * 255 / w.max(1)) as u8;
        let g = (y * 255 / h.max(1)) as u8;
        let b = (((x / 4 + y / 4) % 2) * 200 + 20) as u8;
        Rgb([r, g, b])
    })
}

/// scikit-image's astronaut, chelsea and coffee, area-downsampled by 3 to keep the test fast.
fn photos() -> Vec<RgbImage> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.venv/lib/python3.11/site-packages/skimage/data");
    ["astronaut.png", "chelsea.png", "coffee.png"]
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let img = image::open(&path)
                .unwrap_or_else(|e| {
                    panic!(
                        "photo {} is needed for the SSIM test ({e}); create .venv with \
                         scikit-image first (the test set-up does)",
                        path.display()
                    )
                })
                .to_rgb8();
            let (w, h) = img.dimensions();
            area_resize(&img, w / 3, h / 3)
        })
        .collect()
}

/// SSIM with scikit-image's defaults: uniform 7 x 7 window, K1 = 0.01, K2 = 0.03, L = 255,
/// sample covariance (n / (n - 1)), mean over the positions whose window fits in the image;
/// computed per R, G, B channel and averaged (`channel_axis=-1`).
fn ssim(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (w, h) = a.dimensions();
    let (w, h) = (w as usize, h as usize);
    const R: usize = 3;
    let n = ((2 * R + 1) * (2 * R + 1)) as f64;
    let cov_norm = n / (n - 1.0);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (ra, rb) = (a.as_raw(), b.as_raw());
    let mut total = 0.0;
    let mut count = 0usize;
    for c in 0..3 {
        for y in R..h - R {
            for x in R..w - R {
                let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for yy in y - R..=y + R {
                    for xx in x - R..=x + R {
                        let i = (yy * w + xx) * 3 + c;
                        let (u, v) = (ra[i] as f64, rb[i] as f64);
                        sa += u;
                        sb += v;
                        saa += u * u;
                        sbb += v * v;
                        sab += u * v;
                    }
                }
                let (ma, mb) = (sa / n, sb / n);
                let va = cov_norm * (saa / n - ma * ma);
                let vb = cov_norm * (sbb / n - mb * mb);
                let vab = cov_norm * (sab / n - ma * mb);
                total += ((2.0 * ma * mb + c1) * (2.0 * vab + c2))
                    / ((ma * ma + mb * mb + c1) * (va + vb + c2));
                count += 1;
            }
        }
    }
    total / count as f64
}

#[test]
fn names_families_and_parse() {
    let mut names: Vec<_> = SyntheticShift::ALL.iter().map(|s| s.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), SyntheticShift::ALL.len());
    for s in SyntheticShift::ALL {
        assert_eq!(s.name().parse::<SyntheticShift>().unwrap(), s);
        assert_eq!(
            s.to_string()
                .to_uppercase()
                .replace('_', "-")
                .parse::<SyntheticShift>()
                .unwrap(),
            s
        );
        assert!(SyntheticShift::FAMILIES.contains(&s.family()));
    }
    for f in SyntheticShift::FAMILIES {
        assert!(SyntheticShift::ALL.iter().any(|s| s.family() == f));
    }
}

#[test]
fn unknown_name_lists_valid_names() {
    let err = "swirl".parse::<SyntheticShift>().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("\"swirl\""), "{msg}");
    for s in SyntheticShift::ALL {
        assert!(msg.contains(s.name()), "{msg} lacks {}", s.name());
    }
}

#[test]
fn severity_zero_and_small_images_are_errors() {
    assert!(Severity::new(0).is_err());
    assert!(Severity::new(6).is_err());
    let img = test_image(31, 40);
    let err = shift(&img, SyntheticShift::Gamma, Severity::ALL[0], 0, 0).unwrap_err();
    assert!(matches!(err, CorruptionError::TooSmall { .. }), "{err}");
}

#[test]
fn every_shift_keeps_the_size_and_changes_the_image() {
    for (w, h) in [(32, 32), (37, 61), (100, 45)] {
        let img = test_image(w, h);
        for s in SyntheticShift::ALL {
            for sev in Severity::ALL {
                let out = shift(&img, s, sev, 1, 2).unwrap();
                assert_eq!(out.dimensions(), (w, h), "{s} s{sev}");
                assert_ne!(out, img, "{s} s{sev} {w}x{h} left the image unchanged");
            }
        }
    }
}

#[test]
fn deterministic_and_key_dependent() {
    let img = test_image(64, 48);
    for s in SyntheticShift::ALL {
        for sev in Severity::ALL {
            let a = shift(&img, s, sev, 5, 11).unwrap();
            let b = shift(&img, s, sev, 5, 11).unwrap();
            assert_eq!(a, b, "{s} s{sev} not deterministic");
            if s.is_random() {
                // Some draws coincide (e.g. warm/cold), so ask that some key differs.
                let differs = (12..20).any(|k| shift(&img, s, sev, 5, k).unwrap() != a);
                assert!(differs, "{s} s{sev} does not depend on the key");
            } else {
                assert_eq!(shift(&img, s, sev, 6, 99).unwrap(), a, "{s} s{sev}");
            }
        }
    }
}

#[test]
fn grayscale_in_grayscale_out() {
    let gray = DynamicImage::ImageLuma8(image::GrayImage::from_fn(40, 36, |x, y| {
        image::Luma([((x * 7 + y * 3) % 256) as u8])
    }));
    let rgb = DynamicImage::ImageRgb8(test_image(40, 36));
    for s in SyntheticShift::ALL {
        let g = shift_dynamic(&gray, s, Severity::ALL[2], 0, 0).unwrap();
        assert!(matches!(g, DynamicImage::ImageLuma8(_)), "{s}");
        let c = shift_dynamic(&rgb, s, Severity::ALL[2], 0, 0).unwrap();
        assert!(matches!(c, DynamicImage::ImageRgb8(_)), "{s}");
    }
}

#[test]
fn ssim_decreases_with_severity_on_photos() {
    let photos = photos();
    for p in &photos {
        assert!((ssim(p, p) - 1.0).abs() < 1e-9);
    }
    let mut failures = Vec::new();
    for s in SyntheticShift::ALL {
        let keys: &[u64] = if s.is_random() {
            &[0, 1, 2, 3, 4, 5, 6, 7]
        } else {
            &[0]
        };
        let means: Vec<f64> = Severity::ALL
            .iter()
            .map(|&sev| {
                let mut sum = 0.0;
                for p in &photos {
                    for &k in keys {
                        sum += ssim(p, &shift(p, s, sev, 7, k).unwrap());
                    }
                }
                sum / (photos.len() * keys.len()) as f64
            })
            .collect();
        eprintln!("{:<18} {}: {:.4?}", s.name(), s.family(), means);
        if !(means[0] < 1.0 && means.windows(2).all(|w| w[1] < w[0])) {
            failures.push(format!("{s}: {means:.4?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "mean SSIM not strictly decreasing: {failures:?}"
    );
}
