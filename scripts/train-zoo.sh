#!/usr/bin/env bash
# Trains the Fashion-MNIST encoder zoo (models/fashion-mnist/) on the CPU, one method after the
# other, with the budget below. Idempotent: a method whose weights exist is skipped; an
# interrupted one resumes from its checkpoint. Budget knobs (environment):
#   ARCH    architecture                                   default resnet18 (torchvision layout)
#   LIMIT   training images (first N of the train split)   default 20000
#   EPOCHS  epochs per method                              default 12
#   BATCH   batch size                                     default 256
# Why resnet18 and not resnet18-small: at 28 px the torchvision layout (stride-2 stem and
# max-pool) costs ~11x less per image on the CPU, so the same budget buys 11x more steps; with
# resnet18-small, 6 epochs of 4,096 images (~14 CPU-minutes per method) left SimCLR below the
# random-init floor.
#   METHODS space-separated list                           default all seven
# Then `scripts/zoo-cards.sh` measures clean accuracy and writes the model cards.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=${ARCH:-resnet18}
LIMIT=${LIMIT:-20000}
EPOCHS=${EPOCHS:-12}
BATCH=${BATCH:-256}
METHODS=${METHODS:-"supervised simclr simsiam byol barlow_twins swav dino"}
BIN=${SHIFTLAB:-target/debug/shiftlab}
DATA=data/fashion-mnist.parquet
OUT=models/fashion-mnist

[ -x "$BIN" ] || cargo build --bin shiftlab
[ -f "$DATA" ] || "$BIN" ingest --format fashion-mnist --input /usr/share/datasets/fashion-mnist --output "$DATA"
mkdir -p "$OUT"
for m in $METHODS; do
    if [ -f "$OUT/$m.safetensors" ]; then
        echo "train-zoo: $OUT/$m.safetensors exists, skipped"
        continue
    fi
    echo "train-zoo: $m ($ARCH, $LIMIT images, $EPOCHS epochs, batch $BATCH)"
    "$BIN" train --method "$m" --dataset "$DATA" --arch "$ARCH" \
        --epochs "$EPOCHS" --limit "$LIMIT" --batch-size "$BATCH" --seed 0 \
        --checkpoint-every 1 --resume --half-weights --out "$OUT/$m.safetensors"
    rm -f "$OUT/$m.ckpt.safetensors" "$OUT/$m.ckpt.json"
done
