//! The report of a run with eight models, opened in a real browser (Debian's chromium,
//! headless; `scripts/setup-browser.sh` installs it): every figure the page shows must load,
//! nothing may reach the console, and the screenshot must show the page (not blank, every
//! model's colour on it). The same run checks the in-run baseline table against a hand
//! computation from `metrics`, and that `query`, the end-of-run summary and the report print
//! the same digits.
//!
//! Without chromium the browser part is skipped with a message, except under `CI=true`, where
//! a missing browser fails the test instead of passing silently.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{fmnist, ok, root, text};

const CHROMIUM: &str = "/usr/bin/chromium";
const MODELS: usize = 8;
const BASELINE: &str = "enc-3";
/// The benchmark corruptions of the run, each at 5 severities.
const CORRUPTIONS: [&str; 3] = ["gaussian_noise", "fog", "contrast"];

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn work() -> PathBuf {
    let dir = root().join("target/test-report-browser");
    std::fs::create_dir_all(&dir).expect("work folder");
    dir
}

/// The eight-model run (random-init ResNet-18s of different seeds, 6 images), made once, with
/// the stdout of `shiftlab run` (its end-of-run summary).
fn eight_models() -> &'static (PathBuf, String) {
    static RUN: OnceLock<(PathBuf, String)> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = work().join("run");
        let _ = std::fs::remove_dir_all(&out);
        let models: String = (0..MODELS)
            .map(|i| {
                format!(
                    "[[models]]\nname = \"enc-{i}\"\narchitecture = \"resnet18\"\ninput_size = 32\nseed = {i}\n\n"
                )
            })
            .collect();
        let text = format!(
            r#"[pipeline]
name = "eight"
output = "{out}"
seed = 0

[source]
dataset = "{dataset}"
limit = 6
fit_limit = 60

[shifts]
preset = "cifar32"
corruptions = {corruptions:?}
synthetic = ["rotation"]
resize = 32

{models}[probes.knn]
k = 5

[runtime]
batch_size = 32
embed_block = 32
cpu_workers = 2
torch_threads = 1
"#,
            out = path(&out),
            dataset = path(fmnist()),
            corruptions = CORRUPTIONS,
        );
        let file = work().join("eight.toml");
        std::fs::write(&file, text).expect("pipeline file");
        let summary = ok(&["run", "--quiet", path(&file)]);
        (out, summary)
    })
}

/// CSV text as rows of (column -> cell).
fn csv_rows(csv: &str) -> Vec<HashMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(String::from)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

fn num(row: &HashMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {:?}", row[col]))
}

