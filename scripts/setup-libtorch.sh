#!/usr/bin/env bash
# Installs libtorch for tch 0.24 from the PyPI torch wheel (no other download site), idempotently.
# Result: .libtorch/torch/{lib,include} plus the CUDA runtime wheels libtorch_cuda.so loads.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.11.0
DEST=.libtorch
STAMP="$DEST/.shiftlab-installed-$TORCH_VERSION"
if [ -f "$STAMP" ]; then
  exit 0
fi
echo "setup: installing libtorch $TORCH_VERSION from PyPI into $DEST (one time, ~1.3 GB)"
rm -rf "$DEST"
python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$DEST" \
  "torch==$TORCH_VERSION" "nvidia-cuda-runtime==13.0.96.*" "nvidia-cuda-cupti==13.0.85.*"
found=$(sed -n "s/^__version__ = '\([^'+]*\).*/\1/p" "$DEST/torch/version.py")
if [ "$found" != "$TORCH_VERSION" ]; then
  echo "setup: expected torch $TORCH_VERSION in $DEST/torch/version.py, found '$found'" >&2
  exit 1
fi
touch "$STAMP"
echo "setup: libtorch $found ready in $DEST/torch"
