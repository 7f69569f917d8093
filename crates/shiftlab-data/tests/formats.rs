//! Every input format and every kind of bad input, on small fixtures built in temp dirs.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use shiftlab_data::{ingest, read_info, DataError, DatasetReader, Format};

#[test]
fn mnist_idx_gz_and_raw_with_a_bad_label() {
    let dir = tempfile::tempdir().unwrap();
    let train: Vec<Vec<u8>> = (0..3)
        .map(|i| (0..12).map(|p| (i * 40 + p) as u8).collect())
        .collect();
    write_idx(dir.path(), "train", &train, &[3, 12, 9], 3, 4, true);
    write_idx(dir.path(), "t10k", &train[..2], &[0, 1], 3, 4, false);
    let out = dir.path().join("out/mnist.parquet");
    let report = ingest(&opts(Format::Mnist, dir.path(), &out)).unwrap();
    assert_eq!(report.split_rows.get("train"), Some(&2));
    assert_eq!(report.split_rows.get("test"), Some(&2));
    assert_eq!(
        rejects_of(&out),
        "path,reason\ntrain/00001,label 12 out of range 0..9 (10 classes)\n"
    );
    let rows = read_all(&out);
    assert_eq!(
        rows.ids,
        ["train/00000", "train/00002", "test/00000", "test/00001"]
    );
    assert_eq!(rows.labels, [3, 9, 0, 1]);
    let img = image::load_from_memory(&rows.images[1]).unwrap();
    assert_eq!(
        (img.width(), img.height(), img.color()),
        (4, 3, image::ColorType::L8)
    );
    assert_eq!(img.to_luma8().into_raw(), train[2]);
    let info = read_info(&out).unwrap();
    assert_eq!(
        info.class_names,
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    assert_eq!((info.source_format.as_str(), info.num_rows), ("mnist", 4));
}

#[test]
fn fashion_mnist_one_split_and_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = vec![vec![7u8; 4]];
    write_idx(dir.path(), "train", &imgs, &[9], 2, 2, true);
    write_idx(dir.path(), "t10k", &imgs, &[0], 2, 2, true);
    let out = dir.path().join("f.parquet");
    let mut o = opts(Format::FashionMnist, dir.path(), &out);
    o.split = Some("test".into());
    let report = ingest(&o).unwrap();
    assert_eq!(report.split_rows.keys().collect::<Vec<_>>(), ["test"]);
    assert_eq!(read_info(&out).unwrap().class_names[9], "Ankle boot");
    o.split = Some("val".into());
    assert!(ingest(&o)
        .unwrap_err()
        .to_string()
        .contains("no split 'val'"));
}

#[test]
fn idx_bad_magic_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", &[vec![1u8; 4]], &[1], 2, 2, false);
    write_idx(dir.path(), "t10k", &[vec![1u8; 4]], &[1], 2, 2, false);
    let p = dir.path().join("t10k-labels-idx1-ubyte");
    let mut b = fs::read(&p).unwrap();
    b[3] = 0x03;
    fs::write(&p, b).unwrap();
    let out = dir.path().join("m.parquet");
    let err = ingest(&opts(Format::Mnist, dir.path(), &out)).unwrap_err();
    assert!(matches!(err, DataError::BadIdxMagic { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("t10k-labels-idx1-ubyte: bad IDX magic 0x00000803, expected 0x00000801"),
        "{msg}"
    );
    assert_no_output(dir.path(), &out);
}

#[test]
fn idx_count_mismatch_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(
        dir.path(),
        "train",
        &[vec![1u8; 4], vec![2u8; 4]],
        &[1],
        2,
        2,
        true,
    );
    let out = dir.path().join("m.parquet");
    let mut o = opts(Format::Mnist, dir.path(), &out);
    o.split = Some("train".into());
    let msg = ingest(&o).unwrap_err().to_string();
    assert_eq!(
        msg,
        "IDX count mismatch for split 'train': 2 images but 1 labels"
    );
    assert_no_output(dir.path(), &out);
}

#[test]
fn idx_truncated_file_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(
        dir.path(),
        "train",
        &[vec![1u8; 4], vec![2u8; 4]],
        &[1, 2],
        2,
        2,
        false,
    );
    let p = dir.path().join("train-images-idx3-ubyte");
    let b = fs::read(&p).unwrap();
    fs::write(&p, &b[..b.len() - 3]).unwrap();
    let mut o = opts(Format::Mnist, dir.path(), &dir.path().join("m.parquet"));
    o.split = Some("train".into());
    let msg = ingest(&o).unwrap_err().to_string();
    assert!(msg.contains("needs 8 data bytes, file has 5"), "{msg}");
}

