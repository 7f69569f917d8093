//! Published ImageNet-C numbers of a standard torchvision ResNet-50, reproduced from the
//! fixtures in `tests/fixtures/metrics/` (sources in their header comments).

use std::path::PathBuf;

use shiftlab_metrics::corruptions::CorruptionSet;
use shiftlab_metrics::metrics::{mce, mean_accuracy, relative_mce, summarize};
use shiftlab_metrics::table::read_error_files;
use shiftlab_metrics::{AlexNetTable, ErrorUnit, ModelErrors};

fn fixture(name: &str, unit: ErrorUnit) -> ModelErrors {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/metrics")
        .join(name);
    match read_error_files(&path, None, unit) {
        Ok(mut models) if models.len() == 1 => models.remove(0),
        Ok(models) => panic!("{name}: expected one model, got {}", models.len()),
        Err(e) => panic!("{name}: {e}"),
    }
}

fn ok(r: Result<f64, shiftlab_metrics::MetricsError>) -> f64 {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Full ImageNet-C, per-corruption means (bethgelab/game-of-noise, vanilla ResNet-50).
#[test]
fn full_imagenet_c_resnet50_mce_matches_the_published_values() {
    let m = fixture("resnet50_game_of_noise_means.csv", ErrorUnit::Percent);
    let alexnet = AlexNetTable::embedded();
    let value = ok(mce(&m, alexnet));
    // The source prints mCE 76.62 for these accuracies: reproduced to its 2 decimals.
    assert!((value - 76.62).abs() < 0.005, "mCE {value}");
    // Hendrycks & Dietterich's 76.7 comes from a different run of the same model; the
    // accuracies of this run give 76.616, 0.084 below it.
    assert!((value - 76.7).abs() < 0.1, "mCE {value}");
    // The source's printed mean accuracy over the 15 (39.22) and per-corruption CEs; those
    // were computed from unrounded accuracies, hence the 0.015 slack.
    let acc = ok(mean_accuracy(&m, CorruptionSet::Benchmark15));
    assert!((100.0 * acc - 39.22).abs() < 0.005, "mean accuracy {acc}");
    let printed = [
        ("brightness", 57.29),
        ("contrast", 72.52),
        ("defocus_blur", 71.75),
        ("elastic_transform", 86.58),
        ("fog", 68.18),
        ("frost", 73.72),
        ("gaussian_noise", 81.88),
        ("glass_blur", 91.53),
        ("impulse_noise", 83.41),
        ("jpeg_compression", 75.10),
        ("motion_blur", 76.64),
        ("pixelate", 75.64),
        ("shot_noise", 80.62),
        ("snow", 76.79),
        ("zoom_blur", 77.60),
    ];
    let s = summarize(&m, alexnet);
    for (name, want) in printed {
        let got = s.per_corruption.iter().find(|c| c.corruption == name);
        let ce = got.and_then(|c| c.ce).unwrap_or(f64::NAN);
        assert!((ce - want).abs() < 0.015, "{name}: CE {ce}, source {want}");
    }
}

/// Per-severity errors on RobustBench's ImageNet-C subset (Standard_R50).
#[test]
fn robustbench_resnet50_per_severity_matches_its_published_accuracy() {
    let m = fixture("resnet50_robustbench_per_severity.csv", ErrorUnit::Fraction);
    let alexnet = AlexNetTable::embedded();
    // RobustBench publishes corruptions_acc 38.12 = mean accuracy over 15 x 5.
    let acc = ok(mean_accuracy(&m, CorruptionSet::Benchmark15));
    assert!((100.0 * acc - 38.12).abs() < 0.005, "mean accuracy {acc}");
    // Not published there; pinned from the same table (subset, so above 76.7).
    // gaussian_noise by hand: errors .4108+.5282+.7034+.8508+.9530 = 3.4462;
    // CE = 3.4462 / 4.43214 = 77.755.
    let s = summarize(&m, alexnet);
    let g = s
        .per_corruption
        .iter()
        .find(|c| c.corruption == "gaussian_noise");
    assert!((g.and_then(|c| c.ce).unwrap_or(0.0) - 77.755).abs() < 0.001);
    let value = ok(mce(&m, alexnet));
    assert!((value - 78.1757).abs() < 0.0001, "mCE {value}");
    assert!(
        ok(relative_mce(&m, alexnet)) > value,
        "ResNet-50 degrades more than AlexNet"
    );
    assert_eq!(m.clean_error(), Some(0.2348));
}
