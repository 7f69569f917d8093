"""Writes the model cards of the Fashion-MNIST zoo from a finished `zoo-eval` run.

usage: zoo_cards.py RUN_DIR MODELS_DIR

Reads RUN_DIR/metrics.parquet (clean test accuracy per model and probe) and each model's training
sidecar MODELS_DIR/NAME.json, writes MODELS_DIR/NAME.md per model (random-init included) and
MODELS_DIR/README.md with the comparison and the zoo's checks: every self-supervised encoder
at least 3 points above random init and above the raw-pixel floor in linear and kNN accuracy,
the supervised baseline at least 90 % linear and above every self-supervised encoder. Exits
with status 1 when a check fails (the cards are written anyway).
"""

import hashlib
import json
import os
import pathlib
import platform
import struct
import sys

import pyarrow.parquet as pq

SSL = ["simclr", "simsiam", "byol", "barlow_twins", "swav", "dino"]
ORDER = ["supervised"] + SSL + ["random-init", "pixels"]
MARGIN = 3.0


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


def accuracies(run):
    t = pq.read_table(run / "metrics.parquet").to_pylist()
    acc = {}
    for r in t:
        if r["shift"] == "clean":
            acc[(r["model"], r["probe"])] = 100.0 * (1.0 - r["error"])
    return acc


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stored_dtypes(path):
    """dtype of the learned tensors and of the BatchNorm statistics in a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    stats = {v["dtype"] for k, v in header.items() if k.endswith(("running_mean", "running_var"))}
    learned = {v["dtype"] for k, v in header.items()
               if k != "__metadata__" and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    return ",".join(sorted(learned)), ",".join(sorted(stats))


ARCH_TEXT = "ResNet-18, small-image layout (3x3 stride-1 stem, no max-pool), width {w}"


def arch_text(side):
    w = side.get("width", 64)
    if side["architecture"] == "resnet18-small":
        return ARCH_TEXT.format(w=w)
    return f"{side['architecture']} (width {w})"


def command(side):
    c, m = side["config"], side["method"]
    h, d = c["hyper"], DEFAULT_HEADS.get(m, (2048, 128))
    return (
        f"shiftlab train --method {side['method']} --dataset data/fashion-mnist.parquet "
        f"--arch {side['architecture']} --width {side.get('width', 64)} --epochs {side['epochs']} "
        f"--limit {side['images']} --batch-size {side['batch_size']} --seed {side['seed']} "
        f"--checkpoint-every 1 --resume --half-weights --out models/fashion-mnist/{side['method']}.safetensors"
        + ("" if c.get("warmup_epochs", 10) == 10 else f" --warmup-epochs {c['warmup_epochs']}")
        + ("" if c.get("optimizer") in (None, "sgd") else f" --optimizer {c['optimizer']}")
        + ("" if c.get("lr") is None else f" --lr {c['lr']:g}")
        + ("" if c.get("weight_decay") is None else f" --weight-decay {c['weight_decay']:g}")
        + ("" if h.get("tau_base", 0.996) == DEFAULT_TAU.get(side["method"], 0.996)
           else f" --ema-base {h['tau_base']:g}")
        + ("" if h.get("loss_scale", 1.0) == 1.0 else f" --loss-scale {h['loss_scale']:g}")
        + ("" if side["method"] != "barlow_twins" or h.get("lambda", 5e-3) == 5e-3
           else f" --lambda {h['lambda']:g}")
        + ("" if h["proj_hidden"] == d[0] else f" --proj-hidden {h['proj_hidden']}")
        + ("" if h["proj_out"] == d[1] else f" --proj-out {h['proj_out']}")
        + ("" if m not in DEFAULT_PRED_HIDDEN or h.get("pred_hidden") == DEFAULT_PRED_HIDDEN[m]
           else f" --pred-hidden {h['pred_hidden']}")
        + ("" if h.get("proj_layers", DEFAULT_LAYERS.get(m, 2)) == DEFAULT_LAYERS.get(m, 2)
           else f" --proj-layers {h['proj_layers']}")
        + ("" if h.get("proj_bn", m != "dino") == (m != "dino")
           else f" --proj-bn {str(h['proj_bn']).lower()}")
        + ("" if m not in DEFAULT_PROTOTYPES or h["prototypes"] == DEFAULT_PROTOTYPES[m]
           else f" --prototypes {h['prototypes']}")
        + ("" if m == "supervised" or side.get("augment", {}).get("blur_p", 0.5) == 0.5
           else f" --blur-p {side['augment']['blur_p']:g}")
        + ("" if "threads" not in side else f" --threads {side['threads']}")
    )


# Projector depth and prototype counts `Hyper::for_method` gives (only SwAV and DINO use
# prototypes).
DEFAULT_LAYERS = {"simsiam": 3, "barlow_twins": 3, "dino": 3}
DEFAULT_PROTOTYPES = {"swav": 3000, "dino": 4096}
# Predictor hidden widths (only BYOL and SimSiam have a predictor).
DEFAULT_PRED_HIDDEN = {"byol": 4096, "simsiam": 512}

# The EMA start rate `Hyper::for_method` gives each method (only BYOL and DINO use one).
DEFAULT_TAU = {"byol": 0.99}

# The methods' default projector widths (hidden, out), `Hyper::for_method`.
DEFAULT_HEADS = {"simsiam": (2048, 2048), "byol": (4096, 256), "barlow_twins": (2048, 2048),
                 "dino": (2048, 256)}

FLOORS = {
    "random-init": [
        "The zoo's trunk (ResNet-18, small-image layout, width 16, 1 input channel, 28 px) at",
        "random initialisation (`seed = 0`, Kaiming-normal convolutions from shiftlab's seeded",
        "generator), with no weights file: the floor every trained encoder must beat.",
    ],
    "pixels": [
        "No network: the normalised 28 x 28 pixels themselves, flattened to 784 features",
        "(`architecture = \"pixels\"`). The second floor: a representation that does not beat",
        "the raw input has learned nothing a probe could not find alone.",
    ],
}


def card(name, models, acc):
    lin, knn = acc.get((name, "linear")), acc.get((name, "knn"))
    title = "the raw pixels" if name == "pixels" else "ResNet-18 (small, width 16)"
    lines = [f"# {name}: {title} on Fashion-MNIST", ""]
    if name in FLOORS:
        lines += FLOORS[name] + [""]
    else:
        side = json.loads((models / f"{name}.json").read_text())
        w = models / f"{name}.safetensors"
        learned, stats = stored_dtypes(w)
        cpu = side.get("cpu_seconds")
        lines += [
            f"| | |", "|---|---|",
            f"| method | `{side['method']}` |",
            f"| architecture | `{side['architecture']}` width {side.get('width', 64)} ({arch_text(side)}), {side['channels']} channel, trained at {side['image_size']} px |",
            f"| training data | first {side['images']} images of the Fashion-MNIST train split |",
            f"| epochs / steps | {side['epochs']} / {side['steps']} (batch {side['batch_size']}, last partial batch dropped) |",
            f"| optimiser | {side['optimizer']}; peak lr {side['peak_lr']:g}, weight decay {side['weight_decay']:g} |",
            f"| seed | {side['seed']} |",
            f"| final training loss | {side['final_loss']:.4f} |",
            f"| training time | {side['seconds'] / 60:.1f} min wall"
            + (f", {cpu / 60:.1f} CPU-minutes" if cpu is not None else "")
            + f", {side.get('threads', '?')} libtorch thread(s) (debug build; the time is in libtorch) |",
            f"| machine | {side.get('machine') or 'not recorded (the sidecar predates the field)'} |",
            f"| normalisation | mean {side['normalize_mean'][0]:.4f}, std {side['normalize_std'][0]:.4f} |",
            f"| weights | `{w.name}`, {w.stat().st_size / 1e6:.2f} MB, learned tensors {learned}, BatchNorm statistics {stats} (loaded as float32), sha256 `{sha256(w)[:16]}...` |",
            "",
            "Reproduce (on the CPU, deterministic under the seed and the thread count):",
            "",
            "```sh",
            command(side),
            "```",
            "",
            "Method hyper-parameters (the sidecar `" + name + ".json` has them all):",
            "",
            "```json",
            json.dumps(side["config"]["hyper"], indent=1)[:1500],
            "```",
            "",
        ]
    lines += [
        "## Clean accuracy on the Fashion-MNIST test split",
        "",
        "Probes fitted on the first 10,000 training images' clean embeddings, scored on all",
        "10,000 test images at 28 px (`pipelines/zoo-eval.toml`, `scripts/zoo-cards.sh`).",
        "",
        "| probe | accuracy | vs random init | vs pixels |",
        "|---|---|---|---|",
    ]
    for probe, key, v in [("linear", "linear", lin), ("kNN (k 20, T 0.07)", "knn", knn)]:
        cells = []
        for floor in ("random-init", "pixels"):
            base = acc.get((floor, key))
            cells.append("" if name == floor or v is None or base is None else f"{v - base:+.2f} points")
        lines.append(f"| {probe} | {v:.2f} % | {cells[0]} | {cells[1]} |" if v is not None else f"| {probe} | - | | |")
    lines.append("")
    return "\n".join(lines)


def checks_of(acc, present):
    """The zoo's Must-show checks, one line each, and whether all pass."""
    lines, ok = [], True
    for m in [m for m in SSL if m in present]:
        parts = []
        for key, name in (("linear", "linear"), ("knn", "kNN")):
            v = acc[(m, key)]
            dr = v - acc.get(("random-init", key), float("nan"))
            dp = v - acc.get(("pixels", key), float("nan"))
            good = dr >= MARGIN and dp > 0
            ok &= good
            parts.append(f"{name} {dr:+.2f} vs random init, {dp:+.2f} vs pixels"
                         + ("" if good else " (**fails**)"))
        lines.append(f"- {m}: " + "; ".join(parts))
    if "supervised" in present:
        sup = acc[("supervised", "linear")]
        worse = [m for m in SSL if m in present and acc[(m, "linear")] >= sup]
        good = sup >= 90.0 and not worse
        ok &= good
        lines.append(f"- supervised: {sup:.2f} % linear (at least 90 %: {'yes' if sup >= 90 else '**no**'}); "
                     "above every self-supervised encoder: "
                     + ("yes" if not worse else f"**no**: {', '.join(worse)} match or beat it"))
    return lines, ok


