//! Plain-text report of a [`Summary`], as printed by `shiftlab metrics`.
//!
//! Labels spell out what each number is (AlexNet-normalised mCE vs unnormalised mean error,
//! and over which corruptions) so the two are never confused.

use std::fmt::Write;

use crate::metrics::Summary;

/// Formats one model's summary as an aligned text block ending in a newline.
pub fn format_summary(s: &Summary) -> String {
    let mut out = format!("model {}\n", s.model);
    let pct = |v: Option<f64>| v.map(|x| format!("{:.2} %", 100.0 * x));
    let num = |v: Option<f64>| v.map(|x| format!("{x:.2}"));
    let missing = if s.missing_benchmark.is_empty() {
        "n/a (needs the clean error)".to_string()
    } else {
        format!("n/a (missing: {})", s.missing_benchmark.join(", "))
    };
    let lines = [
        ("clean error", pct(s.clean_error), "n/a (not given)".into()),
        (
            "mCE (AlexNet-normalised, 15 benchmark)",
            num(s.mce),
            missing.clone(),
        ),
        ("relative mCE (15 benchmark)", num(s.relative_mce), missing),
        (
            "mean error, 15 benchmark x 5 severities",
            pct(s.mean_error_15),
            "n/a".into(),
        ),
        (
            "mean error, all 19 x 5 severities",
            pct(s.mean_error_19),
            "n/a".into(),
        ),
    ];
    for (label, value, absent) in lines {
        let _ = writeln!(out, "  {label:<42} {}", value.unwrap_or(absent));
    }
    out.push_str(&corruption_table(s));
    out
}

fn corruption_table(s: &Summary) -> String {
    if s.per_corruption.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n  {:<20} {:>12} {:>8} {:>13}\n",
        "corruption", "mean error %", "CE", "relative CE"
    );
    for c in &s.per_corruption {
        let mark = if c.normaliser_verified { "" } else { "*" };
        let rel = c.relative_ce.map_or("-".to_string(), |r| format!("{r:.2}"));
        let name = format!("{}{mark}", c.corruption);
        let _ = writeln!(
            out,
            "  {name:<20} {:>12.2} {:>8.2} {rel:>13}",
            100.0 * c.mean_error,
            c.ce
        );
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
}
