#!/usr/bin/env bash
# The Python virtual environment for reference tests (.venv), idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=scripts/requirements-test.txt
STAMP=.venv/.shiftlab-$(sha256sum "$REQ" | cut -c1-16)
[ -f "$STAMP" ] && exit 0
echo "setup: creating .venv for reference tests"
[ -x .venv/bin/python ] || python3 -m venv .venv
# opencv-python is what imagecorruptions names; the headless wheel provides the same cv2 module.
.venv/bin/pip install --quiet --disable-pip-version-check -r <(grep -v '^imagecorruptions' "$REQ")
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps imagecorruptions==1.1.2
rm -f .venv/.shiftlab-*
touch "$STAMP"
