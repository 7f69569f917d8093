#!/usr/bin/env bash
# End-to-end CPU throughput of shiftlab pipelines against the same work done the usual Python
# way (DataLoader + imagecorruptions + torchvision), same machine, same run, two workloads:
#   rgb32   bench/pipeline.toml         3-channel ResNet-18 at 32 px
#   gray28  bench/pipeline-gray28.toml  1-channel ResNet-18 at 28 px (the quickstart's encoders)
# Both: N Fashion-MNIST test images x (clean + 19 corruptions x 5 severities), corrupted at
# 32 px with the cifar32 constants, batches of 256. Writes docs/pipeline-benchmark.md.
# Needs `make setup-test` (venv with torch) and data/fashion-mnist.parquet (ingested if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# PROFILE=dev reuses the test build (libtorch and the pixel code are optimised in both).
PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" --bin shiftlab >/dev/null
BIN=target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/shiftlab
[ -f data/fashion-mnist.parquet ] || $BIN ingest --format fashion-mnist \
  --input /usr/share/datasets/fashion-mnist --output data/fashion-mnist.parquet >/dev/null
# Image count and batch size, from each config; the two workloads must agree on them (the
# Python side and the report take them once).
setting() { sed -n "s/^$1 = \\([0-9]*\\).*/\\1/p" "$2"; }
N=$(setting limit bench/pipeline.toml)
BATCH=$(setting batch_size bench/pipeline.toml)
if [ "$(setting limit bench/pipeline-gray28.toml)" != "$N" ] ||
   [ "$(setting batch_size bench/pipeline-gray28.toml)" != "$BATCH" ]; then
    echo "bench-pipeline: bench/pipeline.toml and bench/pipeline-gray28.toml must have the same limit and batch_size" >&2
    exit 1
fi
images=$((N * 96))
rows=""
for workload in rgb32 gray28; do
    config=bench/pipeline.toml
    [ "$workload" = gray28 ] && config=bench/pipeline-gray28.toml
    out_dir=$(sed -n 's/^output = "\(.*\)"/\1/p' "$config")
    rm -rf "$out_dir"
    start=$(date +%s.%N)
    out=$($BIN run --quiet "$config")
    end=$(date +%s.%N)
    ours=$(python3 -c "print(f'{$images / ($end - $start):.0f}')")
    eval_rate=$(echo "$out" | sed -n 's/.*(\([0-9.]*\) images\/s).*/\1/p')
    bottleneck=$(echo "$out" | sed -n 's/^bottleneck stage: //p')
    # Busy seconds of the corruption and probe stages against the evaluation's wall time.
    busy=$(.venv/bin/python -c "import glob, pyarrow.parquet as pq
t = pq.read_table(glob.glob('$out_dir/stages/*.parquet')[0]).to_pandas().set_index('stage')
print(f\"{t.busy_s['shift']:.1f} s, {t.busy_s['probe']:.1f} s of {t.wall_s['embed']:.1f} s\")")
    # The Python side: OPENBLAS_* variables slow current numpy; unset them for it alone.
    read -r py model_only < <(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python \
      bench/pipeline_python.py data/fashion-mnist.parquet "$N" 2 2 "$BATCH" "$workload")
    ratio=$(python3 -c "print(f'{$ours / $py:.1f}')")
    eval_ratio=$(python3 -c "print(f'{$eval_rate / $py:.1f}')")
    bound=$(python3 -c "print(f'{$eval_rate / $model_only:.2f}')")
    rows+="| $workload | $ours | $eval_rate | $py | $model_only | **$ratio x** | **$eval_ratio x** | $bound | $bottleneck | $busy |"$'\n'
done
cat > docs/pipeline-benchmark.md <<MD
# Pipeline throughput: shiftlab vs the usual Python way (CPU)

Command: \`scripts/bench-pipeline.sh\` ($PROFILE profile). Each workload: N=$N Fashion-MNIST test
images x 96 shifts (clean + 19 corruptions x 5 severities, corrupted at 32 px with the cifar32
constants) = $images corrupted-and-embedded images, torchvision-layout ResNet-18 with random
weights, batches of $BATCH, 2 torch threads, on $(nproc) cores.

- **rgb32**: 3 channels at 32 px, ImageNet normalisation (\`bench/pipeline.toml\`).
- **gray28**: luma, resized to 28 px, one input channel: the shape of the quickstart's zoo
  encoders (\`bench/pipeline-gray28.toml\`).
- shiftlab: \`shiftlab run\`, the whole command (start-up, reading, fitting a kNN probe on 256
  clean images, writing Parquet) and its evaluation phase alone.
- Python (\`bench/pipeline_python.py\`): DataLoader with 2 worker processes, PIL decode and
  resize, imagecorruptions, the same preprocessing, torchvision ResNet-18 in eval mode under
  no_grad; no probe (it does strictly less).
- model only: the same forward passes in eager PyTorch on ready tensors.

| workload | shiftlab run (img/s) | shiftlab evaluation (img/s) | Python (img/s) | PyTorch model only (img/s) | whole run / Python | evaluation / Python | evaluation / model only | bottleneck stage | shift, probe stages busy |
|---|---|---|---|---|---|---|---|---|---|
${rows}
How to read it: *evaluation / Python* compares loop with loop (neither counts start-up: the
Python clock starts at the first batch request, after imports and the dataset build). *Whole
run / Python* also charges shiftlab its start-up (loading libtorch and the encoder, fitting the
probe, writing the tables: ~1 s here) and is the conservative figure.

Bottleneck: the embed stage, in both workloads (busy nearly all of the evaluation's wall time).
Corruption is a small share of the work at 32 px: the \`shift\` stage's two workers together are
busy for the seconds in the last column, out of the evaluation's wall time on two cores, and the
probe stage less, so the model decides the rate. shiftlab passes the eager model-only rate
because native trunks run in their evaluation form (\`shiftlab_model::InferenceResNet\`:
BatchNorm folded into the convolutions, channels-last activations, convs on the 2x2 and 1x1
maps as dense matrix products), about 2-2.5x the eager rate on these 2 cores
(\`cargo run -p shiftlab-model --release --example embed_bench -- resnet18 28 256 cpu fp32 32 3 1\`).
The Python side spends ~60 % of its time in imagecorruptions and the per-item DataLoader path;
its model runs at the eager rate. The figures move by ~10 % between runs on this shared
machine; rerun the script for a fresh, same-run comparison.

Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), measured $(date -u +%Y-%m-%d).
MD
cat docs/pipeline-benchmark.md
