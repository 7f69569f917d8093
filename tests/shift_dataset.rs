//! `shiftlab shift-dataset` end to end on real Fashion-MNIST: the binary writes a shifted table,
//! pyarrow/numpy/Pillow read it back and check it against independent computations.

mod common;

use std::path::Path;

use common::{fails, fmnist, ok, python_script};

/// Reads the input's first N test rows and the output; checks layout, metadata and pixels.
/// Desaturation leaves grey images unchanged, so its rows must be Pillow's bilinear resize of
/// the input (within one grey level: different resamplers) and give the exact resized image;
/// gamma rows must then equal `round(255 (x / 255)^g)` of it, g from the documented table.
const CHECK: &str = r#"
import io, json, sys
import numpy as np, pyarrow.parquet as pq
from PIL import Image

src_path, out_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
src = pq.read_table(src_path, filters=[("split", "=", "test")]).slice(0, n).to_pylist()
table = pq.read_table(out_path)
out = table.to_pylist()
blocks = [("desaturation", 2), ("desaturation", 5), ("gamma", 2), ("gamma", 5)]
assert len(out) == n * len(blocks), len(out)
meta_in = json.loads(pq.read_schema(src_path).metadata[b"shiftlab"])
meta = json.loads(table.schema.metadata[b"shiftlab"])
assert meta["class_names"] == meta_in["class_names"], meta
assert meta["splits"] == {"test": n * len(blocks)}, meta
assert table.schema.names == pq.read_schema(src_path).names

def pixels(row):
    img = Image.open(io.BytesIO(row["image"]["bytes"]))
    assert img.format == "PNG" and img.mode == "L", (row["id"], img.format, img.mode)
    return np.asarray(img).astype(np.float64)

gamma = {2: 1.6, 5: 3.0}
for b, (name, sev) in enumerate(blocks):
    for i, s in enumerate(src):
        r = out[b * n + i]
        assert (r["id"], r["split"], r["label"]) == (s["id"], "test", s["label"]), (r["id"], s["id"])
        assert (r["corruption"], r["severity"]) == (name, sev), r["id"]
        assert (r["width"], r["height"], r["channels"]) == (32, 32, 1), r["id"]
        got = pixels(r)
        resized = pixels(out[i])  # desaturation s2 of the same image = the resized image
        if name == "desaturation":
            ref = Image.open(io.BytesIO(s["image"]["bytes"])).resize((32, 32), Image.BILINEAR)
            diff = np.abs(got - np.asarray(ref, dtype=np.float64))
            assert diff.max() <= 1 and diff.mean() < 0.5, (r["id"], diff.max(), diff.mean())
            assert (got == resized).all(), r["id"]
        else:
            want = np.round(255 * (resized / 255) ** gamma[sev])
            assert (got == want).all(), (r["id"], sev, np.abs(got - want).max())
            assert got.sum() < resized.sum() or resized.max() == 0, r["id"]
print("ok", len(out))
"#;

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[test]
fn shifted_fashion_mnist_matches_independent_computation() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("shifted.parquet");
    let src = fmnist();
    let args = [
        "shift-dataset",
        "--input",
        s(src),
        "--output",
        s(&out),
        "--shift",
        "desaturation,gamma",
        "--severity",
        "2,5",
        "--limit",
        "7",
        "--resize",
        "32",
    ];
    let stdout = ok(&args);
    assert!(stdout.contains("wrote 28 rows"), "{stdout}");
    let checked = python_script(CHECK, &[s(src), s(&out), "7"]);
    assert!(checked.starts_with("ok 28"), "{checked}");
    // Same arguments, same images (random shifts included: keys come from the ids).
    let again = tmp.path().join("again.parquet");
    let rand = |o: &str| {
        let mut a = args.to_vec();
        a[4] = o;
        a[6] = "rotation,occlusion";
        ok(&a);
        rows(Path::new(o))
    };
    let first = rand(s(&out));
    assert_eq!(first.len(), 28);
    assert!(first == rand(s(&again)), "a second run gave other images");
    // A smaller run gives the same image for the same id (nothing depends on the run size).
    let mut a = args.to_vec();
    a[4] = s(&again);
    a[6] = "occlusion";
    a[10] = "1";
    ok(&a);
    assert!(rows(&again)[0] == first[14], "occlusion s2 of test/00000");
}

/// (id, corruption, severity, image bytes) of one row.
type RowKey = (String, Option<String>, Option<i32>, Vec<u8>);

/// Every row of a table, read with shiftlab_data's reader.
fn rows(path: &Path) -> Vec<RowKey> {
    let mut out = Vec::new();
    for b in shiftlab_data::DatasetReader::open(path, 64, None).unwrap() {
        let b = b.unwrap();
        for i in 0..b.len() {
            out.push((
                b.ids[i].clone(),
                b.corruptions[i].clone(),
                b.severities[i],
                b.images[i].clone(),
            ));
        }
    }
    out
}

#[test]
fn errors_name_the_item_and_the_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.parquet");
    let base = |shift: &'static str| {
        vec![
            "shift-dataset",
            "--input",
            s(fmnist()),
            "--output",
            s(&out),
            "--shift",
            shift,
            "--severity",
            "1",
            "--limit",
            "3",
        ]
    };
    let e = fails(&base("gamma"));
    assert!(
        e.contains("test/00000") && e.contains("28x28") && e.contains("--resize 32"),
        "{e}"
    );
    let e = fails(&base("rotate"));
    assert!(
        e.contains("\"rotate\"") && e.contains("zoom_blur") && e.contains("color_temperature"),
        "{e}"
    );
    let mut a = base("fog");
    a.extend(["--resize", "32"]);
    let e = fails(&a);
    assert!(e.contains("fog needs --preset"), "{e}");
    a.extend(["--split", "validation", "--preset", "cifar32"]);
    let e = fails(&a);
    assert!(
        e.contains("\"validation\"") && e.contains("test, train"),
        "{e}"
    );
    let e = fails(&[
        "corrupt",
        "--shift",
        "gamma",
        "--severity",
        "6",
        "in.png",
        "o.png",
    ]);
    assert!(e.contains("1..=5"), "{e}");
    assert!(!out.exists(), "nothing is left at the output path");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
