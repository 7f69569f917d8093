"""Independent check of a run's saved embeddings (runtime.save_embeddings) with pyarrow/numpy.

For each MODEL=DIM given: embeddings/MODEL/part-*.parquet has the columns and types of
schemas/embeddings.json, a fixed-size list of DIM float32, one row per sample x shift x severity
(ROWS rows, no duplicates, finite and not constant), and the predictions' cosine_to_clean equals
the cosine recomputed with numpy from the saved shifted and clean embeddings (within 1e-5).

usage: check_embeddings.py RUN_DIR ROWS MODEL=DIM [MODEL=DIM ...]
"""

import json
import pathlib
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCALARS = {"utf8": pa.string(), "int32": pa.int32(), "int64": pa.int64()}


def fail(msg):
    print(f"check_embeddings: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    run, rows = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    dims = dict((m, int(d)) for m, d in (a.split("=") for a in sys.argv[3:]))
    schema = json.loads((ROOT / "schemas" / "embeddings.json").read_text())
    pred = pq.read_table(run / "predictions").to_pandas()
    folders = sorted(p.name for p in (run / "embeddings").iterdir())
    if folders != sorted(dims):
        fail(f"embedding folders {folders}, expected {sorted(dims)}")
    for model, dim in dims.items():
        files = sorted((run / "embeddings" / model).glob("part-*.parquet"))
        parts = sorted((run / "predictions").glob("part-*.parquet"))
        if [f.name for f in files] != [p.name for p in parts]:
            fail(f"{model}: parts {[f.name for f in files]} != predictions' {[p.name for p in parts]}")
        t = pa.concat_tables([pq.read_table(f) for f in files])
        names = [f["name"] for f in schema["fields"]]
        if t.schema.names != names:
            fail(f"{model}: columns {t.schema.names} != schema {names}")
        for f in schema["fields"]:
            got = t.schema.field(f["name"]).type
            want = pa.list_(pa.float32(), dim) if f["name"] == "embedding" else SCALARS[f["type"]]
            if got != want:
                fail(f"{model}.{f['name']}: type {got} != {want}")
        if t.num_rows != rows:
            fail(f"{model}: {t.num_rows} rows, expected {rows}")
        df = t.drop(["embedding"]).to_pandas()
        if set(df["model"]) != {model}:
            fail(f"{model}: model column {set(df['model'])}")
        key = ["sample_id", "shift", "severity"]
        if df.duplicated(key).any():
            fail(f"{model}: duplicate (sample, shift, severity) rows")
        emb = t.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, dim)
        emb = emb.astype(np.float64)
        if not np.isfinite(emb).all() or emb.std(axis=0).max() == 0:
            fail(f"{model}: embeddings are not finite or all rows are equal")
        clean = {s: i for i, s in enumerate(df["sample_id"]) if df["shift"][i] == "clean"}
        twin = emb[[clean[s] for s in df["sample_id"]]]
        cos = (emb * twin).sum(1) / np.maximum(
            np.linalg.norm(emb, axis=1) * np.linalg.norm(twin, axis=1), 1e-12)
        df["cos_ref"] = cos
        p = pred[pred["model"] == model].merge(df, on=key + ["part", "label"], how="left")
        if len(p) != (pred["model"] == model).sum() or p["cos_ref"].isna().any():
            fail(f"{model}: some prediction rows have no embedding row")
        if len(p) != rows * pred["probe"].nunique():
            fail(f"{model}: {len(p)} prediction rows for {rows} embedding rows")
        diff = (p["cosine_to_clean"].astype(np.float64) - p["cos_ref"]).abs().max()
        if not diff <= 1e-5:
            fail(f"{model}: cosine_to_clean differs from numpy's by {diff}")
        shifted = p[p["shift"] != "clean"]["cos_ref"]
        if not (shifted < 1 - 1e-6).any():
            fail(f"{model}: no shifted embedding differs from its clean twin")
        print(f"{model}: {t.num_rows} rows of dim {dim}, max cosine diff {diff:.2e}")


main()
