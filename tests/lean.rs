//! The `shiftlab` program itself (no libtorch; `make test` also runs this file from a build
//! without the `torch` feature): `corrupt`, `gallery` and `query` end to end. Outputs are checked
//! against the corruption crate's functions and against pandas reading the same table.

mod common;

use std::path::{Path, PathBuf};

use common::{fails, ok, python_script, root};

fn frost_dir() -> PathBuf {
    root().join("assets/frost")
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn corrupt(input: &Path, output: &Path, corruption: &str, severity: u32) -> Vec<String> {
    vec![
        "corrupt".into(),
        "--corruption".into(),
        corruption.into(),
        "--severity".into(),
        severity.to_string(),
        "--seed".into(),
        "3".into(),
        "--preset".into(),
        "cifar32".into(),
        "--frost-dir".into(),
        utf8(&frost_dir()).into(),
        utf8(input).into(),
        utf8(output).into(),
    ]
}

fn run(args: &[String]) -> String {
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn corrupt_png_and_jpeg_to_png_deterministically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image::RgbImage::from_fn(40, 36, |x, y| image::Rgb([x as u8 * 6, y as u8 * 7, 90]));
    let png = dir.path().join("in.png");
    let jpg = dir.path().join("in.jpg");
    img.save(&png).expect("png");
    img.save(&jpg).expect("jpg");
    for (inp, c) in [(&png, "frost"), (&jpg, "snow"), (&png, "jpeg_compression")] {
        let out = dir.path().join(format!("out_{c}.png"));
        run(&corrupt(inp, &out, c, 2));
        let back = image::open(&out).expect("decodes");
        assert_eq!((back.width(), back.height()), (40, 36));
        let again = dir.path().join(format!("again_{c}.png"));
        run(&corrupt(inp, &again, c, 2));
        assert_eq!(std::fs::read(&out).ok(), std::fs::read(&again).ok(), "{c}");
    }
    // No temporary is left beside the outputs.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    // Grey stays grey.
    let gray = dir.path().join("gray.png");
    image::DynamicImage::ImageRgb8(img)
        .to_luma8()
        .save(&gray)
        .expect("gray");
    let out = dir.path().join("gray_out.png");
    run(&corrupt(&gray, &out, "fog", 5));
    assert!(matches!(
        image::open(&out).expect("decodes"),
        image::DynamicImage::ImageLuma8(_)
    ));
}

#[test]
fn corrupt_errors_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("in.png");
    image::RgbImage::new(40, 40).save(&png).expect("png");
    let out = dir.path().join("o.png");
    let args = |c: &str, s: u32, inp: &Path| corrupt(inp, &out, c, s);
    let said = |a: Vec<String>| fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let e = said(args("fogg", 1, &png));
    assert!(e.contains("valid names") && e.contains("zoom_blur"), "{e}");
    let e = said(args("fog", 9, &png));
    assert!(e.contains("1..=5"), "{e}");
    let small = dir.path().join("small.png");
    image::RgbImage::new(20, 40).save(&small).expect("png");
    let e = said(args("fog", 1, &small));
    assert!(e.contains("20x40") && e.contains("32x32"), "{e}");
    let mut a = args("frost", 1, &png);
    let at = a.iter().position(|x| x == "--frost-dir").expect("flag") + 1;
    a[at] = utf8(&dir.path().join("nope")).to_string();
    let e = said(a);
    assert!(e.contains("nope"), "{e}");
    assert!(!out.exists());
}

