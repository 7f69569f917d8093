#!/usr/bin/env python3
"""Independent reference for shiftlab-model: torchvision ResNets and ViTs, timm ViTs, and
torchvision's transforms.

Writes into OUT_DIR, for each case, the model's weights (random, from fixed seeds, with
BatchNorm statistics, LayerNorm parameters, biases and position embeddings perturbed so that
each of them matters), a fixed u8 image batch and what the PyTorch model computes from it, and
a models.toml with the matching shiftlab [[models]] entries. Most cases are written as a
checkpoint in one SSL library's own layout (prefixes, nesting, second networks, heads) and go
through tools/convert_checkpoint.py; one is exported to TorchScript by it. Also writes
checkpoints the converter must refuse (unknown_*.pth).

Usage: .venv/bin/python tests/python/model_reference.py OUT_DIR
"""

import json
import sys
from pathlib import Path

import timm
import torch
import torchvision
from safetensors.torch import save_file
from torchvision.transforms import v2

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from convert_checkpoint import convert  # noqa: E402

# name, architecture, (n, h, w, c) of the u8 images, preprocessing fields, checkpoint layout.
# Big ResNets run at 32 px: every block still runs (down to 1x1 maps).
CASES = [
    ("r18", "resnet18", (2, 50, 60, 3), dict(resize=40, crop=32, channels=3), "torchvision"),
    ("r50", "resnet50", (1, 64, 64, 3), dict(input_size=64, channels=3), "dino-teacher"),
    ("small3", "resnet18-small", (3, 28, 28, 1), dict(channels=3, mean=[0.286] * 3, std=[0.353] * 3, stem_padding=2), "solo-learn"),
    ("small1", "resnet18-small", (2, 32, 36, 3), dict(input_size=28, channels=1, mean=[0.5], std=[0.25]), "torchvision"),
    ("r34", "resnet34", (2, 32, 32, 3), dict(input_size=32, channels=3), "mmselfsup"),
    ("r101", "resnet101", (1, 32, 32, 3), dict(input_size=32, channels=3), "moco-v3"),
    ("r152", "resnet152", (1, 32, 32, 3), dict(input_size=32, channels=3), "lightly"),
    ("wrn50", "wide_resnet50_2", (1, 32, 32, 3), dict(input_size=32, channels=3), "moco-v2"),
]
# name, architecture, (n, h, w, c), preprocessing, layout, pool, the model: ("timm", name, kwargs)
# or ("torchvision", VisionTransformer kwargs). dynamic_img_size: timm resamples the position
# embedding for the input (bicubic, antialiased), as shiftlab must.
VIT_CASES = [
    ("vit_s16_cls", "vit-s16", (2, 224, 224, 3), dict(input_size=224), "dino-teacher", "cls",
     ("timm", "vit_small_patch16_224", dict(global_pool="token"))),
    ("vit_s16_mean", "vit-s16", (2, 224, 224, 3), dict(input_size=224), "dino-student", "mean",
     ("timm", "vit_small_patch16_224", dict(global_pool="avg", fc_norm=False))),
    ("vit_b16_cls", "vit-b16", (2, 224, 224, 3), dict(input_size=224), "timm", "cls",
     ("timm", "vit_base_patch16_224", dict(global_pool="token", num_classes=1000))),
    ("vit_b16_mean48", "vit-b16", (2, 56, 60, 3), dict(resize=48, crop=48), "moco-v3", "mean",
     ("timm", "vit_base_patch16_224", dict(global_pool="avg", dynamic_img_size=True))),
    ("vit_s16_32", "vit-s16", (2, 40, 40, 3), dict(input_size=32), "lightly", "cls",
     ("timm", "vit_small_patch16_224", dict(global_pool="token", dynamic_img_size=True))),
    ("vit_s8_48", "vit-s8", (2, 48, 48, 3), dict(input_size=48), "solo-learn", "mean",
     ("timm", "vit_small_patch8_224", dict(global_pool="avg", fc_norm=False, dynamic_img_size=True))),
    ("vit_ti16_tv", "vit-ti16", (2, 32, 32, 3), dict(input_size=32), "torchvision-vit", "cls",
     ("torchvision", dict(image_size=32, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768))),
]
SCRIPT_CASE = ("script", (2, 40, 40, 3), dict(input_size=32, channels=3))


def other(state: dict) -> dict:
    """A second network's weights (momentum encoder, teacher): the converter must not pick it."""
    return {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}


