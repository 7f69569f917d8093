#!/usr/bin/env bash
# ImageNet-C scale benchmark of the commands that read a whole run folder (docs/scale-out.md):
# `shiftlab finish` (metrics from every part), two per-sample aggregates with `shiftlab query`,
# and `shiftlab report`, each under /usr/bin/time -v (wall time, peak resident memory).
#
# The folder is written by crates/shiftlab-pipeline/examples/scale_folder.rs with the project's
# own writers: 50,000 images x 96 shifts x 6 models x 2 probes = 57.6 M prediction rows in 1,000
# parts (bench/scale-imagenet-c.toml). It is kept in runs/scale between runs (~2 GB); remove it
# to write it again.
#
# Usage: scripts/bench-scale.sh [IMAGES]   (default 50000; a smaller count for a quick try)
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-50000}
work=runs/scale-bench
pipeline=$work/scale-imagenet-c.toml
run=runs/scale
mkdir -p "$work"
sed "s|^output = .*|output = \"$run\"|" bench/scale-imagenet-c.toml > "$pipeline"

cargo build --release --workspace --bins --examples -q
bin=target/release
measure() { # name, command...
  local name=$1
  shift
  /usr/bin/time -v -o "$work/$name.time" "$@" > "$work/$name.out"
  local wall rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/$name.time")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$name.time")
  awk -v n="$name" -v w="$wall" -v r="$rss" 'BEGIN { printf "| %s | %s | %.2f GB |\n", n, w, r / 1048576 }' >> "$work/table.md"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| command | wall (m:ss) | peak RSS |\n|---|---|---|\n' > "$work/table.md"
if [ ! -f "$run/run.json" ]; then
  measure generate "$bin/examples/scale_folder" "$pipeline" --images "$images"
  cat "$work/generate.out"
fi
echo "folder: $(du -sh "$run" | cut -f1), $(ls "$run/predictions" | wc -l) prediction parts"
rm -f "$run/metrics.parquet"
measure finish "$bin/shiftlab" finish "$run"
measure query-error-confidence "$bin/shiftlab" query --run "$run" \
  "SELECT model, probe, shift, severity, count(*) AS n,
          avg(CASE WHEN correct THEN 0.0 ELSE 1.0 END) AS error, avg(confidence) AS mean_confidence
   FROM predictions GROUP BY model, probe, shift, severity
   ORDER BY model, probe, shift, severity"
# The clean side first: DataFusion builds its hash table from the join's left input when the
# statistics cannot tell the two sides apart (both filtered), and that side must be the small one
# (600,000 clean rows, not 57 M): docs/scale-out.md has both orders measured.
measure query-flips "$bin/shiftlab" query --run "$run" \
  "WITH clean AS (SELECT sample_id, model, probe, prediction AS clean_prediction
                  FROM predictions WHERE shift = 'clean')
   SELECT p.sample_id, count(*) AS flips
   FROM clean c JOIN predictions p
     ON p.sample_id = c.sample_id AND p.model = c.model AND p.probe = c.probe
   WHERE p.shift <> 'clean' AND p.prediction <> c.clean_prediction
   GROUP BY p.sample_id ORDER BY flips DESC, p.sample_id LIMIT 100"
measure report "$bin/shiftlab" report "$run" --out "$work/report"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$work/table.md"
