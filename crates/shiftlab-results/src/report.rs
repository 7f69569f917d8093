//! `shiftlab report`: one HTML page (inline CSS, SVG figures beside it), the figures, and a
//! Markdown summary, all from SQL over the metric views so a reader can re-derive any number
//! with `shiftlab query`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Float64Type};

use crate::svg::{self, Panel, Series};
use crate::{write_atomic, ResultsError, RunSession};

/// A query result as named columns of text and numbers.
struct Table {
    batch: RecordBatch,
}

impl Table {
    fn rows(&self) -> usize {
        self.batch.num_rows()
    }
    fn column(&self, name: &str, to: &DataType) -> Result<std::sync::Arc<dyn Array>, ResultsError> {
        let col = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| ResultsError::Input {
                path: "report".into(),
                cause: format!("query result lacks column {name}"),
            })?;
        Ok(cast(col, to)?)
    }
    fn text(&self, name: &str) -> Result<Vec<String>, ResultsError> {
        let col = self.column(name, &DataType::Utf8)?;
        let s = col.as_string::<i32>();
        Ok((0..s.len())
            .map(|i| {
                if s.is_valid(i) {
                    s.value(i).to_string()
                } else {
                    String::new()
                }
            })
            .collect())
    }
    fn number(&self, name: &str) -> Result<Vec<Option<f64>>, ResultsError> {
        let col = self.column(name, &DataType::Float64)?;
        let v = col.as_primitive::<Float64Type>();
        Ok((0..v.len())
            .map(|i| v.is_valid(i).then(|| v.value(i)))
            .collect())
    }
}

async fn table(session: &RunSession, sql: &str) -> Result<Table, ResultsError> {
    let batches = session.query(sql).await?;
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => session.ctx.sql(sql).await?.schema().inner().clone(),
    };
    Ok(Table {
        batch: concat_batches(&schema, &batches)?,
    })
}

/// The headline rows, as the Markdown and HTML show them.
pub const ROBUSTNESS_SQL: &str = "SELECT run, model, probe, preset, clean_error, mean_error, \
     mean_error_15, mean_error_19, mce, relative_mce, mean_cosine_to_clean \
     FROM robustness ORDER BY run, model, probe";

/// Per run, probe, shift set and model: accuracies and effective robustness (views
/// `family_robustness` and `effective_robustness`), every family but clean; each target dataset
/// shows as `dataset: NAME`.
pub const FAMILIES_SQL: &str = "SELECT * FROM (SELECT f.run, f.model, f.probe, \
     CASE WHEN f.shift_family = 'dataset' THEN 'dataset: ' || f.shift_set ELSE f.shift_family END \
       AS shift_family, \
     f.clean_accuracy, f.shifted_accuracy, f.accuracy_drop, e.effective_robustness, \
     e.slope, e.intercept \
     FROM family_robustness f LEFT JOIN effective_robustness e \
       ON e.run = f.run AND e.model = f.model AND e.probe = f.probe \
       AND e.shift_set = f.shift_set) \
     ORDER BY run, probe, shift_family, model";

/// What a report wrote.
#[derive(Debug)]
pub struct ReportFiles {
    pub html: PathBuf,
    pub markdown: PathBuf,
    pub figures: Vec<PathBuf>,
}

