"""Independent checks of dataset tables written by `shiftlab ingest` (pyarrow, numpy, Pillow).

Sub-commands (each exits non-zero with a message on the first failed check):
  fmnist TABLE IDX_DIR          the real Fashion-MNIST: counts, schema, HF metadata, pixels
  make-cifar-py DIR             writes CIFAR-10 python batches with pickle (protocols 2 and 4)
  cifar-py TABLE DIR            checks a table ingested from make-cifar-py's batches
  make-cifar-c DIR              writes CIFAR-10-C style .npy arrays with numpy
  cifar-c TABLE DIR             checks a table ingested from make-cifar-c's arrays
  make-hf FILE                  writes a Hugging Face style Parquet export with pyarrow
  hf TABLE FILE                 checks a table normalised from make-hf's export
  datasets TABLE                opens the table with Hugging Face `datasets` (if installed)
  make-splits ROOT              writes an ImageFolder root of split folders (train/, test/)
  splits TABLE TABLE2 ROOT      checks TABLE (ROOT ingested) against torchvision's ImageFolder of
                                each split folder, and that TABLE2 (the explicit form) equals it
  make-datasets SRC OUT         writes SRC as make-splits does (no nested folders), loads it with
                                `datasets` ("imagefolder") and saves each split with to_parquet:
                                OUT/file/hf-<split>-00000-of-00001.parquet, OUT/shards/ (two
                                train shards) and OUT/hub/default/<split>/000N.parquet, plus
                                OUT/expected.json (what `datasets` read)
  hf-datasets TABLE OUT SPLITS  checks a table ingested from make-datasets' files against
                                expected.json and the source images, for the comma-separated SPLITS
"""

import gzip
import io
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

FMNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]
SCHEMA = pa.schema([
    ("id", pa.string()), ("split", pa.string()), ("label", pa.int64()),
    ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
    ("width", pa.int32()), ("height", pa.int32()), ("channels", pa.int32()),
    ("corruption", pa.string()), ("severity", pa.int32()),
])


def fail(msg):
    print(f"check_ingest: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def check_table_basics(path, class_names, source_format):
    """Schema, nullability, metadata (huggingface + shiftlab) and row groups; returns the table."""
    f = pq.ParquetFile(path)
    schema = f.schema_arrow
    expect([(x.name, x.type) for x in schema] == [(x.name, x.type) for x in SCHEMA],
           f"schema differs:\n{schema}")
    # Nullable fields (Hugging Face `datasets` applies its features only to those) that are
    # marked required and hold no nulls.
    table = f.read()
    for name in ["id", "split", "label", "image", "width", "height", "channels"]:
        field = schema.field(name)
        expect(field.nullable, f"{name} should be Arrow-nullable for datasets")
        expect((field.metadata or {}).get(b"required") == b"true", f"{name} not marked required")
        expect(table.column(name).null_count == 0, f"{name} has nulls")
    meta = schema.metadata or {}
    expect(b"huggingface" in meta, "no huggingface key in the Arrow schema metadata")
    hf = json.loads(meta[b"huggingface"])
    feats = hf["info"]["features"]
    expect(feats["image"] == {"_type": "Image"}, f"image feature {feats['image']}")
    expect(feats["label"]["_type"] == "ClassLabel", "label is not a ClassLabel")
    expect(feats["label"]["names"] == class_names, f"HF class names {feats['label']['names']}")
    expect(list(feats) == [x.name for x in SCHEMA], f"HF features order {list(feats)}")
    ours = json.loads(meta[b"shiftlab"])
    expect(ours["class_names"] == class_names, f"shiftlab class names {ours['class_names']}")
    expect(ours["source_format"] == source_format, f"source format {ours['source_format']}")
    for i in range(f.metadata.num_row_groups - 1):
        expect(f.metadata.row_group(i).num_rows == 1024, "row groups should hold 1024 rows")
    return table


def decode(png_bytes):
    return np.asarray(Image.open(io.BytesIO(png_bytes)))


def read_idx(path):
    data = gzip.open(path).read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fmnist(table_path, idx_dir):
    t = check_table_basics(table_path, FMNIST_CLASSES, "fashion-mnist")
    expect(t.num_rows == 70000, f"{t.num_rows} rows, expected 70000")
    df = t.select(["id", "split", "label", "width", "height", "channels"]).to_pandas()
    splits = df["split"].value_counts().to_dict()
    expect(splits == {"train": 60000, "test": 10000}, f"split counts {splits}")
    per_class = df["label"].value_counts().to_dict()
    expect(per_class == {k: 7000 for k in range(10)}, f"class counts {per_class}")
    expect((df["width"] == 28).all() and (df["height"] == 28).all(), "sizes not 28x28")
    expect((df["channels"] == 1).all(), "channels not 1")
    expect(t.column("corruption").null_count == 70000, "corruption should be null")
    expect(df["id"].iloc[0] == "train/00000" and df["id"].iloc[60000] == "test/00000", "ids")
    expect(df["id"].is_unique, "ids not unique")
    idx = Path(idx_dir)
    images = t.column("image")
    rng = np.random.default_rng(7)
    for split, stem, offset, n in [("train", "train", 0, 60000), ("test", "t10k", 60000, 10000)]:
        ref = read_idx(idx / f"{stem}-images-idx3-ubyte.gz")
        labels = read_idx(idx / f"{stem}-labels-idx1-ubyte.gz")
        expect((df["label"].to_numpy()[offset:offset + n] == labels).all(), f"{split} labels differ")
        for i in [0, n - 1, *rng.integers(0, n, 200)]:
            cell = images[offset + int(i)].as_py()
            img = Image.open(io.BytesIO(cell["bytes"]))
            expect(img.format == "PNG" and img.mode == "L", f"{split}/{i}: {img.format} {img.mode}")
            expect((np.asarray(img) == ref[i]).all(), f"{split}/{i}: pixels differ from the IDX")
    print("check_ingest: fmnist OK (70000 rows, 402 images compared)")


def cifar_batches():
    rng = np.random.default_rng(3)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        out[name] = (rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                     [int(x) for x in rng.integers(0, 10, 4)])
    return out


def make_cifar_py(d):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR_CLASSES]}, f, protocol=2)
    for name, (data, labels) in cifar_batches().items():
        proto = 4 if name == "test_batch" else 2
        with open(d / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data}, f,
                        protocol=proto)


