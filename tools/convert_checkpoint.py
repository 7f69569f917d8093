#!/usr/bin/env python3
"""Convert a PyTorch checkpoint to what shiftlab loads.

Default output: safetensors with torchvision ResNet names (conv1.weight, bn1.running_mean,
layer1.0.downsample.0.weight, fc.weight ...), for `architecture = "resnet18|resnet50|
resnet18-small"` with `weights = "..."`. With --torchscript: a traced TorchScript module that
maps [N, C, S, S] float input to [N, D] features (fc replaced by Identity), for
`torchscript = "..."`.

Understood layouts (found automatically; --key and --prefix override):
  torchvision / timm ResNet state_dict     conv1.weight ...
  mmselfsup / mmpretrain                   {"state_dict": {"backbone.conv1.weight" ...}}
  solo-learn (Lightning)                   {"state_dict": {"backbone.conv1.weight" ...}}
  DINO                                     {"teacher"|"student": {"module.backbone.conv1.weight" ...}}
  MoCo v1/v2, SimCLR ports                 {"state_dict": {"module.encoder_q.conv1.weight" ...}}
The prefix is the one under which most tensors match the target model's names, at any depth.

Examples:
  tools/convert_checkpoint.py moco_v2_800ep.pth.tar models/moco.safetensors
  tools/convert_checkpoint.py dino_resnet50.pth models/dino.safetensors --key teacher
  tools/convert_checkpoint.py simclr-cifar.ckpt models/simclr.safetensors --arch resnet18-small --trust-pickle
  tools/convert_checkpoint.py r50.pth models/r50.pt --torchscript --input-size 224
  tools/convert_checkpoint.py vit.pth models/vit.pt --torchscript --timm-model vit_small_patch16_224

Checkpoints are read with torch.load(weights_only=True); ones that pickle other objects
(argparse namespaces, Lightning hyper-parameters) need --trust-pickle: only for files you trust.
"""

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

import torch

STATE_KEYS = ("state_dict", "model", "teacher", "module", "net", "network")


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
            sys.exit(f"{path}: cannot load with weights_only=True ({first}); "
                     "rerun with --trust-pickle if you trust this file")
        return torch.load(path, map_location="cpu", weights_only=False)


def is_tensor_dict(d) -> bool:
    return isinstance(d, dict) and d and all(isinstance(v, torch.Tensor) for v in d.values())