#[test]
fn corrupt_accepts_synthetic_shifts_and_gallery_writes_png() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image::RgbImage::from_fn(40, 36, |x, y| image::Rgb([x as u8 * 6, y as u8 * 7, 90]));
    let png = dir.path().join("in.png");
    img.save(&png).expect("png");
    let out = dir.path().join("gamma.png");
    ok(&[
        "corrupt",
        "--shift",
        "gamma",
        "--severity",
        "3",
        utf8(&png),
        utf8(&out),
    ]);
    let want = shiftlab_corrupt::shift(
        &img,
        shiftlab_corrupt::SyntheticShift::Gamma,
        shiftlab_corrupt::Severity::new(3).expect("severity"),
        0,
        0,
    )
    .expect("shift");
    assert!(image::open(&out).expect("decodes").to_rgb8() == want);
    let e = fails(&[
        "corrupt",
        "--shift",
        "rotate",
        "--severity",
        "1",
        utf8(&png),
        utf8(&out),
    ]);
    assert!(
        e.contains("rotate") && e.contains("zoom_blur") && e.contains("color_temperature"),
        "{e}"
    );
    let grid = dir.path().join("grid.png");
    ok(&[
        "gallery",
        utf8(&png),
        "--out",
        utf8(&grid),
        "--preset",
        "cifar32",
        "--rows",
        "synthetic",
        "--tile",
        "16",
    ]);
    let g = image::open(&grid).expect("decodes");
    assert!(g.height() > 9 * 16, "{}", g.height());
}

/// A run folder as `shiftlab run` leaves it, written by pyarrow from the schemas in `schemas/`.
const MAKE_RUN: &str = r#"
import json, os, sys
import pyarrow as pa, pyarrow.parquet as pq
root, schemas = sys.argv[1], sys.argv[2]
types = {"utf8": pa.string(), "int32": pa.int32(), "int64": pa.int64(), "float64": pa.float64(),
         "float32": pa.float32(), "bool": pa.bool_(), "uint64": pa.uint64()}
spec = json.load(open(os.path.join(schemas, "metrics.json")))
schema = pa.schema([pa.field(f["name"], types[f["type"]], f["nullable"]) for f in spec["fields"]])
rows = []
for m, clean in [("enc-a", 0.1984736842), ("enc-b", 0.25)]:
    for probe in ["linear", "knn"]:
        rows.append(dict(run="lean", model=m, probe=probe, shift="clean", shift_group="clean",
                         shift_family="clean", severity=0, n=95, errors=int(round(clean * 95)),
                         error=clean, top5_error=clean / 3, mean_cosine_to_clean=1.0, ece=0.05))
        for sev in range(1, 6):
            e = clean + 0.0312345678 * sev
            rows.append(dict(run="lean", model=m, probe=probe, shift="fog", shift_group="weather",
                             shift_family="corruption", severity=sev, n=95,
                             errors=int(round(e * 95)), error=e, top5_error=e / 3,
                             mean_cosine_to_clean=1.0 - 0.05 * sev, ece=0.06))
cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
os.makedirs(os.path.join(root, "manifest"), exist_ok=True)
pq.write_table(pa.table(cols, schema=schema), os.path.join(root, "metrics.parquet"))
json.dump({"name": "lean", "fingerprint": "0", "parts_total": 1, "part_size": 95,
           "preset": "cifar32", "shifts": 6, "models": ["enc-a", "enc-b"]},
          open(os.path.join(root, "run.json"), "w"))
json.dump({"part": 0}, open(os.path.join(root, "manifest", "part-00000.json"), "w"))
"#;

#[test]
fn query_over_a_run_folder_matches_pandas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).expect("run folder");
    python_script(MAKE_RUN, &[utf8(&run), utf8(&root().join("schemas"))]);
    let sql = "SELECT model, probe, severity, error FROM metrics WHERE shift = 'fog' ORDER BY model, probe, severity";
    let csv = ok(&["query", "--run", utf8(&run), "--format", "csv", sql]);
    let check = r#"
import io, sys
import pandas as pd
got = pd.read_csv(io.StringIO(sys.argv[2]))
want = pd.read_parquet(sys.argv[1] + "/metrics.parquet")
want = want[want["shift"] == "fog"].sort_values(["model", "probe", "severity"])
assert list(got.columns) == ["model", "probe", "severity", "error"], got.columns
assert len(got) == len(want) == 20, (len(got), len(want))
assert (got["model"].values == want["model"].values).all()
assert (got["severity"].values == want["severity"].values).all()
assert (abs(got["error"].values - want["error"].values) < 1e-12).all()
print("ok")
"#;
    let said = python_script(check, &[utf8(&run), &csv]);
    assert_eq!(said.trim(), "ok");
    let e = fails(&["query", "--run", utf8(&run), "SELECT nope FROM metrics"]);
    assert!(e.contains("nope"), "{e}");
}
