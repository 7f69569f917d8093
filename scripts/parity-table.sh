#!/usr/bin/env bash
# Regenerates docs/corruption-parity.md from a fresh parity run.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/test-corruption-parity.sh --table docs/corruption-parity.md "$@"
