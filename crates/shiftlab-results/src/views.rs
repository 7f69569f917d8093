//! The metric views: SQL over `metrics`, `alexnet_errors` and `run_info`, so every number a
//! report prints can be re-derived with `shiftlab query`. Formulas are those of
//! `shiftlab_metrics::metrics` (and `docs/metrics.md`); the tests check the two agree.
//!
//! `metrics.shift_family` tells the clean baseline (`clean`), the ImageNet-C corruptions made on
//! the fly (`corruption`) or read from released files (`released_corruption`: ImageNet-C,
//! CIFAR-10-C evaluated as a `[[targets]]` entry), the synthetic families and dataset-level
//! shifts (`dataset`) apart. The ImageNet-C views (errors, CE, mCE) read only `clean` and the
//! two corruption families, with an `origin` column (`on_the_fly` / `released`) that keeps the
//! two apart in every mean, so other shifts never enter an ImageNet-C number and a run holding
//! both never averages them together; `family_robustness` and `effective_robustness` compare
//! the families.

/// Per run, model, probe, origin, corruption and severity: the error beside the clean error
/// (for released corruptions too: the source's clean rows are their reference).
pub const CORRUPTION_ERRORS: &str = "CREATE VIEW corruption_errors AS
SELECT m.run, m.model, m.probe,
       CASE WHEN m.shift_family = 'released_corruption' THEN 'released' ELSE 'on_the_fly' END
         AS origin,
       m.shift AS corruption, m.shift_group, m.severity, m.n,
       m.error, m.top5_error, m.mean_cosine_to_clean, m.ece,
       c.error AS clean_error, m.error - c.error AS error_increase
FROM metrics m
LEFT JOIN metrics c
  ON c.run = m.run AND c.model = m.model AND c.probe = m.probe AND c.shift_family = 'clean'
WHERE m.shift_family IN ('corruption', 'released_corruption')";

/// Per run, model, probe, origin and corruption: mean error over its severities and, for complete
/// corruptions (5 severities) of `imagenet224` runs, CE and relative CE (x100) against AlexNet.
/// The 4 extra corruptions' AlexNet sums come from 5 x an unverified mean (`alexnet_verified`).
pub const CORRUPTION_SUMMARY: &str = "CREATE VIEW corruption_summary AS
WITH per AS (
  SELECT run, model, probe, origin, corruption, shift_group,
         COUNT(DISTINCT severity) AS severities,
         AVG(error) AS mean_error, SUM(error) AS error_sum,
         MAX(clean_error) AS clean_error,
         AVG(mean_cosine_to_clean) AS mean_cosine_to_clean
  FROM corruption_errors
  GROUP BY run, model, probe, origin, corruption, shift_group),
ref AS (
  SELECT corruption, benchmark_15, verified,
         COALESCE(s1 + s2 + s3 + s4 + s5, 5 * mean) AS alexnet_sum,
         (SELECT mean FROM alexnet_errors WHERE corruption = 'clean') AS alexnet_clean
  FROM alexnet_errors WHERE corruption <> 'clean')
SELECT p.run, p.model, p.probe, p.origin, p.corruption, p.shift_group, p.severities,
       p.mean_error, p.clean_error, p.mean_cosine_to_clean,
       COALESCE(r.benchmark_15, false) AS benchmark_15,
       r.alexnet_sum IS NOT NULL AS alexnet_known,
       r.verified AS alexnet_verified,
       CASE WHEN i.preset = 'imagenet224' AND p.severities = 5
            THEN 100 * p.error_sum / r.alexnet_sum END AS ce,
       CASE WHEN i.preset = 'imagenet224' AND p.severities = 5
            THEN 100 * (p.error_sum - 5 * p.clean_error) / (r.alexnet_sum - 5 * r.alexnet_clean)
       END AS relative_ce
FROM per p
JOIN run_info i ON i.run = p.run
LEFT JOIN ref r ON r.corruption = p.corruption";

