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
N=$(sed -n 's/^limit = \([0-9]*\).*/\1/p' bench/pipeline.toml)
BATCH=$(sed -n 's/^batch_size = \([0-9]*\).*/\1/p' bench/pipeline.toml)
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
    # The Python side: OPENBLAS_* variables slow current numpy; unset them for it alone.
    read -r py model_only < <(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python \
      bench/pipeline_python.py data/fashion-mnist.parquet "$N" 2 2 "$BATCH" "$workload")
    ratio=$(python3 -c "print(f'{$ours / $py:.1f}')")
    eval_ratio=$(python3 -c "print(f'{$eval_rate / $py:.1f}')")
    bound=$(python3 -c "print(f'{$eval_rate / $model_only:.2f}')")
    rows+="| $workload | $ours | $eval_rate | $py | $model_only | **$ratio x** | **$eval_ratio x** | $bound | $bottleneck |"$'\n'
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

| workload | shiftlab run (img/s) | shiftlab evaluation (img/s) | Python (img/s) | PyTorch model only (img/s) | whole run / Python | evaluation / Python | evaluation / model only | bottleneck stage |
|---|---|---|---|---|---|---|---|---|
${rows}
Why shiftlab can pass the eager model-only rate: corruption is ~1 % of the work here (the
\`shift\` stage is ~0.4 s busy for 4,800 images), so the embed stage decides the rate, and the
native trunk runs in its evaluation form (BatchNorm folded into the convolutions, channels-last
activations: \`shiftlab_model::InferenceResNet\`), which oneDNN runs ~1.6–2x faster than eager
NCHW conv + BatchNorm. The Python side spends most of its time in imagecorruptions and
the per-item DataLoader path; its model runs at the eager rate.

Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), measured $(date -u +%Y-%m-%d).
MD
cat docs/pipeline-benchmark.md
