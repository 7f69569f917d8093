#!/usr/bin/env bash
# Trains the Fashion-MNIST encoder zoo (models/fashion-mnist/) on the CPU, one method after the
# other, with the budget below. Idempotent: a method whose weights exist is skipped; an
# interrupted one resumes from its checkpoint. Budget knobs (environment):
#   LIMIT   training images (first N of the train split)   default 4096
#   EPOCHS  epochs per method                              default 6
#   BATCH   batch size                                     default 128
#   METHODS space-separated list                           default all seven
# Then `scripts/zoo-cards.sh` measures clean accuracy and writes the model cards.
set -euo pipefail
cd "$(dirname "$0")/.."

LIMIT=${LIMIT:-4096}
EPOCHS=${EPOCHS:-6}
BATCH=${BATCH:-128}
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
    echo "train-zoo: $m ($LIMIT images, $EPOCHS epochs, batch $BATCH)"
    "$BIN" train --method "$m" --dataset "$DATA" --arch resnet18-small \
        --epochs "$EPOCHS" --limit "$LIMIT" --batch-size "$BATCH" --seed 0 \
        --checkpoint-every 1 --resume --half-weights --out "$OUT/$m.safetensors"
    rm -f "$OUT/$m.ckpt.safetensors" "$OUT/$m.ckpt.json"
done
