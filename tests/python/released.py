"""Released corruption benchmarks for tests/released.rs: writes them as their publishers lay
them out, and checks shiftlab's corruption views against a hand computation from the run's
`predictions` (pandas/numpy, its own code: nothing of shiftlab's SQL).

usage:
  released.py cifar DIR        CIFAR-10 binary test batch (DIR/clean) and CIFAR-10-C arrays
                               (DIR/c: the 15 benchmark corruptions + labels.npy)
  released.py imagenet-c DIR   clean val folder (DIR/val/<wnid>/*.png) and an ImageNet-C tree
                               (DIR/c/<corruption>/<severity>/<wnid>/*.png), all 15 x 5
  released.py check RUN CORRUPTION_ERRORS.csv ROBUSTNESS.csv --rows N [--alexnet CSV]
                               (N: target rows per model and probe; --alexnet: the run is
                               imagenet224, so CE, mCE and relative mCE must match the formula)
"""

import argparse
import pathlib
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# The 15 benchmark corruptions and their groups, as Hendrycks & Dietterich list them.
GROUPS = {
    "gaussian_noise": "noise", "shot_noise": "noise", "impulse_noise": "noise",
    "defocus_blur": "blur", "glass_blur": "blur", "motion_blur": "blur", "zoom_blur": "blur",
    "snow": "weather", "frost": "weather", "fog": "weather", "brightness": "weather",
    "contrast": "digital", "elastic_transform": "digital", "pixelate": "digital",
    "jpeg_compression": "digital",
}
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]
ALEXNET_CLEAN = 0.4345
TOL = 1e-9


def fail(msg):
    print(f"released: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def clean_images(n, classes, seed):
    """n 32x32 RGB images whose colour depends on the class (a probe can learn something)."""
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % classes
    base = (labels[:, None, None, None] * 70 + 40).astype(np.float64)
    imgs = base + rng.normal(0, 30, size=(n, 32, 32, 3))
    return np.clip(imgs, 0, 255).astype(np.uint8), labels


def corrupt(imgs, k, s, seed):
    """A stand-in for corruption k at severity s (any pixels do): noise and a brightness shift
    that grow with s, so that the probe errs more as s grows and the errors differ between
    corruptions (an all-zero table would let a wrong formula pass)."""
    rng = np.random.RandomState(seed + 100 * k + s)
    shift = 18.0 * s * ((k % 3) - 1)
    noise = rng.normal(0, 10 * s + 5 * (k % 4), size=imgs.shape)
    noisy = imgs.astype(np.float64) + shift + noise
    return np.clip(noisy, 0, 255).astype(np.uint8)


def make_cifar(out):
    imgs, labels = clean_images(6, 3, seed=1)
    clean = out / "clean"
    clean.mkdir(parents=True, exist_ok=True)
    # Binary CIFAR-10: 1 label byte, then the R, G, B planes of 32x32.
    planes = imgs.transpose(0, 3, 1, 2).reshape(len(imgs), -1)
    records = np.concatenate([labels[:, None].astype(np.uint8), planes], axis=1)
    records.tofile(clean / "test_batch.bin")
    (clean / "batches.meta.txt").write_text("\n".join(CIFAR_CLASSES) + "\n")
    c = out / "c"
    c.mkdir(parents=True, exist_ok=True)
    np.save(c / "labels.npy", np.tile(labels, 5).astype(np.int64))
    for k, name in enumerate(GROUPS):
        stacked = np.concatenate([corrupt(imgs, k, s, seed=2) for s in range(1, 6)])
        np.save(c / f"{name}.npy", stacked)


def make_imagenet_c(out):
    from PIL import Image
    wnids = ["n01440764", "n01443537"]
    imgs, labels = clean_images(8, 2, seed=3)
    for i, (img, label) in enumerate(zip(imgs, labels)):
        d = out / "val" / wnids[label]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"ILSVRC2012_val_{i:08d}.png")
    # Two images per class and severity: the first two of each class.
    firsts = [0, 1, 2, 3]
    for k, name in enumerate(GROUPS):
        for s in range(1, 6):
            shifted = corrupt(imgs[firsts], k, s, seed=4)
            for img, i in zip(shifted, firsts):
                d = out / "c" / name / str(s) / wnids[labels[i]]
                d.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(d / f"ILSVRC2012_val_{i:08d}.png")


def predictions(run):
    files = sorted((run / "predictions").glob("*.parquet"))
    if not files:
        fail(f"no predictions under {run}")
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pandas()


def close(a, b):
    return (pd.isna(a) and pd.isna(b)) or (not pd.isna(a) and not pd.isna(b)
                                            and abs(float(a) - float(b)) < TOL)


