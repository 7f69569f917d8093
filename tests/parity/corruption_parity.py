#!/usr/bin/env python3
"""Parity of shiftlab-corrupt with imagecorruptions 1.1.2 (the imagenet224 preset).

Usage: corruption_parity.py --dump PATH/TO/corrupt_dump [--table docs/corruption-parity.md]

Deterministic corruptions: mean absolute difference (MAD) from the reference <= 1.0 grey level
for every photo and severity. Random corruptions: over N seeds per side, mean SSIM(corrupted,
clean) within 0.03 of the reference's and mean |corrupted - clean| within 10 % of the
reference's; where the seed-to-seed spread is wide the allowance widens to three standard
errors of the difference of the means (never more). Self-check: the reference under other
seeds must pass the same test. Exit status 1 on any failure.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcorrupt as rc  # noqa: E402

SEVERITIES = [1, 2, 3, 4, 5]
MAD_LIMIT = 1.0
SSIM_TOL = 0.03
MADC_REL_TOL = 0.10


def ssim(a, b):
    return structural_similarity(a, b, channel_axis=-1, data_range=255)


def madc(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _ref_job(args):
    photo_name, img, name, sev, seed = args
    out = rc.reference(img, name, sev, seed)
    return (photo_name, name, sev, seed), out


def _stats_job(args):
    key, out, clean = args
    return key, (ssim(out, clean), madc(out, clean))


def compare(a, b):
    """a, b: lists of (ssim, madc) for the candidate and the reference. Returns a dict."""
    a = np.asarray(a)
    b = np.asarray(b)
    res = {}
    for i, (metric, base) in enumerate([("ssim", SSIM_TOL), ("madc", None)]):
        ma, mb = a[:, i].mean(), b[:, i].mean()
        se = np.sqrt(a[:, i].var(ddof=1) / len(a) + b[:, i].var(ddof=1) / len(b))
        tol = base if base is not None else MADC_REL_TOL * abs(mb)
        allow = max(tol, 3 * se)
        res[metric] = (ma, mb, abs(ma - mb), allow, abs(ma - mb) <= allow)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True, help="path to the corrupt_dump example binary")
    ap.add_argument("--table", help="write a markdown table here")
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--only", help="comma-separated corruptions to check")
    args = ap.parse_args()
    t0 = time.time()
    photos = rc.photos()
    det_photos = ["astronaut", "chelsea", "coffee"]
    rnd_photos = ["astronaut", "coffee"]
    glass_photos = ["chelsea"]
    only = set(args.only.split(",")) if args.only else None
    det = [c for c in rc.DETERMINISTIC if not only or c in only]
    rnd = [c for c in rc.RANDOM if not only or c in only]
    n = args.seeds
    ours_seeds = list(range(n))
    ref_seeds = list(range(1000, 1000 + n))
    self_seeds = list(range(2000, 2000 + n))

    work = tempfile.mkdtemp(prefix="shiftlab-parity-")
    paths = {}
    for name, img in photos.items():
        p = os.path.join(work, f"{name}.png")
        Image.fromarray(img).save(p)
        # Both sides read the same PNG.
        photos[name] = np.asarray(Image.open(p).convert("RGB"))
        paths[name] = p

    # Jobs for both sides.
    ours_jobs, ref_jobs = [], []
    for c in det:
        for ph in det_photos:
            for s in SEVERITIES:
                ours_jobs.append((ph, c, s, 0))
                ref_jobs.append((ph, c, s, 0))
    for c in rnd:
        phs = glass_photos if c == "glass_blur" else rnd_photos
        for ph in phs:
            for s in SEVERITIES:
                for sd in ours_seeds:
                    ours_jobs.append((ph, c, s, sd))
                for sd in ref_seeds + self_seeds:
                    ref_jobs.append((ph, c, s, sd))

    # shiftlab side: one call of the dump binary.
    lines = []
    ours_out = {}
    for ph, c, s, sd in ours_jobs:
        out = os.path.join(work, f"ours_{ph}_{c}_{s}_{sd}.png")
        lines.append(f"{paths[ph]}\t{c}\t{s}\t{sd}\t{out}\timagenet224")
        ours_out[(ph, c, s, sd)] = out
    jobfile = os.path.join(work, "jobs.tsv")
    with open(jobfile, "w") as f:
        f.write("\n".join(lines) + "\n")
    t1 = time.time()
    subprocess.run([args.dump, jobfile], check=True)
    t_ours = time.time() - t1
    ours = {k: np.asarray(Image.open(v).convert("RGB")) for k, v in ours_out.items()}

    # Reference side, in parallel processes.
    t1 = time.time()
    with Pool(args.jobs) as pool:
        ref = dict(pool.map(_ref_job, [(ph, photos[ph], c, s, sd) for ph, c, s, sd in ref_jobs],
                            chunksize=4))
    t_ref = time.time() - t1

    failures = []
    rows = []
    # Deterministic: MAD between the two outputs.
    for c in det:
        for s in SEVERITIES:
            mads = []
            for ph in det_photos:
                a = ours[(ph, c, s, 0)].astype(np.float64)
                b = ref[(ph, c, s, 0)].astype(np.float64)
                mads.append(np.abs(a - b).mean())
            ok = max(mads) <= MAD_LIMIT
            if not ok:
                failures.append(f"{c} s{s}: MAD {max(mads):.3f} > {MAD_LIMIT}")
            rows.append(("det", c, s, mads, ok))

    # Random: statistics against the clean photo.
    stat_jobs = []
    for key, out in list(ours.items()):
        ph, c, s, sd = key
        if c in rnd:
            stat_jobs.append((("ours",) + key, out, photos[ph]))
    for key, out in ref.items():
        ph, c, s, sd = key
        if c in rnd:
            stat_jobs.append((("ref",) + key, out, photos[ph]))
    with Pool(args.jobs) as pool:
        stats = dict(pool.map(_stats_job, stat_jobs, chunksize=16))
    for c in rnd:
        phs = glass_photos if c == "glass_blur" else rnd_photos
        for s in SEVERITIES:
            for ph in phs:
                o = [stats[("ours", ph, c, s, sd)] for sd in ours_seeds]
                r = [stats[("ref", ph, c, s, sd)] for sd in ref_seeds]
                r2 = [stats[("ref", ph, c, s, sd)] for sd in self_seeds]
                res = compare(o, r)
                selfres = compare(r2, r)
                ok = all(v[4] for v in res.values())
                self_ok = all(v[4] for v in selfres.values())
                if not ok:
                    failures.append(f"{c} s{s} {ph}: " + ", ".join(
                        f"{m} ours {v[0]:.4f} ref {v[1]:.4f} |d| {v[2]:.4f} > {v[3]:.4f}"
                        for m, v in res.items() if not v[4]))
                if not self_ok:
                    failures.append(f"SELF-CHECK {c} s{s} {ph}: " + ", ".join(
                        f"{m} ref' {v[0]:.4f} ref {v[1]:.4f} |d| {v[2]:.4f} > {v[3]:.4f}"
                        for m, v in selfres.items() if not v[4]))
                rows.append(("rnd", c, s, (ph, res, selfres), ok and self_ok))

    # Report.
    print(f"{'corruption':18} sev  result")
    for kind, c, s, data, ok in rows:
        flag = "ok  " if ok else "FAIL"
        if kind == "det":
            print(f"{c:18} {s}    {flag} MAD vs reference per photo: " + " ".join(f"{m:.3f}" for m in data))
        else:
            ph, res, selfres = data
            rs, rm = res["ssim"], res["madc"]
            print(f"{c:18} {s}    {flag} {ph:9} SSIM ours {rs[0]:.3f} ref {rs[1]:.3f} (allow {rs[3]:.3f}) "
                  f"| MAD-vs-clean ours {rm[0]:.2f} ref {rm[1]:.2f} (allow {rm[3]:.2f}) "
                  f"| self-check {'ok' if all(v[4] for v in selfres.values()) else 'FAIL'}")
    print(f"\nshiftlab: {len(ours_jobs)} images in {t_ours:.1f} s; reference: {len(ref_jobs)} images "
          f"in {t_ref:.1f} s; total {time.time() - t0:.1f} s")

    if args.table:
        write_table(args.table, rows, n, det_photos, rnd_photos, glass_photos)
        print(f"wrote {args.table}")
    if failures:
        print(f"\n{len(failures)} FAILURE(S):")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("\nall parity checks passed")


def write_table(path, rows, n, det_photos, rnd_photos, glass_photos):
    import datetime
    L = []
    L.append("# Corruption parity: shiftlab-corrupt vs imagecorruptions 1.1.2\n")
    L.append(f"Generated by `scripts/parity-table.sh` on {datetime.date.today()} "
             "(preset `imagenet224`, 224x224 photos from scikit-image's data: "
             "shorter side resized to 256 bicubic, centre crop 224).\n")
    L.append("## Deterministic corruptions\n")
    L.append(f"Mean absolute difference from the reference output, grey levels (limit {MAD_LIMIT}); "
             f"one value per photo ({', '.join(det_photos)}).\n")
    L.append("| corruption | s=1 | s=2 | s=3 | s=4 | s=5 |")
    L.append("|---|---|---|---|---|---|")
    det = {}
    for kind, c, s, data, ok in rows:
        if kind == "det":
            det.setdefault(c, {})[s] = (data, ok)
    for c, d in det.items():
        cells = [" / ".join(f"{m:.3f}" for m in d[s][0]) + ("" if d[s][1] else " FAIL") for s in SEVERITIES]
        L.append(f"| {c} | " + " | ".join(cells) + " |")
    L.append("\n## Random corruptions\n")
    L.append(f"Over {n} seeds per side and photo ({', '.join(rnd_photos)}; glass_blur: "
             f"{', '.join(glass_photos)}): mean SSIM of corrupted vs clean, and mean absolute "
             "deviation from clean (grey levels), shiftlab / reference. Pass: SSIM within 0.03, MAD "
             "within 10 %, or three standard errors of the difference where larger. "
             "`self` = the reference under other seeds passes the same test.\n")
    L.append("| corruption | photo | s | SSIM shiftlab | SSIM ref | MAD shiftlab | MAD ref | pass | self |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for kind, c, s, data, ok in rows:
        if kind != "rnd":
            continue
        ph, res, selfres = data
        rs, rm = res["ssim"], res["madc"]
        self_ok = all(v[4] for v in selfres.values())
        L.append(f"| {c} | {ph} | {s} | {rs[0]:.3f} | {rs[1]:.3f} | {rm[0]:.2f} | {rm[1]:.2f} | "
                 f"{'yes' if ok else 'NO'} | {'yes' if self_ok else 'NO'} |")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
