//! Several splits into one table (ImageFolder split layouts, explicit `NAME=DIR` inputs, folders
//! of Parquet shards), path-only Hugging Face images, and ingests that fail for want of rows.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use shiftlab_data::{ingest, read_info, DataError, Format, IngestOptions, Input};

/// `root/<split>/<class>/<n>.png` with pixel value `v` each; returns (split, class, v) in the
/// order the table must hold them.
fn split_tree(root: &Path, layout: &[(&str, &[&str])]) -> Vec<(String, String, u8)> {
    let mut v = 0u8;
    let mut rows = Vec::new();
    for (split, classes) in layout {
        for class in *classes {
            for n in 0..2 {
                v += 1;
                write_png_rgb(&root.join(format!("{split}/{class}/{n}.png")), 3, 2, v);
                rows.push((split.to_string(), class.to_string(), v));
            }
        }
    }
    rows
}

fn named(split: &str, dir: &Path) -> Input {
    Input {
        split: Some(split.into()),
        path: dir.to_path_buf(),
    }
}

/// The first red value of each row's image.
fn first_pixels(rows: &shiftlab_data::ImageBatch) -> Vec<u8> {
    let px = |b: &Vec<u8>| {
        image::load_from_memory(b)
            .unwrap()
            .to_rgb8()
            .get_pixel(0, 0)
            .0[0]
    };
    rows.images.iter().map(px).collect()
}

#[test]
fn split_folders_become_one_table_with_the_union_of_classes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    // Table order: train, val, test (classes sorted within each); bird only in train, zebra
    // only in test, Dog not in val.
    let want = split_tree(
        &root,
        &[
            ("train", &["Dog", "bird", "cat"]),
            ("val", &["cat"]),
            ("test", &["Dog", "cat", "zebra"]),
        ],
    );
    fs::write(root.join("README.md"), b"x").unwrap();
    let out = dir.path().join("t.parquet");
    let report = ingest(&IngestOptions::new(Format::ImageFolder, &root, &out)).unwrap();
    // Byte-wise order of the union: uppercase first.
    let classes = ["Dog", "bird", "cat", "zebra"];
    assert_eq!(report.class_names, classes);
    let rows = read_all(&out);
    let splits: Vec<&str> = want.iter().map(|w| w.0.as_str()).collect();
    assert_eq!(rows.splits, splits);
    let label = |c: &str| classes.iter().position(|x| *x == c).unwrap() as i64;
    assert_eq!(
        rows.labels,
        want.iter().map(|w| label(&w.1)).collect::<Vec<_>>()
    );
    assert_eq!(rows.ids[0], "train/Dog/0.png");
    assert_eq!(
        first_pixels(&rows),
        want.iter().map(|w| w.2).collect::<Vec<_>>()
    );
    assert_eq!(report.rejects.len(), 1);
    assert_eq!(report.rejects[0].item, "README.md");
    assert!(report.rejects[0]
        .to_string()
        .contains("a file where split folders belong"));
    // The partial classes are named, in the summary and in the table's metadata.
    let notes = report.notes.join("\n");
    assert!(
        notes.contains("'bird' is in split train but not in val, test"),
        "{notes}"
    );
    assert!(
        notes.contains("'zebra' is in split test but not in train, val"),
        "{notes}"
    );
    assert!(
        notes.contains("'Dog' is in split train, test but not in val"),
        "{notes}"
    );
    assert_eq!(report.notes.len(), 3, "{notes}");
    assert!(report.to_string().contains("note: class folder 'bird'"));
    let info = read_info(&out).unwrap();
    assert_eq!(info.class_names, classes);
    // The notes are kept in the table, as the report gave them.
    assert_eq!(info.notes, report.notes);

    // The explicit form, in the same order, gives the same rows.
    let out2 = dir.path().join("t2.parquet");
    let mut o = IngestOptions::new(Format::ImageFolder, "", &out2);
    o.inputs = ["train", "val", "test"]
        .iter()
        .map(|s| named(s, &root.join(s)))
        .collect();
    let report2 = ingest(&o).unwrap();
    assert_eq!(report2.class_names, classes);
    assert_eq!(report2.notes, report.notes);
    let rows2 = read_all(&out2);
    assert_eq!(
        (&rows2.ids, &rows2.splits, &rows2.labels, &rows2.images),
        (&rows.ids, &rows.splits, &rows.labels, &rows.images)
    );
    assert!(report2.rejects.is_empty());
}

