//! `shiftlab report`: one HTML page (inline CSS, SVG figures beside it), the figures, and a
//! Markdown summary, all from SQL over the metric views so a reader can re-derive any number
//! with `shiftlab query`.
//!
//! Legible with many models: every model keeps one colour in every figure ([`Colours`]), the
//! error and drift figures are small multiples (one panel per model, the other models in grey
//! behind it), and numbers use the precision of `shiftlab query` ([`crate::output`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Float64Type};

use crate::output::{decimal, DEFAULT_PRECISION};
use crate::svg::{self, LinePanel, Panel, Series};
use crate::{write_atomic, ResultsError, RunSession, SessionOptions};

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
pub const ROBUSTNESS_SQL: &str = "SELECT run, model, probe, preset, origin, corruptions, \
     clean_error, mean_error, mean_error_15, mean_error_19, mce, relative_mce, \
     mean_cosine_to_clean FROM robustness ORDER BY run, model, probe, origin";

/// The ranking, best (lowest mean shifted error) first within each run and probe.
pub const RANKING_SQL: &str = "SELECT run, probe, rank, model, clean_error, mean_shifted_error, \
     error_increase, shifted_rows FROM ranking ORDER BY run, probe, rank, model";

/// CE and mCE relative to each run's in-run baseline model.
pub const BASELINE_SQL: &str = "SELECT run, model, probe, origin, baseline, corruptions, \
     mce_vs_baseline, relative_mce_vs_baseline FROM baseline_robustness \
     ORDER BY run, probe, origin, mce_vs_baseline, model";

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

/// Writes `report.html`, `report.md` and `figures/*.svg` under `out` for the runs in `dirs`,
/// with each run's first model as the in-run baseline.
pub async fn write_report(dirs: &[PathBuf], out: &Path) -> Result<ReportFiles, ResultsError> {
    write_report_with(dirs, out, &SessionOptions::default()).await
}