#[test]
fn imagefolder_orders_like_torchvision_and_lists_every_reject() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("val");
    let good = build_messy_imagefolder(&root);
    let out = dir.path().join("val.parquet");
    let report = ingest(&opts(Format::ImageFolder, &root, &out)).unwrap();
    assert_eq!(report.class_names, ["B", "a", "b"]);
    let rows = read_all(&out);
    let ids: Vec<&str> = rows.ids.iter().map(String::as_str).collect();
    assert_eq!(ids, good.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    assert_eq!(
        rows.labels,
        good.iter().map(|(_, l)| *l).collect::<Vec<_>>()
    );
    assert!(rows.splits.iter().all(|s| s == "test"));
    let expected = [
        "README.txt,not in the expected layout: a file where class folders belong",
        "a/broken.png,truncated or undecodable image: ",
        "a/empty.jpg,zero-byte file",
        "a/huge.png,absurd declared dimensions 100000x100000 (limit 16384 px a side and 100000000 px in all)",
        "a/notes.txt,not an image file (extension .txt)",
        "b/float.tif,unsupported pixel format: Rgb32F",
        "b/glass.png,image has transparent pixels (alpha not fully opaque); flatten it first",
        "b/noext,not an image file (extension none)",
    ];
    let csv = rejects_of(&out);
    let lines: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(lines.len(), expected.len(), "{csv}");
    for (line, want) in lines.iter().zip(expected) {
        // Reasons with commas (decoder messages) are quoted; compare without the quotes.
        let line = line.replace('"', "");
        assert!(
            line.starts_with(want),
            "{line:?} should start with {want:?}"
        );
    }
    assert_eq!(report.rejects.len(), expected.len());
    assert!(report.to_string().contains("rejected: 8"));
}

#[test]
fn imagefolder_keeps_plain_bytes_and_converts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("val");
    build_messy_imagefolder(&root);
    let out = dir.path().join("val.parquet");
    ingest(&opts(Format::ImageFolder, &root, &out)).unwrap();
    let rows = read_all(&out);
    let by_id = |id: &str| rows.ids.iter().position(|i| i == id).unwrap();
    // Plain 8-bit RGB PNG and gray JPEG: original bytes.
    assert_eq!(
        rows.images[by_id("B/x.png")],
        fs::read(root.join("B/x.png")).unwrap()
    );
    assert_eq!(
        rows.images[by_id("a/gray.JPG")],
        fs::read(root.join("a/gray.JPG")).unwrap()
    );
    // Converted: PNG re-encodes of the right layout.
    for (id, color) in [
        ("a/deep/deeper/wide16.png", image::ColorType::Rgb8),
        ("b/cmyk.jpeg", image::ColorType::Rgb8),
        ("b/opaque.png", image::ColorType::Rgb8),
        ("b/palette.png", image::ColorType::Rgb8),
        ("b/pic.bmp", image::ColorType::Rgb8),
    ] {
        let bytes = &rows.images[by_id(id)];
        assert_eq!(&bytes[1..4], b"PNG", "{id}");
        assert_eq!(
            image::load_from_memory(bytes).unwrap().color(),
            color,
            "{id}"
        );
    }
    let wide = image::load_from_memory(&rows.images[by_id("a/deep/deeper/wide16.png")]).unwrap();
    assert_eq!(wide.to_rgb8().get_pixel(0, 0).0, [0, 128, 255]);
}

#[test]
fn strict_stops_at_the_first_reject_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("val");
    build_messy_imagefolder(&root);
    let out = dir.path().join("val.parquet");
    fs::write(&out, b"previous good file").unwrap();
    let mut o = opts(Format::ImageFolder, &root, &out);
    o.strict = true;
    let err = ingest(&o).unwrap_err();
    let DataError::Rejected(ref r) = err else {
        panic!("{err}")
    };
    assert_eq!(r.item, "README.txt");
    assert!(err.to_string().contains("--strict"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), b"previous good file");
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp") || n.ends_with(".csv"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn imagenet_c_fills_corruption_and_severity() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (rel, v) in [
        ("gaussian_noise/2/n02/b.png", 1),
        ("gaussian_noise/1/n01/a.png", 2),
        ("gaussian_noise/10/n01/c.png", 3),
        ("blur/1/n03/d.png", 4),
    ] {
        write_png_rgb(&root.join(rel), 2, 2, v);
    }
    fs::write(root.join("blur/1/stray.png"), b"x").unwrap();
    let out = root.join("out/c.parquet");
    let report = ingest(&opts(Format::ImageNetC, root, &out)).unwrap();
    assert_eq!(report.class_names, ["n01", "n02", "n03"]);
    let rows = read_all(&out);
    assert_eq!(
        rows.ids,
        [
            "blur/1/n03/d.png",
            "gaussian_noise/1/n01/a.png",
            "gaussian_noise/2/n02/b.png",
            "gaussian_noise/10/n01/c.png",
        ]
    );
    assert_eq!(rows.labels, [2, 0, 1, 0]);
    assert_eq!(rows.severities, [Some(1), Some(1), Some(2), Some(10)]);
    assert_eq!(rows.corruptions[0].as_deref(), Some("blur"));
    assert!(rejects_of(&out).contains("blur/1/stray.png,not in the expected layout"));
    fs::create_dir_all(root.join("blur/high/n01")).unwrap();
    let msg = ingest(&opts(Format::ImageNetC, root, &out))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("blur/high: severity folder name is not an integer"),
        "{msg}"
    );
}

