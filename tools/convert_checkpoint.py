#!/usr/bin/env python3
"""Convert a PyTorch checkpoint to what shiftlab loads.

Default output: safetensors with the names shiftlab's native architectures use, for
`architecture = "..."` with `weights = "..."`:
  ResNets (resnet18 resnet34 resnet50 resnet101 resnet152 wide_resnet50_2 resnet18-small):
    torchvision names (conv1.weight, bn1.running_mean, layer1.0.downsample.0.weight, fc.weight)
  ViTs (vit-ti16 vit-s16 vit-s8 vit-b16 vit-b8): timm / DINO names (cls_token, pos_embed,
    patch_embed.proj.weight, blocks.0.attn.qkv.weight, norm.weight or fc_norm.weight, head.weight)
With --torchscript: a traced TorchScript module that maps [N, C, S, S] float input to [N, D]
features (fc replaced by Identity), for `torchscript = "..."`.

Understood layouts (found automatically; --key and --prefix override), each checked by
tests/python/model_reference.py on a checkpoint written in that library's own layout:
  torchvision ResNet / timm ResNet or ViT   conv1.weight ... / cls_token ...
  torchvision ViT (renamed to timm names)   class_token, encoder.layers.encoder_layer_0.ln_1 ...
  DINO                                      {"teacher": {"backbone." ...}, "student": {"module.backbone." ...}}
                                            (the teacher by default, --key student for the other)
  solo-learn (Lightning)                    {"state_dict": {"backbone." ..., "momentum_backbone." ...}}
  MoCo v2                                   {"state_dict": {"module.encoder_q." ..., "module.encoder_k." ...}}
  MoCo v3                                   {"state_dict": {"module.base_encoder." ..., "module.momentum_encoder." ...}}
  mmselfsup / mmpretrain ResNets            {"meta": ..., "state_dict": {"backbone." ..., "neck." ...}}
  lightly                                   {"backbone.0.weight", "backbone.4.0.conv1.weight" ...} (ResNet
                                            children in an nn.Sequential), or "backbone.vit." (timm ViT)
The prefix is the one under which most tensors match the target model's names, at any depth;
among equals not a momentum / key encoder, then the shortest.

Examples:
  tools/convert_checkpoint.py moco_v2_800ep.pth.tar models/moco.safetensors
  tools/convert_checkpoint.py dino_deitsmall16_pretrain_full_checkpoint.pth models/dino-s16.safetensors
  tools/convert_checkpoint.py simclr-cifar.ckpt models/simclr.safetensors --arch resnet18-small --trust-pickle
  tools/convert_checkpoint.py vit_b_16.pth models/vit-b16.safetensors --arch vit-b16
  tools/convert_checkpoint.py r50.pth models/r50.pt --torchscript --input-size 224

Checkpoints are read with torch.load(weights_only=True); ones that pickle other objects
(argparse namespaces, Lightning hyper-parameters) need --trust-pickle: only for files you trust.
"""

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

import torch

STATE_KEYS = ("state_dict", "model", "teacher", "student", "module", "net", "network")
RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "resnet18-small")
# ViT name -> (token width, patch side); all have 12 blocks and 4x MLPs.
VITS = {"vit-ti16": (192, 16), "vit-s16": (384, 16), "vit-s8": (384, 8), "vit-b16": (768, 16), "vit-b8": (768, 8)}
# Prefixes the layouts above use, named in the error for an unknown layout.
KNOWN_PREFIXES = ("", "module.", "backbone.", "module.backbone.", "model.", "encoder.", "module.encoder_q.",
                  "module.base_encoder.", "backbone.vit.", "student.backbone.")
# Prefixes of the second network that SSL methods keep beside the one to evaluate.
SHADOW_WORDS = ("encoder_k.", "momentum", "target", "ema")
# lightly's ResNet backbone: nn.Sequential(*list(resnet.children())[:-1]).
SEQUENTIAL_RESNET = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
# torchvision VisionTransformer -> timm names (applied anywhere in a key, prefixes kept).
TORCHVISION_VIT = [
    (r"(^|\.)class_token$", r"\1cls_token"),
    (r"(^|\.)conv_proj\.", r"\1patch_embed.proj."),
    (r"(^|\.)encoder\.pos_embedding$", r"\1pos_embed"),
    (r"(^|\.)encoder\.layers\.encoder_layer_(\d+)\.", r"\1blocks.\2."),
    (r"(^|\.)encoder\.ln\.", r"\1norm."),
    (r"(^|\.)heads\.head\.", r"\1head."),
    (r"(blocks\.\d+\.)ln_1\.", r"\1norm1."),
    (r"(blocks\.\d+\.)ln_2\.", r"\1norm2."),
    (r"(blocks\.\d+\.)self_attention\.in_proj_(weight|bias)$", r"\1attn.qkv.\2"),
    (r"(blocks\.\d+\.)self_attention\.out_proj\.", r"\1attn.proj."),
    (r"(blocks\.\d+\.)mlp\.(0|linear_1)\.", r"\1mlp.fc1."),
    (r"(blocks\.\d+\.)mlp\.(3|linear_2)\.", r"\1mlp.fc2."),
]


