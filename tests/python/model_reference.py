#!/usr/bin/env python3
"""Independent reference for shiftlab-model: torchvision ResNets and transforms.

Writes into OUT_DIR, for each case, a torchvision state_dict as safetensors (random weights,
BatchNorm statistics perturbed so that evaluation mode matters, plus an unused projector head),
a fixed u8 image batch and what torchvision computes from it, and a models.toml with the
matching shiftlab [[models]] entries. Some cases go through tools/convert_checkpoint.py from
SSL-style checkpoints (solo-learn, DINO, MoCo layouts); one is exported to TorchScript by it.

Usage: .venv/bin/python tests/python/model_reference.py OUT_DIR
"""

import json
import sys
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file
from torchvision.transforms import v2

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from convert_checkpoint import convert  # noqa: E402

# name, architecture, (n, h, w, c) of the u8 images, preprocessing fields, checkpoint layout
CASES = [
    ("r18", "resnet18", (2, 50, 60, 3), dict(resize=40, crop=32, channels=3), "torchvision"),
    ("r50", "resnet50", (1, 64, 64, 3), dict(input_size=64, channels=3), "dino"),
    ("small3", "resnet18-small", (3, 28, 28, 1), dict(channels=3, mean=[0.286] * 3, std=[0.353] * 3, stem_padding=2), "solo-learn"),
    ("small1", "resnet18-small", (2, 32, 36, 3), dict(input_size=28, channels=1, mean=[0.5], std=[0.25]), "torchvision"),
]
SCRIPT_CASE = ("script", (2, 40, 40, 3), dict(input_size=32, channels=3))


def save_weights(state: dict, layout: str, out: Path, name: str) -> None:
    """torchvision layout straight to safetensors; SSL layouts as .pth through the converter."""
    if layout == "torchvision":
        save_file(state, str(out / f"{name}.safetensors"))
        return
    if layout == "dino":
        wrap = lambda sd: {"module.backbone." + k: v for k, v in sd.items()}  # noqa: E731
        ckpt = {"teacher": wrap(state), "student": wrap({k: v + 1 for k, v in state.items()}), "epoch": 100}
    elif layout == "solo-learn":
        ckpt = {"state_dict": {"backbone." + k: v for k, v in state.items()}, "epoch": 3}
        ckpt["state_dict"]["projector.0.weight"] = ckpt["state_dict"].pop("backbone.projector.0.weight")
    torch.save(ckpt, out / f"{name}.pth")
    convert(out / f"{name}.pth", out / f"{name}.safetensors", key="teacher" if layout == "dino" else None)


def build(arch: str, channels: int, stem_padding: int = 1) -> torch.nn.Module:
    """torchvision ResNet; the small variant swaps in a 3x3 stride-1 stem and drops the max-pool."""
    model = getattr(torchvision.models, arch.replace("-small", ""))()
    if arch.endswith("-small") or channels != 3:
        k, s, p = (3, 1, stem_padding) if arch.endswith("-small") else (7, 2, 3)
        model.conv1 = torch.nn.Conv2d(channels, 64, k, s, p, bias=False)
    if arch.endswith("-small"):
        model.maxpool = torch.nn.Identity()
    return model


def perturb(model: torch.nn.Module) -> None:
    """Makes BatchNorm affine parameters and running statistics non-trivial."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(1000)


def transforms(prep: dict) -> v2.Compose:
    """torchvision's float path: scale to [0,1], channels, resize (antialias), crop, normalise."""
    steps = [v2.ToDtype(torch.float32, scale=True)]
    steps.append(v2.Grayscale(1) if prep["channels"] == 1 else v2.RGB())
    resize = prep.get("resize", prep.get("input_size"))
    crop = prep.get("crop", prep.get("input_size"))
    if resize:
        steps.append(v2.Resize(resize, interpolation=v2.InterpolationMode.BILINEAR, antialias=True))
    if crop:
        steps.append(v2.CenterCrop(crop))
    steps.append(v2.Normalize(prep.get("mean", MEAN), prep.get("std", STD)))
    return v2.Compose(steps)


def images(shape, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)


def toml_entry(name: str, prep: dict, source: str) -> str:
    lines = ["[[models]]", f'name = "{name}"', source]
    for key in ("input_size", "resize", "crop", "channels", "stem_padding"):
        if key in prep:
            lines.append(f"{key} = {prep[key]}")
    if "mean" in prep:
        lines.append(f"normalize = {{ mean = {json.dumps(prep['mean'])}, std = {json.dumps(prep['std'])} }}")
    return "\n".join(lines) + "\n"


def reference(model: torch.nn.Module, pixels: torch.Tensor, prep: dict) -> dict:
    """Preprocessed input, features (fc = Identity) and logits, all in evaluation mode."""
    x = transforms(prep)(pixels.permute(0, 3, 1, 2).contiguous())
    fc = model.fc
    model.fc = torch.nn.Identity()
    with torch.no_grad():
        features = model(x)
        logits = fc(features)
    model.fc = fc
    return {"images": pixels.contiguous(), "input": x.contiguous(), "features": features, "logits": logits}


def main(out: Path) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    out.mkdir(parents=True, exist_ok=True)
    toml = []
    for i, (name, arch, shape, prep, layout) in enumerate(CASES):
        model = build(arch, prep["channels"], prep.get("stem_padding", 1)).eval()
        perturb(model)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        dim = state["fc.weight"].shape[1]
        state["projector.0.weight"] = torch.randn(128, dim)  # an SSL head the encoder ignores
        save_weights(state, layout, out, name)
        save_file(reference(model, images(shape, i), prep), str(out / f"{name}.expected.safetensors"))
        toml.append(toml_entry(name, prep, f'architecture = "{arch}"\nweights = "{name}.safetensors"'))

    name, shape, prep = SCRIPT_CASE
    model = build("resnet18", 3).eval()
    perturb(model)
    expected = reference(model, images(shape, 99), prep)
    moco = {"module.encoder_q." + k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    moco.update({"module.encoder_q.fc.0.weight": torch.randn(512, 512), "module.queue": torch.randn(128, 8)})
    torch.save({"state_dict": moco, "arch": "resnet18"}, out / f"{name}.pth")
    convert(out / f"{name}.pth", out / f"{name}.pt", arch="resnet18", torchscript=True, input_size=32)
    save_file(expected, str(out / f"{name}.expected.safetensors"))
    toml.append(toml_entry(name, prep, f'torchscript = "{name}.pt"'))
    (out / "models.toml").write_text("\n".join(toml))
    print(f"model_reference: torch {torch.__version__}, torchvision {torchvision.__version__}, wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
