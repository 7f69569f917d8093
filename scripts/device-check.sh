#!/usr/bin/env bash
# The prepared GPU check (issue 16): on a machine with an NVIDIA GPU and PyTorch 2.11's
# libraries, `shiftlab info`, then ResNet-50 and ViT-S/16 at 224 px in fp32 and bf16:
# model-only images/s (examples/embed_bench: the network on ready tensors, and embed with
# preprocessing) against end-to-end images/s of `shiftlab run` with on-the-fly corruption, on a
# small data set and pipeline this script makes itself. Writes $OUT/device-check.md (a Markdown
# table) and the raw logs beside it.
#
# Build here first (release), then run it where the GPU is, carrying the binaries and libtorch:
#   cargo build --release --bin shiftlab -p shiftlab && \
#     cargo build --release -p shiftlab-model --example embed_bench
#   OUT=/tmp/check scripts/device-check.sh            # DEVICE=cuda by default
# DEVICE=cpu IMAGES=16 BATCH=8 SECS=1 runs the same steps on the CPU (a quick check of the
# script itself; bf16 on the CPU is slow). BIN / BENCH override the binaries' paths.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/device-check}
DEVICE=${DEVICE:-cuda}
IMAGES=${IMAGES:-512}
BATCH=${BATCH:-128}
BIN=${BIN:-target/release/shiftlab}
BENCH=${BENCH:-target/release/examples/embed_bench}
export EMBED_BENCH_SECS=${SECS:-5}
mkdir -p "$OUT"
for b in "$BIN" "$BENCH"; do
    [ -x "$b" ] || { echo "device-check: $b is missing; build it first (see the header)" >&2; exit 1; }
done
# libtorch: the unpacked PyPI wheel in .libtorch, as the build used.
if [ -d .libtorch/torch/lib ]; then
    export LD_LIBRARY_PATH=$(realpath .libtorch/torch/lib)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

"$BIN" info | tee "$OUT/info.txt"

# A small ImageFolder of 224 px PNGs (two classes, smooth random colour fields), written with
# the Python standard library only, and its Parquet table.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/images" "$IMAGES" <<'PY'
import random, shutil, struct, sys, zlib
from pathlib import Path
root, n = Path(sys.argv[1]), int(sys.argv[2])
def png(path, w, h, rgb):
    raw = b"".join(b"\0" + bytes(v for x in range(w) for v in rgb(x, y)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
rng = random.Random(0)
for i in range(n):
    cls = root / f"class{i % 2}"
    cls.mkdir(parents=True, exist_ok=True)
    if i >= 16:  # 16 distinct images (pure Python is slow), copied to make n
        shutil.copy(root / f"class{i % 2}" / f"{i % 16:05d}.png", cls / f"{i:05d}.png")
        continue
    a, b, c = (rng.randrange(256) for _ in range(3))
    png(cls / f"{i:05d}.png", 224, 224, lambda x, y: ((a + x) % 256, (b + y) % 256, (c + x * y // 64) % 256))
PY
"$BIN" ingest --format imagefolder --input "$work/images" --output "$work/data.parquet" >/dev/null

pipeline() {  # arch precision -> a pipeline file: clean + 4 corruptions x severity 3, kNN probe
    cat > "$work/$1-$2.toml" <<TOML
[pipeline]
name = "device-check"
output = "$work/run-$1-$2"
seed = 0

[source]
dataset = "$work/data.parquet"
eval_split = "test"
fit_split = "test"
fit_limit = 256

[shifts]
preset = "imagenet224"
corruptions = ["gaussian_noise", "defocus_blur", "contrast", "jpeg_compression"]
severities = [3]

[[models]]
name = "$1"
architecture = "$1"
input_size = 224

[probes.knn]
k = 20

[runtime]
device = "$DEVICE"
precision = "$2"
batch_size = $BATCH
TOML
    echo "$work/$1-$2.toml"
}

rate() { sed -n "s/^$1: \([0-9.]*\) images\/s.*/\1/p"; }
rows=""
for arch in resnet50 vit-s16; do
    for precision in fp32 bf16; do
        log="$OUT/bench-$arch-$precision.txt"
        "$BENCH" "$arch" 224 "$BATCH" "$DEVICE" "$precision" 224 3 > "$log" 2>&1
        network=$(rate network < "$log")
        embed=$(rate "embed (both)" < "$log")
        run_log="$OUT/run-$arch-$precision.txt"
        "$BIN" run "$(pipeline "$arch" "$precision")" > "$run_log" 2>&1
        e2e=$(sed -n 's/.*(\([0-9.]*\) images\/s).*/\1/p' "$run_log" | tail -1)
        bottleneck=$(sed -n 's/^bottleneck stage: //p' "$run_log")
        rows+="| $arch | $precision | $network | $embed | $e2e | $bottleneck |"$'\n'
        echo "device-check: $arch $precision: network $network, embed $embed, end to end $e2e images/s" >&2
    done
done

gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1 || true)
cat > "$OUT/device-check.md" <<MD
# Device check: model-only vs end-to-end throughput

Command: \`scripts/device-check.sh\` (DEVICE=$DEVICE, batch $BATCH, $IMAGES images of 224 px),
$(date -u +%Y-%m-%dT%H:%MZ), ${gpu:-no nvidia-smi}; \`shiftlab info\` in info.txt.

- network: \`embed_bench\`, the network alone on ready tensors on the device;
- embed: the same with preprocessing (u8 HWC on the CPU in, float32 features on the CPU out);
- end to end: \`shiftlab run\`, the evaluation phase of a pipeline over the images x (clean + 4
  ImageNet-C corruptions at severity 3, corrupted on the fly at 224 px on the CPU) with a kNN
  probe; random weights, so the numbers are about speed only.

| model | precision | network (img/s) | embed (img/s) | end to end (img/s) | bottleneck stage |
|---|---|---|---|---|---|
${rows}
MD
cat "$OUT/device-check.md"