def by_hand(pred, alexnet):
    """Per (model, probe): clean error, E(c, s), and the robustness numbers."""
    clean = pred[pred.shift_family == "clean"].groupby(["model", "probe"])["correct"]
    clean_error = 1 - clean.mean()
    rel = pred[pred.shift_family == "released_corruption"]
    errors = 1 - rel.groupby(["model", "probe", "shift", "severity"])["correct"].mean()
    counts = rel.groupby(["model", "probe", "shift", "severity"]).size()
    headline = {}
    for (model, probe), e in errors.groupby(level=["model", "probe"]):
        e = e.droplevel(["model", "probe"])
        per = e.groupby(level="shift")
        h = {"clean_error": clean_error[(model, probe)], "corruptions": per.ngroups,
             "mean_error": e.mean()}
        complete = [c for c in GROUPS if c in per.groups and len(per.get_group(c)) == 5]
        h["mean_error_15"] = (np.mean([e[c].mean() for c in GROUPS])
                              if len(complete) == 15 else np.nan)
        h["mce"] = h["relative_mce"] = np.nan
        if alexnet is not None and len(complete) == 15:
            ce, rce = [], []
            for c in GROUPS:
                a = alexnet.loc[c, ["s1", "s2", "s3", "s4", "s5"]].to_numpy(dtype=np.float64)
                ours = e[c].sort_index().to_numpy()
                ce.append(100 * ours.sum() / a.sum())
                rce.append(100 * (ours - h["clean_error"]).sum() / (a - ALEXNET_CLEAN).sum())
            h["mce"], h["relative_mce"] = np.mean(ce), np.mean(rce)
        headline[(model, probe)] = h
    return clean_error, errors, counts, headline


def check(a):
    run = pathlib.Path(a.run)
    pred = predictions(run)
    alexnet = pd.read_csv(a.alexnet).set_index("corruption") if a.alexnet else None
    rel = pred[pred.shift_family == "released_corruption"]
    if rel.empty:
        fail("no prediction row has shift_family released_corruption")
    if set(pred.shift_family) - {"clean", "released_corruption"}:
        fail(f"unexpected families {sorted(set(pred.shift_family))} (nothing may stay 'dataset')")
    bad_groups = rel[rel.shift_group != rel["shift"].map(GROUPS)]
    if len(bad_groups):
        fail(f"wrong shift_group for {bad_groups[['shift', 'shift_group']].drop_duplicates()}")
    per_model = rel.groupby(["model", "probe"]).size()
    if (per_model != a.rows).any():
        fail(f"released rows per model and probe {per_model.to_dict()}, expected {a.rows}")
    if not rel["cosine_to_clean"].isna().all():
        fail("released rows have no clean twin: cosine_to_clean must be null")
    clean_error, errors, counts, headline = by_hand(pred, alexnet)
    if errors.nunique() < 3:
        fail(f"the released errors take {errors.nunique()} value(s): too few to test a formula")

    ce = pd.read_csv(a.corruption_errors)
    if len(ce) != len(errors):
        fail(f"corruption_errors has {len(ce)} rows, the predictions give {len(errors)}")
    for _, r in ce.iterrows():
        key = (r["model"], r["probe"], r["corruption"], r["severity"])
        if r["origin"] != "released":
            fail(f"{key}: origin {r['origin']!r}, expected 'released'")
        if r["shift_group"] != GROUPS[r["corruption"]]:
            fail(f"{key}: shift_group {r['shift_group']}")
        want_clean = clean_error[(r["model"], r["probe"])]
        checks = [("error", errors[key]), ("n", counts[key]), ("clean_error", want_clean),
                  ("error_increase", errors[key] - want_clean)]
        for col, want in checks:
            if not close(r[col], want):
                fail(f"corruption_errors {key}.{col} = {r[col]}, by hand {want}")

    rob = pd.read_csv(a.robustness)
    if len(rob) != len(headline):
        fail(f"robustness has {len(rob)} rows, expected {len(headline)}")
    for _, r in rob.iterrows():
        h = headline[(r["model"], r["probe"])]
        if r["origin"] != "released":
            fail(f"robustness origin {r['origin']!r}")
        for col, want in h.items():
            if not close(r[col], want):
                fail(f"robustness {r['model']}/{r['probe']}.{col} = {r[col]}, by hand {want}")
        if alexnet is not None and pd.isna(r["mce"]):
            fail("an imagenet224 run with all 15 x 5 released corruptions must have an mCE")
        print(f"released: {r['model']}/{r['probe']}: clean {h['clean_error']:.4f}, "
              f"mean {h['mean_error']:.4f}, mCE {h['mce']:.4f}")
    print(f"released: ok: {len(ce)} corruption_errors rows, {len(rob)} robustness rows")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ["cifar", "imagenet-c"]:
        sub.add_parser(name).add_argument("dir")
    c = sub.add_parser("check")
    c.add_argument("run")
    c.add_argument("corruption_errors")
    c.add_argument("robustness")
    c.add_argument("--rows", type=int, required=True)
    c.add_argument("--alexnet")
    a = ap.parse_args()
    if a.cmd == "cifar":
        make_cifar(pathlib.Path(a.dir))
    elif a.cmd == "imagenet-c":
        make_imagenet_c(pathlib.Path(a.dir))
    else:
        check(a)


if __name__ == "__main__":
    main()
