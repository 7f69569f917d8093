//! Hand-written SVG figures (line charts, a scatter chart with fitted lines and a heat map): a few hundred bytes of markup each,
//! no plotting dependency, and text a test can read.

use std::fmt::Write;

/// Colours of successive series (Tableau 10), distinguishable in print and for most readers.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// One line of a chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Escapes text for XML content and attributes.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 520.0;
const H: f64 = 320.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 44.0;

/// A line chart with integer x ticks from the data and `y` as the value range.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    y: (f64, f64),
) -> String {
    let (y0, y1) = if y.1 > y.0 { y } else { (y.0 - 0.5, y.0 + 0.5) };
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (x0, x1) = if x1 > x0 { (x0, x1) } else { (0.0, 5.0) };
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |v: f64| H - BOTTOM - (v - y0) / (y1 - y0) * (H - TOP - BOTTOM);
    let mut s = header(W, H, title);
    axes(&mut s, x_label, y_label);
    for i in 0..=4 {
        let v = y0 + (y1 - y0) * i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            py(v) + 4.0,
            tick(v, (y1 - y0) / 4.0),
            y = py(v)
        );
    }
    for x in (x0.ceil() as i64)..=(x1.floor() as i64) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{x}</text>"#,
            px(x as f64),
            H - BOTTOM + 16.0
        );
    }
    for (i, line) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let pts: Vec<String> = line
            .points
            .iter()
            .map(|&(x, v)| format!("{:.1},{:.1}", px(x), py(v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(s, r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>"#);
        }
        legend(&mut s, i, &line.name, colour);
    }
    s.push_str("</svg>\n");
    s
}

/// Points of one colour in a scatter chart, each labelled, with an optional fitted line
/// `(intercept, slope)` drawn across the points' x range.
pub struct Scatter {
    pub name: String,
    pub points: Vec<(f64, f64, String)>,
    pub line: Option<(f64, f64)>,
}

/// The range `[lo, hi]` of `values`, widened to multiples of 0.1 and kept non-empty.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let (lo, hi) = ((lo * 10.0).floor() / 10.0, (hi * 10.0).ceil() / 10.0);
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.1, hi + 0.1)
    }
}

/// A scatter chart with both axes on one scale (the dashed diagonal is y = x, no loss), one
/// colour per [`Scatter`], point labels, and each series' fitted line.
pub fn scatter_chart(title: &str, x_label: &str, y_label: &str, series: &[Scatter]) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (v0, v1) = padded_range(all.flat_map(|p| [p.0, p.1]));
    let px = |x: f64| LEFT + (x - v0) / (v1 - v0) * (W - LEFT - RIGHT);
    let py = |v: f64| H - BOTTOM - (v - v0) / (v1 - v0) * (H - TOP - BOTTOM);
    let mut s = header(W, H, title);
    axes(&mut s, x_label, y_label);
    for i in 0..=4 {
        let v = v0 + (v1 - v0) * i as f64 / 4.0;
        let label = tick(v, (v1 - v0) / 4.0);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{label}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{label}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            py(v) + 4.0,
            px(v),
            H - BOTTOM + 16.0,
            y = py(v)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
        px(v0),
        py(v0),
        px(v1),
        py(v1)
    );
    for (i, sc) in series.iter().enumerate() {
        scatter_series(&mut s, sc, PALETTE[i % PALETTE.len()], &px, &py);
        legend(&mut s, i, &sc.name, PALETTE[i % PALETTE.len()]);
    }
    s.push_str("</svg>\n");
    s
}

/// One series' fitted line (clipped to its points' x range), points and point labels.
fn scatter_series(
    s: &mut String,
    sc: &Scatter,
    colour: &str,
    px: &dyn Fn(f64) -> f64,
    py: &dyn Fn(f64) -> f64,
) {
    let xs = sc.points.iter().map(|p| p.0);
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if let (Some((a, b)), true) = (sc.line, x1 > x0) {
        let _ = write!(
            s,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5"/>"#,
            px(x0),
            py(a + b * x0),
            px(x1),
            py(a + b * x1)
        );
    }
    for (x, y, label) in &sc.points {
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="9">{}</text>"#,
            px(*x),
            py(*y),
            px(*x) + 6.0,
            py(*y) - 4.0,
            escape(label)
        );
    }
}

/// The `i`-th legend entry, right of the plot.
fn legend(s: &mut String, i: usize, name: &str, colour: &str) {
    let ly = TOP + 14.0 + 16.0 * i as f64;
    let _ = write!(
        s,
        r#"<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
        W - RIGHT + 12.0,
        ly - 4.0,
        W - RIGHT + 28.0,
        ly,
        escape(name)
    );
}

/// Tick labels with enough decimals to tell ticks `step` apart.
fn tick(v: f64, step: f64) -> String {
    let decimals = ((-step.log10()).ceil() + 1.0).clamp(0.0, 4.0) as usize;
    format!("{v:.decimals$}")
}

fn header(w: f64, h: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="{:.1}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        w / 2.0,
        escape(title)
    )
}

fn axes(s: &mut String, x_label: &str, y_label: &str) {
    let (xb, yb) = (W - RIGHT, H - BOTTOM);
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{yb}" stroke="black"/><line x1="{LEFT}" y1="{yb}" x2="{xb}" y2="{yb}" stroke="black"/>"#
    );
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text>"#,
        (LEFT + xb) / 2.0,
        H - 8.0,
        escape(x_label)
    );
    let _ = write!(
        s,
        r#"<text transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle" font-size="12">{}</text>"#,
        (TOP + yb) / 2.0,
        escape(y_label)
    );
}

/// A heat map of values in 0..1 (rows x columns; None is grey), each cell labelled in percent.
pub fn heat_map(
    title: &str,
    rows: &[String],
    columns: &[String],
    values: &[Vec<Option<f64>>],
) -> String {
    let (cell_w, cell_h, left, top) = (34.0, 24.0, 200.0, 130.0);
    let w = left + cell_w * columns.len() as f64 + 20.0;
    let h = top + cell_h * rows.len() as f64 + 20.0;
    let mut s = header(w, h, title);
    for (j, c) in columns.iter().enumerate() {
        let x = left + cell_w * (j as f64 + 0.5);
        let _ = write!(
            s,
            r#"<text transform="translate({x:.1},{:.1}) rotate(-60)" font-size="11">{}</text>"#,
            top - 6.0,
            escape(c)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + cell_h * i as f64;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
            left - 6.0,
            y + cell_h / 2.0 + 4.0,
            escape(r)
        );
        for (j, v) in values
            .get(i)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let x = left + cell_w * j as f64;
            let (fill, label) = match v {
                Some(v) => (shade(*v), format!("{:.0}", 100.0 * v)),
                None => ("#eeeeee".to_string(), String::new()),
            };
            let ink = if v.is_some_and(|v| v > 0.6) {
                "white"
            } else {
                "black"
            };
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{cell_w}" height="{cell_h}" fill="{fill}" stroke="white"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="{ink}">{label}</text>"#,
                x + cell_w / 2.0,
                y + cell_h / 2.0 + 4.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// White (0) to dark red (1).
fn shade(v: f64) -> String {
    let t = v.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        lerp(255.0, 140.0),
        lerp(255.0, 10.0),
        lerp(255.0, 20.0)
    )
}
