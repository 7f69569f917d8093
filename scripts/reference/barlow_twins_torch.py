"""Barlow Twins in plain PyTorch on the same data and budget as `shiftlab train`, to tell a
recipe problem from a porting bug (docs/training.md, "Barlow Twins on a small budget").

Independent of shiftlab: torchvision's ResNet-18 (1-channel stem), torchvision.transforms.v2
augmentations with the same parameters, the published loss with BatchNorm1d(affine=False),
SGD with momentum and the same warm-up + cosine schedule. Prints the loss and its two terms
every 10 steps; `--out` saves the trunk under torchvision names (loadable as `[[models]]
weights`, architecture "resnet18", channels 1).

    .venv/bin/python scripts/reference/barlow_twins_torch.py --limit 10000 --epochs 3
"""

import argparse
import io
import math
import time

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn as nn
import torchvision
import torchvision.transforms.v2 as T
from PIL import Image


def load(path, limit):
    t = pq.read_table(path, columns=["split", "image"]).to_pydict()
    imgs = [
        np.array(Image.open(io.BytesIO(im["bytes"])).convert("L"))
        for split, im in zip(t["split"], t["image"])
        if split == "train"
    ][:limit]
    return torch.tensor(np.stack(imgs)).unsqueeze(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="data/fashion-mnist.parquet")
    ap.add_argument("--limit", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--lambd", type=float, default=5e-3)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    x = load(a.dataset, a.limit)
    mean, std = (x.float() / 255).mean().item(), (x.float() / 255).std().item()
    side = x.shape[-1]
    aug = T.Compose([
        T.RandomResizedCrop(side, scale=(0.2, 1.0), antialias=False),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4)], p=0.8),
        T.RandomApply([T.GaussianBlur(max(3, side // 10 | 1), (0.1, 2.0))], p=0.5),
    ])

    def view(batch):
        return torch.stack([(aug(i).float() / 255 - mean) / std for i in batch])

    net = torchvision.models.resnet18()
    net.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    net.fc = nn.Identity()
    d = a.dim
    proj = nn.Sequential(
        nn.Linear(512, d), nn.BatchNorm1d(d), nn.ReLU(),
        nn.Linear(d, d), nn.BatchNorm1d(d), nn.ReLU(),
        nn.Linear(d, d),
    )
    bn = nn.BatchNorm1d(d, affine=False)
    params = list(net.parameters()) + list(proj.parameters())
    opt = torch.optim.SGD([
        {"params": [p for p in params if p.ndim > 1], "weight_decay": a.weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ], lr=a.lr, momentum=0.9)
    per_epoch = len(x) // a.batch_size
    total = a.epochs * per_epoch
    warm = max(1, total // 10)
    step, t0 = 0, time.time()
    for _ in range(a.epochs):
        order = torch.randperm(len(x))
        for i in range(per_epoch):
            batch = x[order[i * a.batch_size:(i + 1) * a.batch_size]]
            if step < warm:
                lr = a.lr * (step + 1) / warm
            else:
                lr = a.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
            for g in opt.param_groups:
                g["lr"] = lr
            z1, z2 = proj(net(view(batch))), proj(net(view(batch)))
            c = bn(z1).T @ bn(z2) / len(batch)
            diag = torch.diagonal(c)
            on = (1 - diag).pow(2).sum()
            off = a.lambd * (c.pow(2).sum() - diag.pow(2).sum())
            loss = on + off
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == 1 or step % 10 == 0 or step == total:
                print(f"step {step}/{total} loss {loss.item():.1f} (invariance {on.item():.1f}, "
                      f"redundancy {off.item():.1f}) lr {lr:.4f} {time.time() - t0:.0f} s",
                      flush=True)
    if a.out:
        from safetensors.torch import save_file
        state = {k: v.contiguous() for k, v in net.state_dict().items()
                 if not k.endswith("num_batches_tracked")}
        save_file(state, a.out)
        print(f"wrote {a.out} (normalize mean [{mean:.4f}] std [{std:.4f}])")


if __name__ == "__main__":
    main()
