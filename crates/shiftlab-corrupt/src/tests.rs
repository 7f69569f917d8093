//! Unit tests: names, errors, determinism across threads/batches, sizes, grayscale.

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

fn assets() -> FrostAssets {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/frost");
    FrostAssets::load(&dir).unwrap_or_else(|e| panic!("frost photos needed for the tests: {e}"))
}

#[test]
fn names_are_unique_and_parse() {
    let mut names: Vec<&str> = Corruption::ALL.iter().map(|c| c.name()).collect();
    for c in Corruption::ALL {
        assert_eq!(c.name().parse::<Corruption>().unwrap(), c);
        assert_eq!(c.to_string(), c.name());
    }
    assert_eq!(
        "Motion-Blur".parse::<Corruption>().unwrap(),
        Corruption::MotionBlur
    );
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 19);
    assert_eq!(&Corruption::ALL[..15], &Corruption::BENCHMARK_15[..]);
    assert_eq!(&Corruption::ALL[15..], &Corruption::EXTRA_4[..]);
    assert_eq!(Corruption::Fog.group(), Group::Weather);
    assert_eq!(Corruption::Saturate.group(), Group::Extra);
}

#[test]
fn unknown_name_lists_valid_names() {
    let err = "gausian_noise"
        .parse::<Corruption>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("gausian_noise"), "{err}");
    for c in Corruption::ALL {
        assert!(err.contains(c.name()), "{err} lacks {}", c.name());
    }
}

#[test]
fn severity_and_preset_errors() {
    assert!(Severity::new(0).is_err());
    assert!(Severity::new(6).is_err());
    assert_eq!(Severity::new(3).unwrap().get(), 3);
    assert!("7"
        .parse::<Severity>()
        .unwrap_err()
        .to_string()
        .contains("1..=5"));
    assert!("x".parse::<Severity>().is_err());
    assert_eq!(Preset::from_name("CIFAR32").unwrap(), Preset::Cifar32);
    assert_eq!("tiny64".parse::<Preset>().unwrap(), Preset::Tiny64);
    let e = Preset::from_name("imagenet").unwrap_err().to_string();
    assert!(e.contains("imagenet224") && e.contains("cifar32"), "{e}");
}

#[test]
fn too_small_is_an_error() {
    let img = test_image(31, 64);
    let e = corrupt(
        &img,
        Corruption::Fog,
        Severity::new(1).unwrap(),
        Preset::Cifar32,
        0,
        0,
        &FrostAssets::none(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("31x64") && e.contains("32x32"), "{e}");
}

#[test]
fn frost_without_assets_is_an_error() {
    let img = test_image(32, 32);
    let e = corrupt(
        &img,
        Corruption::Frost,
        Severity::new(1).unwrap(),
        Preset::Cifar32,
        0,
        0,
        &FrostAssets::none(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("make setup"), "{e}");
    let e = FrostAssets::load("/nonexistent/frost")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/frost/frost1.png") && e.contains("make setup"),
        "{e}"
    );
}

#[test]
fn embedded_frost_photos_are_the_files() {
    let (embedded, files) = (FrostAssets::embedded().unwrap(), assets());
    assert!(embedded.is_loaded());
    for (i, name) in frost::FROST_FILES.iter().enumerate() {
        let (a, b) = (
            embedded.photo(Preset::Imagenet224, i).unwrap(),
            files.photo(Preset::Imagenet224, i).unwrap(),
        );
        assert_eq!(a.dimensions(), b.dimensions(), "{name}");
        assert!(a.as_raw() == b.as_raw(), "{name}: pixels differ");
    }
    // An explicit folder wins over the embedded photos.
    let e = FrostAssets::locate(Some(std::path::Path::new("/nonexistent/frost"))).unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent/frost/frost1.png"),
        "{e}"
    );
}

#[test]
fn zoom_factor_counts_follow_arange() {
    let n: Vec<usize> = (0..5)
        .map(|s| params::zoom_blur(Preset::Imagenet224, s).len())
        .collect();
    assert_eq!(n, vec![12, 16, 11, 13, 11]);
}