/// Per run, model, probe and origin (`on_the_fly`, `released`; NULL for a run without
/// corruptions): the headline numbers. Means over a corruption set are NULL unless
/// every corruption of the set has all 5 severities; mCE and relative mCE are NULL unless the
/// run used the `imagenet224` preset (the only one AlexNet's errors normalise).
pub const ROBUSTNESS: &str = "CREATE VIEW robustness AS
WITH agg AS (
  SELECT run, model, probe, origin,
         COUNT(*) AS corruptions,
         SUM(mean_error * severities) / SUM(severities) AS mean_error,
         SUM(CASE WHEN benchmark_15 AND severities = 5 THEN 1 ELSE 0 END) AS complete_15,
         SUM(CASE WHEN alexnet_known AND severities = 5 THEN 1 ELSE 0 END) AS complete_19,
         AVG(CASE WHEN benchmark_15 THEN mean_error END) AS mean_15,
         AVG(CASE WHEN alexnet_known THEN mean_error END) AS mean_19,
         AVG(CASE WHEN benchmark_15 THEN ce END) AS ce_15,
         AVG(CASE WHEN benchmark_15 THEN relative_ce END) AS relative_ce_15,
         AVG(mean_cosine_to_clean) AS mean_cosine_to_clean
  FROM corruption_summary GROUP BY run, model, probe, origin)
SELECT c.run, c.model, c.probe, i.preset,
       c.error AS clean_error,
       COALESCE(a.corruptions, 0) AS corruptions,
       a.mean_error,
       CASE WHEN a.complete_15 = 15 THEN a.mean_15 END AS mean_error_15,
       CASE WHEN a.complete_19 = 19 THEN a.mean_19 END AS mean_error_19,
       1 - a.mean_error AS mean_accuracy,
       CASE WHEN a.complete_15 = 15 THEN 1 - a.mean_15 END AS mean_accuracy_15,
       CASE WHEN i.preset = 'imagenet224' AND a.complete_15 = 15 THEN a.ce_15 END AS mce,
       CASE WHEN i.preset = 'imagenet224' AND a.complete_15 = 15 THEN a.relative_ce_15 END
         AS relative_mce,
       a.mean_cosine_to_clean, a.origin
FROM metrics c
JOIN run_info i ON i.run = c.run
LEFT JOIN agg a ON a.run = c.run AND a.model = c.model AND a.probe = c.probe
WHERE c.shift_family = 'clean'";

/// Per run, model, shift family and severity: mean cosine of shifted to clean embeddings
/// (the clean row is family `clean`, severity 0, cosine 1). Label-free, so it does not depend
/// on the probe; dataset-level shifts have no clean twin (NULL cosine) and are left out.
pub const DRIFT: &str = "CREATE VIEW drift AS
SELECT run, model, shift_family, severity, AVG(mean_cosine_to_clean) AS mean_cosine_to_clean,
       COUNT(DISTINCT shift) AS shifts
FROM metrics
WHERE shift_family <> 'dataset' AND mean_cosine_to_clean IS NOT NULL
GROUP BY run, model, shift_family, severity";

/// Per run, model, probe, shift family, group and severity: mean error over the group's
/// shifts: the ImageNet-C groups and the synthetic families (whose group is the family).
/// Dataset-level shifts have no severity scale and are left out.
pub const GROUP_ERRORS: &str = "CREATE VIEW group_errors AS
SELECT run, model, probe, shift_family, shift_group, severity, AVG(error) AS mean_error,
       COUNT(DISTINCT shift) AS shifts, COUNT(DISTINCT shift) AS corruptions
FROM metrics WHERE shift_family NOT IN ('clean', 'dataset')
GROUP BY run, model, probe, shift_family, shift_group, severity";

/// Per run, model, probe and shift set (a family, clean excluded; each dataset-level target its
/// own set): accuracy averaged over its (shift, severity) rows, beside the clean accuracy.
pub const FAMILY_ROBUSTNESS: &str = "CREATE VIEW family_robustness AS
WITH clean AS (
  SELECT run, model, probe, 1 - error AS clean_accuracy
  FROM metrics WHERE shift_family = 'clean'),
fam AS (
  SELECT run, model, probe, shift_family,
         CASE WHEN shift_family = 'dataset' THEN shift_group ELSE shift_family END AS shift_set,
         AVG(1 - error) AS shifted_accuracy,
         COUNT(DISTINCT shift) AS shifts, COUNT(*) AS \"rows\"
  FROM metrics WHERE shift_family <> 'clean'
  GROUP BY run, model, probe, shift_family,
           CASE WHEN shift_family = 'dataset' THEN shift_group ELSE shift_family END)
SELECT f.run, f.model, f.probe, f.shift_family, f.shift_set, c.clean_accuracy, f.shifted_accuracy,
       c.clean_accuracy - f.shifted_accuracy AS accuracy_drop, f.shifts, f.\"rows\"
FROM fam f
LEFT JOIN clean c ON c.run = f.run AND c.model = f.model AND c.probe = f.probe";

