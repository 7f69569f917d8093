#!/usr/bin/env bash
# Start-up cost of the two programs, side by side in one hyperfine run: `shiftlab corrupt` on one
# small image (no libtorch is loaded) against `shiftlab-torch info` (libtorch's initialisers and
# CUDA probe). Usage: scripts/bench-startup.sh [debug|release] (default debug, what `make` builds).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-debug}
command -v hyperfine >/dev/null || apt-get install -y -q hyperfine >/dev/null
flag=$([ "$profile" = release ] && echo --release || true)
cargo build $flag --bins -q
bin=target/$profile
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python -c "from PIL import Image; Image.new('RGB', (32, 32), (100, 150, 200)).save('$tmp/in.png')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N --warmup 3 --runs 30 --export-markdown "$tmp/startup.md" \
  "$bin/shiftlab corrupt --corruption fog --severity 3 --preset cifar32 $tmp/in.png $tmp/out.png" \
  "$bin/shiftlab-torch info"
cat "$tmp/startup.md"