def cifar_py(table_path, _d):
    t = check_table_basics(table_path, CIFAR_CLASSES, "cifar10")
    expect(t.num_rows == 24, f"{t.num_rows} rows")
    rows = t.to_pylist()
    k = 0
    for name, (data, labels) in cifar_batches().items():
        for j in range(4):
            r = rows[k]
            expect(r["label"] == labels[j], f"row {k} label {r['label']} != {labels[j]}")
            want = data[j].reshape(3, 32, 32).transpose(1, 2, 0)
            got = decode(r["image"]["bytes"])
            expect(got.shape == (32, 32, 3) and (got == want).all(), f"row {k} ({name}) pixels")
            k += 1
    expect(rows[20]["split"] == "test" and rows[20]["id"] == "test/00000", f"row 20 {rows[20]['id']}")
    expect(rows[19]["id"] == "train/00019", f"row 19 id {rows[19]['id']}")
    print("check_ingest: cifar-py OK")


def cifar_c_arrays():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, 3).astype(np.int64)
    arrays = {c: rng.integers(0, 256, (15, 32, 32, 3), dtype=np.uint8) for c in ["frost", "contrast"]}
    return labels, arrays


def make_cifar_c(d):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    labels, arrays = cifar_c_arrays()
    np.save(d / "labels.npy", np.tile(labels, 5))
    for c, a in arrays.items():
        np.save(d / f"{c}.npy", a)


def cifar_c(table_path, _d):
    t = check_table_basics(table_path, CIFAR_CLASSES, "cifar10-c")
    labels, arrays = cifar_c_arrays()
    rows = t.to_pylist()
    expect(len(rows) == 30, f"{len(rows)} rows")
    k = 0
    for c in sorted(arrays):
        for i in range(15):
            r = rows[k]
            sev, idx = i // 3 + 1, i % 3
            expect((r["corruption"], r["severity"]) == (c, sev), f"row {k}: {r['corruption']} {r['severity']}")
            expect(r["id"] == f"{c}/{sev}/{idx:05d}", f"row {k} id {r['id']}")
            expect(r["label"] == labels[idx], f"row {k} label")
            expect((decode(r["image"]["bytes"]) == arrays[c][i]).all(), f"row {k} pixels")
            k += 1
    print("check_ingest: cifar-c OK")