/// [`write_report`] with session options (the in-run baseline model).
pub async fn write_report_with(
    dirs: &[PathBuf],
    out: &Path,
    options: &SessionOptions,
) -> Result<ReportFiles, ResultsError> {
    let session = RunSession::open_with(dirs, options).await?;
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
    let colours = Colours::of(&session).await?;
    let tables = Tables {
        robust: table(&session, ROBUSTNESS_SQL).await?,
        ranking: table(&session, RANKING_SQL).await?,
        baseline: baseline_table(&session).await?,
        families: family_table(&session).await?,
        paradigms: paradigm_table(&session).await?,
    };
    let mut figures = Vec::new();
    for (name, svg) in figures_svg(&session, &tables, &colours).await? {
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
    let md = markdown(&tables, &names)?;
    let page = Page {
        tables: &tables,
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

/// The query results the tables of both outputs show.
struct Tables {
    robust: Table,
    ranking: Table,
    /// Only when some model has a baseline-relative mCE.
    baseline: Option<Table>,
    /// Only when the runs hold shift families besides clean and ImageNet-C.
    families: Option<Table>,
    /// Only when some model has a `paradigm`.
    paradigms: Option<Table>,
}

/// One palette index per model, the same in every figure: models sorted by name over all runs.
struct Colours(Vec<String>);

impl Colours {
    async fn of(session: &RunSession) -> Result<Self, ResultsError> {
        let t = table(session, "SELECT DISTINCT model FROM metrics ORDER BY model").await?;
        Ok(Colours(t.text("model")?))
    }

    fn index(&self, model: &str) -> usize {
        self.0.iter().position(|m| m == model).unwrap_or(0)
    }

    /// The legend of the models in `models`, in palette order.
    fn legend(&self, models: &[String]) -> Vec<(usize, String)> {
        let mut v: Vec<(usize, String)> =
            models.iter().map(|m| (self.index(m), m.clone())).collect();
        v.sort();
        v.dedup();
        v
    }
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

/// "run / model / probe", leaving out empty parts.
fn label(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Whether `v` holds more than one distinct value (then labels must name it).
fn several(v: &[String]) -> bool {
    v.iter().any(|x| x != &v[0])
}

/// The family rows, when the runs hold any shift family besides the clean baseline and the
/// ImageNet-C corruptions (runs of corruptions alone keep their report as it was).
async fn family_table(session: &RunSession) -> Result<Option<Table>, ResultsError> {
    let others = table(
        session,
        "SELECT COUNT(*) AS n FROM family_robustness \
         WHERE shift_family NOT IN ('corruption', 'released_corruption')",
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

/// The baseline rows, when some model has a baseline-relative mCE.
async fn baseline_table(session: &RunSession) -> Result<Option<Table>, ResultsError> {
    let t = table(session, BASELINE_SQL).await?;
    let any = t.number("mce_vs_baseline")?.iter().any(Option::is_some);
    Ok(any.then_some(t))
}

/// All figures as (file name, SVG text); the heat map only when there are corruptions.
async fn figures_svg(
    session: &RunSession,
    tables: &Tables,
    colours: &Colours,
) -> Result<Vec<(String, String)>, ResultsError> {
    let mut out = Vec::new();
    if tables.ranking.rows() > 0 {
        out.push((
            SCATTER_FIGURE.into(),
            clean_vs_shifted(&tables.ranking, colours)?,
        ));
    }
    out.extend(group_charts(session, colours).await?);
    if let Some(map) = heat(session).await? {
        out.push(("heatmap.svg".into(), map));
    }
    out.extend(drift(session, colours).await?);
    if let Some(t) = &tables.families {
        out.push((FAMILY_FIGURE.into(), family_scatter(t, colours)?));
    }
    if tables.paradigms.is_some() {
        out.push((PARADIGM_FIGURE.into(), paradigm_chart(session).await?));
    }
    Ok(out)
}

/// Per run, paradigm, probe and shift family: clean error, mean error over the severities, and
/// at the family's highest severity the mean with the spread across the paradigm's models
/// (view `paradigm_robustness`).
pub const PARADIGMS_SQL: &str = "WITH fam AS (
  SELECT run, paradigm, probe, shift_family, MAX(models) AS models,
         AVG(mean_error) AS mean_error, MAX(severity) AS top
  FROM paradigm_robustness WHERE shift_family <> 'clean'
  GROUP BY run, paradigm, probe, shift_family)
SELECT f.run, f.paradigm, f.probe, f.shift_family, f.models, c.mean_error AS clean_error,
       f.mean_error, f.top AS top_severity, t.mean_error AS top_error,
       t.min_error AS top_min_error, t.max_error AS top_max_error
FROM fam f
JOIN paradigm_robustness t
  ON t.run = f.run AND t.paradigm = f.paradigm AND t.probe = f.probe
 AND t.shift_family = f.shift_family AND t.severity = f.top
LEFT JOIN paradigm_robustness c
  ON c.run = f.run AND c.paradigm = f.paradigm AND c.probe = f.probe AND c.shift_family = 'clean'
ORDER BY f.run, f.probe, f.shift_family, clean_error, f.paradigm";

/// The paradigm rows, when some model of the runs has a `paradigm`.
async fn paradigm_table(session: &RunSession) -> Result<Option<Table>, ResultsError> {
    let t = table(session, PARADIGMS_SQL).await?;
    Ok((t.rows() > 0).then_some(t))
}

/// The paradigm figure, shown in its own section of the page.
const PARADIGM_FIGURE: &str = "paradigms.svg";

/// Error vs severity per paradigm: one panel per (run, probe, paradigm), one line per shift
/// family (dash) through the mean of the paradigm's models, from the clean error at severity 0.
async fn paradigm_chart(session: &RunSession) -> Result<String, ResultsError> {
    let t = table(
        session,
        "SELECT run, paradigm, probe, shift_family, severity, mean_error \
         FROM paradigm_robustness ORDER BY run, probe, paradigm, shift_family, severity",
    )
    .await?;
    let (runs, paradigms, probes, fams) = (
        t.text("run")?,
        t.text("paradigm")?,
        t.text("probe")?,
        t.text("shift_family")?,
    );
    let (sev, err) = (t.number("severity")?, t.number("mean_error")?);
    let mut names = paradigms.clone();
    names.sort();
    names.dedup();
    let families: Vec<String> = distinct(&fams)
        .into_iter()
        .filter(|f| f != "clean")
        .collect();
    let (show_run, show_probe) = (several(&runs), several(&probes));
    type Key = (String, String, String);
    let mut clean: BTreeMap<Key, f64> = BTreeMap::new();
    let mut panels: BTreeMap<Key, BTreeMap<String, Vec<(f64, f64)>>> = BTreeMap::new();
    for i in 0..t.rows() {
        let (Some(s), Some(e)) = (sev[i], err[i]) else {
            continue;
        };
        let key = (runs[i].clone(), probes[i].clone(), paradigms[i].clone());
        if fams[i] == "clean" {
            clean.insert(key, e);
        } else {
            let line = panels.entry(key).or_default().entry(fams[i].clone());
            line.or_default().push((s, e));
        }
    }
    let panels: Vec<LinePanel> = panels
        .into_iter()
        .map(|(key, lines)| {
            let colour = names.iter().position(|n| n == &key.2).unwrap_or(0);
            let run = if show_run { key.0.as_str() } else { "" };
            let probe = if show_probe { key.1.as_str() } else { "" };
            let start = clean.get(&key).copied();
            LinePanel {
                title: label(&[run, probe, &key.2]),
                colour,
                lines: lines
                    .into_iter()
                    .map(|(family, mut points)| {
                        if let Some(c) = start {
                            points.insert(0, (0.0, c));
                        }
                        Series {
                            dash: families.iter().position(|f| f == &family).unwrap_or(0),
                            name: family,
                            colour,
                            points,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(svg::line_panels(
        "Top-1 error vs severity per paradigm (mean of its models; grey: the other panels)",
        ("severity (0 = clean)", "top-1 error"),
        &panels,
        (0.0, 1.0),
        &families,
    ))
}

const PARADIGM_NOTE: &str = "From `paradigm_robustness`: each model's error averaged over the \
     family's shifts, then over the models that share a `paradigm` (models without one are left \
     out); the spread is the lowest and highest model at severity 5.";

const PARADIGM_HEADER: [&str; 8] = [
    "run",
    "paradigm",
    "probe",
    "shift family",
    "models",
    "clean error %",
    "mean error % (severities)",
    "error % at the highest severity (models' min-max)",
];

/// The paradigm rows as cells, in [`PARADIGM_HEADER`] order.
fn paradigm_rows(t: &Table) -> Result<Vec<Vec<String>>, ResultsError> {
    let texts = ["run", "paradigm", "probe", "shift_family"]
        .map(|c| t.text(c))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let models = t.number("models")?;
    let [clean, mean, top, e, lo, hi] = [
        "clean_error",
        "mean_error",
        "top_severity",
        "top_error",
        "top_min_error",
        "top_max_error",
    ]
    .map(|c| t.number(c));
    let (clean, mean, top, e, lo, hi) = (clean?, mean?, top?, e?, lo?, hi?);
    Ok((0..t.rows())
        .map(|i| {
            let mut row: Vec<String> = texts.iter().map(|c| c[i].clone()).collect();
            row.push(models[i].map_or_else(|| "n/a".into(), |m| format!("{m:.0}")));
            row.push(percent(clean[i]));
            row.push(percent(mean[i]));
            row.push(format!(
                "{} at {} ({}-{})",
                percent(e[i]),
                top[i].map_or_else(|| "n/a".into(), |s| format!("severity {s:.0}")),
                percent(lo[i]),
                percent(hi[i])
            ));
            row
        })
        .collect())
}

/// The clean-versus-shifted figure, shown beside the ranking.
const SCATTER_FIGURE: &str = "clean-vs-shifted.svg";

/// Mean shifted error vs clean error (view `ranking`), one panel per run and probe, one point
/// per model: above the diagonal, shifts cost the model errors.
fn clean_vs_shifted(t: &Table, colours: &Colours) -> Result<String, ResultsError> {
    let (runs, probes, models) = (t.text("run")?, t.text("probe")?, t.text("model")?);
    let (clean, shifted) = (t.number("clean_error")?, t.number("mean_shifted_error")?);
    let (show_run, show_probe) = (several(&runs), several(&probes));
    let mut panels: BTreeMap<String, Panel> = BTreeMap::new();
    for i in 0..t.rows() {
        let (Some(x), Some(y)) = (clean[i], shifted[i]) else {
            continue;
        };
        let run = if show_run { runs[i].as_str() } else { "" };
        let probe = if show_probe { probes[i].as_str() } else { "" };
        let title = match label(&[run, probe]) {
            name if name.is_empty() => "every shift".to_string(),
            name => name,
        };
        let panel = panels.entry(title.clone()).or_insert_with(|| Panel {
            title,
            points: Vec::new(),
            line: None,
        });
        panel.points.push((colours.index(&models[i]), x, y));
    }
    let panels: Vec<Panel> = panels.into_values().collect();
    Ok(svg::scatter_panels(
        "Mean shifted error vs clean error (dashed: no loss)",
        ("clean error", "mean shifted error"),
        &panels,
        &colours.legend(&models),
    ))
}

/// Shifted vs clean accuracy, one panel per (run, probe, family), one point (colour) per
/// model, with the least-squares line whose residuals are the effective robustness.
fn family_scatter(t: &Table, colours: &Colours) -> Result<String, ResultsError> {
    let (runs, models, probes, fams) = (
        t.text("run")?,
        t.text("model")?,
        t.text("probe")?,
        t.text("shift_family")?,
    );
    let (clean, shifted) = (t.number("clean_accuracy")?, t.number("shifted_accuracy")?);
    let (slope, intercept) = (t.number("slope")?, t.number("intercept")?);
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
        panel.points.push((colours.index(&models[i]), x, y));
    }
    let panels: Vec<Panel> = panels.into_values().collect();
    Ok(svg::scatter_panels(
        "Accuracy under each shift family vs clean accuracy (line: least-squares fit)",
        ("clean accuracy", "shifted accuracy"),
        &panels,
        &colours.legend(&models),
    ))
}

/// Lines of one small-multiples figure: panel (run, model) -> line name -> (dash, points).
type PanelLines = BTreeMap<(String, String), BTreeMap<String, (usize, Vec<(f64, f64)>)>>;

/// One panel per (run, model) from `lines`, each titled with its model (and run when several).
fn panels_of(lines: PanelLines, colours: &Colours, show_run: bool) -> Vec<LinePanel> {
    lines
        .into_iter()
        .map(|((run, model), series)| {
            let colour = colours.index(&model);
            let run = if show_run { run.as_str() } else { "" };
            LinePanel {
                title: label(&[run, &model]),
                colour,
                lines: series
                    .into_iter()
                    .map(|(name, (dash, points))| Series {
                        name,
                        colour,
                        dash,
                        points,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Error vs severity: one figure per shift group (`errors-GROUP.svg`; released corruptions
/// `errors-released-GROUP.svg`), one panel per run and model, one line per probe (dash);
/// severity 0 is the clean error.
async fn group_charts(
    session: &RunSession,
    colours: &Colours,
) -> Result<Vec<(String, String)>, ResultsError> {
    let sql = "SELECT g.shift_family, g.shift_group, g.run, g.model, g.probe, g.severity, \
         g.mean_error, c.error AS clean_error \
         FROM group_errors g JOIN metrics c ON c.run = g.run AND c.model = g.model \
           AND c.probe = g.probe AND c.shift_family = 'clean' \
         ORDER BY g.shift_family, g.shift_group, g.run, g.model, g.probe, g.severity";
    let t = table(session, sql).await?;
    let (fams, groups, runs, models, probes) = (
        t.text("shift_family")?,
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
    let probe_names = distinct(&probes);
    let mut charts: BTreeMap<(String, String), PanelLines> = BTreeMap::new();
    for i in 0..t.rows() {
        let (Some(s), Some(e)) = (sev[i], err[i]) else {
            continue;
        };
        let dash = probe_names
            .iter()
            .position(|p| p == &probes[i])
            .unwrap_or(0);
        let (_, line) = charts
            .entry((fams[i].clone(), groups[i].clone()))
            .or_default()
            .entry((runs[i].clone(), models[i].clone()))
            .or_default()
            .entry(label(&[&models[i], &probes[i]]))
            .or_insert_with(|| (dash, Vec::new()));
        if let (true, Some(c)) = (line.is_empty(), clean[i]) {
            line.push((0.0, c));
        }
        line.push((s, e));
    }
    let show_run = several(&runs);
    Ok(charts
        .into_iter()
        .map(|((family, group), lines)| {
            let released = family == "released_corruption";
            let (name, title) = match released {
                true => (
                    format!("errors-released-{group}.svg"),
                    format!("Top-1 error vs severity: {group} (released files)"),
                ),
                false => (
                    format!("errors-{group}.svg"),
                    format!("Top-1 error vs severity: {group}"),
                ),
            };
            let panels = panels_of(lines, colours, show_run);
            let svg = svg::line_panels(
                &title,
                ("severity (0 = clean)", "top-1 error"),
                &panels,
                (0.0, 1.0),
                &probe_names,
            );
            (name, svg)
        })
        .collect())
}

/// The distinct values of `v`, in first-seen order.
fn distinct(v: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in v {
        if !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

/// Mean error over severities, model (and probe, run) x corruption; `None` without corruptions.
/// Released corruptions get their own rows, marked `(released)`.
async fn heat(session: &RunSession) -> Result<Option<String>, ResultsError> {
    let t = table(
        session,
        "SELECT run, model, probe, origin, corruption, mean_error FROM corruption_summary \
         ORDER BY run, model, probe, origin, corruption",
    )
    .await?;
    let (runs, models, probes, origins, corr, err) = (
        t.text("run")?,
        t.text("model")?,
        t.text("probe")?,
        t.text("origin")?,
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
        let origin = if origins[i] == "released" {
            "(released)"
        } else {
            ""
        };
        let row = rows
            .entry(label(&[&runs[i], &models[i], &probes[i], origin]))
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

/// Mean cosine of shifted to clean embeddings vs severity, one figure per shift family
/// (`drift.svg` for the corruptions, `drift-FAMILY.svg` for the others), one panel per run and
/// model starting from the clean cosine at severity 0.
async fn drift(
    session: &RunSession,
    colours: &Colours,
) -> Result<Vec<(String, String)>, ResultsError> {
    let t = table(session, "SELECT run, model, shift_family, severity, mean_cosine_to_clean FROM drift ORDER BY run, model, shift_family, severity").await?;
    let (runs, models, fams, sev, cos) = (
        t.text("run")?,
        t.text("model")?,
        t.text("shift_family")?,
        t.number("severity")?,
        t.number("mean_cosine_to_clean")?,
    );
    let mut clean: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut charts: BTreeMap<String, PanelLines> = BTreeMap::new();
    for i in 0..t.rows() {
        let (Some(s), Some(c)) = (sev[i], cos[i]) else {
            continue;
        };
        let key = (runs[i].clone(), models[i].clone());
        if fams[i] == "clean" {
            clean.insert(key, c);
        } else {
            let chart = charts.entry(fams[i].clone()).or_default();
            let line = chart.entry(key).or_default();
            line.entry(models[i].clone())
                .or_insert_with(|| (0, Vec::new()))
                .1
                .push((s, c));
        }
    }
    let show_run = several(&runs);
    Ok(charts
        .into_iter()
        .map(|(family, mut lines)| {
            for (key, series) in lines.iter_mut() {
                if let Some(&c) = clean.get(key) {
                    series.values_mut().for_each(|l| l.1.insert(0, (0.0, c)));
                }
            }
            let name = match family.as_str() {
                "corruption" => "drift.svg".to_string(),
                f => format!("drift-{f}.svg"),
            };
            (
                name,
                drift_chart(&family, panels_of(lines, colours, show_run)),
            )
        })
        .collect())
}

/// One drift figure; the y axis starts at the lowest cosine (rounded down), at most 0.9.
fn drift_chart(family: &str, panels: Vec<LinePanel>) -> String {
    let low = panels
        .iter()
        .flat_map(|p| p.lines.iter().flat_map(|l| l.points.iter().map(|q| q.1)))
        .fold(1.0_f64, f64::min);
    let y0 = (low * 10.0).floor() / 10.0;
    let title = match family {
        "corruption" => "Embedding drift: cosine to clean".to_string(),
        f => format!("Embedding drift: cosine to clean, {f}"),
    };
    svg::line_panels(
        &title,
        ("severity (0 = clean)", "mean cosine to clean"),
        &panels,
        (y0.min(0.9), 1.0),
        &[],
    )
}

/// A fraction as a percentage at the precision of `shiftlab query`'s tables (2 decimals).
pub fn percent(v: Option<f64>) -> String {
    crate::output::percent(v, DEFAULT_PRECISION)
}

/// A score already x100 (mCE), with the same decimals as [`percent`].
pub fn score(v: Option<f64>) -> String {
    v.map_or_else(
        || "n/a".into(),
        |v| decimal(v, DEFAULT_PRECISION.saturating_sub(2)),
    )
}

const HEADLINE: [&str; 11] = [
    "run",
    "model",
    "probe",
    "preset",
    "corruptions",
    "clean error %",
    "mean error % (all)",
    "mean error % (15)",
    "mean error % (19)",
    "mCE",
    "relative mCE",
];

/// What the mCE cells say when the view has no mCE: without AlexNet's errors (presets other
/// than `imagenet224`) there is nothing to normalise by; say so instead of a bare n/a.
const NO_ALEXNET: &str = "no AlexNet ref.";

/// "on the fly", "released" or "none": where a row's corruptions came from.
fn origin_text(origin: &str) -> &str {
    match origin {
        "on_the_fly" => "on the fly",
        "released" => "released",
        _ => "none",
    }
}

/// The headline rows as cells, in [`HEADLINE`] order.
fn headline_rows(t: &Table) -> Result<Vec<Vec<String>>, ResultsError> {
    let texts = [
        t.text("run")?,
        t.text("model")?,
        t.text("probe")?,
        t.text("preset")?,
    ];
    let origins = t.text("origin")?;
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
            row.push(origin_text(&origins[i]).to_string());
            row.extend(pct.iter().map(|c| percent(c[i])));
            let alexnet = texts[3][i] == "imagenet224" || origins[i].is_empty();
            for v in [mce[i], rel[i]] {
                row.push(match (v, alexnet) {
                    (None, false) => NO_ALEXNET.to_string(),
                    (v, _) => score(v),
                });
            }
            row
        })
        .collect())
}

/// The runs whose corruption rows have no AlexNet normaliser (preset other than imagenet224).
fn runs_without_alexnet(t: &Table) -> Result<Vec<String>, ResultsError> {
    let (runs, presets, origins) = (t.text("run")?, t.text("preset")?, t.text("origin")?);
    let mut out: Vec<String> = (0..t.rows())
        .filter(|&i| presets[i] != "imagenet224" && !origins[i].is_empty())
        .map(|i| format!("{} ({})", runs[i], presets[i]))
        .collect();
    out.dedup();
    Ok(out)
}

const RANKING_HEADER: [&str; 8] = [
    "run",
    "probe",
    "rank",
    "model",
    "clean error %",
    "mean shifted error %",
    "increase (points)",
    "shifted rows",
];

/// The ranking rows as cells, in [`RANKING_HEADER`] order.
fn ranking_rows(t: &Table) -> Result<Vec<Vec<String>>, ResultsError> {
    let texts = [t.text("run")?, t.text("probe")?];
    let (rank, model) = (t.number("rank")?, t.text("model")?);
    let pct = ["clean_error", "mean_shifted_error", "error_increase"]
        .map(|c| t.number(c))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let rows = t.number("shifted_rows")?;
    let int = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{v:.0}"));
    Ok((0..t.rows())
        .map(|i| {
            let mut row: Vec<String> = texts.iter().map(|c| c[i].clone()).collect();
            row.push(int(rank[i]));
            row.push(model[i].clone());
            row.extend(pct.iter().map(|c| percent(c[i])));
            row.push(int(rows[i]));
            row
        })
        .collect())
}

const BASELINE_HEADER: [&str; 8] = [
    "run",
    "model",
    "probe",
    "corruptions from",
    "in-run baseline",
    "corruptions",
    "mCE vs baseline",
    "relative mCE vs baseline",
];

/// The baseline rows as cells, in [`BASELINE_HEADER`] order.
fn baseline_rows(t: &Table) -> Result<Vec<Vec<String>>, ResultsError> {
    let texts = ["run", "model", "probe", "origin", "baseline"]
        .map(|c| t.text(c))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let n = t.number("corruptions")?;
    let (mce, rel) = (
        t.number("mce_vs_baseline")?,
        t.number("relative_mce_vs_baseline")?,
    );
    Ok((0..t.rows())
        .map(|i| {
            let mut row: Vec<String> = texts.iter().map(|c| c[i].clone()).collect();
            row[3] = origin_text(&row[3]).to_string();
            row.push(n[i].map_or_else(|| "0".into(), |v| format!("{v:.0}")));
            row.push(score(mce[i]));
            row.push(score(rel[i]));
            row
        })
        .collect())
}

/// What the baseline table means, for both outputs.
const BASELINE_NOTE: &str = "View `baseline_robustness` (`shiftlab report --baseline MODEL`; default: each run's first model). CE of each model relative to the in-run baseline model of its run, probe and corruption origin, which scores 100: per corruption 100 x sum of its errors over the 5 severities / the baseline's sum (relative: errors minus the clean error), averaged over the benchmark corruptions both have (column corruptions), the way CIFAR-10-C papers normalise by their own ResNet. **Not** the ImageNet-C mCE, which is normalised by AlexNet.";

/// What the ranking means, for both outputs.
const RANKING_NOTE: &str = "View `ranking`: mean top-1 error over every shifted row (every family, each shift x severity weighs the same), lowest first within each run and probe; figure `clean-vs-shifted.svg` plots it against the clean error.";

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

/// Markdown `code` spans as HTML `<code>`, `**bold**` as `<strong>` (the notes are shared by
/// both outputs).
fn code_spans(text: &str) -> String {
    let text: String = text
        .split("**")
        .enumerate()
        .map(|(i, part)| match i % 2 {
            1 => format!("<strong>{part}</strong>"),
            _ => part.to_string(),
        })
        .collect();
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

/// What the headline table means; `missing` names runs without an AlexNet normaliser.
fn headline_note(missing: &[String]) -> String {
    let mut note = String::from("View `robustness`. mCE and relative mCE are AlexNet-normalised over the 15 benchmark corruptions and exist only for `imagenet224` runs with all 15 x 5 present; the mean errors are plain means over corruptions x severities, not mCE. Column corruptions: made on the fly or read from released files (ImageNet-C, CIFAR-10-C as a `[[targets]]` entry, with the source's clean split as the clean reference).");
    if !missing.is_empty() {
        note.push_str(&format!(" Runs {} have no AlexNet reference, so mCE is not defined for them (`{NO_ALEXNET}`); the section Relative to an in-run baseline normalises by a model of the run instead.", missing.join(", ")));
    }
    note
}

/// A Markdown table.
fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut md = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        md.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    md
}

fn markdown(tables: &Tables, figures: &[String]) -> Result<String, ResultsError> {
    let missing = runs_without_alexnet(&tables.robust)?;
    let mut md = String::from("# shiftlab report\n\n");
    md.push_str(&format!("{}\n\n", headline_note(&missing)));
    md.push_str(&md_table(&HEADLINE, &headline_rows(&tables.robust)?));
    md.push_str(&format!("\n## Ranking\n\n{RANKING_NOTE}\n\n"));
    md.push_str(&md_table(&RANKING_HEADER, &ranking_rows(&tables.ranking)?));
    if let Some(t) = &tables.baseline {
        md.push_str(&format!(
            "\n## Relative to an in-run baseline\n\n{BASELINE_NOTE}\n\n"
        ));
        md.push_str(&md_table(&BASELINE_HEADER, &baseline_rows(t)?));
    }
    if let Some(t) = &tables.families {
        md.push_str(&format!("\n## Shift families\n\n{FAMILY_NOTE}\n\n"));
        md.push_str(&md_table(&FAMILY_HEADER, &family_rows(t)?));
    }
    if let Some(t) = &tables.paradigms {
        md.push_str(&format!("\n## Paradigms\n\n{PARADIGM_NOTE}\n\n"));
        md.push_str(&md_table(&PARADIGM_HEADER, &paradigm_rows(t)?));
        md.push_str(&format!(
            "\n![{PARADIGM_FIGURE}](figures/{PARADIGM_FIGURE})\n"
        ));
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
.figures{display:flex;flex-wrap:wrap;gap:8px}.figures img,p img{max-width:100%}.note{color:#a00}";

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
    tables: &'a Tables,
    stages: Option<&'a Table>,
    configs: &'a [(String, String)],
    figures: &'a [String],
    notes: &'a [String],
}

/// A figure as an image of the page.
fn img(name: &str, alt: &str) -> String {
    format!(
        "<img src=\"figures/{}\" alt=\"{}\">\n",
        svg::escape(name),
        svg::escape(alt)
    )
}

/// A section: heading, its note (Markdown code spans), its table.
fn section(title: &str, note: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    format!(
        "<h2>{}</h2>\n<p>{}</p>\n{}",
        svg::escape(title),
        code_spans(&svg::escape(note)),
        html_table(&header, rows)
    )
}

fn html(page: &Page) -> Result<String, ResultsError> {
    let Page {
        tables,
        stages,
        configs,
        figures,
        notes,
    } = *page;
    let mut h = format!("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>shiftlab report</title><style>{CSS}</style></head><body>\n<h1>shiftlab report</h1>\n");
    for n in notes {
        h.push_str(&format!("<p class=\"note\">Note: {}</p>\n", svg::escape(n)));
    }
    let missing = runs_without_alexnet(&tables.robust)?;
    let robust = headline_rows(&tables.robust)?;
    h.push_str(&section(
        "Robustness",
        &headline_note(&missing),
        &HEADLINE,
        &robust,
    ));
    let ranking = ranking_rows(&tables.ranking)?;
    h.push_str(&section("Ranking", RANKING_NOTE, &RANKING_HEADER, &ranking));
    if figures.iter().any(|f| f == SCATTER_FIGURE) {
        h.push_str(&format!(
            "<p>{}</p>",
            img(
                SCATTER_FIGURE,
                "mean shifted error vs clean error per model"
            )
        ));
    }
    if let Some(t) = &tables.baseline {
        let rows = baseline_rows(t)?;
        h.push_str(&section(
            "Relative to an in-run baseline",
            BASELINE_NOTE,
            &BASELINE_HEADER,
            &rows,
        ));
    }
    if let Some(t) = &tables.families {
        let rows = family_rows(t)?;
        h.push_str(&section(
            "Shift families",
            FAMILY_NOTE,
            &FAMILY_HEADER,
            &rows,
        ));
        h.push_str(&format!(
            "<p>{}</p>\n",
            img(FAMILY_FIGURE, "shifted vs clean accuracy per family")
        ));
    }
    if let Some(t) = &tables.paradigms {
        let rows = paradigm_rows(t)?;
        h.push_str(&section(
            "Paradigms",
            PARADIGM_NOTE,
            &PARADIGM_HEADER,
            &rows,
        ));
        h.push_str(&format!(
            "<p>{}</p>\n",
            img(PARADIGM_FIGURE, "top-1 error vs severity per paradigm")
        ));
    }
    h.push_str("<h2>Figures</h2>\n<div class=\"figures\">\n");
    for f in figures
        .iter()
        .filter(|f| ![FAMILY_FIGURE, SCATTER_FIGURE, PARADIGM_FIGURE].contains(&f.as_str()))
    {
        h.push_str(&img(f, f));
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
