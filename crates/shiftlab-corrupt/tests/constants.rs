//! Every constant of `params.rs`, in all three presets, against the reference tables copied
//! verbatim into `tests/fixtures/reference-constants.md` (imagecorruptions 1.1.2 for
//! imagenet224, make_tinyimagenet_c.py and make_cifar_c.py for tiny64 and cifar32). The
//! tables are parsed here, so a changed constant on either side fails by name and severity.

use std::collections::HashMap;

use shiftlab_corrupt::params::{self, ElasticParams};
use shiftlab_corrupt::{Corruption, Preset};

const FIXTURE: &str = include_str!("fixtures/reference-constants.md");

/// Transcribed values: (preset name, corruption name) -> five parameter tuples.
type Tables = HashMap<(String, String), Vec<Vec<f64>>>;

/// Numbers of a comma-separated group such as `.7,1,2`; `None` if any part is not a number.
fn numbers(group: &str) -> Option<Vec<f64>> {
    group.split(',').map(|v| v.trim().parse().ok()).collect()
}

/// The numeric parenthesised groups of a cell (`(1,.2) (1,.3) ...`), or else its bare
/// whitespace-separated numbers (`.04 .06 .08 .09 .10`).
fn groups(text: &str) -> Vec<Vec<f64>> {
    let tuples: Vec<Vec<f64>> = text
        .split('(')
        .skip(1)
        .filter_map(|rest| numbers(rest.split(')').next()?))
        .collect();
    if !tuples.is_empty() {
        return tuples;
    }
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .map(|v| vec![v])
        .collect()
}

/// Parses the fixture's three sections; a small preset's "same ... as the 32 px preset"
/// row takes cifar32's values.
fn tables() -> (Tables, HashMap<String, String>) {
    let mut out = Tables::new();
    let mut notes = HashMap::new();
    let mut preset = String::new();
    for line in FIXTURE.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            preset = name.trim().to_string();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 3 || cells[1] == "name" || cells[1].starts_with("---") {
            continue;
        }
        let name = cells[1].to_string();
        let values = if preset == "imagenet224" {
            cells[4..9].iter().flat_map(|c| groups(c)).collect()
        } else {
            notes.insert(format!("{preset}/{name}"), cells[2].to_string());
            groups(cells[2])
        };
        out.insert((preset.clone(), name), values);
    }
    let same = out[&("cifar32".to_string(), "zoom_blur".to_string())].clone();
    out.entry(("tiny64".into(), "zoom_blur".into()))
        .and_modify(|v| *v = same);
    (out, notes)
}

/// `np.arange(start, stop, step)`: ceil((stop - start) / step) values start + i * step.
fn arange(t: &[f64]) -> Vec<f64> {
    let n = ((t[1] - t[0]) / t[2]).ceil() as usize;
    (0..n).map(|i| t[0] + i as f64 * t[2]).collect()
}

/// `params.rs`' value of a corruption at severity index `s`, flattened like the tables.
fn ours(c: Corruption, p: Preset, s: usize) -> Vec<f64> {
    use Corruption::*;
    match c {
        GaussianNoise => vec![params::gaussian_noise(p, s)],
        ShotNoise => vec![params::shot_noise(p, s)],
        ImpulseNoise => vec![params::impulse_noise(p, s)],
        SpeckleNoise => vec![params::speckle_noise(p, s)],
        GaussianBlur => vec![params::gaussian_blur(p, s)],
        GlassBlur => {
            let (a, b, n) = params::glass_blur(p, s);
            vec![a, b as f64, n as f64]
        }
        DefocusBlur => {
            let (r, a) = params::defocus_blur(p, s);
            vec![r, a]
        }
        MotionBlur => {
            let (r, sg) = params::motion_blur(p, s);
            vec![r as f64, sg]
        }
        ZoomBlur => params::zoom_blur(p, s),
        Snow => {
            let t = params::snow(p, s);
            vec![t.0, t.1, t.2, t.3, t.4 as f64, t.5, t.6]
        }
        Frost => {
            let (a, b) = params::frost(p, s);
            vec![a, b]
        }
        Fog => {
            let (a, b) = params::fog(p, s);
            vec![a, b]
        }
        Brightness => vec![params::brightness(p, s)],
        Contrast => vec![params::contrast(p, s)],
        ElasticTransform => match params::elastic(p, s) {
            ElasticParams::Ic { alpha } => vec![alpha],
            ElasticParams::Orig {
                alpha,
                sigma,
                affine,
            } => vec![alpha, sigma, affine],
        },
        Pixelate => vec![params::pixelate(p, s)],
        JpegCompression => vec![f64::from(params::jpeg_quality(p, s))],
        Spatter => {
            let t = params::spatter(p, s);
            vec![t.0, t.1, t.2, t.3, t.4, f64::from(t.5)]
        }
        Saturate => {
            let (m, a) = params::saturate(p, s);
            vec![m, a]
        }
    }
}