/// Per run, probe and shift set, across models: the least-squares line shifted accuracy =
/// intercept + slope x clean accuracy, and each model's distance above it (effective
/// robustness, Taori et al. 2020, in plain accuracy; `logit_*` repeat the fit in logit space as
/// Taori et al. do, mapped back to accuracy). Two passes (means, then centred sums) as
/// `shiftlab_metrics::metrics::linear_fit`; NULL fit with fewer than 2 models or equal clean
/// accuracies.
pub const EFFECTIVE_ROBUSTNESS: &str = "CREATE VIEW effective_robustness AS
WITH pts AS (
  SELECT run, model, probe, shift_family, shift_set, clean_accuracy, shifted_accuracy,
         CASE WHEN clean_accuracy > 0 AND clean_accuracy < 1
              THEN ln(clean_accuracy / (1 - clean_accuracy)) END AS lx,
         CASE WHEN shifted_accuracy > 0 AND shifted_accuracy < 1
              THEN ln(shifted_accuracy / (1 - shifted_accuracy)) END AS ly
  FROM family_robustness WHERE clean_accuracy IS NOT NULL),
means AS (
  SELECT run, probe, shift_set, COUNT(*) AS models,
         AVG(clean_accuracy) AS mx, AVG(shifted_accuracy) AS my,
         MAX(clean_accuracy) > MIN(clean_accuracy) AS spread,
         COUNT(*) = COUNT(lx) AND COUNT(*) = COUNT(ly) AND MAX(lx) > MIN(lx) AS logit_ok,
         AVG(lx) AS lmx, AVG(ly) AS lmy
  FROM pts GROUP BY run, probe, shift_set),
sums AS (
  SELECT p.run, p.probe, p.shift_set,
         SUM((p.clean_accuracy - m.mx) * (p.shifted_accuracy - m.my)) AS sxy,
         SUM((p.clean_accuracy - m.mx) * (p.clean_accuracy - m.mx)) AS sxx,
         SUM((p.lx - m.lmx) * (p.ly - m.lmy)) AS lsxy,
         SUM((p.lx - m.lmx) * (p.lx - m.lmx)) AS lsxx
  FROM pts p JOIN means m
    ON m.run = p.run AND m.probe = p.probe AND m.shift_set = p.shift_set
  GROUP BY p.run, p.probe, p.shift_set),
fit AS (
  SELECT m.run, m.probe, m.shift_set, m.models,
         CASE WHEN m.models >= 2 AND m.spread THEN s.sxy / s.sxx END AS slope,
         CASE WHEN m.models >= 2 AND m.spread THEN m.my - s.sxy / s.sxx * m.mx END AS intercept,
         CASE WHEN m.models >= 2 AND m.logit_ok THEN s.lsxy / s.lsxx END AS logit_slope,
         CASE WHEN m.models >= 2 AND m.logit_ok THEN m.lmy - s.lsxy / s.lsxx * m.lmx END
           AS logit_intercept
  FROM means m JOIN sums s
    ON s.run = m.run AND s.probe = m.probe AND s.shift_set = m.shift_set),
expected AS (
  SELECT p.run, p.model, p.probe, p.shift_family, p.shift_set, p.clean_accuracy,
         p.shifted_accuracy, f.models, f.slope, f.intercept, f.intercept + f.slope * p.clean_accuracy
           AS expected_accuracy,
         f.logit_slope, f.logit_intercept,
         1 / (1 + exp(-(f.logit_intercept + f.logit_slope * p.lx))) AS logit_expected_accuracy
  FROM pts p JOIN fit f
    ON f.run = p.run AND f.probe = p.probe AND f.shift_set = p.shift_set)
SELECT run, model, probe, shift_family, shift_set, clean_accuracy, shifted_accuracy, models, slope,
       intercept, expected_accuracy, shifted_accuracy - expected_accuracy AS effective_robustness,
       logit_slope, logit_intercept, logit_expected_accuracy,
       shifted_accuracy - logit_expected_accuracy AS logit_effective_robustness
FROM expected";

/// Per run, probe and model: clean error, mean error over every shifted metric row (all
/// families; each (shift, severity) row weighs the same) and the model's rank by it within its
/// run and probe (1 = lowest shifted error; ties share a rank).
pub const RANKING: &str = "CREATE VIEW ranking AS
WITH s AS (
  SELECT run, model, probe, AVG(error) AS mean_shifted_error, COUNT(*) AS shifted_rows
  FROM metrics WHERE shift_family <> 'clean'
  GROUP BY run, model, probe)
SELECT c.run, c.probe,
       RANK() OVER (PARTITION BY c.run, c.probe ORDER BY s.mean_shifted_error) AS rank,
       c.model, c.error AS clean_error, s.mean_shifted_error,
       s.mean_shifted_error - c.error AS error_increase, s.shifted_rows