#[test]
fn split_layouts_that_cannot_be_read_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // Split folders with images but no class folders.
    let flat = dir.path().join("flat");
    write_png_rgb(&flat.join("train/a.png"), 2, 2, 1);
    write_png_rgb(&flat.join("test/b.png"), 2, 2, 2);
    let out = dir.path().join("o.parquet");
    let err = ingest(&IngestOptions::new(Format::ImageFolder, &flat, &out)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("no class folders") && msg.contains("looks like a split layout"),
        "{msg}"
    );
    assert!(msg.contains("--split NAME"), "{msg}");
    // ... which --split reads as one split with classes train and test.
    let mut o = IngestOptions::new(Format::ImageFolder, &flat, &out);
    o.split = Some("test".into());
    assert_eq!(ingest(&o).unwrap().class_names, ["test", "train"]);

    // A real split layout forced into one split, or given as one split's folder.
    let tree = dir.path().join("tree");
    split_tree(&tree, &[("train", &["cat"]), ("test", &["cat"])]);
    let mut o = IngestOptions::new(Format::ImageFolder, &tree, &out);
    o.split = Some("test".into());
    let msg = ingest(&o).unwrap_err().to_string();
    assert!(
        msg.contains("(test, train) are split names with class folders inside"),
        "{msg}"
    );
    assert!(msg.contains("without --split"), "{msg}");
    let mut o = IngestOptions::new(Format::ImageFolder, "", &out);
    o.inputs = vec![named("train", &tree)];
    let msg = ingest(&o).unwrap_err().to_string();
    assert!(
        msg.contains("split names with class folders inside"),
        "{msg}"
    );

    // An explicit split folder without class folders.
    o.inputs = vec![
        named("train", &tree.join("train")),
        named("test", &flat.join("test")),
    ];
    let msg = ingest(&o).unwrap_err().to_string();
    assert!(
        msg.contains("no class folders in split test (expected") && msg.contains("flat/test"),
        "{msg}"
    );
}

#[test]
fn named_inputs_must_be_distinct_non_empty_and_fit_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    split_tree(&tree, &[("train", &["cat"]), ("test", &["cat"])]);
    let err = "=x".parse::<Input>().unwrap_err();
    assert!(err.contains("split name before '=' is empty"), "{err}");
    let err = "train=".parse::<Input>().unwrap_err();
    assert!(err.contains("no path after 'train='"), "{err}");
    assert_eq!(
        "./a=b".parse::<Input>().unwrap(),
        Input::path("./a=b"),
        "a path with '/' before the '=' is a path"
    );
    let out = dir.path().join("o.parquet");
    let mut o = IngestOptions::new(Format::ImageFolder, "", &out);
    let usage = |o: &IngestOptions| match ingest(o) {
        Err(DataError::Usage(m)) => m,
        other => panic!("expected a usage error, got {other:?}"),
    };
    o.inputs = vec![
        named("train", &tree.join("train")),
        named("train", &tree.join("test")),
    ];
    assert!(usage(&o).contains("split name 'train' is given to two inputs"));
    o.inputs = vec![named("train", &tree.join("train")), Input::path(&tree)];
    assert!(usage(&o).contains("need a split name each"));
    o.inputs = vec![named("train", &tree.join("train"))];
    o.split = Some("test".into());
    assert!(usage(&o).contains("give the split one way, not both"));
    let mut o = IngestOptions::new(Format::Cifar10C, &tree, &out);
    o.inputs.push(Input::path(&tree));
    assert!(usage(&o).contains("takes one --input"));
    assert!(!out.exists());
}

/// An 8-bit RGB PNG whose pixels are all `v`.
fn png_of(v: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(2, 3, image::Rgb([v, v, 9]));
    let mut c = std::io::Cursor::new(Vec::new());
    img.write_to(&mut c, image::ImageFormat::Png).unwrap();
    c.into_inner()
}

