#!/usr/bin/env python3
"""Parity of shiftlab-corrupt with imagecorruptions 1.1.2.

Usage: corruption_parity.py --dump PATH/TO/corrupt_dump [--table docs/corruption-parity.md]

Deterministic corruptions: mean absolute difference (MAD) from the reference <= 1.0 grey level
for every photo and severity, in every preset (tiny64 and cifar32 at 64 / 32 px against
imagecorruptions' own functions run with those presets' constants, `refcorrupt.with_constants`).
Random corruptions, two rules:
  * constants (constant_stats.py): statistics that a constant drives, on flat images, within
    K = 4 standard errors of the seed-to-seed spread (a 5 % change of a constant fails);
  * photos (imagenet224): over N seeds per side, mean SSIM(corrupted, clean) within 0.03 of the
    reference's and mean |corrupted - clean| within 10 % of the reference's (or three standard
    errors where larger): a coarse check of the whole algorithm on real content.
Self-checks: the reference under other seeds must pass the same tests. Exit status 1 on any
failure.
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
import constant_stats as cs  # noqa: E402
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
    photo_name, img, name, sev, seed, preset = args
    out = rc.reference(img, name, sev, seed, preset)
    return (photo_name, name, sev, seed, preset), out


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
    ap.add_argument("--stat-seeds", type=int, default=24, help="seeds per side, constant rule")
    ap.add_argument("--power", action="store_true",
                    help="also check that the constant rule fails the reference x 1.05")
    ap.add_argument("--only", help="comma-separated corruptions to check")
    args = ap.parse_args()
    t0 = time.time()
    photos = rc.photos()
    small = {"tiny64": rc.photos(64), "cifar32": rc.photos(32)}
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
    for preset, imgs in small.items():
        for name, img in imgs.items():
            p = os.path.join(work, f"{name}-{preset}.png")
            Image.fromarray(img).save(p)
            imgs[name] = np.asarray(Image.open(p).convert("RGB"))
            paths[(name, preset)] = p
    presets = ["imagenet224"] + list(small)

    def photo(ph, preset):
        return photos[ph] if preset == "imagenet224" else small[preset][ph]

    def path(ph, preset):
        return paths[ph] if preset == "imagenet224" else paths[(ph, preset)]

    # Jobs for both sides.
    ours_jobs, ref_jobs = [], []
    for preset in presets:
        for c in det:
            for ph in det_photos:
                for s in SEVERITIES:
                    ours_jobs.append((ph, c, s, 0, preset))
                    ref_jobs.append((ph, c, s, 0, preset))
    for c in rnd:
        phs = glass_photos if c == "glass_blur" else rnd_photos
        for ph in phs:
            for s in SEVERITIES:
                for sd in ours_seeds:
                    ours_jobs.append((ph, c, s, sd, "imagenet224"))
                for sd in ref_seeds + self_seeds:
                    ref_jobs.append((ph, c, s, sd, "imagenet224"))

    # shiftlab side: one call of the dump binary.
    lines = []
    ours_out = {}
    for ph, c, s, sd, preset in ours_jobs:
        out = os.path.join(work, f"ours_{ph}_{c}_{s}_{sd}_{preset}.png")
        lines.append(f"{path(ph, preset)}\t{c}\t{s}\t{sd}\t{out}\t{preset}")
        ours_out[(ph, c, s, sd, preset)] = out
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
        ref = dict(pool.map(_ref_job, [(ph, photo(ph, pr), c, s, sd, pr)
                                       for ph, c, s, sd, pr in ref_jobs], chunksize=4))
    t_ref = time.time() - t1

    failures = []
    rows = []
    # Deterministic: MAD between the two outputs.
    for preset in presets:
        for c in det:
            for s in SEVERITIES:
                mads = []
                for ph in det_photos:
                    a = ours[(ph, c, s, 0, preset)].astype(np.float64)
                    b = ref[(ph, c, s, 0, preset)].astype(np.float64)
                    mads.append(np.abs(a - b).mean())
                ok = max(mads) <= MAD_LIMIT
                if not ok:
                    failures.append(f"{preset} {c} s{s}: MAD {max(mads):.3f} > {MAD_LIMIT}")
                rows.append(("det", (preset, c), s, mads, ok))

    # Random: statistics against the clean photo.
    stat_jobs = []
    for key, out in list(ours.items()):
        ph, c, s, sd, _ = key
        if c in rnd:
            stat_jobs.append((("ours",) + key[:4], out, photos[ph]))
    for key, out in ref.items():
        ph, c, s, sd, _ = key
        if c in rnd:
            stat_jobs.append((("ref",) + key[:4], out, photos[ph]))
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

    # Constants of the random corruptions: statistics on flat images.
    t1 = time.time()
    crows = constant_rule(args, work, only, failures)
    t_const = time.time() - t1

    # Report.
    print(f"{'corruption':18} sev  result")
    for kind, c, s, data, ok in rows:
        flag = "ok  " if ok else "FAIL"
        if kind == "det":
            print(f"{c[0]:11} {c[1]:18} {s}    {flag} MAD vs reference per photo: "
                  + " ".join(f"{m:.3f}" for m in data))
        else:
            ph, res, selfres = data
            rs, rm = res["ssim"], res["madc"]
            print(f"{c:18} {s}    {flag} {ph:9} SSIM ours {rs[0]:.3f} ref {rs[1]:.3f} (allow {rs[3]:.3f}) "
                  f"| MAD-vs-clean ours {rm[0]:.2f} ref {rm[1]:.2f} (allow {rm[3]:.2f}) "
                  f"| self-check {'ok' if all(v[4] for v in selfres.values()) else 'FAIL'}")
    for preset, c, s, stat, res, selfres, power, ok in crows:
        print(f"{preset:11} {c:18} {s}    {'ok  ' if ok else 'FAIL'} {stat}: ours {res[0]:.5g} "
              f"ref {res[1]:.5g} |d| {res[2]:.3g} (allow {res[3]:.3g}) | self "
              f"{'ok' if selfres[4] else 'FAIL'}" + ("" if power is None else f" | x1.05: {power}"))
    print(f"\nshiftlab: {len(ours_jobs)} images in {t_ours:.1f} s; reference: {len(ref_jobs)} images "
          f"in {t_ref:.1f} s; constant rule {t_const:.1f} s; total {time.time() - t0:.1f} s")

    if args.table:
        write_table(args.table, rows, crows, n, args.stat_seeds, det_photos, rnd_photos,
                    glass_photos)
        print(f"wrote {args.table}")
    if failures:
        print(f"\n{len(failures)} FAILURE(S):")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("\nall parity checks passed")


def constant_rule(args, work, only, failures):
    """Runs constant_stats' cases on both sides; returns report rows, appends failures."""
    n = args.stat_seeds
    cases = cs.cases(only)
    levels = sorted({lv for case in cases for lv in case[2]})
    flat = {}
    for lv in levels:
        flat[lv] = os.path.join(work, f"flat{lv}.png")
        Image.fromarray(cs.flat(lv)).save(flat[lv])
    lines, outs = [], {}
    for preset, c, lvs, _ in cases:
        for s in SEVERITIES:
            for sd in range(n):
                for lv in lvs:
                    out = os.path.join(work, f"const_{preset}_{c}_{s}_{sd}_{lv}.png")
                    lines.append(f"{flat[lv]}\t{c}\t{s}\t{sd}\t{out}\t{preset}")
                    outs[(preset, c, s, sd, lv)] = out
    jobfile = os.path.join(work, "const_jobs.tsv")
    with open(jobfile, "w") as f:
        f.write("\n".join(lines) + "\n")
    subprocess.run([args.dump, jobfile], check=True)
    ours = {}
    for preset, c, lvs, _ in cases:
        for s in SEVERITIES:
            for sd in range(n):
                imgs = [np.asarray(Image.open(outs[(preset, c, s, sd, lv)]).convert("RGB"))
                        for lv in lvs]
                ours[(preset, c, s, sd)] = cs.stats(c, imgs)
    jobs = cs.jobs(n, only, power=args.power)
    with Pool(args.jobs) as pool:
        ref = dict(pool.map(cs.reference_job, jobs, chunksize=8))
    rows = []
    for preset, c, lvs, consts in cases:
        for s in SEVERITIES:
            o = [ours[(preset, c, s, sd)] for sd in range(n)]
            r = [ref[(preset, c, lvs, s, sd, None)] for sd in range(1000, 1000 + n)]
            r2 = [ref[(preset, c, lvs, s, sd, None)] for sd in range(1000 + n, 1000 + 2 * n)]
            res, selfres = cs.compare(o, r), cs.compare(r2, r)
            power = {}
            if args.power:
                for pos, name in enumerate(consts):
                    vals = tuple(cs.scaled(preset, c, pos, cs.POWER_FACTOR))
                    pw = cs.compare([ref[(preset, c, lvs, s, sd, vals)]
                                     for sd in range(1000, 1000 + n)], r)
                    for stat, v in pw.items():
                        power.setdefault(stat, []).append(f"{name} {'caught' if not v[4] else 'missed'}")
            for stat in res:
                ok = res[stat][4] and selfres[stat][4]
                if not res[stat][4]:
                    v = res[stat]
                    failures.append(f"{preset} {c} s{s} {stat}: ours {v[0]:.5g} ref {v[1]:.5g} "
                                    f"|d| {v[2]:.3g} > {v[3]:.3g} ({cs.K:g} SE)")
                if not selfres[stat][4]:
                    failures.append(f"SELF-CHECK {preset} {c} s{s} {stat}")
                p = ", ".join(power[stat]) if args.power else None
                rows.append((preset, c, s, stat, res[stat], selfres[stat], p, ok))
    return rows


