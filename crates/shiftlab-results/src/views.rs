//! The metric views: SQL over `metrics`, `alexnet_errors` and `run_info`, so every number a
//! report prints can be re-derived with `shiftlab query`. Formulas are those of
//! `shiftlab_probe::metrics` (and `docs/metrics.md`); the tests check the two agree.

/// Per run, model, probe, corruption and severity: the error beside the clean error.
pub const CORRUPTION_ERRORS: &str = "CREATE VIEW corruption_errors AS
SELECT m.run, m.model, m.probe, m.shift AS corruption, m.shift_group, m.severity, m.n,
       m.error, m.top5_error, m.mean_cosine_to_clean, m.ece,
       c.error AS clean_error, m.error - c.error AS error_increase
FROM metrics m
LEFT JOIN metrics c
  ON c.run = m.run AND c.model = m.model AND c.probe = m.probe AND c.shift = 'clean'
WHERE m.shift <> 'clean'";

/// Per run, model, probe and corruption: mean error over its severities and, for complete
/// corruptions (5 severities) of `imagenet224` runs, CE and relative CE (x100) against AlexNet.
/// The 4 extra corruptions' AlexNet sums come from 5 x an unverified mean (`alexnet_verified`).
pub const CORRUPTION_SUMMARY: &str = "CREATE VIEW corruption_summary AS
WITH per AS (
  SELECT run, model, probe, corruption, shift_group,
         COUNT(DISTINCT severity) AS severities,
         AVG(error) AS mean_error, SUM(error) AS error_sum,
         MAX(clean_error) AS clean_error,
         AVG(mean_cosine_to_clean) AS mean_cosine_to_clean
  FROM corruption_errors
  GROUP BY run, model, probe, corruption, shift_group),
ref AS (
  SELECT corruption, benchmark_15, verified,
         COALESCE(s1 + s2 + s3 + s4 + s5, 5 * mean) AS alexnet_sum,
         (SELECT mean FROM alexnet_errors WHERE corruption = 'clean') AS alexnet_clean
  FROM alexnet_errors WHERE corruption <> 'clean')
SELECT p.run, p.model, p.probe, p.corruption, p.shift_group, p.severities,
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

/// Per run, model and probe: the headline numbers. Means over a corruption set are NULL unless
/// every corruption of the set has all 5 severities; mCE and relative mCE are NULL unless the
/// run used the `imagenet224` preset (the only one AlexNet's errors normalise).
pub const ROBUSTNESS: &str = "CREATE VIEW robustness AS
WITH agg AS (
  SELECT run, model, probe,
         COUNT(*) AS corruptions,
         SUM(mean_error * severities) / SUM(severities) AS mean_error,
         SUM(CASE WHEN benchmark_15 AND severities = 5 THEN 1 ELSE 0 END) AS complete_15,
         SUM(CASE WHEN alexnet_known AND severities = 5 THEN 1 ELSE 0 END) AS complete_19,
         AVG(CASE WHEN benchmark_15 THEN mean_error END) AS mean_15,
         AVG(CASE WHEN alexnet_known THEN mean_error END) AS mean_19,
         AVG(CASE WHEN benchmark_15 THEN ce END) AS ce_15,
         AVG(CASE WHEN benchmark_15 THEN relative_ce END) AS relative_ce_15,
         AVG(mean_cosine_to_clean) AS mean_cosine_to_clean
  FROM corruption_summary GROUP BY run, model, probe)
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
       a.mean_cosine_to_clean
FROM metrics c
JOIN run_info i ON i.run = c.run
LEFT JOIN agg a ON a.run = c.run AND a.model = c.model AND a.probe = c.probe
WHERE c.shift = 'clean'";

/// Per run, model and severity: mean cosine of shifted to clean embeddings over the
/// corruptions (severity 0 is clean, cosine 1). Label-free, so it does not depend on the probe.
pub const DRIFT: &str = "CREATE VIEW drift AS
SELECT run, model, severity, AVG(mean_cosine_to_clean) AS mean_cosine_to_clean,
       COUNT(DISTINCT shift) AS shifts
FROM metrics GROUP BY run, model, severity";

/// Per run, model, probe, corruption group and severity: mean error over the group.
pub const GROUP_ERRORS: &str = "CREATE VIEW group_errors AS
SELECT run, model, probe, shift_group, severity, AVG(error) AS mean_error,
       COUNT(DISTINCT shift) AS corruptions
FROM metrics WHERE shift <> 'clean'
GROUP BY run, model, probe, shift_group, severity";

/// All views, in dependency order, with their names.
pub const VIEWS: [(&str, &str); 5] = [
    ("corruption_errors", CORRUPTION_ERRORS),
    ("corruption_summary", CORRUPTION_SUMMARY),
    ("robustness", ROBUSTNESS),
    ("drift", DRIFT),
    ("group_errors", GROUP_ERRORS),
];