#[test]
fn cifar10_binary_planes_become_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("cifar-10-batches-bin");
    fs::create_dir_all(&bin).unwrap();
    let record = |label: u8, seed: usize| {
        let mut r = vec![label];
        r.extend((0..3072).map(|p| ((p / 1024) * 100 + p % 1024 + seed) as u8));
        r
    };
    for i in 1..=5 {
        fs::write(bin.join(format!("data_batch_{i}.bin")), record(i as u8, i)).unwrap();
    }
    fs::write(
        bin.join("test_batch.bin"),
        [record(0, 0), record(10, 1)].concat(),
    )
    .unwrap();
    let names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];
    fs::write(bin.join("batches.meta.txt"), names.join("\n") + "\n\n").unwrap();
    let out = dir.path().join("c.parquet");
    let report = ingest(&opts(Format::Cifar10, dir.path(), &out)).unwrap();
    assert_eq!(report.class_names, names);
    assert_eq!(report.split_rows.get("train"), Some(&5));
    assert_eq!(
        rejects_of(&out),
        "path,reason\ntest/00001,label 10 out of range 0..9 (10 classes)\n"
    );
    let rows = read_all(&out);
    assert_eq!(rows.ids[4], "train/00004");
    let img = image::load_from_memory(&rows.images[5]).unwrap().to_rgb8();
    assert_eq!(img.get_pixel(1, 0).0, [1, 101, 201]); // pixel 1 of planes R, G, B
    assert_eq!(img.get_pixel(0, 1).0, [32, 132, 232]);
    let bad = dir.path().join("cifar-10-batches-bin/data_batch_3.bin");
    fs::write(&bad, [1u8; 100]).unwrap();
    let msg = ingest(&opts(Format::Cifar10, dir.path(), &out))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("data_batch_3.bin: 100 bytes is not a whole number of 3073-byte records"),
        "{msg}"
    );
}

#[test]
fn cifar10_python_pickles_protocol_2_and_5() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.parquet");
    let report = ingest(&opts(Format::Cifar10, &dir.join("cifar-py"), &out)).unwrap();
    assert_eq!(report.class_names[1], "automobile");
    assert_eq!(
        (report.split_rows["train"], report.split_rows["test"]),
        (10, 2)
    );
    let rows = read_all(&out);
    assert_eq!(rows.labels[..4], [0, 3, 1, 4]);
    assert_eq!(rows.labels[10..], [5, 8]);
    // Value of image i in batch b, plane c, offset p: (b*50 + i*7 + c*3 + p) % 256.
    for (row, b, i) in [(0, 0, 0), (3, 1, 1), (11, 5, 1)] {
        let img = image::load_from_memory(&rows.images[row])
            .unwrap()
            .to_rgb8();
        let want = |c: usize, p: usize| ((b * 50 + i * 7 + c * 3 + p) % 256) as u8;
        assert_eq!(
            img.get_pixel(5, 1).0,
            [want(0, 37), want(1, 37), want(2, 37)],
            "row {row}"
        );
    }
}

#[test]
fn cifar10_c_npy_with_severities_and_a_bad_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let n = 5 * 2;
    let px: Vec<u8> = (0..n * 3072)
        .map(|i| (i / 3072 * 20 + i % 3072 % 7) as u8)
        .collect();
    write_npy(&dir.path().join("fog.npy"), "|u1", &[n, 32, 32, 3], &px);
    write_npy(
        &dir.path().join("blur.npy"),
        "<f4",
        &[n, 32, 32, 3],
        &vec![0u8; n * 3072 * 4],
    );
    let labels: Vec<u8> = [4i64, 9].iter().flat_map(|l| l.to_le_bytes()).collect();
    write_npy(&dir.path().join("labels.npy"), "<i8", &[2], &labels);
    let out = dir.path().join("c.parquet");
    let report = ingest(&opts(Format::Cifar10C, dir.path(), &out)).unwrap();
    assert_eq!(report.split_rows.get("test"), Some(&10));
    let csv = rejects_of(&out);
    assert!(
        csv.contains("blur.npy,unsupported pixel format: array dtype <f4"),
        "{csv}"
    );
    let rows = read_all(&out);
    assert_eq!(rows.ids[3], "fog/2/00001");
    assert_eq!((rows.severities[3], rows.labels[3]), (Some(2), 9));
    assert_eq!(rows.corruptions[9].as_deref(), Some("fog"));
    let img = image::load_from_memory(&rows.images[3]).unwrap().to_rgb8();
    assert_eq!(img.get_pixel(0, 0).0, [60, 61, 62]);
}