#[test]
fn every_corruption_every_preset_odd_size() {
    let a = assets();
    for (w, h) in [(37, 33), (64, 50)] {
        let img = test_image(w, h);
        for p in Preset::ALL {
            for c in Corruption::ALL {
                for s in Severity::ALL {
                    let out = corrupt(&img, c, s, p, 1, 2, &a).unwrap();
                    assert_eq!(out.dimensions(), (w, h), "{c} {s} {p}");
                }
            }
        }
    }
}

#[test]
fn larger_than_preset_works() {
    // Fog map becomes 512; frost photos must be enlarged for 700 px wide images.
    let a = assets();
    let img = test_image(700, 250);
    for c in [
        Corruption::Fog,
        Corruption::Frost,
        Corruption::ZoomBlur,
        Corruption::Snow,
    ] {
        for p in Preset::ALL {
            let out = corrupt(&img, c, Severity::new(5).unwrap(), p, 0, 0, &a).unwrap();
            assert_eq!(out.dimensions(), (700, 250));
        }
    }
}

#[test]
fn corruptions_change_the_image() {
    let a = assets();
    let img = test_image(64, 64);
    for c in Corruption::ALL {
        let out = corrupt(
            &img,
            c,
            Severity::new(5).unwrap(),
            Preset::Imagenet224,
            0,
            0,
            &a,
        )
        .unwrap();
        let mad: f64 = out
            .as_raw()
            .iter()
            .zip(img.as_raw())
            .map(|(&x, &y)| (x as f64 - y as f64).abs())
            .sum::<f64>()
            / out.as_raw().len() as f64;
        assert!(mad > 0.5, "{c} barely changed the image (MAD {mad})");
    }
}

#[test]
fn deterministic_and_seed_dependent() {
    let a = assets();
    let img = test_image(48, 40);
    let s = Severity::new(3).unwrap();
    for c in Corruption::ALL {
        let x = corrupt(&img, c, s, Preset::Tiny64, 5, 9, &a).unwrap();
        let y = corrupt(&img, c, s, Preset::Tiny64, 5, 9, &a).unwrap();
        assert_eq!(x, y, "{c} not deterministic");
        let z = corrupt(&img, c, s, Preset::Tiny64, 6, 9, &a).unwrap();
        let k = corrupt(&img, c, s, Preset::Tiny64, 5, 10, &a).unwrap();
        if c.is_random() {
            assert_ne!(x, z, "{c} ignores the seed");
            assert_ne!(x, k, "{c} ignores the key");
        } else {
            assert_eq!(x, z, "{c} should not depend on the seed");
        }
    }
}

#[test]
fn batch_equals_single_for_any_thread_count_and_batch_size() {
    let a = assets();
    let images: Vec<RgbImage> = (0..5).map(|i| test_image(40 + i, 36 + 2 * i)).collect();
    let keys: Vec<u64> = (100..105).collect();
    let s = Severity::new(4).unwrap();
    for c in Corruption::ALL {
        let single: Vec<RgbImage> = images
            .iter()
            .zip(&keys)
            .map(|(im, &k)| corrupt(im, c, s, Preset::Imagenet224, 3, k, &a).unwrap())
            .collect();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let batch = pool
                .install(|| corrupt_batch(&images, &keys, c, s, Preset::Imagenet224, 3, &a))
                .unwrap();
            assert_eq!(batch, single, "{c} with {threads} threads");
            // Same keys in smaller batches, in reverse order.
            let mut parts = Vec::new();
            for chunk in [3usize, 0].iter() {
                let end = if *chunk == 0 { 3 } else { 5 };
                let start = if *chunk == 0 { 0 } else { 3 };
                let r = pool
                    .install(|| {
                        corrupt_batch(
                            &images[start..end],
                            &keys[start..end],
                            c,
                            s,
                            Preset::Imagenet224,
                            3,
                            &a,
                        )
                    })
                    .unwrap();
                parts.push((start, r));
            }
            parts.sort_by_key(|p| p.0);
            let joined: Vec<RgbImage> = parts.into_iter().flat_map(|p| p.1).collect();
            assert_eq!(joined, single, "{c} in split batches");
        }
    }
    let e = corrupt_batch(
        &images,
        &keys[..2],
        Corruption::Fog,
        s,
        Preset::Imagenet224,
        0,
        &a,
    )
    .unwrap_err();
    assert!(e.to_string().contains("5 images but 2 keys"));
}

