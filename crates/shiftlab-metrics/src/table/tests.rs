use super::*;

fn read(text: &str, unit: ErrorUnit) -> Result<Vec<ModelErrors>, MetricsError> {
    read_errors(text.as_bytes(), "errors.csv", None, unit)
}

fn message(r: Result<Vec<ModelErrors>, MetricsError>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

fn fog_rows(model: &str, first_line_value: &str) -> String {
    let mut s = format!("{model},fog,1,{first_line_value}\n");
    for sev in 2..=5 {
        s.push_str(&format!("{model},fog,{sev},40\n"));
    }
    s
}

#[test]
fn reads_models_in_order_with_clean_rows_and_percent() {
    let text = format!(
        "# comment line\nmodel,corruption,severity,error,note\n{}b,clean,0,25,x\n{}a,clean,,20\n",
        fog_rows("b", "30"),
        fog_rows("a", "50")
    );
    let models = read(&text, ErrorUnit::Percent).unwrap_or_default();
    let names: Vec<_> = models.iter().map(ModelErrors::name).collect();
    assert_eq!(names, ["b", "a"]);
    assert_eq!(models[0].clean_error(), Some(0.25));
    assert_eq!(models[1].clean_error(), Some(0.2));
    let fog = models[0].get("fog").and_then(|e| e.severities);
    assert_eq!(fog, Some([0.3, 0.4, 0.4, 0.4, 0.4]));
}

#[test]
fn line_numbers_count_comments_and_header() {
    // Line 1 comment, line 2 header, line 3 the bad row.
    let text = "# source\nmodel,corruption,severity,error\nm,fog,9,0.1\n";
    let msg = message(read(text, ErrorUnit::Fraction));
    assert!(msg.contains("row 3: severity 9 outside 1..5"), "{msg}");
}

#[test]
fn bad_rows_are_all_named() {
    let text = "model,corruption,severity,error\n\
                m,fogg,1,0.1\n\
                m,fog,x,0.1\n\
                m,fog,1,abc\n\
                m,fog,1,23.9\n\
                ,fog,1,0.1\n\
                m,clean,3,0.2\n\
                m,clean,0,0.2\n\
                m,clean,0,0.3\n\
                m,snow,1,0.5\n";
    let msg = message(read(text, ErrorUnit::Fraction));
    for want in [
        "row 2: unknown corruption \"fogg\"",
        "row 3: severity \"x\" is neither an integer nor `mean`",
        "row 4: error \"abc\" is not a number",
        "row 5: error 23.9 outside [0, 1] (percentages? use unit percent)",
        "row 6: empty model",
        "row 7: clean row has severity \"3\"",
        "row 9: duplicate clean error for \"m\" (first in row 8)",
        "snow lacks severities 2, 3, 4, 5 (has rows 10)",
    ] {
        assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
    }
}

#[test]
fn header_must_name_the_columns() {
    let msg = message(read("model,corr,sev,error\n", ErrorUnit::Fraction));
    assert!(
        msg.contains("row 1: header lacks column(s) corruption, severity"),
        "{msg}"
    );
}

#[test]
fn clean_file_merges_and_conflicts_are_named() {
    let clean = read_clean(
        "model,error\na,0.2\nz,0.1\n".as_bytes(),
        "clean.csv",
        ErrorUnit::Fraction,
    );
    let clean = clean.unwrap_or_default();
    let text = format!("model,corruption,severity,error\n{}", fog_rows("a", "0.3"));
    let text = text.replace(",40", ",0.4");
    let r = read_errors(
        text.as_bytes(),
        "e.csv",
        Some(clean.clone()),
        ErrorUnit::Fraction,
    );
    let msg = message(r);
    assert!(
        msg.contains("clean file row 3: model \"z\" has no rows"),
        "{msg}"
    );
    let mut only_a = clean;
    only_a.remove("z");
    let r = read_errors(
        text.as_bytes(),
        "e.csv",
        Some(only_a.clone()),
        ErrorUnit::Fraction,
    );
    let models = r.unwrap_or_default();
    assert_eq!(models.first().and_then(ModelErrors::clean_error), Some(0.2));
    let both = format!("{text}a,clean,0,0.2\n");
    let msg = message(read_errors(
        both.as_bytes(),
        "e.csv",
        Some(only_a),
        ErrorUnit::Fraction,
    ));
    assert!(
        msg.contains("row 7: clean error of \"a\" given here and in row 2"),
        "{msg}"
    );
}

#[test]
fn unit_parses() {
    assert_eq!("percent".parse::<ErrorUnit>(), Ok(ErrorUnit::Percent));
    assert_eq!("fraction".parse::<ErrorUnit>(), Ok(ErrorUnit::Fraction));
    assert!("pct".parse::<ErrorUnit>().is_err());
}

#[test]
fn mean_rows_stand_for_five_severities() {
    // fog mean 0.4 -> sum 2.0; a mean row beside per-level rows is rejected.
    let text = format!(
        "model,corruption,severity,error\nm,fog,mean,0.4\n{}m,snow,mean,0.5\n",
        fog_rows("m", "0.4")
            .replace("fog", "snow")
            .replace(",40", ",0.4")
    );
    let msg = message(read(&text, ErrorUnit::Fraction));
    assert!(
        msg.contains(
            "row 8: model \"m\": snow has a mean row and per-severity rows (3, 4, 5, 6, 7)"
        ),
        "{msg}"
    );
    let ok = "model,corruption,severity,error\nm,fog,MEAN,40\n";
    let models = read(ok, ErrorUnit::Percent).unwrap_or_default();
    let fog = models.first().and_then(|m| m.get("fog")).cloned();
    assert_eq!(fog.as_ref().map(|f| f.severities), Some(None));
    assert!((fog.map_or(0.0, |f| f.sum()) - 2.0).abs() < 1e-12);
}

#[test]
fn fractions_read_as_percent_are_refused() {
    let text = format!("model,corruption,severity,error\n{}", fog_rows("m", "0.3"));
    let text = text.replace(",40", ",0.4");
    let msg = message(read(&text, ErrorUnit::Percent));
    assert!(msg.contains("fractions? use unit fraction"), "{msg}");
}

#[test]
fn range_ends_are_accepted() {
    // 0 and the unit's maximum are valid errors (a perfect and a useless model).
    assert_eq!(ErrorUnit::Fraction.to_fraction(0.0), Ok(0.0));
    assert_eq!(ErrorUnit::Fraction.to_fraction(1.0), Ok(1.0));
    assert_eq!(ErrorUnit::Percent.to_fraction(0.0), Ok(0.0));
    assert_eq!(ErrorUnit::Percent.to_fraction(100.0), Ok(1.0));
    assert_eq!(ErrorUnit::Percent.to_fraction(25.0), Ok(0.25));
    assert!(ErrorUnit::Fraction.to_fraction(-1e-9).is_err());
    assert!(ErrorUnit::Percent.to_fraction(100.000_001).is_err());
}

#[test]
fn a_percentage_read_as_a_fraction_gets_the_hint_up_to_100() {
    // 100 as a fraction is out of range but a plausible percentage: the hint names the unit.
    let msg = ErrorUnit::Fraction.to_fraction(100.0).unwrap_err();
    assert!(msg.ends_with("(percentages? use unit percent)"), "{msg}");
    let msg = ErrorUnit::Fraction.to_fraction(100.5).unwrap_err();
    assert!(!msg.contains("percentages?"), "{msg}");
}