#[test]
fn path_only_images_are_read_from_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export/hf-train-00000-of-00001.parquet");
    let images = dir.path().join("export/images");
    fs::create_dir_all(&images).unwrap();
    fs::write(images.join("rel.png"), png_of(10)).unwrap();
    let abs = dir.path().join("abs.png");
    fs::write(&abs, png_of(20)).unwrap();
    let rows: Vec<HfRow> = vec![
        (None, Some("images/rel.png".into()), 0),
        (None, Some(abs.display().to_string()), 1),
        (None, Some("images/gone.png".into()), 1),
        (Some(png_of(30)), Some("not/read.png".into()), 0),
        (None, None, 0),
    ];
    write_hf_rows(&export, &rows, Some(&["a", "b"]));
    let out = dir.path().join("o.parquet");
    let report = ingest(&IngestOptions::new(Format::Parquet, &export, &out)).unwrap();
    // The split comes from a token inside the name, not only its first word.
    assert_eq!(report.split_rows.get("train"), Some(&3), "{report}");
    let back = read_all(&out);
    assert_eq!(back.ids, ["train/00000", "train/00001", "train/00003"]);
    assert_eq!(first_pixels(&back), [10, 20, 30]);
    assert_eq!(
        back.images[0],
        png_of(10),
        "plain PNG files are stored as they are"
    );
    let csv = rejects_of(&out);
    let gone = dir.path().join("export/images/gone.png");
    assert!(
        csv.contains(&format!(
            "train/00002,image file not found: {} (the row has no image bytes",
            gone.display()
        )),
        "{csv}"
    );
    assert!(
        csv.contains("train/00004,missing image bytes and path (both null)"),
        "{csv}"
    );
}