def state_dict_of(ckpt: dict, key: str | None) -> dict:
    """The tensors: ckpt[key], else the first well-known entry holding tensors, else ckpt."""
    if key is not None:
        if key not in ckpt:
            sys.exit(f"key '{key}' not in checkpoint (keys: {sorted(ckpt)[:20]})")
        ckpt = ckpt[key]
    elif not is_tensor_dict(ckpt):
        found = [k for k in STATE_KEYS if isinstance(ckpt.get(k), dict)]
        if not found:
            sys.exit(f"no state_dict in checkpoint (keys: {sorted(ckpt)[:20]}); pass --key")
        ckpt = ckpt[found[0]]
        print(f"convert: using checkpoint['{found[0]}']", file=sys.stderr)
    tensors = {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        sys.exit("the selected state_dict holds no tensors")
    return tensors


def guess_arch(names: set[str], sd: dict) -> str:
    """resnet50 if bottleneck blocks, resnet18-small if a 3x3 stem, else resnet18."""
    conv1 = next((sd[k] for k in sd if k.endswith("conv1.weight") and "layer" not in k), None)
    if any(n.endswith("layer1.0.conv3.weight") for n in names):
        return "resnet50"
    if conv1 is not None and conv1.shape[-1] == 3:
        return "resnet18-small"
    return "resnet18"


def build_target(arch: str, channels: int, timm_model: str | None) -> torch.nn.Module:
    """The model whose parameter names the output uses."""
    if timm_model:
        import timm  # optional dependency, only for --timm-model
        return timm.create_model(timm_model, pretrained=False, num_classes=0)
    import torchvision
    model = getattr(torchvision.models, arch.replace("-small", ""))()
    small = arch.endswith("-small")
    if small or channels != 3:
        k, s, p = (3, 1, 1) if small else (7, 2, 3)
        model.conv1 = torch.nn.Conv2d(channels, 64, k, s, p, bias=False)
    if small:
        model.maxpool = torch.nn.Identity()
    return model


def best_prefix(sd: dict, target: set[str], forced: str | None) -> str:
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
        sys.exit(f"no tensor matches the target names{f' under prefix {forced!r}' if forced else ''}; "
                 f"first keys: {sorted(sd)[:8]}")
    # Most matches; among equals the shortest prefix (a block's own names match deeper ones).
    return min(score, key=lambda p: (-score[p], len(p)))


def rename(sd: dict, model: torch.nn.Module, prefix: str, keep_extra: bool) -> tuple[dict, list, list]:
    """Target-named tensors (shapes checked), the target names missing, the keys left out."""
    target = model.state_dict()
    out, dropped = {}, []
    for k, v in sd.items():
        name = k[len(prefix):] if k.startswith(prefix) else None
        if name in target and tuple(v.shape) == tuple(target[name].shape):
            out[name] = v
        elif name in target and not name.startswith("fc."):
            sys.exit(f"{k}: shape {tuple(v.shape)}, the target {name} needs {tuple(target[name].shape)}")
        else:
            dropped.append(k)
    missing = [n for n in target if n not in out and not n.startswith("fc.")]
    if keep_extra:
        out.update({k: v for k, v in sd.items() if k in dropped and k not in out})
    return out, missing, dropped


def convert(src: Path, dst: Path, arch: str | None = None, key: str | None = None,
            prefix: str | None = None, channels: int | None = None, torchscript: bool = False,
            input_size: int | None = None, timm_model: str | None = None,
            keep_extra: bool = False, allow_missing: bool = False, trust_pickle: bool = False) -> None:
    sd = state_dict_of(load_checkpoint(src, trust_pickle), key)
    if arch is None and not timm_model:
        arch = guess_arch(set(sd), sd)
        print(f"convert: architecture {arch} (guessed; --arch overrides)", file=sys.stderr)
    if channels is None:
        stems = [v for k, v in sd.items() if k.endswith("conv1.weight") and "layer" not in k]
        channels = int(stems[0].shape[1]) if stems and not timm_model else 3
    model = build_target(arch or "resnet18", channels, timm_model)
    prefix = best_prefix(sd, set(model.state_dict()), prefix)
    out, missing, dropped = rename(sd, model, prefix, keep_extra)
    print(f"convert: prefix '{prefix}', {len(out)} tensors kept, {len(dropped)} left out"
          f"{' (kept under their names)' if keep_extra and dropped else ''}", file=sys.stderr)
    if dropped:
        print(f"convert: left out e.g. {dropped[:6]}", file=sys.stderr)
    if missing and not allow_missing:
        sys.exit(f"missing in checkpoint: {missing[:10]}{' ...' if len(missing) > 10 else ''} "
                 f"({len(missing)}); wrong --arch or --prefix? (--allow-missing to go on)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if torchscript:
        trace(model, out, dst, channels, input_size or (32 if (arch or "").endswith("-small") else 224))
    else:
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous() for k, v in out.items()}, str(dst))
    print(f"convert: wrote {dst}", file=sys.stderr)


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
    ap.add_argument("--arch", choices=["resnet18", "resnet50", "resnet18-small"])
    ap.add_argument("--key", help="checkpoint entry holding the state_dict (e.g. teacher, student)")
    ap.add_argument("--prefix", help="key prefix to strip (default: found automatically)")
    ap.add_argument("--channels", type=int, help="stem input channels (default: from conv1.weight)")
    ap.add_argument("--torchscript", action="store_true", help="write a traced TorchScript module")
    ap.add_argument("--input-size", type=int, help="trace input side (224; 32 for resnet18-small)")
    ap.add_argument("--timm-model", help="trace this timm model instead of a torchvision ResNet")
    ap.add_argument("--keep-extra", action="store_true", help="also keep unmatched tensors")
    ap.add_argument("--allow-missing", action="store_true", help="write even if tensors are missing")
    ap.add_argument("--trust-pickle", action="store_true", help="allow full unpickling (trusted files only)")
    a = ap.parse_args()
    convert(a.input, a.output, a.arch, a.key, a.prefix, a.channels, a.torchscript, a.input_size,
            a.timm_model, a.keep_extra, a.allow_missing, a.trust_pickle)


if __name__ == "__main__":
    main()
