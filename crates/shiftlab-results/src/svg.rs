//! Hand-written SVG figures (small multiples of line charts, scatter panels with fitted lines,
//! a heat map): no plotting dependency, and text a test can read. Colours are indices into one
//! palette that the caller assigns per model, so a model looks the same in every figure.

use std::fmt::Write;

/// Colours of models (Tableau 20: the ten Tableau 10 colours, then their light partners), so
/// up to 20 models keep distinct colours; a report gives each model one index for every figure.
pub const PALETTE: [&str; 20] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63",
    "#d4a6c8", "#fabfd2", "#d7b5a6", "#79706e",
];

/// The colour of series index `i` (wrapping after [`PALETTE`]).
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Dash patterns that tell lines of one colour apart (e.g. the probes of one model).
const DASHES: [&str; 4] = ["", "6 3", "2 3", "8 3 2 3"];

/// One line of a chart: its colour (a [`PALETTE`] index) and dash style (a `DASHES` index).
pub struct Series {
    pub name: String,
    pub colour: usize,
    pub dash: usize,
    pub points: Vec<(f64, f64)>,
}

/// Escapes text for XML content and attributes.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Width of bold sans-serif text, estimated on the wide side (0.62 em per character): the
/// renderer's fonts are unknown, so the estimate only decides when to squeeze.
fn text_width(text: &str, size: f64) -> f64 {
    0.62 * size * text.chars().count() as f64
}

/// Attributes that squeeze a centred label into `max` pixels when it would be wider (a long
/// panel title otherwise runs into the next panel or off the figure); empty when it fits.
fn fit(text: &str, size: f64, max: f64) -> String {
    if text_width(text, size) <= max {
        return String::new();
    }
    format!(r#" textLength="{max:.1}" lengthAdjust="spacingAndGlyphs""#)
}

/// The widest label centred at `centre` that stays inside the slot `[start, start + width]`.
fn room(centre: f64, start: f64, width: f64) -> f64 {
    2.0 * (centre - start).min(start + width - centre) - 4.0
}

const RIGHT: f64 = 190.0;
const TOP: f64 = 30.0;

/// One panel of [`line_panels`]: its own lines, drawn in colour over every other panel's lines
/// in grey (so each panel reads alone and still against the rest).
pub struct LinePanel {
    pub title: String,
    /// The colour of the title (the panel's model).
    pub colour: usize,
    pub lines: Vec<Series>,
}

const LINE_W: f64 = 230.0;
const LINE_H: f64 = 170.0;
const LINES_PER_ROW: usize = 4;

/// Small multiples: one line chart per panel (e.g. per model) on shared axes, integer x ticks,
/// `y` the value range; `dashes` names the dash styles in a key under the title (e.g. probes).
pub fn line_panels(
    title: &str,
    (x_label, y_label): (&str, &str),
    panels: &[LinePanel],
    y: (f64, f64),
    dashes: &[String],
) -> String {
    let (y0, y1) = if y.1 > y.0 { y } else { (y.0 - 0.5, y.0 + 0.5) };
    let xs = panels
        .iter()
        .flat_map(|p| p.lines.iter().flat_map(|l| l.points.iter().map(|q| q.0)));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (x0, x1) = if x1 > x0 { (x0, x1) } else { (0.0, 5.0) };
    let cols = panels.len().clamp(1, LINES_PER_ROW);
    let rows = panels.len().div_ceil(LINES_PER_ROW).max(1);
    let key_h = if dashes.len() > 1 { 18.0 } else { 0.0 };
    let (w, h) = (LINE_W * cols as f64, TOP + key_h + LINE_H * rows as f64);
    let mut s = header(w, h, title);
    dash_key(&mut s, dashes, TOP + 6.0);
    let frame = Frame {
        x: (x0, x1),
        y: (y0, y1),
        labels: (x_label, y_label),
    };
    for (i, panel) in panels.iter().enumerate() {
        let origin = (
            LINE_W * (i % LINES_PER_ROW) as f64,
            TOP + key_h + LINE_H * (i / LINES_PER_ROW) as f64,
        );
        let others = panels
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, p)| &p.lines);
        draw_line_panel(&mut s, panel, others, origin, &frame);
    }
    s.push_str("</svg>\n");
    s
}

/// Axes' ranges and labels shared by the panels of a figure.
struct Frame<'a> {
    x: (f64, f64),
    y: (f64, f64),
    labels: (&'a str, &'a str),
}

/// The dash key: one short line per style with its name, in a row at height `y`.
fn dash_key(s: &mut String, dashes: &[String], y: f64) {
    if dashes.len() < 2 {
        return;
    }
    for (i, name) in dashes.iter().enumerate() {
        let x = 12.0 + 120.0 * i as f64;
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="black" stroke-width="2" stroke-dasharray="{}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            x + 28.0,
            DASHES[i % DASHES.len()],
            x + 34.0,
            y + 4.0,
            escape(name)
        );
    }
}

