use super::*;
use crate::alexnet::ALEXNET_CLEAN_ERROR;
use crate::corruptions::BENCHMARK_15;

fn alexnet() -> &'static AlexNetTable {
    AlexNetTable::embedded()
}

/// AlexNet's own per-severity errors for the 15, each mapped through `f`.
fn scaled_alexnet(f: impl Fn(f64) -> f64) -> Vec<(&'static str, [f64; 5])> {
    BENCHMARK_15
        .iter()
        .map(|&c| {
            let s = alexnet()
                .get(c)
                .and_then(|e| e.severities)
                .unwrap_or([f64::NAN; 5]);
            (c, s.map(&f))
        })
        .collect()
}

fn constant(error: f64, names: &[&'static str]) -> Vec<(&'static str, [f64; 5])> {
    names.iter().map(|&c| (c, [error; 5])).collect()
}

fn model(clean: Option<f64>, arrays: Vec<(&'static str, [f64; 5])>) -> ModelErrors {
    match ModelErrors::from_arrays("m", clean, arrays) {
        Ok(m) => m,
        Err(e) => panic!("valid test model rejected: {e}"),
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn alexnet_itself_has_mce_100_and_relative_mce_100() {
    // CE = sum/sum = 1 for every corruption; relative CE likewise with the same clean error.
    let m = model(Some(ALEXNET_CLEAN_ERROR), scaled_alexnet(|e| e));
    assert!(close(mce(&m, alexnet()).unwrap_or(0.0), 100.0, 1e-9));
    assert!(close(
        relative_mce(&m, alexnet()).unwrap_or(0.0),
        100.0,
        1e-9
    ));
}

#[test]
fn half_of_alexnet_error_everywhere_has_mce_50() {
    // CE = (sum/2)/sum = 0.5 for each of the 15 -> mCE 50.
    let m = model(Some(0.2), scaled_alexnet(|e| e / 2.0));
    assert!(close(mce(&m, alexnet()).unwrap_or(0.0), 50.0, 1e-9));
    // Relative CE, gaussian_noise by hand: AlexNet sum = .69528+.82542+.93554+.98138+.99452
    // = 4.43214; (4.43214/2 - 5*0.2) / (4.43214 - 5*0.4345) = 1.21607 / 2.25964 = 0.538170.
    let s = summarize(&m, alexnet());
    let g = s
        .per_corruption
        .iter()
        .find(|c| c.corruption == "gaussian_noise");
    let rel = g.and_then(|c| c.relative_ce).unwrap_or(0.0);
    assert!(close(rel, 53.8170, 1e-4), "{rel}");
}

#[test]
fn worse_by_d_everywhere_including_clean_has_relative_mce_100() {
    // E = E_alex + d and E_clean = 0.4345 + d: numerator sum(E_alex + d) - 5(0.4345 + d)
    // equals the AlexNet denominator, so every relative CE is 1 while mCE exceeds 100.
    let d = 0.01;
    let m = model(
        Some(ALEXNET_CLEAN_ERROR + d),
        scaled_alexnet(|e| (e + d).min(1.0)),
    );
    let rel = relative_mce(&m, alexnet()).unwrap_or(0.0);
    // Where E_alex + d > 1 it is clipped, so allow a small deficit.
    assert!(close(rel, 100.0, 0.5), "{rel}");
    assert!(mce(&m, alexnet()).unwrap_or(0.0) > 100.0);
}

#[test]
fn relative_ce_worked_example_on_brightness() {
    // Error 0.5 at every severity, clean error 0.25. AlexNet brightness sum =
    // .45140+.48502+.54048+.62166+.72440 = 2.82296.
    // CE = 2.5 / 2.82296 = 0.885595; relative CE = (2.5 - 1.25) / (2.82296 - 2.1725)
    // = 1.25 / 0.65046 = 1.921717.
    let m = model(Some(0.25), constant(0.5, &["brightness"]));
    let s = summarize(&m, alexnet());
    let b = &s.per_corruption[0];
    assert!(close(b.ce.unwrap_or(0.0), 88.5595, 1e-4), "{:?}", b.ce);
    assert!(close(b.relative_ce.unwrap_or(0.0), 192.1717, 1e-4));
    // Only one corruption: no mCE, and the missing ones are listed.
    assert_eq!(s.mce, None);
    assert_eq!(s.missing_benchmark.len(), 14);
}

#[test]
fn constant_error_mce_and_mean_error() {
    // mCE = 100 * mean_c(2.5 / sum_s E_alex(c,s)) = 64.6726 (sums from the reference table).
    let m = model(None, constant(0.5, &BENCHMARK_15));
    assert!(close(mce(&m, alexnet()).unwrap_or(0.0), 64.67257, 1e-4));
    assert!(close(
        mean_error(&m, CorruptionSet::Benchmark15).unwrap_or(0.0),
        0.5,
        1e-12
    ));
    assert!(close(
        mean_accuracy(&m, CorruptionSet::Benchmark15).unwrap_or(0.0),
        0.5,
        1e-12
    ));
    // No clean error: relative mCE is refused; 19 not present: the 19-mean is refused.
    assert!(matches!(
        relative_mce(&m, alexnet()),
        Err(MetricsError::MissingClean { .. })
    ));
    let err = mean_error(&m, CorruptionSet::All19)
        .err()
        .map(|e| e.to_string());
    let msg = err.unwrap_or_default();
    assert!(
        msg.contains("speckle_noise, gaussian_blur, spatter, saturate"),
        "{msg}"
    );
}

#[test]
fn mean_error_over_19_weights_every_pair_equally() {
    // 15 corruptions at 0.2 and 4 at 0.6: (15*0.2 + 4*0.6) / 19 = 5.4 / 19 = 0.284211.
    let mut arrays = constant(0.2, &BENCHMARK_15);
    arrays.extend(constant(0.6, &crate::corruptions::EXTRA_4));
    let m = model(Some(0.1), arrays);
    let e19 = mean_error(&m, CorruptionSet::All19).unwrap_or(0.0);
    assert!(close(e19, 5.4 / 19.0, 1e-12));
    let s = summarize(&m, alexnet());
    assert_eq!(s.per_corruption.len(), 19);
    let extra = s.per_corruption.iter().filter(|c| !c.normaliser_verified);
    assert_eq!(extra.count(), 4);
}

fn entry(row: usize, c: &str, s: i64, e: f64) -> ErrorEntry {
    ErrorEntry {
        row,
        corruption: c.into(),
        severity: Severity::Level(s),
        error: e,
    }
}

#[test]
fn validation_names_rows() {
    let mut entries: Vec<ErrorEntry> = (1..=5)
        .map(|s| entry(s as usize + 1, "fog", s, 0.3))
        .collect();
    entries.push(entry(7, "fogg", 1, 0.3));
    entries.push(entry(8, "snow", 6, 0.3));
    entries.push(entry(9, "snow", 1, 1.3));
    entries.push(entry(10, "fog", 2, 0.3));
    entries.push(entry(11, "frost", 1, 0.3));
    entries.push(entry(12, "frost", 3, 0.3));
    let msg = ModelErrors::from_entries("m", None, &entries)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("row 7: unknown corruption \"fogg\""), "{msg}");
    assert!(msg.contains("row 8: severity 6 outside 1..5"), "{msg}");
    assert!(msg.contains("row 9: error 1.3 outside [0, 1]"), "{msg}");
    assert!(msg.contains("row 10: duplicate fog severity 2 (first given in row 3)"));
    assert!(
        msg.contains("frost lacks severities 2, 4, 5 (has rows 11, 12)"),
        "{msg}"
    );
}

#[test]
fn ece_hand_computed() {
    // Bin (13/15, 14/15]: confidences 0.9, 0.9, one correct: |0.5 - 0.9| * 2/4 = 0.2.
    // Bin (2/15, 3/15]: confidences 0.2, 0.2, none correct: |0 - 0.2| * 2/4 = 0.1.
    let samples = [(0.9, true), (0.9, false), (0.2, false), (0.2, false)];
    let ece = expected_calibration_error(&samples, ECE_BINS).unwrap_or(f64::NAN);
    assert!(close(ece, 0.3, 1e-12), "{ece}");
    let perfect = [(1.0, true), (1.0, true), (0.0, false)];
    let zero = expected_calibration_error(&perfect, ECE_BINS).unwrap_or(f64::NAN);
    assert!(close(zero, 0.0, 1e-12));
}

#[test]
fn ece_has_15_bins_by_hand() {
    // 15 bins: 0.61 lies in (9/15, 10/15], 0.69 in (10/15, 11/15]: (0.61 + 0.31) / 2 = 0.46.
    // 10 bins would put both in (0.6, 0.7]: |0.5 - 0.65| = 0.15.
    let samples = [(0.61, false), (0.69, true)];
    assert_eq!(ECE_BINS, 15);
    let ece = expected_calibration_error(&samples, ECE_BINS).unwrap_or(f64::NAN);
    assert!(close(ece, 0.46, 1e-12), "{ece}");
    let ten = expected_calibration_error(&samples, 10).unwrap_or(f64::NAN);
    assert!(close(ten, 0.15, 1e-12), "{ten}");
    // Upper edges are inclusive: 10/15 shares (9/15, 10/15] with 0.61.
    let edge = expected_calibration_error(&[(0.61, false), (10.0 / 15.0, true)], ECE_BINS);
    let want = (0.5 - (0.61 + 10.0 / 15.0) / 2.0f64).abs();
    assert!(close(edge.unwrap_or(f64::NAN), want, 1e-12));
}

#[test]
fn ece_rejects_bad_input() {
    assert!(expected_calibration_error(&[], ECE_BINS).is_err());
    assert!(expected_calibration_error(&[(1.5, true)], ECE_BINS).is_err());
    assert!(expected_calibration_error(&[(f64::NAN, true)], ECE_BINS).is_err());
    assert!(expected_calibration_error(&[(-0.1, true)], ECE_BINS).is_err());
    assert!(expected_calibration_error(&[(0.5, true)], 0).is_err());
}

#[test]
fn unnormalised_summary_has_no_ce() {
    // CIFAR-style: mean error 0.2 over the 15, no AlexNet, no mCE.
    let m = model(Some(0.05), constant(0.2, &BENCHMARK_15));
    let s = summarize_unnormalised(&m);
    assert!(!s.normalised);
    assert_eq!((s.mce, s.relative_mce), (None, None));
    assert!(close(s.mean_error_15.unwrap_or(0.0), 0.2, 1e-12));
    assert!(s.per_corruption.iter().all(|c| c.ce.is_none()));
}

/// clean (0.6, 0.7, 0.8), shifted (0.30, 0.42, 0.48), by hand: mx = 0.7, my = 0.4;
/// dx = (-0.1, 0, 0.1), dy = (-0.1, 0.02, 0.08); sxy = 0.01 + 0 + 0.008 = 0.018,
/// sxx = 0.02; slope = 0.9, intercept = 0.4 - 0.9 x 0.7 = -0.23; predicted (0.31, 0.40,
/// 0.49); effective robustness (-0.01, 0.02, -0.01).
#[test]
fn effective_robustness_matches_a_hand_computed_fit() {
    let Some((fit, er)) = effective_robustness(&[0.6, 0.7, 0.8], &[0.30, 0.42, 0.48]) else {
        panic!("three models with distinct clean accuracies have a fit");
    };
    assert!(close(fit.slope, 0.9, 1e-12), "{fit:?}");
    assert!(close(fit.intercept, -0.23, 1e-12), "{fit:?}");
    assert!(close(fit.predict(0.7), 0.40, 1e-12));
    let want = [-0.01, 0.02, -0.01];
    assert!(
        er.iter().zip(want).all(|(a, b)| close(*a, b, 1e-12)),
        "{er:?}"
    );
}

/// Two points: the line passes through both, so both residuals are 0; slope (0.5 - 0.2) /
/// (0.9 - 0.5) = 0.75, intercept 0.2 - 0.75 x 0.5 = -0.175.
#[test]
fn two_models_lie_on_their_line() {
    let Some((fit, er)) = effective_robustness(&[0.5, 0.9], &[0.2, 0.5]) else {
        panic!("two distinct points have a fit");
    };
    assert!(close(fit.slope, 0.75, 1e-12) && close(fit.intercept, -0.175, 1e-12));
    assert!(er.iter().all(|r| r.abs() < 1e-12), "{er:?}");
}

#[test]
fn degenerate_fits_are_none() {
    assert_eq!(linear_fit(&[0.7], &[0.4]), None, "one model");
    assert_eq!(
        linear_fit(&[0.7, 0.7, 0.7], &[0.1, 0.2, 0.3]),
        None,
        "equal clean"
    );
    assert_eq!(linear_fit(&[0.6, 0.7], &[0.1]), None, "lengths differ");
    assert_eq!(
        linear_fit(&[0.6, f64::NAN], &[0.1, 0.2]),
        None,
        "not finite"
    );
    assert!(effective_robustness(&[], &[]).is_none());
}

#[test]
fn a_missing_set_is_named_in_the_error() {
    // The report must say which average was refused: "15 benchmark" or "all 19".
    let m = model(None, constant(0.5, &BENCHMARK_15));
    let msg = mean_error(&m, CorruptionSet::All19)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("needs all of the all 19 corruptions; missing:"),
        "{msg}"
    );
    let m = model(None, constant(0.5, &["fog"]));
    let msg = mean_error(&m, CorruptionSet::Benchmark15)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("needs all of the 15 benchmark corruptions; missing:"),
        "{msg}"
    );
}

#[test]
fn array_rows_are_numbered_corruption_major() {
    // Corruption i, severity s (0-based) is row 5 i + s + 1: the 2nd corruption's 3rd
    // severity is row 8.
    let err = ModelErrors::from_arrays(
        "m",
        None,
        [("fog", [0.1; 5]), ("snow", [0.1, 0.1, 1.5, 0.1, 0.1])],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("row 8: error 1.5 outside [0, 1]"), "{err}");
}

#[test]
fn a_non_finite_value_refuses_the_fit_whatever_the_spread() {
    // Three distinct clean accuracies, so only the finiteness check can refuse these.
    assert_eq!(linear_fit(&[0.5, 0.6, f64::NAN], &[0.1, 0.2, 0.3]), None);
    assert_eq!(
        linear_fit(&[0.5, 0.6, 0.7], &[0.1, f64::INFINITY, 0.3]),
        None
    );
}

#[test]
fn half_of_alexnet_error_and_clean_has_relative_mce_50() {
    // Relative CE = (sum/2 - 5 clean_a/2) / (sum - 5 clean_a) = 0.5 for each of the 15.
    let m = model(Some(ALEXNET_CLEAN_ERROR / 2.0), scaled_alexnet(|e| e / 2.0));
    let rel = relative_mce(&m, alexnet()).unwrap_or(0.0);
    assert!(close(rel, 50.0, 1e-9), "{rel}");
}

#[test]
fn summary_carries_mce_and_relative_mce() {
    // Half of AlexNet's errors and clean error: CE and relative CE 0.5 for each of the 15.
    let m = model(Some(ALEXNET_CLEAN_ERROR / 2.0), scaled_alexnet(|e| e / 2.0));
    let s = summarize(&m, alexnet());
    assert!(s.normalised);
    assert!(close(s.mce.unwrap_or(0.0), 50.0, 1e-9), "{:?}", s.mce);
    let rel = s.relative_mce.unwrap_or(0.0);
    assert!(close(rel, 50.0, 1e-9), "{rel}");
}