def readme(acc, present, where, models):
    rows = ["| encoder | paradigm | linear | kNN | linear vs random | kNN vs random | linear vs pixels | kNN vs pixels | CPU-min |",
            "|---|---|---|---|---|---|---|---|---|"]
    br, bk = acc.get(("random-init", "linear"), float("nan")), acc.get(("random-init", "knn"), float("nan"))
    pr, pk = acc.get(("pixels", "linear"), float("nan")), acc.get(("pixels", "knn"), float("nan"))
    sides = {m: json.loads((models / f"{m}.json").read_text()) for m in present if m not in FLOORS}
    for m in present:
        lin, knn = acc.get((m, "linear"), float("nan")), acc.get((m, "knn"), float("nan"))
        cpu_min = cpu_minutes(sides[m]) if m in sides else ""
        rows.append(f"| [{m}]({m}.md) | {PARADIGM.get(m, '')} | {lin:.2f} % | {knn:.2f} % | {lin - br:+.2f} | {knn - bk:+.2f} | {lin - pr:+.2f} | {knn - pk:+.2f} | {cpu_min} |")
    checks, ok = checks_of(acc, present)
    sidecars = list(sides.values())
    steps = sorted({s["steps"] for s in sidecars})
    cpu = sorted(s.get("cpu_seconds") or s["seconds"] for s in sidecars)
    size = sum((models / f"{m}.safetensors").stat().st_size for m in present if m not in FLOORS)
    return "\n".join([
        "# The Fashion-MNIST encoder zoo",
        "",
        "Seven ResNet-18 trunks in the small-image layout (3x3 stride-1 stem, no max-pool) at",
        "width 16 (stages of 16, 32, 64, 128 channels; 128-d features), 1 input channel,",
        "trained by `shiftlab train` on the Fashion-MNIST train split under one recipe (same",
        "data, augmentations, optimiser, schedule and budget; only the objective and its",
        "documented hyper-parameters differ), for `pipelines/quickstart.toml`.",
        "`scripts/train-zoo.sh` trains them (its header states the recipe and why this width),",
        "`scripts/zoo-cards.sh` measures them and writes these cards (on " + where + ").",
        "",
        "Clean test accuracy (probes fitted on 10,000 training images, all 10,000 test images),",
        "with the two floors: the same trunk at random initialisation and the raw pixels:",
        "",
        *rows,
        "",
        f"Budget: {', '.join(map(str, steps))} SGD steps per method (batch 256), {cpu[0] / 60:.1f} to "
        f"{cpu[-1] / 60:.1f} CPU-minutes each (one libtorch thread per run, two runs at a time on a "
        f"2-core machine). Weights: float16, {size / 1e6:.1f} MB for the whole zoo.",
        "",
        "Trained on: " + "; ".join(
            f"{', '.join(ms)}: {where_}" for where_, ms in trained_on(sides).items()) + ".",
        "CPU time per step depends on the machine's vector unit (docs/training.md, \"The",
        "Fashion-MNIST zoo\"): compare CPU-minutes of encoders trained on one machine.",
        "",
        "Checks (each self-supervised encoder at least 3 points above random init and above the",
        "pixels, linear and kNN; supervised at least 90 % linear and above every SSL encoder): "
        + ("**all pass**." if ok else "**not all pass**:"),
        "",
        *checks,
        "",
    ])


def cpu_minutes(side):
    cpu = side.get("cpu_seconds")
    return "" if cpu is None else f"{cpu / 60:.1f}"


def trained_on(sides):
    """Machine description -> the encoders trained on it, in zoo order (`sides`: name -> sidecar)."""
    out = {}
    for m, side in sides.items():
        where_ = side.get("machine") or "machine not recorded (sidecars before the field)"
        out.setdefault(where_, []).append(m)
    return out


PARADIGM = {"supervised": "supervised", "simclr": "contrastive", "simsiam": "distillation",
            "byol": "distillation", "dino": "distillation", "barlow_twins": "redundancy_reduction",
            "swav": "clustering", "random-init": "untrained", "pixels": "none"}


def main():
    run, models = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    acc = accuracies(run)
    present = [m for m in ORDER if (m, "linear") in acc]
    where = machine()
    for m in present:
        (models / f"{m}.md").write_text(card(m, models, acc))
    (models / "README.md").write_text(readme(acc, present, where, models))
    print((models / "README.md").read_text())
    _, ok = checks_of(acc, present)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
