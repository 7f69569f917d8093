#!/usr/bin/env bash
# ViT-S/16 at 224 px on this CPU: shiftlab's network (examples/embed_bench, release build)
# against timm's in eager PyTorch (examples/embed_bench_timm.py), same threads and batch,
# alternating ROUNDS times so that load from other processes hits both alike. Prints each rate
# and the ratio of the medians. Needs `make setup-test` (venv with torch and timm).
#   scripts/bench-vit.sh [BATCH] [THREADS] [ROUNDS] [SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH=${1:-32}
THREADS=${2:-2}
ROUNDS=${3:-3}
export EMBED_BENCH_SECS=${4:-10}
cargo build --release -p shiftlab-model --example embed_bench >/dev/null
ours=() theirs=()
for _ in $(seq "$ROUNDS"); do
    r=$(OMP_NUM_THREADS=$THREADS target/release/examples/embed_bench vit-s16 224 "$BATCH" cpu fp32 224 3 |
        sed -n 's/^network: \([0-9.]*\) images.*/\1/p')
    p=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python \
        crates/shiftlab-model/examples/embed_bench_timm.py vit_small_patch16_224 224 "$BATCH" "$THREADS" "$EMBED_BENCH_SECS" |
        sed -n 's/^network: \([0-9.]*\) images.*/\1/p')
    echo "shiftlab $r images/s, timm eager $p images/s"
    ours+=("$r") theirs+=("$p")
done
python3 - "${ours[*]}" "${theirs[*]}" "$BATCH" "$THREADS" <<'PY'
import statistics, sys
ours, theirs = ([float(v) for v in a.split()] for a in sys.argv[1:3])
o, t = statistics.median(ours), statistics.median(theirs)
print(f"median: shiftlab {o:.1f}, timm eager {t:.1f} images/s; ratio {o / t:.2f} "
      f"(ViT-S/16, 224 px, batch {sys.argv[3]}, {sys.argv[4]} threads)")
PY