/// Writes `report.html`, `report.md` and `figures/*.svg` under `out` for the runs in `dirs`.
pub async fn write_report(dirs: &[PathBuf], out: &Path) -> Result<ReportFiles, ResultsError> {
    let session = RunSession::open(dirs).await?;
    if !session.ctx.table_exist("robustness")? {
        return Err(ResultsError::Input {
            path: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            cause: format!("no metrics to report: {}", session.notes.join("; ")),
        });
    }
    let mkdir = |p: &Path| {
        std::fs::create_dir_all(p).map_err(|e| ResultsError::Write {
            path: p.display().to_string(),
            cause: e.to_string(),
        })
    };
    mkdir(&out.join("figures"))?;
    let robust = table(&session, ROBUSTNESS_SQL).await?;
    let families = family_table(&session).await?;
    let mut figures = Vec::new();
    for (name, svg) in figures_svg(&session, families.as_ref()).await? {
        let path = out.join("figures").join(&name);
        write_atomic(&path, svg.as_bytes())?;
        figures.push(path);
    }
    let stages = match session.ctx.table_exist("stages")? {
        true => Some(table(&session, STAGES_SQL).await?),
        false => None,
    };
    let configs = configs(&session).await?;
    let names: Vec<String> = figures
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let md = markdown(&robust, families.as_ref(), &names)?;
    let page = Page {
        robust: &robust,
        families: families.as_ref(),
        stages: stages.as_ref(),
        configs: &configs,
        figures: &names,
        notes: &session.notes,
    };
    let html = html(&page)?;
    let (html_path, md_path) = (out.join("report.html"), out.join("report.md"));
    write_atomic(&md_path, md.as_bytes())?;
    write_atomic(&html_path, html.as_bytes())?;
    Ok(ReportFiles {
        html: html_path,
        markdown: md_path,
        figures,
    })
}

/// Per run and stage, summed over invocations, in pipeline order; `busy_per_worker_s` is what
/// the progress bar calls the bottleneck (the largest is the slowest stage).
const STAGES_SQL: &str = "SELECT run, stage, MAX(workers) AS workers, SUM(items) AS items, \
     SUM(busy_s) AS busy_s, SUM(busy_s) / MAX(workers) AS busy_per_worker_s, \
     SUM(blocked_s) AS blocked_s, SUM(starved_s) AS starved_s, \
     SUM(items) / NULLIF(SUM(busy_s), 0) AS items_per_busy_s \
     FROM stages GROUP BY run, stage \
     ORDER BY run, CASE stage WHEN 'read' THEN 0 WHEN 'decode' THEN 1 WHEN 'shift' THEN 2 \
       WHEN 'collate' THEN 3 WHEN 'embed' THEN 4 WHEN 'probe' THEN 5 WHEN 'sink' THEN 6 ELSE 7 END";

/// Each run's pipeline text (from its latest invocation).
async fn configs(session: &RunSession) -> Result<Vec<(String, String)>, ResultsError> {
    if !session.ctx.table_exist("runs")? {
        return Ok(Vec::new());
    }
    let t = table(
        session,
        "SELECT run, config FROM runs ORDER BY run, started DESC",
    )
    .await?;
    let (runs, texts) = (t.text("run")?, t.text("config")?);
    let mut seen = BTreeMap::new();
    for (r, c) in runs.into_iter().zip(texts) {
        seen.entry(r).or_insert(c);
    }
    Ok(seen.into_iter().collect())
}