fn draw_line_panel<'a>(
    s: &mut String,
    panel: &LinePanel,
    others: impl Iterator<Item = &'a Series>,
    origin: (f64, f64),
    f: &Frame,
) {
    let (left, top, right, bottom) = (
        origin.0 + 44.0,
        origin.1 + 22.0,
        origin.0 + LINE_W - 10.0,
        origin.1 + LINE_H - 34.0,
    );
    let ((x0, x1), (y0, y1)) = (f.x, f.y);
    let px = |x: f64| left + (x - x0) / (x1 - x0) * (right - left);
    let py = |v: f64| bottom - (v - y0) / (y1 - y0) * (bottom - top);
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" font-weight="bold" fill="{}"{}>{}</text><rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
        (left + right) / 2.0,
        top - 7.0,
        colour(panel.colour),
        fit(
            &panel.title,
            12.0,
            room((left + right) / 2.0, origin.0, LINE_W)
        ),
        escape(&panel.title),
        right - left,
        bottom - top
    );
    for k in 0..=4 {
        let v = y0 + (y1 - y0) * k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left:.1}" x2="{right:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">{}</text>"##,
            left - 3.0,
            py(v) + 3.0,
            tick(v, (y1 - y0) / 4.0),
            y = py(v)
        );
    }
    for x in (x0.ceil() as i64)..=(x1.floor() as i64) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{x}</text>"#,
            px(x as f64),
            bottom + 12.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text><text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle" font-size="10">{}</text>"#,
        (left + right) / 2.0,
        bottom + 26.0,
        escape(f.labels.0),
        origin.0 + 12.0,
        (top + bottom) / 2.0,
        escape(f.labels.1)
    );
    let path = |l: &Series| -> String {
        let pts: Vec<String> = l
            .points
            .iter()
            .map(|&(x, v)| format!("{:.1},{:.1}", px(x), py(v)))
            .collect();
        pts.join(" ")
    };
    for l in others {
        let _ = write!(
            s,
            r##"<polyline fill="none" stroke="#d9d9d9" stroke-width="1" points="{}"/>"##,
            path(l)
        );
    }
    for l in &panel.lines {
        let c = colour(l.colour);
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" stroke-dasharray="{}" points="{}"><title>{}</title></polyline>"#,
            DASHES[l.dash % DASHES.len()],
            path(l),
            escape(&l.name)
        );
        for &(x, v) in &l.points {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}"/>"#,
                px(x),
                py(v)
            );
        }
    }
}

