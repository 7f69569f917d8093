"""Writes the model cards of the Fashion-MNIST zoo from a finished `zoo-eval` run.

usage: zoo_cards.py RUN_DIR MODELS_DIR

Reads RUN_DIR/metrics.parquet (clean test accuracy per model and probe) and each model's training
sidecar MODELS_DIR/NAME.json, writes MODELS_DIR/NAME.md per model (random-init included) and
MODELS_DIR/README.md with the comparison and the two sanity checks of the zoo: every
self-supervised encoder beats random init by at least 3 points of clean linear-probe accuracy,
and the supervised baseline beats every self-supervised encoder.
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
ORDER = ["supervised"] + SSL + ["random-init"]
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


def command(side):
    c = side["config"]
    return (
        f"shiftlab train --method {side['method']} --dataset data/fashion-mnist.parquet "
        f"--arch {side['architecture']} --epochs {side['epochs']} --limit {side['images']} "
        f"--batch-size {side['batch_size']} --seed {side['seed']} --checkpoint-every 1 --resume "
        f"--half-weights --out models/fashion-mnist/{side['method']}.safetensors"
        + ("" if c.get("warmup_epochs", 10) == 10 else f" --warmup-epochs {c['warmup_epochs']}")
        + ("" if c.get("optimizer") in (None, "sgd") else f" --optimizer {c['optimizer']}")
        + ("" if c["hyper"].get("loss_scale", 1.0) == 1.0 else f" --loss-scale {c['hyper']['loss_scale']:g}")
        + ("" if "threads" not in side else f" --threads {side['threads']}")
    )


def card(name, models, acc, where):
    lin, knn = acc.get((name, "linear")), acc.get((name, "knn"))
    base_lin = acc.get(("random-init", "linear"))
    lines = [f"# {name}: ResNet-18 on Fashion-MNIST", ""]
    if name == "random-init":
        lines += [
            "The zoo's ResNet-18 (torchvision layout, 1 input channel, 28 px) at random",
            "initialisation (`seed = 0`, torchvision's initialisers), with no weights file: the",
            "reference point every trained encoder must beat.",
            "",
        ]
    else:
        side = json.loads((models / f"{name}.json").read_text())
        w = models / f"{name}.safetensors"
        learned, stats = stored_dtypes(w)
        lines += [
            f"| | |", "|---|---|",
            f"| method | `{side['method']}` |",
            f"| architecture | `{side['architecture']}`, {side['channels']} channel, trained at {side['image_size']} px |",
            f"| training data | first {side['images']} images of the Fashion-MNIST train split |",
            f"| epochs / steps | {side['epochs']} / {side['steps']} (batch {side['batch_size']}, last partial batch dropped) |",
            f"| optimiser | {side['optimizer']}; peak lr {side['peak_lr']:g}, weight decay {side['weight_decay']:g} |",
            f"| seed | {side['seed']} |",
            f"| final training loss | {side['final_loss']:.4f} |",
            f"| training time | {side['seconds']:.0f} s ({side['seconds_per_epoch']:.0f} s/epoch) on the CPU (debug build; the time is in libtorch)" + (f", {side['threads']} libtorch thread(s)" if "threads" in side else "") + ", the cores at times shared with builds, tests and other runs |",
            f"| machine | {where} |",
            f"| normalisation | mean {side['normalize_mean'][0]:.4f}, std {side['normalize_std'][0]:.4f} |",
            f"| weights | `{w.name}`, {w.stat().st_size / 1e6:.1f} MB, learned tensors {learned}, BatchNorm statistics {stats} (loaded as float32), sha256 `{sha256(w)[:16]}...` |",
            "",
            *([
                "This file was written before `--half-weights` kept BatchNorm statistics in float32:",
                "here they are float16 (rounded, all finite); rerunning the command below stores the",
                "same statistics in float32.",
                "",
            ] if stats == "F16" else []),
            "Reproduce (on the CPU, deterministic under the seed and the thread count"
            + ("):" if "threads" in side else
               "; this file's sidecar predates the thread count's record: libtorch's default, "
               "the machine's two cores):"),
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
        "| probe | accuracy | vs random init |",
        "|---|---|---|",
    ]
    for probe, v in [("linear", lin), ("kNN (k 20, T 0.07)", knn)]:
        key = "linear" if probe == "linear" else "knn"
        base = acc.get(("random-init", key))
        delta = "" if name == "random-init" or v is None or base is None else f"{v - base:+.2f} points"
        lines.append(f"| {probe} | {v:.2f} % | {delta} |" if v is not None else f"| {probe} | - | |")
    lines.append("")
    return "\n".join(lines)


def readme(acc, present, where, models):
    rows = ["| encoder | linear | kNN | linear vs random |", "|---|---|---|---|"]
    base = acc.get(("random-init", "linear"), float("nan"))
    for m in present:
        lin, knn = acc.get((m, "linear"), float("nan")), acc.get((m, "knn"), float("nan"))
        rows.append(f"| [{m}]({m}.md) | {lin:.2f} % | {knn:.2f} % | {lin - base:+.2f} |")
    checks = []
    for m in [m for m in SSL if m in present]:
        d = acc[(m, "linear")] - base
        checks.append(f"- {m}: {d:+.2f} points over random init: "
                      + ("passes" if d >= MARGIN else f"**does not reach +{MARGIN:g}** in this CPU budget"))
    if "supervised" in present:
        sup = acc[("supervised", "linear")]
        worse = [m for m in SSL if m in present and acc[(m, "linear")] >= sup]
        checks.append("- supervised beats every self-supervised encoder: "
                      + ("yes" if not worse else f"**no**: {', '.join(worse)} match or beat it"))
    findings = []
    for m in [m for m in SSL if m in present]:
        d = acc[(m, "linear")] - base
        if d < -10:
            tried = (" Neither LARS, other learning rates, loss scaling nor an independent PyTorch "
                     "port did better on this budget: docs/training.md, \"Barlow Twins on a small "
                     "budget\"." if m == "barlow_twins" else "")
            findings.append(
                f"- {m} ends {-d:.1f} points *below* random init: its training did not converge "
                f"in the budget (see its card for the final loss).{tried} "
                "Treat it as a failed run, not as a measure of the method.")
    sidecars = [json.loads((models / f"{m}.json").read_text()) for m in present if m != "random-init"]
    steps = sorted({s["steps"] for s in sidecars})
    minutes = sorted(s["seconds"] / 60 for s in sidecars)
    budget = [
        f"Budget: {', '.join(map(str, steps))} SGD steps per method (batch 256), {minutes[0]:.0f} to "
        f"{minutes[-1]:.0f} minutes each on a 2-core CPU (machines and load differed between runs; each card has its time). Random-init features are a strong floor on "
        "Fashion-MNIST for a linear probe; self-supervised trunks need far more steps than this "
        "budget to clear it by 3 points (published recipes run hundreds of epochs), so the "
        "checks below state what this budget reached.",
    ]
    return "\n".join([
        "# The Fashion-MNIST encoder zoo",
        "",
        "ResNet-18 trunks (torchvision layout, 1 input channel) trained by `shiftlab train` on the Fashion-MNIST train split",
        "under identical conditions (same data, augmentations, optimiser, schedule and budget; only",
        "the objective differs), for `pipelines/quickstart.toml`. `scripts/train-zoo.sh` trains",
        "them (its header states the budget), `scripts/zoo-cards.sh` measures them and writes these",
        f"cards. Machine: {where}.",
        "",
        "Clean test accuracy (probes fitted on 10,000 training images, 10,000 test images):",
        "",
        *rows,
        "",
        *budget,
        "",
        "Sanity checks:",
        "",
        *checks,
        *([""] + findings if findings else []),
        "",
    ])


def main():
    run, models = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    acc = accuracies(run)
    present = [m for m in ORDER if (m, "linear") in acc]
    where = machine()
    for m in present:
        (models / f"{m}.md").write_text(card(m, models, acc, where))
    (models / "README.md").write_text(readme(acc, present, where, models))
    print((models / "README.md").read_text())


if __name__ == "__main__":
    main()
