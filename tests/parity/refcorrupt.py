"""The reference, imagecorruptions 1.1.2, made to run on current NumPy / scikit-image.

Two shims, applied here and never in site-packages:
  * np.float_ (removed in NumPy 2) is aliased to np.float64 (fog uses it);
  * the module's `gaussian` turns `multichannel=True` into `channel_axis=-1`
    (glass_blur and gaussian_blur pass it; recent scikit-image removed the argument).
"""
import warnings

import numpy as np

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


def reference(img, name, severity, seed):
    """imagecorruptions seeds from NumPy's global generator: seed it before each call."""
    np.random.seed(seed)
    return corrupt(img, severity=severity, corruption_name=name)


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
