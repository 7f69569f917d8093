#!/usr/bin/env bash
# Regenerates docs/corruption-parity.md from a fresh parity run, with the power check of the
# constant rule (the reference with each driving constant x 1.05 must fail it).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/test-corruption-parity.sh --power --table docs/corruption-parity.md "$@"