/// "run / model / probe", shortened when there is one run.
fn label(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The family rows, when the runs hold any shift family besides the clean baseline and the
/// ImageNet-C corruptions (runs of corruptions alone keep their report as it was).
async fn family_table(session: &RunSession) -> Result<Option<Table>, ResultsError> {
    let others = table(
        session,
        "SELECT COUNT(*) AS n FROM family_robustness WHERE shift_family <> 'corruption'",
    )
    .await?;
    if others
        .number("n")?
        .first()
        .copied()
        .flatten()
        .unwrap_or(0.0)
        == 0.0
    {
        return Ok(None);
    }
    Ok(Some(table(session, FAMILIES_SQL).await?))
}

/// All figures as (file name, SVG text); the heat map only when there are corruptions.
async fn figures_svg(
    session: &RunSession,
    families: Option<&Table>,
) -> Result<Vec<(String, String)>, ResultsError> {
    let mut out = group_charts(session).await?;
    if let Some(map) = heat(session).await? {
        out.push(("heatmap.svg".into(), map));
    }
    out.extend(drift(session).await?);
    if let Some(t) = families {
        out.push((FAMILY_FIGURE.into(), family_scatter(t)?));
    }
    Ok(out)
}

/// Shifted vs clean accuracy, one panel per (run, probe, family), one point (colour) per
/// model, with the least-squares line whose residuals are the effective robustness.
fn family_scatter(t: &Table) -> Result<String, ResultsError> {
    let (runs, models, probes, fams) = (
        t.text("run")?,
        t.text("model")?,
        t.text("probe")?,
        t.text("shift_family")?,
    );
    let (clean, shifted) = (t.number("clean_accuracy")?, t.number("shifted_accuracy")?);
    let (slope, intercept) = (t.number("slope")?, t.number("intercept")?);
    let mut names: Vec<String> = models.clone();
    names.sort();
    names.dedup();
    let several = |v: &[String]| v.iter().any(|x| x != &v[0]);
    let (show_run, show_probe) = (several(&runs), several(&probes));
    let mut panels: BTreeMap<String, Panel> = BTreeMap::new();
    for i in 0..t.rows() {
        let (Some(x), Some(y)) = (clean[i], shifted[i]) else {
            continue;
        };
        let run = if show_run { runs[i].as_str() } else { "" };
        let probe = if show_probe { probes[i].as_str() } else { "" };
        let title = label(&[run, probe, &fams[i]]);
        let panel = panels.entry(title.clone()).or_insert_with(|| Panel {
            title,
            points: Vec::new(),
            line: intercept[i].zip(slope[i]),
        });
        let colour = names.binary_search(&models[i]).unwrap_or(0);
        panel.points.push((colour, x, y));
    }
    let panels: Vec<Panel> = panels.into_values().collect();
    Ok(svg::scatter_panels(
        "Accuracy under each shift family vs clean accuracy (line: least-squares fit)",
        ("clean accuracy", "shifted accuracy"),
        &panels,
        &names,
    ))
}

/// Error vs severity, one chart per corruption group; severity 0 is the clean error.
async fn group_charts(session: &RunSession) -> Result<Vec<(String, String)>, ResultsError> {
    let sql = "SELECT g.shift_group, g.run, g.model, g.probe, g.severity, g.mean_error, r.clean_error \
         FROM group_errors g JOIN robustness r ON r.run = g.run AND r.model = g.model AND r.probe = g.probe \
         ORDER BY g.shift_group, g.run, g.model, g.probe, g.severity";
    let t = table(session, sql).await?;
    let (groups, runs, models, probes) = (
        t.text("shift_group")?,
        t.text("run")?,
        t.text("model")?,
        t.text("probe")?,
    );
    let (sev, err, clean) = (
        t.number("severity")?,
        t.number("mean_error")?,
        t.number("clean_error")?,
    );
    let mut charts: BTreeMap<String, BTreeMap<String, Vec<(f64, f64)>>> = BTreeMap::new();
    for i in 0..t.rows() {
        let (Some(s), Some(e)) = (sev[i], err[i]) else {
            continue;
        };
        let line = charts
            .entry(groups[i].clone())
            .or_default()
            .entry(label(&[&runs[i], &models[i], &probes[i]]))
            .or_default();
        if let (true, Some(c)) = (line.is_empty(), clean[i]) {
            line.push((0.0, c));
        }
        line.push((s, e));
    }
    Ok(charts
        .into_iter()
        .map(|(group, lines)| {
            let series: Vec<Series> = lines
                .into_iter()
                .map(|(name, points)| Series { name, points })
                .collect();
            let title = format!("Top-1 error vs severity: {group}");
            (
                format!("errors-{group}.svg"),
                svg::line_chart(
                    &title,
                    "severity (0 = clean)",
                    "top-1 error",
                    &series,
                    (0.0, 1.0),
                ),
            )
        })
        .collect())
}

/// Mean error over severities, model (and probe, run) x corruption; `None` without corruptions.
async fn heat(session: &RunSession) -> Result<Option<String>, ResultsError> {
    let t = table(session, "SELECT run, model, probe, corruption, mean_error FROM corruption_summary ORDER BY run, model, probe, corruption").await?;
    let (runs, models, probes, corr, err) = (
        t.text("run")?,
        t.text("model")?,
        t.text("probe")?,
        t.text("corruption")?,
        t.number("mean_error")?,
    );
    if t.rows() == 0 {
        return Ok(None);
    }
    let mut columns: Vec<String> = corr.clone();
    columns.sort();
    columns.dedup();
    let mut rows: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for i in 0..t.rows() {
        let row = rows
            .entry(label(&[&runs[i], &models[i], &probes[i]]))
            .or_insert_with(|| vec![None; columns.len()]);
        if let Ok(j) = columns.binary_search(&corr[i]) {
            row[j] = err[i];
        }
    }
    let (names, values): (Vec<String>, Vec<Vec<Option<f64>>>) = rows.into_iter().unzip();
    Ok(Some(svg::heat_map(
        "Mean top-1 error over severities (%)",
        &names,
        &columns,
        &values,
    )))
}

/// Lines of one drift chart: "run / model" -> (severity, cosine).
type Lines = BTreeMap<String, Vec<(f64, f64)>>;

/// Mean cosine of shifted to clean embeddings vs severity, one chart per shift family
/// (`drift.svg` for the corruptions, `drift-FAMILY.svg` for the others), one line per run and
/// model starting from the clean cosine at severity 0.
async fn drift(session: &RunSession) -> Result<Vec<(String, String)>, ResultsError> {
    let t = table(session, "SELECT run, model, shift_family, severity, mean_cosine_to_clean FROM drift ORDER BY run, model, shift_family, severity").await?;
    let (runs, models, fams, sev, cos) = (
        t.text("run")?,
        t.text("model")?,
        t.text("shift_family")?,
        t.number("severity")?,
        t.number("mean_cosine_to_clean")?,
    );
    let mut clean: BTreeMap<String, f64> = BTreeMap::new();
    let mut charts: BTreeMap<String, Lines> = BTreeMap::new();
    for i in 0..t.rows() {
        let (Some(s), Some(c)) = (sev[i], cos[i]) else {
            continue;
        };
        let key = label(&[&runs[i], &models[i]]);
        if fams[i] == "clean" {
            clean.insert(key, c);
        } else {
            let chart = charts.entry(fams[i].clone()).or_default();
            chart.entry(key).or_default().push((s, c));
        }
    }
    Ok(charts
        .into_iter()
        .map(|(family, mut lines)| {
            for (key, points) in lines.iter_mut() {
                if let Some(&c) = clean.get(key) {
                    points.insert(0, (0.0, c));
                }
            }
            let name = match family.as_str() {
                "corruption" => "drift.svg".to_string(),
                f => format!("drift-{f}.svg"),
            };
            (name, drift_chart(&family, lines))
        })
        .collect())
}

/// One drift chart; the y axis starts at the lowest cosine (rounded down), at most 0.9.
fn drift_chart(family: &str, lines: Lines) -> String {
    let low = lines
        .values()
        .flatten()
        .map(|p| p.1)
        .fold(1.0_f64, f64::min);
    let series: Vec<Series> = lines
        .into_iter()
        .map(|(name, points)| Series { name, points })
        .collect();
    let y0 = (low * 10.0).floor() / 10.0;
    let title = match family {
        "corruption" => "Embedding drift: cosine to clean".to_string(),
        f => format!("Embedding drift: cosine to clean, {f}"),
    };
    svg::line_chart(
        &title,
        "severity (0 = clean)",
        "mean cosine to clean",
        &series,
        (y0.min(0.9), 1.0),
    )
}

/// A number for people: percent with 2 decimals for fractions; mCE-like scores with 2.
/// Values that round to zero print `0.00`, never `-0.00`.
pub fn percent(v: Option<f64>) -> String {
    v.map_or_else(
        || "n/a".into(),
        |v| match format!("{:.2}", 100.0 * v) {
            z if z == "-0.00" => "0.00".into(),
            t => t,
        },
    )
}

/// A score already x100 (mCE), with 2 decimals.
pub fn score(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.2}"))
}