def lightly_resnet(state: dict) -> dict:
    """nn.Sequential(*list(resnet.children())[:-1]) names: conv1 -> 0, bn1 -> 1, layer1 -> 4 ..."""
    children = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
    out = {}
    for k, v in state.items():
        first, _, rest = k.partition(".")
        if first in children:
            out[f"{children[first]}.{rest}"] = v
    return out


def checkpoint(state: dict, layout: str, vit: bool) -> tuple[dict, str | None]:
    """`state` (torchvision / timm names) nested as `layout` saves it; the converter's --key."""
    pre = lambda p, sd: {p + k: v for k, v in sd.items()}  # noqa: E731
    body = {k: v for k, v in state.items() if not k.startswith(("fc.", "head."))}
    if layout in ("dino-teacher", "dino-student"):
        # main_dino.py: the student is DDP-wrapped, the teacher (a ViT) is not; both carry a DINOHead.
        head = {"head.mlp.0.weight": torch.randn(64, 32), "head.last_layer.weight_g": torch.ones(128, 1)}
        teacher, student = (body, other(body)) if layout == "dino-teacher" else (other(body), body)
        return {"teacher": pre("backbone.", teacher) | head, "student": pre("module.backbone.", student) | pre("module.", head),
                "epoch": 100, "dino_loss": {"center": torch.zeros(1, 128)}}, layout.split("-")[1]
    if layout == "solo-learn":
        sd = pre("backbone.", body) | pre("momentum_backbone.", other(body))
        sd |= {"projector.0.weight": torch.randn(16, 8), "classifier.weight": torch.randn(10, 8)}
        return {"state_dict": sd, "epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.5.0",
                "hyper_parameters": {"method": "byol", "max_epochs": 400}}, None
    if layout == "moco-v2":
        # The key encoder first: the converter must not rely on the order of the dict.
        sd = pre("module.encoder_k.", other(body)) | pre("module.encoder_q.", body)
        sd |= {"module.encoder_q.fc.0.weight": torch.randn(16, 8), "module.queue": torch.randn(128, 8),
               "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
        return {"state_dict": sd, "arch": "resnet50", "epoch": 200}, None
    if layout == "moco-v3":
        head = "head" if vit else "fc"
        sd = pre("module.base_encoder.", body) | pre("module.momentum_encoder.", other(body))
        sd |= {f"module.base_encoder.{head}.0.weight": torch.randn(16, 8), "module.predictor.0.weight": torch.randn(16, 8)}
        return {"state_dict": sd, "arch": "vit_small" if vit else "resnet50", "epoch": 300}, None
    if layout == "mmselfsup":
        sd = pre("backbone.", body) | {"neck.mlp.0.weight": torch.randn(16, 8), "head.predictor.weight": torch.randn(4, 4)}
        return {"meta": {"epoch": 200, "mmengine_version": "0.10.0"}, "state_dict": sd}, None
    if layout == "lightly":
        sd = pre("backbone.vit.", body) if vit else pre("backbone.", lightly_resnet(body))
        return sd | {"projection_head.layers.0.weight": torch.randn(16, 8)}, None
    raise ValueError(layout)


def save_weights(state: dict, layout: str, out: Path, name: str, vit: bool = False) -> None:
    """torchvision / timm layouts straight to safetensors; the others as .pth through the converter."""
    if layout in ("torchvision", "timm"):
        save_file(state, str(out / f"{name}.safetensors"))
        return
    if layout == "torchvision-vit":
        torch.save(state, out / f"{name}.pth")
        convert(out / f"{name}.pth", out / f"{name}.safetensors")
        (out / f"{name}.pth").unlink()
        return
    ckpt, key = checkpoint(state, layout, vit)
    torch.save(ckpt, out / f"{name}.pth")
    convert(out / f"{name}.pth", out / f"{name}.safetensors", key=key)
    (out / f"{name}.pth").unlink()  # the big models' checkpoints add up to gigabytes


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
    """Makes BatchNorm / LayerNorm parameters, running statistics and biases non-trivial, and
    the position embedding large enough that resampling it matters."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(1000)
            elif isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
            elif isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and m.bias is not None:
                m.bias.normal_(0.0, 0.1)
        for name, p in model.named_parameters():
            if name in ("pos_embed", "cls_token", "class_token", "encoder.pos_embedding"):
                p.normal_(0.0, 0.5)
            elif name.endswith("in_proj_bias"):
                p.normal_(0.0, 0.1)


def transforms(prep: dict) -> v2.Compose:
    """torchvision's float path: scale to [0,1], channels, resize (antialias), crop, normalise."""
    steps = [v2.ToDtype(torch.float32, scale=True)]
    steps.append(v2.Grayscale(1) if prep.get("channels", 3) == 1 else v2.RGB())
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
    for key in ("input_size", "resize", "crop", "channels", "stem_padding", "pool"):
        if key in prep:
            value = prep[key]
            lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    if "mean" in prep:
        lines.append(f"normalize = {{ mean = {json.dumps(prep['mean'])}, std = {json.dumps(prep['std'])} }}")
    return "\n".join(lines) + "\n"


def reference(features, logits, pixels: torch.Tensor, prep: dict) -> dict:
    """Preprocessed input, features and (where there is a head) logits, in evaluation mode."""
    x = transforms(prep)(pixels.permute(0, 3, 1, 2).contiguous())
    with torch.no_grad():
        out = {"images": pixels.contiguous(), "input": x.contiguous(), "features": features(x).contiguous()}
        if logits is not None:
            out["logits"] = logits(x).contiguous()
    return out


def resnet_reference(model: torch.nn.Module, pixels: torch.Tensor, prep: dict) -> dict:
    """Features with fc = Identity, logits through the original fc."""
    head, model.fc = model.fc, torch.nn.Identity()
    expected = reference(model, lambda x: head(model(x)), pixels, prep)
    model.fc = head
    return expected


def vit_model(spec) -> tuple[torch.nn.Module, object, object]:
    """The PyTorch ViT and its feature and logit functions (timm: forward_head pre_logits)."""
    if spec[0] == "timm":
        kwargs = {"num_classes": 0} | spec[2]
        model = timm.create_model(spec[1], pretrained=False, **kwargs).eval()
        features = lambda x: model.forward_head(model.forward_features(x), pre_logits=True)  # noqa: E731
        return model, features, (model if kwargs["num_classes"] else None)
    model = torchvision.models.VisionTransformer(**spec[1]).eval()
    model.heads = torch.nn.Identity()
    return model, model, None


def resnet_cases(out: Path, toml: list) -> None:
    for i, (name, arch, shape, prep, layout) in enumerate(CASES):
        model = build(arch, prep["channels"], prep.get("stem_padding", 1)).eval()
        perturb(model)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        dim = state["fc.weight"].shape[1]
        state["projector.0.weight"] = torch.randn(128, dim)  # an SSL head the encoder ignores
        save_weights(state, layout, out, name)
        save_file(resnet_reference(model, images(shape, i), prep), str(out / f"{name}.expected.safetensors"))
        toml.append(toml_entry(name, prep, f'architecture = "{arch}"\nweights = "{name}.safetensors"'))


def vit_cases(out: Path, toml: list) -> None:
    for i, (name, arch, shape, prep, layout, pool, spec) in enumerate(VIT_CASES):
        torch.manual_seed(100 + i)
        model, features, logits = vit_model(spec)
        perturb(model)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_weights(state, layout, out, name, vit=True)
        save_file(reference(features, logits, images(shape, 100 + i), prep), str(out / f"{name}.expected.safetensors"))
        toml.append(toml_entry(name, prep | {"pool": pool}, f'architecture = "{arch}"\nweights = "{name}.safetensors"'))


def script_case(out: Path, toml: list) -> None:
    name, shape, prep = SCRIPT_CASE
    model = build("resnet18", 3).eval()
    perturb(model)
    expected = resnet_reference(model, images(shape, 99), prep)
    moco = {"module.encoder_q." + k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    moco.update({"module.encoder_q.fc.0.weight": torch.randn(512, 512), "module.queue": torch.randn(128, 8)})
    torch.save({"state_dict": moco, "arch": "resnet18"}, out / f"{name}.pth")
    convert(out / f"{name}.pth", out / f"{name}.pt", arch="resnet18", torchscript=True, input_size=32)
    save_file(expected, str(out / f"{name}.expected.safetensors"))
    toml.append(toml_entry(name, prep, f'torchscript = "{name}.pt"'))


def unknown_layouts(out: Path) -> None:
    """Checkpoints the converter must refuse, naming what it saw and tried."""
    t = torch.zeros(4, 4)
    torch.save({"weights": {"enc.a.weight": t}, "epoch": 1}, out / "unknown_nesting.pth")
    torch.save({"state_dict": {"encoder.stem.weight": t, "encoder.blocks.x": t}, "epoch": 1}, out / "unknown_names.pth")


def main(out: Path) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    out.mkdir(parents=True, exist_ok=True)
    toml = []
    resnet_cases(out, toml)
    vit_cases(out, toml)
    script_case(out, toml)
    unknown_layouts(out)
    (out / "models.toml").write_text("\n".join(toml))
    print(f"model_reference: torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"timm {timm.__version__}, wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