FROM metrics c
JOIN s ON s.run = c.run AND s.model = c.model AND s.probe = c.probe
WHERE c.shift_family = 'clean'";

/// Per run, model, probe, origin and corruption: CE and relative CE (x100) against the run's
/// in-run baseline model (table `baseline`) instead of AlexNet, the way CIFAR-10-C papers
/// normalise by their own ResNet: 100 x sum_s E / sum_s E_base, and 100 x sum_s (E - E_clean)
/// / sum_s (E_base - E_clean,base), for corruptions with all 5 severities in both (NULL
/// otherwise, or when the baseline's denominator is 0).
pub const BASELINE_CORRUPTIONS: &str = "CREATE VIEW baseline_corruptions AS
SELECT m.run, m.model, m.probe, m.origin, m.corruption, m.shift_group, m.benchmark_15,
       b.baseline, m.mean_error, m.clean_error,
       r.mean_error AS baseline_mean_error, r.clean_error AS baseline_clean_error,
       CASE WHEN m.severities = 5 AND r.severities = 5
            THEN 100 * m.mean_error / NULLIF(r.mean_error, 0) END AS ce_vs_baseline,
       CASE WHEN m.severities = 5 AND r.severities = 5
            THEN 100 * (m.mean_error - m.clean_error) / NULLIF(r.mean_error - r.clean_error, 0)
       END AS relative_ce_vs_baseline
FROM corruption_summary m
JOIN baseline b ON b.run = m.run
JOIN corruption_summary r
  ON r.run = m.run AND r.model = b.baseline AND r.probe = m.probe AND r.origin = m.origin
 AND r.corruption = m.corruption";

/// Per run, model, probe and origin: the means of `baseline_corruptions` over the 15 benchmark
/// corruptions it has values for (`corruptions` says how many; 15 for the whole benchmark).
/// The baseline itself scores 100. Not the ImageNet-C mCE: that one is AlexNet's.
pub const BASELINE_ROBUSTNESS: &str = "CREATE VIEW baseline_robustness AS
SELECT run, model, probe, origin, MAX(baseline) AS baseline,
       SUM(CASE WHEN benchmark_15 AND ce_vs_baseline IS NOT NULL THEN 1 ELSE 0 END)
         AS corruptions,
       AVG(CASE WHEN benchmark_15 THEN ce_vs_baseline END) AS mce_vs_baseline,
       AVG(CASE WHEN benchmark_15 THEN relative_ce_vs_baseline END) AS relative_mce_vs_baseline
FROM baseline_corruptions
GROUP BY run, model, probe, origin";

/// Per run, paradigm, probe, shift family and severity (clean: family `clean`, severity 0):
/// each model's error averaged over the family's shifts at that severity, then across the
/// paradigm's models: their mean, the spread (min, max, sample standard deviation; NULL for a
/// paradigm of one model) and how many models. Models without a `paradigm` are left out, and
/// dataset-level shifts (no severity scale) too.
pub const PARADIGM_ROBUSTNESS: &str = "CREATE VIEW paradigm_robustness AS
WITH per_model AS (
  SELECT run, paradigm, model, probe, shift_family, severity, AVG(error) AS error,
         COUNT(DISTINCT shift) AS shifts
  FROM metrics WHERE paradigm IS NOT NULL AND shift_family <> 'dataset'
  GROUP BY run, paradigm, model, probe, shift_family, severity)
SELECT run, paradigm, probe, shift_family, severity, COUNT(*) AS models,
       AVG(error) AS mean_error, MIN(error) AS min_error, MAX(error) AS max_error,
       STDDEV_SAMP(error) AS std_error, MAX(shifts) AS shifts
FROM per_model
GROUP BY run, paradigm, probe, shift_family, severity";

/// All views, in dependency order, with their names.
pub const VIEWS: [(&str, &str); 11] = [
    ("corruption_errors", CORRUPTION_ERRORS),
    ("corruption_summary", CORRUPTION_SUMMARY),
    ("robustness", ROBUSTNESS),
    ("drift", DRIFT),
    ("group_errors", GROUP_ERRORS),
    ("family_robustness", FAMILY_ROBUSTNESS),
    ("effective_robustness", EFFECTIVE_ROBUSTNESS),
    ("ranking", RANKING),
    ("baseline_corruptions", BASELINE_CORRUPTIONS),
    ("baseline_robustness", BASELINE_ROBUSTNESS),
    ("paradigm_robustness", PARADIGM_ROBUSTNESS),
];