const HEADLINE: [&str; 10] = [
    "run",
    "model",
    "probe",
    "preset",
    "clean error %",
    "mean error % (all)",
    "mean error % (15)",
    "mean error % (19)",
    "mCE",
    "relative mCE",
];

/// The headline rows as cells, in [`HEADLINE`] order.
fn headline_rows(t: &Table) -> Result<Vec<Vec<String>>, ResultsError> {
    let texts = [
        t.text("run")?,
        t.text("model")?,
        t.text("probe")?,
        t.text("preset")?,
    ];
    let pct = [
        "clean_error",
        "mean_error",
        "mean_error_15",
        "mean_error_19",
    ]
    .map(|c| t.number(c));
    let pct = pct.into_iter().collect::<Result<Vec<_>, _>>()?;
    let (mce, rel) = (t.number("mce")?, t.number("relative_mce")?);
    Ok((0..t.rows())
        .map(|i| {
            let mut row: Vec<String> = texts.iter().map(|c| c[i].clone()).collect();
            row.extend(pct.iter().map(|c| percent(c[i])));
            row.push(score(mce[i]));
            row.push(score(rel[i]));
            row
        })
        .collect())
}

/// Columns of the shift-family table.
const FAMILY_HEADER: [&str; 8] = [
    "run",
    "model",
    "probe",
    "family",
    "clean acc %",
    "shifted acc %",
    "drop (points)",
    "effective robustness (points)",
];

