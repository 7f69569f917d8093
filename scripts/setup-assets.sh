#!/usr/bin/env bash
# Data and assets from the package registries only, idempotently:
#  - Fashion-MNIST IDX files from Debian's dataset-fashion-mnist package;
#  - the frost photos from the imagecorruptions wheel on PyPI (assets/frost/).
set -euo pipefail
cd "$(dirname "$0")/.."
FMNIST=/usr/share/datasets/fashion-mnist
if [ ! -f "$FMNIST/t10k-labels-idx1-ubyte.gz" ]; then
  echo "setup: installing Debian package dataset-fashion-mnist"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
FROST=assets/frost
if [ ! -f "$FROST/.complete" ]; then
  echo "setup: extracting frost photos from the imagecorruptions 1.1.2 wheel (PyPI)"
  wheels=.cache/wheels
  mkdir -p "$wheels"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$wheels" imagecorruptions==1.1.2
  tmp=$(mktemp -d)
  python3 - "$wheels"/imagecorruptions-1.1.2-py3-none-any.whl "$tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        if name.startswith("imagecorruptions/frost/"):
            z.extract(name, sys.argv[2])
PY
  rm -rf "$FROST"; mkdir -p assets
  mv "$tmp/imagecorruptions/frost" "$FROST"
  rm -rf "$tmp"
  touch "$FROST/.complete"
fi
