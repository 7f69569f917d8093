"""Independent checks of a shiftlab run folder with pyarrow and pandas.

Reads every table, checks it against its schema in schemas/, the row counts the caller expects,
and recomputes the metrics table from the predictions with pandas/numpy (its own code, not
shiftlab's). Exits non-zero with a message on the first failure.

usage: check_run.py RUN_DIR [--predictions N] [--metrics N] [--errors N]
                            [--same-metrics OTHER_RUN_DIR] [--error-stage STAGE]
                            [--families F1,F2,...] [--restricted GROUP=C1,C2,...]
"""

import argparse
import json
import os
import pathlib
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parents[2]
TYPES = {
    "utf8": pa.string(), "int32": pa.int32(), "int64": pa.int64(), "uint64": pa.uint64(),
    "float32": pa.float32(), "float64": pa.float64(), "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"), "list<int64>": pa.list_(pa.int64()),
}


def fail(msg):
    print(f"check_run: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def read(run, table):
    path = run / table if (run / table).is_dir() else run / f"{table}.parquet"
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files:
        fail(f"{table}: no parquet files under {path}")
    t = pa.concat_tables([pq.read_table(f) for f in files])
    schema = json.loads((ROOT / "schemas" / f"{table}.json").read_text())
    names = [f["name"] for f in schema["fields"]]
    if t.schema.names != names:
        fail(f"{table}: columns {t.schema.names} != schema {names}")
    for f in schema["fields"]:
        want = TYPES[f["type"]]
        got = t.schema.field(f["name"]).type
        if got != want and not (pa.types.is_list(got) and pa.types.is_list(want)):
            fail(f"{table}.{f['name']}: type {got} != {want}")
    # pandas must read the same files too.
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if len(df) != t.num_rows:
        fail(f"{table}: pandas read {len(df)} rows, pyarrow {t.num_rows}")
    return df


def ece(conf, correct, bins=15):
    idx = np.clip(np.ceil(conf.astype(np.float64) * bins).astype(int), 1, bins) - 1
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].astype(np.float64).mean())
    return total


def recompute(pred):
    rows = []
    keys = ["model", "probe", "shift", "shift_group", "shift_family", "severity"]
    for (model, probe, shift, group, family, sev), g in pred.groupby(keys, sort=False):
        cos = g["cosine_to_clean"]
        rows.append({
            "model": model, "probe": probe, "shift": shift, "shift_group": group,
            "shift_family": family, "severity": sev, "n": len(g),
            "errors": int((~g["correct"]).sum()), "error": float((~g["correct"]).mean()),
            "top5_error": float((~g["top5_correct"]).mean()),
            # Null cosines (dataset-level shifts) make the mean null.
            "mean_cosine_to_clean": np.nan if cos.isna().any() else float(cos.astype(np.float64).mean()),
            "ece": ece(g["confidence"].to_numpy(), g["correct"].to_numpy()),
        })
    return pd.DataFrame(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--predictions", type=int)
    ap.add_argument("--metrics", type=int)
    ap.add_argument("--errors", type=int)
    ap.add_argument("--error-stage")
    ap.add_argument("--same-metrics")
    ap.add_argument("--families")
    ap.add_argument("--restricted", action="append", default=[])
    a = ap.parse_args()
    run = pathlib.Path(a.run)
    leftovers = [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    if leftovers:
        fail(f"temporary files left behind: {leftovers}")
    pred = read(run, "predictions")
    metrics = read(run, "metrics")
    errors = read(run, "errors")
    runs = read(run, "runs")
    stages = read(run, "stages")
    for name, df, want in [("predictions", pred, a.predictions), ("metrics", metrics, a.metrics),
                           ("errors", errors, a.errors)]:
        if want is not None and len(df) != want:
            fail(f"{name}: {len(df)} rows, expected {want}")
    if a.error_stage and set(errors["stage"]) != {a.error_stage}:
        fail(f"errors stages {set(errors['stage'])}, expected {a.error_stage}")
    if len(runs) < 1 or len(stages) < 1:
        fail("runs and stages tables must have rows")
    dup = pred.duplicated(["sample_id", "model", "probe", "shift_group", "shift", "severity"]).sum()
    if dup:
        fail(f"{dup} duplicate prediction rows")
    ours = recompute(pred)
    key = ["model", "probe", "shift", "shift_group", "shift_family", "severity"]
    merged = metrics.merge(ours, on=key, suffixes=("", "_ref"))
    if len(merged) != len(metrics) or len(merged) != len(ours):
        fail(f"metrics groups differ: {len(metrics)} written, {len(ours)} recomputed")
    for col in ["n", "errors"]:
        bad = merged[merged[col] != merged[f"{col}_ref"]]
        if len(bad):
            fail(f"metrics.{col} differs from the recomputation:\n{bad[key + [col, col + '_ref']]}")
    for col in ["error", "top5_error", "mean_cosine_to_clean", "ece"]:
        both_nan = merged[col].isna() & merged[f"{col}_ref"].isna()
        diff = (merged[col] - merged[f"{col}_ref"]).abs()[~both_nan].max()
        if merged[col].isna().ne(merged[f"{col}_ref"].isna()).any() or diff > 1e-6:
            fail(f"metrics.{col} differs from the recomputation by {diff}")
    if a.families:
        want = set(a.families.split(","))
        got = set(pred["shift_family"])
        if got != want:
            fail(f"shift families {sorted(got)}, expected {sorted(want)}")
        if set(metrics["shift_family"]) != want:
            fail(f"metrics shift families {sorted(set(metrics['shift_family']))}, expected {sorted(want)}")
    for spec in a.restricted:
        group, classes = spec.split("=")
        allowed = {int(c) for c in classes.split(",")}
        rows = pred[pred["shift_group"] == group]
        if rows.empty:
            fail(f"no predictions for {group}")
        outside = [p for p in rows["prediction"] if p not in allowed]
        outside += [c for t in rows["top5"] for c in t if c not in allowed]
        if outside:
            fail(f"{group}: predictions outside {sorted(allowed)}: {sorted(set(outside))}")
        if not rows["label"].isin(allowed).all():
            fail(f"{group}: labels outside {sorted(allowed)}")
        if not rows["cosine_to_clean"].isna().all():
            fail(f"{group}: dataset-level rows must have a null cosine_to_clean")
    if a.same_metrics:
        other = read(pathlib.Path(a.same_metrics), "metrics")
        cols = [c for c in metrics.columns if c != "run"]
        if not metrics[cols].equals(other[cols]):
            diff = metrics[cols].compare(other[cols])
            fail(f"metrics differ from {a.same_metrics}:\n{diff}")
    print(f"check_run: ok: {run}: {len(pred)} predictions, {len(metrics)} metrics, {len(errors)} errors")


if __name__ == "__main__":
    main()
    # Every check has passed. Skip the interpreter's teardown: in this venv pyarrow's thread
    # pools intermittently abort it ("terminate called without an active exception", exit 134)
    # after reading the same table twice, which would fail a passing check.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
