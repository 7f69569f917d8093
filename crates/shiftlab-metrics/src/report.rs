//! Plain-text report of a [`Summary`], as printed by `shiftlab metrics`.
//!
//! Labels spell out what each number is (AlexNet-normalised mCE vs unnormalised mean error,
//! and over which corruptions) so the two are never confused.

use std::fmt::Write;

use crate::metrics::Summary;

/// Formats one model's summary as an aligned text block ending in a newline.
pub fn format_summary(s: &Summary) -> String {
    let mut out = format!("model {}\n", s.model);
    for (label, value) in headline(s) {
        let _ = writeln!(out, "  {label:<42} {value}");
    }
    out.push_str(&corruption_table(s));
    out
}

/// (label, value or why absent) lines: normalised metrics first where there is a normaliser.
fn headline(s: &Summary) -> Vec<(&'static str, String)> {
    let pct = |v: Option<f64>, absent: &str| {
        v.map_or(absent.to_string(), |x| format!("{:.2} %", 100.0 * x))
    };
    let num = |v: Option<f64>, absent: &str| v.map_or(absent.to_string(), |x| format!("{x:.2}"));
    let missing = format!("n/a (missing: {})", s.missing_benchmark.join(", "));
    let (mce_absent, rel_absent) = if s.missing_benchmark.is_empty() {
        ("n/a", "n/a (needs the clean error)")
    } else {
        (missing.as_str(), missing.as_str())
    };
    let mut lines = vec![("clean error", pct(s.clean_error, "n/a (not given)"))];
    if s.normalised {
        lines.push((
            "mCE (AlexNet-normalised, 15 benchmark)",
            num(s.mce, mce_absent),
        ));
        lines.push((
            "relative mCE (15 benchmark)",
            num(s.relative_mce, rel_absent),
        ));
    }
    let (e15, e19) = (s.mean_error_15, s.mean_error_19);
    lines.push((
        "mean error, 15 benchmark x 5 severities",
        pct(e15, "n/a (needs all 15)"),
    ));
    lines.push((
        "mean error, all 19 x 5 severities",
        pct(e19, "n/a (needs all 19)"),
    ));
    if !s.normalised {
        let acc = |e: Option<f64>| e.map(|e| 1.0 - e);
        lines.push((
            "mean accuracy, 15 benchmark x 5 severities",
            pct(acc(e15), "n/a (needs all 15)"),
        ));
        lines.push((
            "mean accuracy, all 19 x 5 severities",
            pct(acc(e19), "n/a (needs all 19)"),
        ));
    }
    lines
}

fn corruption_table(s: &Summary) -> String {
    if s.per_corruption.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n  {:<20} {:>12} {:>8} {:>13}\n",
        "corruption", "mean error %", "CE", "relative CE"
    );
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}"));
    for c in &s.per_corruption {
        let mark = if c.normaliser_verified { "" } else { "*" };
        let name = format!("{}{mark}", c.corruption);
        let (ce, rel) = (opt(c.ce), opt(c.relative_ce));
        let err = 100.0 * c.mean_error;
        let _ = writeln!(out, "  {name:<20} {err:>12.2} {ce:>8} {rel:>13}");
    }
    if s.per_corruption.iter().any(|c| !c.normaliser_verified) {
        out.push_str("  * AlexNet normaliser unverified (third-party mean); not used in mCE\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{summarize, ModelErrors};
    use crate::AlexNetTable;

    #[test]
    fn report_names_metrics_plainly_and_flags_extra_corruptions() {
        let m = ModelErrors::from_arrays(
            "toy",
            Some(0.25),
            [("brightness", [0.5; 5]), ("spatter", [0.5; 5])],
        );
        let s = m.map(|m| summarize(&m, AlexNetTable::embedded()));
        let text = s.map(|s| format_summary(&s)).unwrap_or_default();
        assert!(text.starts_with("model toy\n"), "{text}");
        assert!(text.contains("clean error"), "{text}");
        assert!(text.contains("25.00 %"), "{text}");
        assert!(text.contains("n/a (missing: gaussian_noise"), "{text}");
        // Brightness CE 88.56 and relative CE 192.17 (see the metrics tests).
        assert!(text.contains("brightness"), "{text}");
        assert!(text.contains("88.56"), "{text}");
        assert!(text.contains("192.17"), "{text}");
        assert!(text.contains("spatter*"), "{text}");
        assert!(text.contains("unverified"), "{text}");
    }

    #[test]
    fn unnormalised_report_has_mean_accuracy_and_no_mce() {
        let m = ModelErrors::from_arrays("cifar", None, [("fog", [0.1; 5])]);
        let text = m
            .map(|m| format_summary(&crate::metrics::summarize_unnormalised(&m)))
            .unwrap_or_default();
        assert!(!text.contains("mCE"), "{text}");
        assert!(
            text.contains("mean accuracy, 15 benchmark x 5 severities"),
            "{text}"
        );
        assert!(text.contains("fog"), "{text}");
        assert!(text.contains("10.00"), "{text}");
    }

    #[test]
    fn mean_accuracy_is_one_minus_mean_error() {
        // Every benchmark corruption at error 0.1: mean error 10 %, mean accuracy 90 %.
        let arrays = crate::corruptions::BENCHMARK_15.map(|c| (c, [0.1; 5]));
        let m = ModelErrors::from_arrays("cifar", None, arrays);
        let text = m
            .map(|m| format_summary(&crate::metrics::summarize_unnormalised(&m)))
            .unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.contains("mean accuracy, 15 benchmark"))
            .unwrap_or_default();
        assert!(line.contains("90.00 %"), "{text}");
    }
}
