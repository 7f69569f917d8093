"""The reference, imagecorruptions 1.1.2, made to run on current NumPy / scikit-image.

Two shims, applied here and never in site-packages:
  * np.float_ (removed in NumPy 2) is aliased to np.float64 (fog uses it);
  * the module's `gaussian` turns `multichannel=True` into `channel_axis=-1`
    (glass_blur and gaussian_blur pass it; recent scikit-image removed the argument).
"""
import inspect
import os
import re
import warnings

import numpy as np
from PIL import Image

if not hasattr(np, "float_"):
    np.float_ = np.float64

warnings.filterwarnings("ignore")

import imagecorruptions.corruptions as _icc  # noqa: E402
from skimage.filters import gaussian as _sk_gaussian  # noqa: E402


def _gaussian(*args, multichannel=None, **kwargs):
    if multichannel:
        kwargs["channel_axis"] = -1
    return _sk_gaussian(*args, **kwargs)


_icc.gaussian = _gaussian

from imagecorruptions import corrupt, get_corruption_names  # noqa: E402,F401

ALL = get_corruption_names("all")
DETERMINISTIC = ["contrast", "brightness", "saturate", "jpeg_compression", "pixelate",
                 "defocus_blur", "gaussian_blur", "zoom_blur"]
RANDOM = [c for c in ALL if c not in DETERMINISTIC]


def reference(img, name, severity, seed, preset="imagenet224"):
    """imagecorruptions seeds from NumPy's global generator: seed it before each call. Other
    presets run the same function with the preset's constants (`with_constants`)."""
    np.random.seed(seed)
    if preset == "imagenet224":
        return corrupt(img, severity=severity, corruption_name=name)
    fn = with_constants(name, small_constants()[preset][name])
    return np.uint8(fn(Image.fromarray(img), severity))


FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates",
                       "shiftlab-corrupt", "tests", "fixtures", "reference-constants.md")


def constants():
    """{preset: {corruption: [five Python literals]}}, read from the tables copied verbatim from
    the reference page (the Rust test reads the same file). imagenet224's elastic_transform row
    is the original script's, not imagecorruptions': never patch it in."""
    out, preset = {}, None
    with open(FIXTURE) as f:
        for line in f:
            if line.startswith("## "):
                preset = line[3:].strip()
                continue
            cells = [c.strip() for c in line.split("|")]
            if preset is None or len(cells) < 4 or cells[1] in ("name", "---"):
                continue
            text = " ".join(cells[4:9]) if preset == "imagenet224" else cells[2]
            out.setdefault(preset, {})[cells[1]] = _literals(cells[1], text)
    out["tiny64"]["zoom_blur"] = out["cifar32"]["zoom_blur"]  # "same five ranges as the 32 px"
    return out


def small_constants():
    return constants()


def _literals(name, text):
    text = text.split(";")[0].split(":")[-1]  # frost's note; elastic's "32 x (alpha, ...):"
    groups = re.findall(r"\(([-0-9., ]+)\)", text)
    values = [f"({g})" for g in groups] if groups else text.split()
    if name == "zoom_blur":
        values = [f"np.arange{v}" for v in values]
    return values


_PATCHED = {}


def with_constants(name, values):
    """imagecorruptions' own function `name` with its constant list `c = [...][severity - 1]`
    replaced by `values`: the reference algorithm under another preset's constants."""
    key = (name, tuple(values))
    if key not in _PATCHED:
        src = inspect.getsource(getattr(_icc, name))
        new, n = re.subn(r"c = \[.*?\]\[\s*severity - 1\]",
                         "c = [" + ", ".join(values) + "][severity - 1]", src, count=1, flags=re.S)
        if n != 1:
            raise ValueError(f"{name}: no constant list found in imagecorruptions' source")
        ns = dict(vars(_icc))
        exec(compile(new, f"<imagecorruptions.{name} with constants>", "exec"), ns)
        _PATCHED[key] = ns[name]
    return _PATCHED[key]


def photos(size=224):
    """Real photographs shipped inside the scikit-image wheel: shorter side resized to
    size * 8 / 7 (bicubic), then centre-cropped to size x size (Resize(256) -> CenterCrop(224))."""
    from PIL import Image
    from skimage import data

    out = {}
    for name in ["astronaut", "chelsea", "coffee", "rocket"]:
        im = Image.fromarray(getattr(data, name)()).convert("RGB")
        w, h = im.size
        short = round(size * 8 / 7)
        s = short / min(w, h)
        im = im.resize((max(short, round(w * s)), max(short, round(h * s))), Image.BICUBIC)
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        out[name] = np.asarray(im.crop((left, top, left + size, top + size)))
    return out
