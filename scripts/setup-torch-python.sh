#!/usr/bin/env bash
# Makes .venv/bin/python import the torch in .libtorch (plus torchvision), idempotently.
# Needs .libtorch (scripts/setup-libtorch.sh) and .venv (scripts/setup-python.sh) first.
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=scripts/requirements-torch.txt
STAMP=.venv/.torch-$(sha256sum "$REQ" | cut -c1-16)
# setup-libtorch.sh rebuilds .libtorch from scratch, so check what this script adds there too.
[ -f "$STAMP" ] && [ -d .libtorch/torch/testing ] && [ -d .libtorch/torch/_inductor ] && exit 0
[ -x .venv/bin/python ] || { echo "setup: .venv missing; run scripts/setup-python.sh" >&2; exit 1; }
[ -f .libtorch/torch/version.py ] || { echo "setup: .libtorch missing; run scripts/setup-libtorch.sh" >&2; exit 1; }
echo "setup: making torch importable in .venv (one time, ~2 GB download)"
PIP=(.venv/bin/pip install --quiet --disable-pip-version-check)
# The lines after the "--no-deps" comment install without their dependencies (see there).
NODEPS='/^# Installed with --no-deps/,$'
"${PIP[@]}" -r <(sed "${NODEPS}d" "$REQ")
"${PIP[@]}" --no-deps -r <(sed -n "${NODEPS}p" "$REQ")
# setup-libtorch.sh drops torch/testing and torch/_inductor (libtorch does not need them), but
# `import torch` and torchvision do: put them back from the same wheel (13 MB unpacked).
if [ ! -d .libtorch/torch/testing ] || [ ! -d .libtorch/torch/_inductor ]; then
  TORCH_VERSION=$(sed -n "s/^__version__ = '\([^'+]*\).*/\1/p" .libtorch/torch/version.py)
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$TMP" "torch==$TORCH_VERSION"
  python3 - "$TMP"/torch-*.whl .libtorch <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith(("torch/testing/", "torch/_inductor/"))])
PY
fi
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# A .pth line is a folder added to sys.path: torch, torchgen, the cudart wheel under .libtorch.
realpath .libtorch > "$SITE/shiftlab-libtorch.pth"
.venv/bin/python -c 'import torch, torchvision, timm; torch.zeros(1)' || {
  echo "setup: torch does not import in .venv" >&2; exit 1; }
rm -f .venv/.torch-*
touch "$STAMP"