def write_table(path, rows, crows, n, stat_n, det_photos, rnd_photos, glass_photos):
    import datetime
    L = []
    L.append("# Corruption parity: shiftlab-corrupt vs imagecorruptions 1.1.2\n")
    L.append(f"Generated by `scripts/parity-table.sh` on {datetime.date.today()} "
             "(photos from scikit-image's data: shorter side resized to 8/7 of the preset's "
             "side, bicubic, centre crop: 224 px for `imagenet224`, 64 px for `tiny64`, 32 px "
             "for `cifar32`). The rule and its limits: docs/testing.md.\n")
    L.append("## Deterministic corruptions\n")
    L.append(f"Mean absolute difference from the reference output, grey levels (limit {MAD_LIMIT}); "
             f"one value per photo ({', '.join(det_photos)}). The reference for `tiny64` and "
             "`cifar32` is imagecorruptions' own function run with that preset's constants "
             "(tests/parity/refcorrupt.py, `with_constants`).\n")
    L.append("| preset | corruption | s=1 | s=2 | s=3 | s=4 | s=5 |")
    L.append("|---|---|---|---|---|---|---|")
    det = {}
    for kind, c, s, data, ok in rows:
        if kind == "det":
            det.setdefault(c, {})[s] = (data, ok)
    for (preset, c), d in det.items():
        cells = [" / ".join(f"{m:.3f}" for m in d[s][0]) + ("" if d[s][1] else " FAIL") for s in SEVERITIES]
        L.append(f"| {preset} | {c} | " + " | ".join(cells) + " |")
    L.append("\n## Random corruptions: constants\n")
    L.append(f"Statistics that the constants drive, on flat {cs.SIDE} px images (tests/parity/"
             f"constant_stats.py), mean over {stat_n} seeds per side. Pass: |difference| within "
             f"{cs.K:g} standard errors of the seed-to-seed spread (`allow`), nothing more. "
             "`self`: the reference under other seeds passes. `x1.05`: the reference with that "
             "constant 5 % larger is caught (fails) or missed.\n")
    L.append("| preset | corruption | s | statistic | shiftlab | reference | allow | pass | self | x1.05 |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for preset, c, s, stat, res, selfres, power, ok in crows:
        L.append(f"| {preset} | {c} | {s} | {stat} | {res[0]:.5g} | {res[1]:.5g} | {res[3]:.3g} | "
                 f"{'yes' if res[4] else 'NO'} | {'yes' if selfres[4] else 'NO'} | {power or '-'} |")
    L.append("\n## Random corruptions: photos\n")
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