/// The reference's value in `ours`' form: zoom ranges expanded, elastic scaled.
fn reference(t: &Tables, c: Corruption, p: Preset, s: usize) -> Vec<f64> {
    let key = (p.name().to_string(), c.name().to_string());
    let row = t
        .get(&key)
        .unwrap_or_else(|| panic!("no reference row for {key:?}"));
    assert_eq!(row.len(), 5, "{key:?}: {row:?}");
    let v = &row[s];
    match (c, p) {
        (Corruption::ZoomBlur, _) => arange(v),
        // imagecorruptions: alpha = 250 x (.05, .065, .085, .1, .12) (the page's traps).
        (Corruption::ElasticTransform, Preset::Imagenet224) => {
            let line = FIXTURE
                .lines()
                .find(|l| l.starts_with("alpha = 250 x"))
                .expect("alpha line");
            vec![250.0 * groups(line)[0][s]]
        }
        // The original scripts' table is in units of the image side ("32 x (alpha, ...)").
        (Corruption::ElasticTransform, _) => {
            let n = f64::from(p.native_size());
            v.iter().map(|x| n * x).collect()
        }
        _ => v.clone(),
    }
}

#[test]
fn every_constant_matches_the_reference_tables() {
    let (t, _) = tables();
    let mut wrong = Vec::new();
    for p in Preset::ALL {
        for c in Corruption::ALL {
            for s in 0..5 {
                let (a, b) = (ours(c, p, s), reference(&t, c, p, s));
                let same = a.len() == b.len()
                    && a.iter()
                        .zip(&b)
                        .all(|(x, y)| (x - y).abs() <= 1e-12 * y.abs().max(1.0));
                if !same {
                    wrong.push(format!("{p} {c} s{}: ours {a:?}, reference {b:?}", s + 1));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn frost_prescale_matches_the_reference_notes() {
    let (_, notes) = tables();
    for p in [Preset::Tiny64, Preset::Cifar32] {
        let note = &notes[&format!("{}/frost", p.name())];
        let factor: f64 = note
            .split("resized x")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{p}: no 'resized xF' in {note:?}"));
        assert_eq!(params::frost_prescale(p), factor, "{p}");
    }
    // imagecorruptions resizes the photo only to fit the image (the page's traps).
    assert_eq!(params::frost_prescale(Preset::Imagenet224), 1.0);
}

#[test]
fn zoom_ranges_have_the_reference_lengths() {
    // The page's traps: arange(1, 1.11, .01) has 12 elements in f64; then 16, 11, 13, 11.
    let n: Vec<usize> = (0..5)
        .map(|s| params::zoom_blur(Preset::Imagenet224, s).len())
        .collect();
    assert_eq!(n, [12, 16, 11, 13, 11]);
}

#[test]
fn the_fixture_parses_into_every_row() {
    let (t, _) = tables();
    // 19 rows per preset (imagenet224's elastic row is the original script's, kept but unused).
    for p in Preset::ALL {
        let rows = t.keys().filter(|(q, _)| q == p.name()).count();
        assert_eq!(rows, 19, "{p}");
    }
    assert_eq!(
        t[&("cifar32".to_string(), "snow".to_string())][4],
        [0.3, 0.3, 1.25, 0.65, 14.0, 12.0, 0.8]
    );
}