#[test]
fn grayscale_in_grayscale_out() {
    let a = assets();
    let rgb = test_image(50, 45);
    let gray = DynamicImage::ImageRgb8(rgb).to_luma8();
    let dynimg = DynamicImage::ImageLuma8(gray);
    for c in Corruption::ALL {
        let out = corrupt_dynamic(
            &dynimg,
            c,
            Severity::new(2).unwrap(),
            Preset::Cifar32,
            0,
            1,
            &a,
        )
        .unwrap();
        assert!(matches!(out, DynamicImage::ImageLuma8(_)), "{c}");
        assert_eq!((out.width(), out.height()), (50, 45));
    }
    // Colour stays colour; gray replicated to RGB gives the same result as the RGB call.
    let rgba = DynamicImage::ImageRgba8(image::RgbaImage::new(40, 40));
    let out = corrupt_dynamic(
        &rgba,
        Corruption::Contrast,
        Severity::new(2).unwrap(),
        Preset::Cifar32,
        0,
        1,
        &a,
    )
    .unwrap();
    assert!(matches!(out, DynamicImage::ImageRgb8(_)));
}

#[test]
fn contrast_matches_hand_computation() {
    // Uniform image: contrast keeps it (mean = value); brightness raises V.
    let img = RgbImage::from_pixel(32, 32, Rgb([100, 50, 200]));
    let a = FrostAssets::none();
    let out = corrupt(
        &img,
        Corruption::Contrast,
        Severity::new(1).unwrap(),
        Preset::Imagenet224,
        0,
        0,
        &a,
    )
    .unwrap();
    let p = out.get_pixel(3, 3).0;
    for (o, i) in p.iter().zip([100u8, 50, 200]) {
        assert!((*o as i32 - i as i32).abs() <= 1, "{p:?}");
    }
    let out = corrupt(
        &img,
        Corruption::Brightness,
        Severity::new(1).unwrap(),
        Preset::Imagenet224,
        0,
        0,
        &a,
    )
    .unwrap();
    // V = 200/255 + 0.1 -> scale all channels by (V + .1) / V.
    let k = (200.0 / 255.0 + 0.1) / (200.0 / 255.0);
    let p = out.get_pixel(0, 0).0;
    assert_eq!(p[2], ((200.0 / 255.0 + 0.1) * 255.0f64) as u8);
    assert!((p[0] as f64 - 100.0 * k).abs() <= 1.0, "{p:?}");
}

#[test]
fn gallery_has_all_tiles() {
    let a = assets();
    let img = test_image(32, 32);
    let g = gallery(&img, Preset::Cifar32, 0, &a).unwrap();
    assert!(g.width() > 6 * 32 && g.height() > 19 * 32);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_build_is_bit_identical_to_baseline() {
    if !std::is_x86_feature_detected!("avx2") {
        return;
    }
    let a = assets();
    for (w, h) in [(224, 224), (45, 39)] {
        let img = test_image(w, h);
        for p in Preset::ALL {
            for c in Corruption::ALL {
                for s in Severity::ALL {
                    let seed = rng::stream_seed(1, 2, c.index() as u64, s.get() as u64);
                    let x = apply(&img, c, s, p, &mut rng::Rng::new(seed), &a).unwrap();
                    // SAFETY: AVX2 detected above.
                    let y =
                        unsafe { apply_avx2(&img, c, s, p, &mut rng::Rng::new(seed), &a) }.unwrap();
                    assert!(
                        x == y,
                        "{c} {s} {p} {w}x{h}: AVX2 and baseline builds differ"
                    );
                }
            }
        }
    }
}

#[test]
fn extreme_aspect_ratios_and_odd_sizes() {
    let a = assets();
    for (w, h) in [(32, 301), (301, 32), (33, 33), (257, 129)] {
        let img = test_image(w, h);
        for p in Preset::ALL {
            for c in Corruption::ALL {
                for s in [Severity::new(1).unwrap(), Severity::new(5).unwrap()] {
                    let out = corrupt(&img, c, s, p, 9, 9, &a).unwrap();
                    assert_eq!(out.dimensions(), (w, h), "{c} {s} {p}");
                }
            }
        }
    }
}