#[test]
fn folders_of_shards_read_as_one_file_would() {
    let dir = tempfile::tempdir().unwrap();
    let rows = |vals: &[u8], label: i64| -> Vec<HfRow> {
        vals.iter()
            .map(|&v| (Some(png_of(v)), None, label))
            .collect()
    };
    let names: &[&str] = &["x", "y"];
    // The whole train split in one file, then the same rows as shards of a folder.
    let single = dir.path().join("single/train-00000-of-00001.parquet");
    let mut all = rows(&[1, 2, 3], 0);
    all.extend(rows(&[4, 5], 1));
    write_hf_rows(&single, &all, Some(names));
    let shards = dir.path().join("shards");
    write_hf_rows(
        &shards.join("train-00000-of-00002.parquet"),
        &rows(&[1, 2, 3], 0),
        Some(names),
    );
    write_hf_rows(
        &shards.join("train-00001-of-00002.parquet"),
        &rows(&[4, 5], 1),
        Some(names),
    );
    write_hf_rows(
        &shards.join("test-00000-of-00001.parquet"),
        &rows(&[6], 1),
        Some(names),
    );
    fs::write(shards.join("README.md"), b"not a shard").unwrap();
    fs::create_dir_all(shards.join(".cache")).unwrap();
    fs::write(shards.join(".cache/stale.parquet"), b"skipped").unwrap();
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    ingest(&IngestOptions::new(Format::Parquet, &single, &a)).unwrap();
    let report = ingest(&IngestOptions::new(Format::Parquet, &shards, &b)).unwrap();
    assert_eq!(report.split_rows.get("test"), Some(&1));
    let (a, b) = (read_all(&a), read_all(&b));
    // File order: test-... sorts before train-...
    assert_eq!(b.ids[0], "test/00000");
    assert_eq!(&b.ids[1..], &a.ids[..]);
    assert_eq!(&b.images[1..], &a.images[..]);
    assert_eq!(&b.labels[1..], &a.labels[..]);
    assert_eq!(a.ids[4], "train/00004");

    // The hub's Parquet-conversion layout: splits from the folder names.
    let hub = dir.path().join("hub");
    write_hf_rows(
        &hub.join("default/train/0000.parquet"),
        &rows(&[1, 2, 3], 0),
        Some(names),
    );
    write_hf_rows(
        &hub.join("default/train/0001.parquet"),
        &rows(&[4, 5], 1),
        Some(names),
    );
    write_hf_rows(
        &hub.join("default/validation/0000.parquet"),
        &rows(&[7], 0),
        Some(names),
    );
    let c = dir.path().join("c.parquet");
    let report = ingest(&IngestOptions::new(Format::Parquet, &hub, &c)).unwrap();
    assert_eq!(report.split_rows.get("validation"), Some(&1), "{report}");
    let c = read_all(&c);
    assert_eq!(&c.ids[..5], &a.ids[..]);
    assert_eq!(&c.images[..5], &a.images[..]);

    // Shards that disagree on the class names are an error naming both.
    write_hf_rows(
        &hub.join("default/validation/0000.parquet"),
        &rows(&[7], 0),
        Some(&["x", "z"]),
    );
    let msg = ingest(&IngestOptions::new(
        Format::Parquet,
        &hub,
        dir.path().join("d"),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("validation/0000.parquet") && msg.contains("differ from those of"),
        "{msg}"
    );
    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let msg = ingest(&IngestOptions::new(
        Format::Parquet,
        &empty,
        dir.path().join("e"),
    ))
    .unwrap_err()
    .to_string();
    assert!(msg.contains("no .parquet files"), "{msg}");
}

#[test]
fn split_tokens_in_names_and_folders() {
    use shiftlab_data::hf::split_from_path;
    let p = |s: &str| Path::new(s).to_path_buf();
    let cases = [
        ("/x/hf-train-00000-of-00001.parquet", None, Some("train")),
        ("/x/train-00000-of-00003.parquet", None, Some("train")),
        ("/x/Validation_part.parquet", None, Some("validation")),
        ("/x/my_val.parquet", None, Some("val")),
        ("/x/default/test/0000.parquet", None, Some("test")),
        ("/test/x/0000.parquet", None, None),
        ("/r/default/train/0000.parquet", Some("/r"), Some("train")),
        (
            "/r/test_set/a/0000.parquet",
            Some("/r/test_set"),
            Some("test"),
        ),
        ("/test/r/a/0000.parquet", Some("/test/r"), None),
        ("/x/trainer.parquet", None, None),
    ];
    for (file, root, want) in cases {
        let root = root.map(p);
        assert_eq!(
            split_from_path(&p(file), root.as_deref()).as_deref(),
            want,
            "{file}"
        );
    }
}

#[test]
fn an_ingest_with_no_row_fails_and_still_names_every_reject() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("train-00000-of-00001.parquet");
    let gone: Vec<HfRow> = (0..3)
        .map(|i| (None, Some(format!("/nonexistent/{i}.png")), 0))
        .collect();
    write_hf_rows(&export, &gone, Some(&["a"]));
    let out = dir.path().join("o.parquet");
    let err = ingest(&IngestOptions::new(Format::Parquet, &export, &out)).unwrap_err();
    let DataError::NothingIngested(ref summary) = err else {
        panic!("{err}")
    };
    assert_eq!((summary.inputs, summary.rejected()), (3, 3));
    let msg = err.to_string();
    assert!(
        msg.contains("3 of 3 inputs rejected (100.0 %), no table written"),
        "{msg}"
    );
    assert!(
        msg.contains("3 x image file not found (first: train/00000: image file not found: /nonexistent/0.png"),
        "{msg}"
    );
    assert!(!out.exists());
    let csv = rejects_of(&out);
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        msg.contains(&format!("listed in {}", out.display())),
        "{msg}"
    );

    // No image at all: class folders without files.
    let empty = dir.path().join("val");
    fs::create_dir_all(empty.join("cat")).unwrap();
    let err = ingest(&IngestOptions::new(Format::ImageFolder, &empty, &out)).unwrap_err();
    assert!(
        err.to_string().contains("the input holds no images"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn max_rejected_makes_a_larger_share_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("val");
    write_png_rgb(&root.join("a/1.png"), 2, 2, 1);
    write_png_rgb(&root.join("a/2.png"), 2, 2, 1);
    write_png_rgb(&root.join("a/3.png"), 2, 2, 1);
    fs::write(root.join("a/bad.png"), b"").unwrap();
    let out = dir.path().join("o.parquet");
    let mut o = IngestOptions::new(Format::ImageFolder, &root, &out);
    o.max_rejected = Some(0.25);
    assert_eq!(
        ingest(&o).unwrap().rows(),
        3,
        "1 of 4 is not more than 0.25"
    );
    fs::remove_file(&out).unwrap();
    o.max_rejected = Some(0.2);
    let err = ingest(&o).unwrap_err();
    assert!(matches!(err, DataError::TooManyRejected { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("more than --max-rejected 0.2): 1 of 4 inputs rejected (25.0 %)")
            && msg.contains("1 x zero-byte file (first: a/bad.png: zero-byte file)"),
        "{msg}"
    );
    assert!(!out.exists());
    assert!(rejects_of(&out).contains("a/bad.png,zero-byte file"));
    o.max_rejected = Some(1.5);
    assert!(matches!(ingest(&o), Err(DataError::Usage(_))));
    // Every input rejected: nothing was ingested, whatever the limit says.
    for f in ["1", "2", "3"] {
        fs::write(root.join(format!("a/{f}.png")), b"").unwrap();
    }
    o.max_rejected = Some(0.5);
    let err = ingest(&o).unwrap_err();
    assert!(matches!(err, DataError::NothingIngested(_)), "{err}");
}