/// The family rows as cells, in [`FAMILY_HEADER`] order.
fn family_rows(t: &Table) -> Result<Vec<Vec<String>>, ResultsError> {
    let texts = ["run", "model", "probe", "shift_family"]
        .map(|c| t.text(c))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let numbers = [
        "clean_accuracy",
        "shifted_accuracy",
        "accuracy_drop",
        "effective_robustness",
    ]
    .map(|c| t.number(c))
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    Ok((0..t.rows())
        .map(|i| {
            let mut row: Vec<String> = texts.iter().map(|c| c[i].clone()).collect();
            row.extend(numbers.iter().map(|c| percent(c[i])));
            row
        })
        .collect())
}

/// The shift-family figure, shown in its own section of the page.
const FAMILY_FIGURE: &str = "families.svg";

/// Markdown `code` spans as HTML `<code>` (the notes are shared by both outputs).
fn code_spans(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| match i % 2 {
            1 => format!("<code>{part}</code>"),
            _ => part.to_string(),
        })
        .collect()
}

/// What the family table means, for both the page and the summary.
const FAMILY_NOTE: &str = "Views `family_robustness` and `effective_robustness`. Shifted accuracy: mean over the family's shifts x severities. Effective robustness: shifted accuracy minus the least-squares line (shifted on clean accuracy, fitted over the models of the same run, probe and family, in plain accuracy), in percentage points; n/a with fewer than 2 models or equal clean accuracies.";

