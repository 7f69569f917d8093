"""The same work as bench/pipeline.toml done the usual Python way, for `scripts/bench-pipeline.sh`.

PyTorch DataLoader (worker processes) -> PIL decode -> resize to 32 px -> imagecorruptions
(every corruption x severity, NumPy-seeded per item) -> ToTensor/normalise -> torchvision
ResNet-18 (random weights, fc removed) in eval mode under no_grad. No probe is fitted: the Python
side does strictly less than shiftlab, which also fits and applies a kNN probe.

Workloads (the model input; the corruptions always run on the 32 px RGB image):
  rgb32   3 channels at 32 px, ImageNet normalisation (bench/pipeline.toml)
  gray28  luma (torchvision rgb_to_grayscale), antialiased bilinear resize to 28 px, the zoo's
          normalisation, ResNet-18 with a 1-channel stem: the quickstart's encoders
          (bench/pipeline-gray28.toml)

usage: pipeline_python.py DATASET.parquet N_IMAGES WORKERS THREADS BATCH WORKLOAD
prints: end-to-end images/s, then model-only images/s (same number of forward passes)
"""
import io
import pathlib
import sys
import time

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import torchvision
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "parity"))
from refcorrupt import ALL, corrupt  # noqa: E402  (imagecorruptions with its two shims)

import torchvision.transforms.functional as TF  # noqa: E402

WORKLOADS = {
    # name: (channels, side, mean, std)
    "rgb32": (3, 32, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    "gray28": (1, 28, [0.2858], [0.3532]),
}


class Shifted(torch.utils.data.Dataset):
    def __init__(self, path, n, workload):
        self.channels, self.side, mean, std = WORKLOADS[workload]
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        t = pq.read_table(path, columns=["split", "label", "image"])
        t = t.filter(pc.equal(t["split"], "test")).slice(0, n)
        self.images = [r["bytes"] for r in t["image"].to_pylist()]
        self.labels = t["label"].to_pylist()
        shifts = [("clean", 0)] + [(c, s) for c in ALL for s in range(1, 6)]
        self.items = [(i, c, s) for i in range(len(self.images)) for c, s in shifts]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, k):
        i, name, severity = self.items[k]
        img = Image.open(io.BytesIO(self.images[i])).convert("RGB").resize((32, 32), Image.BILINEAR)
        arr = np.asarray(img)
        if name != "clean":
            np.random.seed(k)
            arr = np.uint8(corrupt(arr, severity=severity, corruption_name=name))
        x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 255.0
        if self.channels == 1:
            x = TF.rgb_to_grayscale(x)
        if self.side != 32:
            x = TF.resize(x, [self.side, self.side], antialias=True)
        return (x - self.mean) / self.std, self.labels[i]


def main():
    path, n, workers, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    batch, workload = int(sys.argv[5]), sys.argv[6]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    model.fc = torch.nn.Identity()
    ds = Shifted(path, n, workload)
    if ds.channels == 1:
        model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    model.eval()
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers)
    t0 = time.perf_counter()
    done = 0
    with torch.no_grad():
        for x, _ in loader:
            model(x).argmax(1)
            done += len(x)
    dt = time.perf_counter() - t0
    # The same forward passes on ready tensors: the bound any pipeline with this model has.
    x = torch.randn(batch, ds.channels, ds.side, ds.side)
    t1 = time.perf_counter()
    with torch.no_grad():
        for _ in range(0, done, batch):
            model(x).argmax(1)
    model_only = done / (time.perf_counter() - t1)
    print(f"{done / dt:.1f} {model_only:.1f}")


if __name__ == "__main__":
    main()