/// Per model: its mCE and relative mCE against [`BASELINE`], by hand from `metrics`.
fn baseline_by_hand(run: &Path) -> BTreeMap<String, (f64, f64)> {
    let csv = ok(&[
        "query",
        "--run",
        path(run),
        "--format",
        "csv",
        "SELECT model, shift, shift_family, severity, error FROM metrics WHERE probe = 'knn'",
    ]);
    let mut clean: HashMap<String, f64> = HashMap::new();
    let mut sums: HashMap<(String, String), (f64, usize)> = HashMap::new();
    for r in csv_rows(&csv) {
        match r["shift_family"].as_str() {
            "clean" => {
                clean.insert(r["model"].clone(), num(&r, "error"));
            }
            "corruption" => {
                let e = sums
                    .entry((r["model"].clone(), r["shift"].clone()))
                    .or_default();
                e.0 += num(&r, "error");
                e.1 += 1;
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for model in clean.keys() {
        let (mut ce, mut rel) = (0.0, 0.0);
        for c in CORRUPTIONS {
            let (m, b) = (
                &sums[&(model.clone(), c.into())],
                &sums[&(BASELINE.into(), c.into())],
            );
            assert_eq!((m.1, b.1), (5, 5), "{model} {c}: 5 severities");
            ce += 100.0 * m.0 / b.0;
            rel += 100.0 * (m.0 - 5.0 * clean[model]) / (b.0 - 5.0 * clean[BASELINE]);
        }
        let n = CORRUPTIONS.len() as f64;
        out.insert(model.clone(), (ce / n, rel / n));
    }
    out
}

#[test]
fn baseline_table_equals_the_hand_computation() {
    let (run, _) = eight_models();
    let by_hand = baseline_by_hand(run);
    assert_eq!(by_hand.len(), MODELS);
    let csv = ok(&[
        "query",
        "--run",
        path(run),
        "--baseline",
        BASELINE,
        "--format",
        "csv",
        "SELECT model, baseline, corruptions, mce_vs_baseline, relative_mce_vs_baseline \
         FROM baseline_robustness ORDER BY model",
    ]);
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), MODELS, "{csv}");
    let out = work().join("baseline-report");
    ok(&[
        "report",
        path(run),
        "--out",
        path(&out),
        "--baseline",
        BASELINE,
    ]);
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    for r in &rows {
        let (mce, rel) = by_hand[&r["model"]];
        assert_eq!(r["baseline"], BASELINE);
        assert_eq!(r["corruptions"], "3");
        assert!(
            (num(r, "mce_vs_baseline") - mce).abs() < 1e-9,
            "{r:?} vs {mce}"
        );
        assert!(
            (num(r, "relative_mce_vs_baseline") - rel).abs() < 1e-9,
            "{r:?} vs {rel}"
        );
        // The report shows the same numbers at its precision.
        let row = format!(
            "| eight | {} | knn | on the fly | {BASELINE} | 3 | {mce:.2} | {rel:.2} |",
            r["model"]
        );
        assert!(md.contains(&row), "{row} not in\n{md}");
    }
    assert!(
        (by_hand[BASELINE].0 - 100.0).abs() < 1e-12,
        "the baseline scores 100"
    );
}

#[test]
fn query_summary_and_report_print_the_same_digits() {
    let (run, summary) = eight_models();
    let csv = ok(&[
        "query",
        "--run",
        path(run),
        "--format",
        "csv",
        "SELECT model, clean_error FROM robustness ORDER BY model",
    ]);
    let table = ok(&[
        "query",
        "--run",
        path(run),
        "SELECT model, clean_error FROM robustness ORDER BY model",
    ]);
    let two = ok(&[
        "query",
        "--run",
        path(run),
        "--precision",
        "2",
        "SELECT model, clean_error FROM robustness ORDER BY model",
    ]);
    let out = work().join("digits-report");
    ok(&["report", path(run), "--out", path(&out)]);
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    for r in csv_rows(&csv) {
        let (model, v) = (&r["model"], num(&r, "clean_error"));
        // CSV keeps every digit: it parses back to the same value.
        assert_eq!(r["clean_error"], format!("{v}"));
        let cell = format!("| {model} | {v:.4} ");
        assert!(table.contains(&cell), "{cell} not in\n{table}");
        assert!(two.contains(&format!("| {model} | {v:.2} ")), "{two}");
        let pct = format!("{:.2}", 100.0 * v);
        let line = summary
            .lines()
            .find(|l| l.starts_with(&format!("{model} ")))
            .unwrap_or_else(|| panic!("no summary line for {model}:\n{summary}"));
        assert!(
            line.split_whitespace().nth(2) == Some(pct.as_str()),
            "{line} vs {pct}"
        );
        let head = format!("| eight | {model} | knn | cifar32 | on the fly | {pct} |");
        assert!(md.contains(&head), "{head} not in\n{md}");
    }
}

/// The browser, or why there is none (an error under CI=true).
fn chromium() -> Option<&'static str> {
    if Path::new(CHROMIUM).is_file() {
        return Some(CHROMIUM);
    }
    let msg = format!("{CHROMIUM} is missing: run scripts/setup-browser.sh (Debian's chromium)");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: {msg}"
    );
    eprintln!("skipped: {msg}");
    None
}

