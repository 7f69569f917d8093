#!/usr/bin/env python3
"""Single-thread cost of imagecorruptions 1.1.2 per corruption at 224 px, mean over severities.

Usage: bench_reference.py IMAGE.png [MIN_SECONDS] [ONLY,NAMES]
Prints `single<TAB>name<TAB>ms<TAB>images/s` lines like the Rust corrupt_bench example.
Times are process CPU time (time.process_time; OpenCV, OpenMP and OpenBLAS are limited to one
thread, so this is the one thread's time), like the Rust side's thread CPU time, so that other
processes on a shared machine do not distort the ratio.
"""
import os
import sys
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

cv2.setNumThreads(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcorrupt as rc  # noqa: E402


def main():
    img = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
    min_s = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    only = sys.argv[3].split(",") if len(sys.argv) > 3 else None
    for name in rc.ALL:
        if only and name not in only:
            continue
        per = []
        for s in range(1, 6):
            rc.reference(img, name, s, 0)  # warm-up
            t = time.process_time()
            n = 0
            while time.process_time() - t < min_s / 5 or n < 2:
                rc.reference(img, name, s, n)
                n += 1
            per.append((time.process_time() - t) / n)
        mean = sum(per) / 5
        print(f"single\t{name}\t{mean * 1e3:.6f}\t{1 / mean:.1f}", flush=True)


if __name__ == "__main__":
    main()
