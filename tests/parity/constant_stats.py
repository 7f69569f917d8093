"""Constant-driven statistics of the random corruptions, shiftlab vs imagecorruptions.

On flat 256 px images (the constants are absolute, so any size serves; 256 is a power of two,
so fog's plasma map covers the image exactly) a corruption's output isolates its constants:

* gaussian, shot, speckle noise on grey 128: the output's standard deviation (sigma, rate);
* impulse noise on grey 128: the fraction of values driven to 0 or 255 (amount);
* fog on white: the darkest value, 255 / (1 + amplitude) exactly (the plasma map spans [0, 1]),
  and the roughness ratio D(2) / D(1) of mean absolute differences at lags 2 and 1 (decay);
* frost (imagenet224 only: the small presets pre-scale the photo, imagecorruptions does not):
  the gain on the image, out(64) - out(0) = 64 x image weight, and the maximum on black,
  ~255 x frost weight.

Per case, N seeds per side; a statistic passes when |mean ours - mean reference| <= K standard
errors of that difference (from the seed-to-seed spread of both sides), nothing more. Checks of
the rule itself: `self` (the reference under other seeds must pass) and, with --power, the
reference with the driving constant x 1.05 must fail.
"""
import re

import numpy as np

import refcorrupt as rc

K = 4.0
POWER_FACTOR = 1.05
SIDE = 256
PRESETS = ["imagenet224", "tiny64", "cifar32"]
NOISES = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"]
# (preset, corruption, flat input grey levels, names of the constants by tuple position)
CASES = (
    [(p, c, (128,), ("c",)) for p in PRESETS for c in NOISES]
    + [(p, "fog", (255,), ("amplitude", "decay")) for p in PRESETS]
    + [("imagenet224", "frost", (64, 0), ("image weight", "frost weight"))]
)


def flat(level):
    return np.full((SIDE, SIDE, 3), level, np.uint8)


def _lag(x, h):
    return (np.abs(x[h:] - x[:-h]).mean() + np.abs(x[:, h:] - x[:, :-h]).mean()) / 2


def stats(name, outs):
    """Per seed: {statistic: value} from the outputs for the case's inputs (uint8 HxWx3)."""
    o = [x.astype(np.float64) for x in outs]
    if name == "impulse_noise":
        return {"impulse fraction": float(((outs[0] == 0) | (outs[0] == 255)).mean())}
    if name in NOISES:
        return {"std": float(o[0].std())}
    if name == "fog":
        return {"darkest": float(o[0].min()), "D2/D1": float(_lag(o[0], 2) / _lag(o[0], 1))}
    if name == "frost":
        return {"gain on the image": float(o[0].mean() - o[1].mean()),
                "max on black": float(o[1].max())}
    raise ValueError(name)


def scaled(preset, name, position, factor):
    """The preset's constant list with tuple element `position` multiplied by `factor`."""
    out = []
    for lit in rc.constants()[preset][name]:
        nums = [float(v) for v in re.findall(r"[-0-9.]+", lit)]
        nums[position] *= factor
        out.append(f"({', '.join(repr(v) for v in nums)})" if lit.startswith("(") else repr(nums[0]))
    return out


def reference_job(args):
    """One seed of one case on the reference side (values=None: the preset's own constants)."""
    preset, name, levels, sev, seed, values = args
    outs = []
    for level in levels:
        img = flat(level)
        if values is None:
            outs.append(rc.reference(img, name, sev, seed, preset))
        else:
            from PIL import Image
            rc.np.random.seed(seed)
            fn = rc.with_constants(name, values)
            outs.append(np.uint8(fn(Image.fromarray(img), sev)))
    return args[:5] + ((None if values is None else tuple(values)),), stats(name, outs)


def compare(a, b):
    """a, b: lists of per-seed stat dicts. {stat: (mean a, mean b, |d|, allowance, ok)}."""
    res = {}
    for k in a[0]:
        x = np.array([s[k] for s in a])
        y = np.array([s[k] for s in b])
        se = np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
        d = abs(x.mean() - y.mean())
        allow = K * se
        res[k] = (x.mean(), y.mean(), d, allow, bool(d <= allow))
    return res


def jobs(n, only=None, power=True):
    """Reference jobs: (preset, name, levels, severity, seed, values)."""
    out = []
    for preset, name, levels, consts in cases(only):
        for sev in range(1, 6):
            for sd in range(1000, 1000 + 2 * n):  # reference, then the self-check set
                out.append((preset, name, levels, sev, sd, None))
            if power:
                for pos in range(len(consts)):
                    vals = scaled(preset, name, pos, POWER_FACTOR)
                    for sd in range(1000, 1000 + n):
                        out.append((preset, name, levels, sev, sd, vals))
    return out


def cases(only=None):
    return [c for c in CASES if not only or c[1] in only]