/// Runs headless chromium with a fresh profile on `page`; `extra` picks the output.
fn headless(browser: &str, page: &Path, extra: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("file://{}", path(page));
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", path(profile.path())),
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs")
}

/// A page that loads the report in a frame and, once everything loaded, writes what the
/// browser made of each image (loaded with a size, or broken) into `#verdict`.
const HARNESS: &str = r#"<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<pre id="verdict">pending</pre>
<iframe id="report" src="report.html" style="width:1280px;height:2000px"></iframe>
<script>
window.addEventListener("load", () => {
  const d = document.getElementById("report").contentDocument;
  const images = Array.from(d.images).map(i =>
    (i.complete && i.naturalWidth > 0 ? "ok " : "broken ") + i.getAttribute("src"));
  document.getElementById("verdict").textContent =
    "title=" + d.title + "\n" + images.join("\n") + "\nend";
});
</script></body></html>
"#;

/// Figures as the browser saw them: src -> loaded.
fn browser_images(browser: &str, report: &Path) -> HashMap<String, bool> {
    let harness = report.join("harness.html");
    std::fs::write(&harness, HARNESS).expect("harness");
    let out = headless(browser, &harness, &["--dump-dom"]);
    assert!(out.status.success(), "chromium failed:\n{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let verdict = dom
        .split("<pre id=\"verdict\">")
        .nth(1)
        .and_then(|v| v.split("</pre>").next())
        .unwrap_or_default();
    assert!(
        verdict.starts_with("title=shiftlab report") && verdict.ends_with("end"),
        "the harness did not run:\n{dom}"
    );
    verdict
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(state, _)| *state == "ok" || *state == "broken")
        .map(|(state, src)| (src.to_string(), state == "ok"))
        .collect()
}

/// RGB of a `#rrggbb` colour.
fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).expect("hex colour");
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// The screenshot shows the page: enough non-white pixels, and every model's colour.
fn check_screenshot(shot: &Path) {
    let img = image::open(shot).expect("screenshot decodes").to_rgb8();
    let pixels = img.pixels().count().max(1);
    let inked = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(
        inked * 50 > pixels,
        "the screenshot is (almost) blank: {inked} of {pixels} pixels not white"
    );
    for i in 0..MODELS {
        let want = rgb(shiftlab_results::svg::PALETTE[i]);
        assert!(
            img.pixels().any(|p| p.0 == want),
            "colour of model {i} ({want:?}) is not on the screenshot"
        );
    }
}

#[test]
fn report_of_eight_models_renders_in_chromium() {
    let (run, _) = eight_models();
    let report = work().join("browser-report");
    let _ = std::fs::remove_dir_all(&report);
    ok(&["report", path(run), "--out", path(&report)]);
    let Some(browser) = chromium() else {
        return;
    };
    let images = browser_images(browser, &report);
    let figures: Vec<String> = std::fs::read_dir(report.join("figures"))
        .expect("figures")
        .flatten()
        .map(|e| format!("figures/{}", e.file_name().to_string_lossy()))
        .collect();
    assert!(figures.len() >= 6, "{figures:?}");
    for f in &figures {
        assert_eq!(
            images.get(f),
            Some(&true),
            "figure {f} not loaded: {images:?}"
        );
    }
    let broken: Vec<&String> = images
        .iter()
        .filter(|(_, ok)| !**ok)
        .map(|(s, _)| s)
        .collect();
    assert!(broken.is_empty(), "broken images: {broken:?}");
    let shot = report.join("screenshot.png");
    let arg = format!("--screenshot={}", path(&shot));
    let out = headless(
        browser,
        &report.join("report.html"),
        &[&arg, "--window-size=1280,3000", "--hide-scrollbars"],
    );
    assert!(out.status.success(), "chromium failed:\n{}", text(&out));
    check_screenshot(&shot);
}