def fail(message: str) -> None:
    sys.exit(f"convert: {message}")


def load_checkpoint(path: Path, trust_pickle: bool) -> dict:
    """A flat dict of tensors, or the nested checkpoint dict."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises several kinds here
        if not trust_pickle:
            first = re.sub(r"\x1b\[[0-9;]*m", "", str(err).splitlines()[0])
            fail(f"{path}: cannot load with weights_only=True ({first}); "
                 "rerun with --trust-pickle if you trust this file")
        return torch.load(path, map_location="cpu", weights_only=False)


def is_tensor_dict(d) -> bool:
    return isinstance(d, dict) and d and all(isinstance(v, torch.Tensor) for v in d.values())


def state_dict_of(ckpt: dict, key: str | None) -> tuple[dict, str]:
    """The tensors and where they were (with the checkpoint's top-level keys): ckpt[key], else
    the first well-known entry holding tensors, else ckpt itself."""
    where = "the checkpoint"
    top = f"top-level keys {sorted(map(str, ckpt))[:20]}"
    if key is not None:
        if key not in ckpt:
            fail(f"key '{key}' not in checkpoint (top-level keys: {sorted(ckpt)[:20]})")
        ckpt, where = ckpt[key], f"checkpoint['{key}'] ({top})"
    elif not is_tensor_dict(ckpt):
        found = [k for k in STATE_KEYS if isinstance(ckpt.get(k), dict)]
        if not found:
            fail(f"unknown checkpoint layout: no state_dict among the top-level keys {sorted(ckpt)[:20]} "
                 f"(looked for {list(STATE_KEYS)}); pass --key")
        ckpt, where = ckpt[found[0]], f"checkpoint['{found[0]}'] ({top})"
        print(f"convert: using checkpoint['{found[0]}']", file=sys.stderr)
    else:
        where = f"the checkpoint ({top})"
    tensors = {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        fail(f"{where} holds no tensors")
    return tensors, where


def normalise_names(sd: dict) -> dict:
    """Renames library layouts with other module names: torchvision ViTs to timm names,
    lightly's Sequential ResNet children to torchvision names."""
    if any("encoder_layer_" in k or k.endswith("class_token") for k in sd):
        renamed = {}
        for k, v in sd.items():
            for pattern, to in TORCHVISION_VIT:
                k = re.sub(pattern, to, k)
            renamed[k] = v
        sd = renamed
    heads = [k[: -len("4.0.conv1.weight")] for k in sd if k.endswith("4.0.conv1.weight")]
    for p in heads:
        if p + "0.weight" in sd and (p == "" or p.endswith(".")):
            def child(k: str) -> str:
                rest = k[len(p):]
                first, _, tail = rest.partition(".")
                return p + SEQUENTIAL_RESNET[first] + "." + tail if first in SEQUENTIAL_RESNET else k
            sd = {child(k) if k.startswith(p) else k: v for k, v in sd.items()}
    return sd


def guess_arch(sd: dict) -> str:
    """A ViT from its token width and patch side; a ResNet from its block counts and widths."""
    for k, v in sd.items():
        if k.endswith("patch_embed.proj.weight"):
            dim, patch = int(v.shape[0]), int(v.shape[-1])
            for name, spec in VITS.items():
                if spec == (dim, patch):
                    return name
            fail(f"no native ViT has width {dim} and patch {patch} (known: {VITS})")
    blocks = Counter()
    for k in sd:
        m = re.search(r"layer([1-4])\.(\d+)\.", k)
        if m:
            blocks[m[1]] = max(blocks[m[1]], int(m[2]) + 1)
    bottleneck = any(k.endswith("layer1.0.conv3.weight") for k in sd)
    if blocks["3"] >= 36:
        return "resnet152"
    if blocks["3"] >= 23:
        return "resnet101"
    if blocks["3"] >= 6 and bottleneck:
        inner = next((v for k, v in sd.items() if k.endswith("layer1.0.conv1.weight")), None)
        return "wide_resnet50_2" if inner is not None and inner.shape[0] == 128 else "resnet50"
    if blocks["3"] >= 6:
        return "resnet34"
    conv1 = next((v for k, v in sd.items() if k.endswith("conv1.weight") and "layer" not in k), None)
    return "resnet18-small" if conv1 is not None and conv1.shape[-1] == 3 else "resnet18"


def resnet_model(arch: str, channels: int) -> torch.nn.Module:
    """torchvision's ResNet; the small variant has a 3x3 stride-1 stem and no max-pool."""
    import torchvision
    model = getattr(torchvision.models, arch.replace("-small", ""))()
    small = arch.endswith("-small")
    if small or channels != 3:
        k, s, p = (3, 1, 1) if small else (7, 2, 3)
        model.conv1 = torch.nn.Conv2d(channels, 64, k, s, p, bias=False)
    if small:
        model.maxpool = torch.nn.Identity()
    return model


def vit_shapes(arch: str, channels: int) -> dict:
    """timm's ViT parameter names and shapes; pos_embed's grid is free (-1)."""
    d, p = VITS[arch]
    shapes = {"cls_token": (1, 1, d), "pos_embed": (1, -1, d), "patch_embed.proj.weight": (d, channels, p, p),
              "patch_embed.proj.bias": (d,)}
    for i in range(12):
        b = f"blocks.{i}."
        for name, shape in [("norm1.weight", (d,)), ("norm1.bias", (d,)), ("attn.qkv.weight", (3 * d, d)),
                            ("attn.qkv.bias", (3 * d,)), ("attn.proj.weight", (d, d)), ("attn.proj.bias", (d,)),
                            ("norm2.weight", (d,)), ("norm2.bias", (d,)), ("mlp.fc1.weight", (4 * d, d)),
                            ("mlp.fc1.bias", (4 * d,)), ("mlp.fc2.weight", (d, 4 * d)), ("mlp.fc2.bias", (d,))]:
            shapes[b + name] = shape
    for norm in ("norm", "fc_norm"):
        shapes[f"{norm}.weight"], shapes[f"{norm}.bias"] = (d,), (d,)
    shapes["head.weight"], shapes["head.bias"] = (-1, d), (-1,)
    return shapes


def target_shapes(arch: str, channels: int) -> tuple[dict, set]:
    """Target names and shapes (-1: any size), and the names that may be absent."""
    if arch in VITS:
        shapes = vit_shapes(arch, channels)
        return shapes, {"norm.weight", "norm.bias", "fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}
    shapes = {k: tuple(v.shape) for k, v in resnet_model(arch, channels).state_dict().items()}
    optional = {k for k in shapes if k.startswith("fc.") or k.endswith("num_batches_tracked")}
    return shapes, optional


def fits(shape: tuple, want: tuple) -> bool:
    return len(shape) == len(want) and all(w == -1 or s == w for s, w in zip(shape, want))


def best_prefix(sd: dict, target: set[str], forced: str | None, arch: str, where: str) -> str:
    """The prefix under which most checkpoint tensors have a target name (any nesting:
    "module.encoder_q.", "model.backbone." ...)."""
    score = Counter()
    for k in sd:
        for name in target:
            if k == name or k.endswith("." + name):
                score[k[: len(k) - len(name)]] += 1
    if forced is not None:
        score = Counter({forced: score.get(forced, 0)})
    if not score or max(score.values()) == 0:
        tried = [forced] if forced is not None else list(KNOWN_PREFIXES)
        fail(f"unknown checkpoint layout for {arch}: no tensor of {where} is named like a {arch} parameter "
             f"(e.g. {sorted(target)[0]}) under any prefix; tried {tried} and every prefix ending at a "
             f"{arch} name; its keys start with {sorted({k.split('.')[0] + '.' for k in sd})[:20]}, e.g. {sorted(sd)[:4]}; "
             "pass --arch, --key or --prefix")
    # Most matches; among equals not a momentum / key encoder (MoCo's encoder_k, BYOL's
    # momentum_backbone), then the shortest prefix (a block's own names match deeper ones).
    return min(score, key=lambda p: (-score[p], any(w in p for w in SHADOW_WORDS), len(p)))


def rename(sd: dict, shapes: dict, optional: set, prefix: str, arch: str, keep_extra: bool):
    """Target-named tensors (shapes checked), the target names missing, the keys left out."""
    out, dropped = {}, []
    for k, v in sd.items():
        name = k[len(prefix):] if k.startswith(prefix) else None
        if name in shapes and fits(tuple(v.shape), shapes[name]):
            out[name] = v
        elif name in shapes and name not in optional:
            fail(f"{arch}: {k} has shape {tuple(v.shape)}, {name} needs {shapes[name]} (-1: any)")
        else:
            dropped.append(k)
    missing = [n for n in shapes if n not in out and n not in optional]
    if arch in VITS and not ({"norm.weight", "fc_norm.weight"} & set(out)):
        missing.append("norm.weight (or fc_norm.weight)")
    if keep_extra:
        out.update({k: v for k, v in sd.items() if k in dropped and k not in out})
    return out, missing, dropped


def convert(src: Path, dst: Path, arch: str | None = None, key: str | None = None,
            prefix: str | None = None, channels: int | None = None, torchscript: bool = False,
            input_size: int | None = None, timm_model: str | None = None,
            keep_extra: bool = False, allow_missing: bool = False, trust_pickle: bool = False) -> None:
    sd, where = state_dict_of(load_checkpoint(src, trust_pickle), key)
    sd = normalise_names(sd)
    if arch is None and not timm_model:
        arch = guess_arch(sd)
        print(f"convert: architecture {arch} (guessed; --arch overrides)", file=sys.stderr)
    if channels is None:
        stems = [v for k, v in sd.items() if (k.endswith("conv1.weight") and "layer" not in k)
                 or k.endswith("patch_embed.proj.weight")]
        channels = int(stems[0].shape[1]) if stems and not timm_model else 3
    arch = arch or "resnet18"
    if timm_model:
        model = build_timm(timm_model)
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        optional = {k for k in shapes if k.startswith("head.")}
    else:
        shapes, optional = target_shapes(arch, channels)
    prefix = best_prefix(sd, set(shapes), prefix, timm_model or arch, where)
    out, missing, dropped = rename(sd, shapes, optional, prefix, timm_model or arch, keep_extra)
    print(f"convert: prefix '{prefix}', {len(out)} tensors kept, {len(dropped)} left out"
          f"{' (kept under their names)' if keep_extra and dropped else ''}", file=sys.stderr)
    if dropped:
        print(f"convert: left out e.g. {dropped[:6]}", file=sys.stderr)
    if missing and not allow_missing:
        fail(f"{arch}: missing in {where}: {missing[:10]}{' ...' if len(missing) > 10 else ''} "
             f"({len(missing)}); wrong --arch or --prefix? (--allow-missing to go on)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if torchscript:
        model = model if timm_model else resnet_model(arch, channels)
        trace(model, out, dst, channels, input_size or (32 if arch.endswith("-small") else 224))
    else:
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous() for k, v in out.items()}, str(dst))
    print(f"convert: wrote {dst}", file=sys.stderr)


def build_timm(name: str) -> torch.nn.Module:
    import timm  # only for --timm-model (scripts/requirements-torch.txt pins it)
    return timm.create_model(name, pretrained=False, num_classes=0)


def trace(model: torch.nn.Module, sd: dict, dst: Path, channels: int, size: int) -> None:
    """Loads the weights, drops the classifier, traces at [1, C, size, size] in eval mode."""
    model.load_state_dict({k: v for k, v in sd.items() if not k.startswith("fc.")}, strict=False)
    if hasattr(model, "fc"):
        model.fc = torch.nn.Identity()
    model.eval()
    example = torch.zeros(1, channels, size, size)
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
        dim = traced(example).shape
    traced.save(str(dst))
    print(f"convert: TorchScript output {tuple(dim)} for input {tuple(example.shape)}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--arch", choices=[*RESNETS, *VITS])
    ap.add_argument("--key", help="checkpoint entry holding the state_dict (e.g. teacher, student)")
    ap.add_argument("--prefix", help="key prefix to strip (default: found automatically)")
    ap.add_argument("--channels", type=int, help="stem input channels (default: from the stem's weight)")
    ap.add_argument("--torchscript", action="store_true", help="write a traced TorchScript module (ResNets, --timm-model)")
    ap.add_argument("--input-size", type=int, help="trace input side (224; 32 for resnet18-small)")
    ap.add_argument("--timm-model", help="trace this timm model instead of a torchvision ResNet")
    ap.add_argument("--keep-extra", action="store_true", help="also keep unmatched tensors")
    ap.add_argument("--allow-missing", action="store_true", help="write even if tensors are missing")
    ap.add_argument("--trust-pickle", action="store_true", help="allow full unpickling (trusted files only)")
    a = ap.parse_args()
    if a.torchscript and a.arch in VITS:
        ap.error("--torchscript traces ResNets or a --timm-model; native ViTs load the safetensors directly")
    convert(a.input, a.output, a.arch, a.key, a.prefix, a.channels, a.torchscript, a.input_size,
            a.timm_model, a.keep_extra, a.allow_missing, a.trust_pickle)


if __name__ == "__main__":
    main()
