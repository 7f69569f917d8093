#!/usr/bin/env python3
"""The eager-PyTorch side of `scripts/bench-vit.sh`: a timm ViT's forward on ready float
tensors, timed as examples/embed_bench.rs times shiftlab's network (one warm-up call, then
calls for SECS seconds), same threads and batch. Prints `network: N images/s (T torch threads)`.

Usage: embed_bench_timm.py TIMM_MODEL SIDE BATCH THREADS [SECS]
"""

import sys
import time

import timm
import torch


def main(name: str, side: int, batch: int, threads: int, secs: float) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=0).eval()
    x = torch.randn(batch, 3, side, side)
    with torch.inference_mode():
        model(x)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < secs:
            model(x)
            done += batch
    rate = done / (time.perf_counter() - start)
    print(f"network: {rate:.1f} images/s ({torch.get_num_threads()} torch threads, timm {timm.__version__}, "
          f"fused_attn {model.blocks[0].attn.fused_attn})")


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
         float(sys.argv[5]) if len(sys.argv) == 6 else 5.0)
