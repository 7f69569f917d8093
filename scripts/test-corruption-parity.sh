#!/usr/bin/env bash
# Parity of shiftlab-corrupt with imagecorruptions 1.1.2: builds the dump example, runs the
# Python check (prints a table; exits non-zero on failure): deterministic corruptions in all
# three presets, the constant rule (tests/parity/constant_stats.py) and the photo rule for the
# random ones. Extra arguments go to tests/parity/corruption_parity.py (e.g. --table FILE,
# --only NAMES, --power); the rules are described in docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-python.sh
[ -f assets/frost/.complete ] || bash scripts/setup-assets.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_CORRUPT:-$PWD/target}"
cargo build --quiet -p shiftlab-corrupt --example corrupt_dump
exec .venv/bin/python tests/parity/corruption_parity.py \
  --dump "$CARGO_TARGET_DIR/debug/examples/corrupt_dump" "$@"