/// One panel of [`scatter_panels`]: points `(series index, x, y)` and an optional fitted
/// line `(intercept, slope)`, drawn across the points' x range.
pub struct Panel {
    pub title: String,
    pub points: Vec<(usize, f64, f64)>,
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

const PANEL_W: f64 = 250.0;
const PANEL_H: f64 = 220.0;
const PANELS_PER_ROW: usize = 3;

/// Small scatter plots on one shared scale, one per panel (e.g. per shift family), each with
/// the dashed diagonal y = x (no loss) and its fitted line; the colour of a point is its
/// series (e.g. model), named once in the legend (`(colour index, name)`) so panels stay
/// uncluttered.
pub fn scatter_panels(
    title: &str,
    (x_label, y_label): (&str, &str),
    panels: &[Panel],
    series: &[(usize, String)],
) -> String {
    let cols = panels.len().clamp(1, PANELS_PER_ROW);
    let rows = panels.len().div_ceil(PANELS_PER_ROW).max(1);
    let legend_h = TOP + 20.0 + 16.0 * series.len() as f64;
    let w = PANEL_W * cols as f64 + RIGHT;
    let h = (TOP + PANEL_H * rows as f64).max(legend_h);
    let range = padded_range(panels.iter().flat_map(panel_values));
    let mut s = header(w, h, title);
    for (i, panel) in panels.iter().enumerate() {
        let origin = (
            PANEL_W * (i % PANELS_PER_ROW) as f64,
            TOP + PANEL_H * (i / PANELS_PER_ROW) as f64,
        );
        draw_panel(&mut s, panel, origin, range, (x_label, y_label));
    }
    for (i, name) in series.iter().enumerate() {
        let ly = TOP + 14.0 + 16.0 * i as f64;
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            w - RIGHT + 18.0,
            ly - 4.0,
            colour(name.0),
            w - RIGHT + 28.0,
            ly,
            escape(&name.1)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Every value a panel draws: its points' coordinates and its fitted line's ends.
fn panel_values(panel: &Panel) -> Vec<f64> {
    let mut values: Vec<f64> = panel.points.iter().flat_map(|q| [q.1, q.2]).collect();
    let (x0, x1) = x_extent(panel);
    if let (Some((a, b)), true) = (panel.line, x1 > x0) {
        values.extend([a + b * x0, a + b * x1]);
    }
    values
}

/// The smallest and largest x of a panel's points.
fn x_extent(panel: &Panel) -> (f64, f64) {
    let xs = panel.points.iter().map(|p| p.1);
    xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    })
}

/// One panel with its top-left corner at `origin`, both axes over `range`.
fn draw_panel(
    s: &mut String,
    panel: &Panel,
    origin: (f64, f64),
    (v0, v1): (f64, f64),
    (x_label, y_label): (&str, &str),
) {
    let (left, top, right, bottom) = (
        origin.0 + 48.0,
        origin.1 + 24.0,
        origin.0 + PANEL_W - 12.0,
        origin.1 + PANEL_H - 36.0,
    );
    let px = |x: f64| left + (x - v0) / (v1 - v0) * (right - left);
    let py = |v: f64| bottom - (v - v0) / (v1 - v0) * (bottom - top);
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" font-weight="bold"{}>{}</text><rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
        (left + right) / 2.0,
        top - 8.0,
        fit(
            &panel.title,
            12.0,
            room((left + right) / 2.0, origin.0, PANEL_W)
        ),
        escape(&panel.title),
        right - left,
        bottom - top,
        px(v0),
        py(v0),
        px(v1),
        py(v1)
    );
    let step = if v1 - v0 > 0.6 { 0.2 } else { 0.1 };
    let ticks = ((v1 - v0) / step).round() as usize;
    for k in 0..=ticks {
        let v = v0 + step * k as f64;
        let _ = write!(
            s,
            r##"<line x1="{left:.1}" x2="{right:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">{v:.1}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{v:.1}</text>"##,
            left - 4.0,
            py(v) + 3.0,
            px(v),
            bottom + 13.0,
            y = py(v)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text><text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle" font-size="10">{}</text>"#,
        (left + right) / 2.0,
        bottom + 28.0,
        escape(x_label),
        origin.0 + 14.0,
        (top + bottom) / 2.0,
        escape(y_label)
    );
    let (x0, x1) = x_extent(panel);
    if let (Some((a, b)), true) = (panel.line, x1 > x0) {
        let _ = write!(
            s,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black" stroke-width="1.5"/>"#,
            px(x0),
            py(a + b * x0),
            px(x1),
            py(a + b * x1)
        );
    }
    for &(i, x, y) in &panel.points {
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{}"/>"#,
            px(x),
            py(y),
            colour(i)
        );
    }
}

/// Tick labels with enough decimals to tell ticks `step` apart.
fn tick(v: f64, step: f64) -> String {
    let decimals = ((-step.log10()).ceil() + 1.0).clamp(0.0, 4.0) as usize;
    format!("{v:.decimals$}")
}

fn header(w: f64, h: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="{:.1}" y="18" text-anchor="middle" font-size="14" font-weight="bold"{}>{}</text>"#,
        w / 2.0,
        fit(title, 14.0, w - 8.0),
        escape(title)
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn panel(title: &str) -> LinePanel {
        LinePanel {
            title: title.into(),
            colour: 0,
            lines: vec![Series {
                name: "noise".into(),
                colour: 0,
                dash: 0,
                points: vec![(0.0, 0.1), (5.0, 0.6)],
            }],
        }
    }

    /// The `textLength` of the `<text>` element holding `label`, if any.
    fn squeezed(svg: &str, label: &str) -> Option<f64> {
        let end = svg.find(&format!(">{label}</text>"))?;
        let start = svg[..end].rfind("<text")?;
        let attrs = &svg[start..end];
        let at = attrs.find("textLength=\"")? + "textLength=\"".len();
        let len = &attrs[at..];
        len[..len.find('"')?].parse().ok()
    }

    #[test]
    fn a_long_panel_title_is_squeezed_into_its_panel_and_a_short_one_is_not() {
        let long = "linear / redundancy_reduction / a-long-run-name";
        let svg = line_panels(
            "t",
            ("x", "y"),
            &[panel(long), panel("linear / dino")],
            (0.0, 1.0),
            &[],
        );
        let len = squeezed(&svg, long).expect("the long title carries a textLength");
        assert!(len <= LINE_W - 4.0 && len > 100.0, "textLength {len}");
        // Centred on the plot area (44 px from the panel's left, 10 from its right).
        let centre = 44.0 + (LINE_W - 54.0) / 2.0;
        assert!(centre + len / 2.0 <= LINE_W && centre - len / 2.0 >= 0.0);
        assert_eq!(squeezed(&svg, "linear / dino"), None);
    }

    #[test]
    fn a_figure_title_wider_than_the_figure_is_squeezed() {
        let title = "x".repeat(200);
        let svg = line_panels(&title, ("x", "y"), &[panel("p")], (0.0, 1.0), &[]);
        assert_eq!(squeezed(&svg, &title), Some(LINE_W - 8.0));
    }
}
