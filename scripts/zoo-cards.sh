#!/usr/bin/env bash
# Measures the Fashion-MNIST zoo's clean accuracy (pipelines/zoo-eval.toml: probes fitted on
# 10,000 training images, all 10,000 test images) and writes models/fashion-mnist/*.md.
# Needs the zoo trained (scripts/train-zoo.sh) and the test venv (make setup-test).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SHIFTLAB:-target/debug/shiftlab}
[ -x "$BIN" ] || cargo build --bin shiftlab
rm -rf runs/zoo-eval
"$BIN" run pipelines/zoo-eval.toml
.venv/bin/python scripts/zoo_cards.py runs/zoo-eval models/fashion-mnist