def hf_images():
    rng = np.random.default_rng(11)
    out = []
    for i in range(6):
        arr = rng.integers(0, 256, (5 + i, 7, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        out.append((arr, buf.getvalue()))
    return out


def make_hf(path):
    imgs = hf_images()
    names = ["zero", "one", "two"]
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    image = pa.array([{"bytes": b, "path": f"{i}.png"} for i, (_, b) in enumerate(imgs)], image_type)
    label = pa.array([0, 1, 2, 5, 1, 0], pa.int64())
    meta = {"huggingface": json.dumps({"info": {"features": {
        "image": {"_type": "Image"}, "label": {"names": names, "_type": "ClassLabel"}}}})}
    t = pa.table({"image": image, "label": label}).replace_schema_metadata(meta)
    pq.write_table(t, path)


def hf(table_path, _src):
    t = check_table_basics(table_path, ["zero", "one", "two"], "parquet")
    rows = t.to_pylist()
    expect([r["id"] for r in rows] == ["train/00000", "train/00001", "train/00002", "train/00004",
                                       "train/00005"], f"ids {[r['id'] for r in rows]}")
    imgs = hf_images()
    for r in rows:
        i = int(r["id"].split("/")[1])
        expect(r["image"]["bytes"] == imgs[i][1], f"{r['id']}: bytes not kept as they were")
        expect(r["image"]["path"] == f"{i}.png", f"{r['id']}: path {r['image']['path']}")
        expect((r["height"], r["width"], r["channels"]) == (5 + i, 7, 3), f"{r['id']} dims")
    print("check_ingest: hf OK")


def hf_datasets(table_path):
    """Opens the table with Hugging Face `datasets` (not in the test venv; run by hand)."""
    from datasets import load_dataset
    ds = load_dataset("parquet", data_files=table_path, split="train")
    label, image = ds.features["label"], ds.features["image"]
    expect(type(label).__name__ == "ClassLabel", f"label feature {label}")
    expect(type(image).__name__ == "Image", f"image feature {image}")
    row = ds[0]
    expect(row["image"].size == (row["width"], row["height"]), "decoded image size")
    print(f"check_ingest: datasets OK ({ds.num_rows} rows, classes {label.names[:3]}...)")


# Class names whose byte-wise order differs from a case-insensitive one (torchvision sorts bytes).
SPLIT_CLASSES = ["B", "a", "b"]
SPLIT_SIZES = {"train": 4, "test": 2}


def write_splits(root, nested):
    """ROOT/<split>/<class>/<n>.png: gray and RGB PNGs of random pixels; names that sort as text
    (10.png before 9.png); with `nested`, one image a folder further down."""
    rng = np.random.default_rng(17)
    root = Path(root)
    for split, n in SPLIT_SIZES.items():
        for k, c in enumerate(SPLIT_CLASSES):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape = (6 + i, 5) if (i + k) % 2 else (5, 6 + i, 3)
                arr = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{9 + i}.png")
            if nested:
                (d / "sub").mkdir(exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).save(d / "sub" / "0.png")


def make_splits(root):
    write_splits(root, nested=True)


def table_rows(path):
    return pq.read_table(path).to_pylist()


def splits(table_path, explicit_path, root):
    from torchvision.datasets import ImageFolder
    t = check_table_basics(table_path, SPLIT_CLASSES, "imagefolder")
    rows = t.to_pylist()
    root = Path(root)
    k = 0
    for split in ["train", "test"]:
        ref = ImageFolder(str(root / split))
        expect(ref.classes == SPLIT_CLASSES, f"torchvision classes {ref.classes}")
        for path, label in ref.samples:
            r = rows[k]
            rel = f"{split}/{Path(path).relative_to(root / split).as_posix()}"
            expect((r["id"], r["split"], r["label"]) == (rel, split, label),
                   f"row {k}: {r['id']} {r['split']} {r['label']}, torchvision {rel} {label}")
            expect(r["image"]["path"] == rel, f"row {k} path {r['image']['path']}")
            expect((decode(r["image"]["bytes"]) == np.asarray(Image.open(path))).all(),
                   f"row {k} ({rel}): pixels differ from the file")
            k += 1
    expect(k == len(rows), f"{len(rows)} rows, torchvision has {k}")
    ours = json.loads(pq.ParquetFile(table_path).schema_arrow.metadata[b"shiftlab"])
    expect(ours["splits"] == {"train": 15, "test": 9}, f"split counts {ours['splits']}")
    t2 = check_table_basics(explicit_path, SPLIT_CLASSES, "imagefolder")
    expect(t2.equals(t), "the explicit two-folder table differs from the root's")
    theirs = json.loads(pq.ParquetFile(explicit_path).schema_arrow.metadata[b"shiftlab"])
    for key in ["input"]:
        ours.pop(key), theirs.pop(key)
    expect(ours == theirs, f"metadata differs: {ours} vs {theirs}")
    print(f"check_ingest: splits OK ({k} rows in torchvision's order, explicit form equal)")


def hf_offline(cache):
    """`datasets` without the network, its cache under CACHE."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HOME", str(Path(cache) / "hf-home"))
    os.environ.setdefault("HF_DATASETS_CACHE", str(Path(cache) / "hf-cache"))


def make_datasets(src, out):
    out = Path(out)
    hf_offline(out)
    write_splits(src, nested=False)
    import datasets
    ds = datasets.load_dataset("imagefolder", data_dir=str(src))
    expected = {"names": ds["train"].features["label"].names, "splits": {}}
    for split, d in ds.items():
        raw = d.cast_column("image", datasets.Image(decode=False))
        expect(all(x["bytes"] is None for x in raw["image"]), "datasets stored bytes, not paths")
        expected["splits"][split] = {"labels": list(raw["label"]),
                                    "paths": [x["path"] for x in raw["image"]]}
        d.to_parquet(str(out / "file" / f"hf-{split}-00000-of-00001.parquet"))
        parts = 2 if split == "train" else 1
        for i in range(parts):
            shard = d.shard(num_shards=parts, index=i, contiguous=True)
            shard.to_parquet(str(out / "shards" / f"{split}-{i:05d}-of-{parts:05d}.parquet"))
            shard.to_parquet(str(out / "hub" / "default" / split / f"{i:04d}.parquet"))
    (out / "expected.json").write_text(json.dumps(expected))
    print(f"check_ingest: datasets {datasets.__version__} wrote {sorted(ds)}")


def hf_datasets_table(table_path, out, split_list):
    expected = json.loads((Path(out) / "expected.json").read_text())
    t = check_table_basics(table_path, expected["names"], "parquet")
    rows = t.to_pylist()
    wanted = split_list.split(",")
    got = [r["split"] for r in rows]
    expect(sorted(set(got)) == sorted(wanted), f"splits {sorted(set(got))}, expected {wanted}")
    n = 0
    for split in wanted:
        mine = [r for r in rows if r["split"] == split]
        ref = expected["splits"][split]
        expect(len(mine) == len(ref["labels"]), f"{split}: {len(mine)} rows, datasets has {len(ref['labels'])}")
        for i, (r, label, path) in enumerate(zip(mine, ref["labels"], ref["paths"])):
            expect(r["id"] == f"{split}/{i:05d}", f"{split} row {i}: id {r['id']}")
            expect(r["label"] == label, f"{r['id']}: label {r['label']}, datasets {label}")
            expect(r["image"]["path"] == path, f"{r['id']}: path {r['image']['path']}")
            expect((decode(r["image"]["bytes"]) == np.asarray(Image.open(path))).all(),
                   f"{r['id']}: pixels differ from {path}")
            n += 1
    print(f"check_ingest: hf-datasets OK ({n} rows, splits {wanted}, pixels equal to the sources)")


COMMANDS = {"fmnist": fmnist, "datasets": hf_datasets, "make-cifar-py": make_cifar_py, "cifar-py": cifar_py,
            "make-cifar-c": make_cifar_c, "cifar-c": cifar_c, "make-hf": make_hf, "hf": hf,
            "make-splits": make_splits, "splits": splits, "make-datasets": make_datasets,
            "hf-datasets": hf_datasets_table}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in COMMANDS:
        fail(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