#[test]
fn hf_parquet_is_validated_and_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train-00000-of-00001.parquet");
    let png = png_bytes(3, 2);
    let rows: Vec<(Option<Vec<u8>>, i64)> = vec![
        (Some(png.clone()), 2),
        (Some(png.clone()), 3),
        (None, 0),
        (Some(b"garbage".to_vec()), 1),
        (Some(Vec::new()), 1),
    ];
    write_hf_parquet(&input, &rows, Some(&["cat", "dog", "cow"]));
    let out = dir.path().join("n.parquet");
    let report = ingest(&opts(Format::Parquet, &input, &out)).unwrap();
    assert_eq!(report.class_names, ["cat", "dog", "cow"]);
    assert_eq!(report.split_rows.get("train"), Some(&1));
    let csv = rejects_of(&out);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[1],
        "train/00001,label 3 out of range 0..2 (3 classes)"
    );
    // Null bytes: read from image.path (img.png beside the export), which does not exist.
    let missing = format!(
        "train/00002,image file not found: {}",
        dir.path().join("img.png").display()
    );
    assert!(lines[2].starts_with(&missing), "{csv}");
    assert!(
        lines[3].starts_with("train/00003,truncated or undecodable image"),
        "{csv}"
    );
    assert_eq!(lines[4], "train/00004,zero-byte file");
    let back = read_all(&out);
    assert_eq!((back.images[0] == png, back.labels[0]), (true, 2));
    // Without class names: 0..=max label.
    write_hf_parquet(&input, &rows[..2], None);
    let report = ingest(&opts(Format::Parquet, &input, &out)).unwrap();
    assert_eq!(report.class_names, ["0", "1", "2", "3"]);
    // The canonical table re-ingests to itself.
    let again = dir.path().join("again.parquet");
    let mut o = opts(Format::Parquet, &out, &again);
    o.split = None;
    ingest(&o).unwrap();
    assert_eq!(read_all(&again).ids, read_all(&out).ids);
}

#[test]
fn reader_streams_batches_of_one_split() {
    let dir = tempfile::tempdir().unwrap();
    let imgs: Vec<Vec<u8>> = (0..5).map(|i| vec![i as u8; 4]).collect();
    write_idx(dir.path(), "train", &imgs, &[0, 1, 2, 3, 4], 2, 2, false);
    write_idx(dir.path(), "t10k", &imgs[..3], &[5, 6, 7], 2, 2, false);
    let out = dir.path().join("m.parquet");
    ingest(&opts(Format::Mnist, dir.path(), &out)).unwrap();
    let batches: Vec<_> = DatasetReader::open(&out, 2, Some("test"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let ids: Vec<_> = batches.iter().flat_map(|b| b.ids.clone()).collect();
    assert_eq!(ids, ["test/00000", "test/00001", "test/00002"]);
    assert!(batches.iter().all(|b| b.len() <= 2));
    let info = read_info(&out).unwrap();
    assert_eq!(info.splits.get("train"), Some(&5));
}

#[test]
fn symlink_loops_end_in_a_reject() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("val");
    write_png_rgb(&root.join("a/x.png"), 2, 2, 1);
    std::os::unix::fs::symlink("..", root.join("a/loop")).unwrap();
    let out = dir.path().join("v.parquet");
    let report = ingest(&opts(Format::ImageFolder, &root, &out)).unwrap();
    assert_eq!(report.rejects.len(), 1, "{:?}", report.rejects);
    assert!(report.rejects[0]
        .to_string()
        .contains("nested deeper than 32 levels"));
}

#[test]
fn reader_refuses_tables_that_are_not_dataset_tables() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("e.parquet");
    write_hf_parquet(&export, &[(Some(png_bytes(1, 1)), 0)], None);
    let err = DatasetReader::open(&export, 8, None).err().unwrap();
    assert!(err.to_string().contains("no 'id' column"), "{err}");
    assert!(read_info(&export).is_err());
}