fn markdown(
    robust: &Table,
    families: Option<&Table>,
    figures: &[String],
) -> Result<String, ResultsError> {
    let mut md = String::from("# shiftlab report\n\n");
    md.push_str("Headline numbers (view `robustness`). mCE and relative mCE are AlexNet-normalised over the 15 benchmark corruptions and exist only for `imagenet224` runs; the mean errors are plain means, not mCE.\n\n");
    md.push_str(&format!(
        "| {} |\n|{}\n",
        HEADLINE.join(" | "),
        "---|".repeat(HEADLINE.len())
    ));
    for row in headline_rows(robust)? {
        md.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    if let Some(t) = families {
        md.push_str(&format!("\n## Shift families\n\n{FAMILY_NOTE}\n\n"));
        md.push_str(&format!(
            "| {} |\n|{}\n",
            FAMILY_HEADER.join(" | "),
            "---|".repeat(FAMILY_HEADER.len())
        ));
        for row in family_rows(t)? {
            md.push_str(&format!("| {} |\n", row.join(" | ")));
        }
    }
    md.push_str("\n## Figures\n\n");
    for f in figures {
        md.push_str(&format!("![{f}](figures/{f})\n"));
    }
    Ok(md)
}

const CSS: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f3f3f3}td:nth-child(-n+4){text-align:left}pre{background:#f7f7f7;padding:1em;overflow:auto}\
.figures{display:flex;flex-wrap:wrap;gap:8px}.figures img{max-width:100%}.note{color:#a00}";

fn html_table(header: &[String], rows: &[Vec<String>]) -> String {
    let esc = |s: &String| svg::escape(s);
    let mut h = format!(
        "<table><tr>{}</tr>\n",
        header
            .iter()
            .map(|c| format!("<th>{}</th>", esc(c)))
            .collect::<String>()
    );
    for r in rows {
        h.push_str(&format!(
            "<tr>{}</tr>\n",
            r.iter()
                .map(|c| format!("<td>{}</td>", esc(c)))
                .collect::<String>()
        ));
    }
    h.push_str("</table>\n");
    h
}

fn stage_rows(t: &Table) -> Result<Vec<Vec<String>>, ResultsError> {
    let texts = [t.text("run")?, t.text("stage")?];
    let counts = [t.number("workers")?, t.number("items")?];
    let seconds = [
        "busy_s",
        "busy_per_worker_s",
        "blocked_s",
        "starved_s",
        "items_per_busy_s",
    ];
    let seconds = seconds
        .map(|c| t.number(c))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let fmt = |v: Option<f64>, d: usize| v.map_or_else(|| "n/a".into(), |v| format!("{v:.d$}"));
    Ok((0..t.rows())
        .map(|i| {
            let mut row: Vec<String> = texts.iter().map(|c| c[i].clone()).collect();
            row.extend(counts.iter().map(|c| fmt(c[i], 0)));
            row.extend(seconds.iter().map(|c| fmt(c[i], 2)));
            row
        })
        .collect())
}

/// Everything the page shows.
struct Page<'a> {
    robust: &'a Table,
    families: Option<&'a Table>,
    stages: Option<&'a Table>,
    configs: &'a [(String, String)],
    figures: &'a [String],
    notes: &'a [String],
}

fn html(page: &Page) -> Result<String, ResultsError> {
    let Page {
        robust,
        families,
        stages,
        configs,
        figures,
        notes,
    } = *page;
    let mut h = format!("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>shiftlab report</title><style>{CSS}</style></head><body>\n<h1>shiftlab report</h1>\n");
    for n in notes {
        h.push_str(&format!("<p class=\"note\">Note: {}</p>\n", svg::escape(n)));
    }
    h.push_str("<h2>Robustness</h2>\n<p>View <code>robustness</code>. mCE and relative mCE: AlexNet-normalised, 15 benchmark corruptions, <code>imagenet224</code> runs only. Mean errors are plain means over corruptions x severities, not mCE.</p>\n");
    let header: Vec<String> = HEADLINE.iter().map(|s| s.to_string()).collect();
    h.push_str(&html_table(&header, &headline_rows(robust)?));
    if let Some(t) = families {
        h.push_str(&format!(
            "<h2>Shift families</h2>\n<p>{}</p>\n",
            code_spans(&svg::escape(FAMILY_NOTE))
        ));
        let header: Vec<String> = FAMILY_HEADER.iter().map(|s| s.to_string()).collect();
        h.push_str(&html_table(&header, &family_rows(t)?));
        h.push_str(&format!("<p><img src=\"figures/{FAMILY_FIGURE}\" alt=\"shifted vs clean accuracy per family\"></p>\n"));
    }
    h.push_str("<h2>Figures</h2>\n<div class=\"figures\">\n");
    for f in figures.iter().filter(|f| *f != FAMILY_FIGURE) {
        h.push_str(&format!(
            "<img src=\"figures/{}\" alt=\"{}\">\n",
            svg::escape(f),
            svg::escape(f)
        ));
    }
    h.push_str("</div>\n");
    h.push_str("<h2>Throughput per stage</h2>\n<p>From <code>stages</code>, summed over invocations.</p>\n");
    let sh: Vec<String> = [
        "run",
        "stage",
        "workers",
        "items",
        "busy s",
        "busy s / worker",
        "blocked s",
        "starved s",
        "items / busy s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match stages {
        Some(t) => h.push_str(&html_table(&sh, &stage_rows(t)?)),
        None => h.push_str("<p>No <code>stages</code> files.</p>\n"),
    }
    h.push_str("<h2>Configuration</h2>\n");
    for (run, config) in configs {
        h.push_str(&format!(
            "<h3>{}</h3>\n<pre>{}</pre>\n",
            svg::escape(run),
            svg::escape(config)
        ));
    }
    h.push_str("</body></html>\n");
    Ok(h)
}
