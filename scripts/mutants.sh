#!/usr/bin/env bash
# Mutation testing with cargo-mutants (crates.io), outside CI: it rebuilds and retests once per
# mutant, hours for the whole list on 2 cores. Results and the caught rate per scope are in
# docs/testing.md; each scope's full report lands in target/mutants/SCOPE/mutants.out/.
#
# Usage: scripts/mutants.sh [SCOPE...]   (default: all scopes below, in this order)
#   probe-metrics  shiftlab-probe's metric math (metrics.rs; no libtorch: --no-default-features)
#   probe          shiftlab-probe's probes (probe/*.rs: outputs, linear, knn, rng, error)
#   probe-rest     the rest of shiftlab-probe (alexnet, corruptions, model_errors, report, table)
#   data           shiftlab-data (every file)
#   data-imaging   shiftlab-data's imaging.rs only (dimension limits, decoding, normalising)
#   params         shiftlab-corrupt's parameter tables (params.rs)
#   run            shiftlab-pipeline's run folder (run.rs); run it last
# Environment: MUTANTS_SHARD=k/n tests every n-th mutant only (a sample: say so when quoting
# it); MUTANTS_TIMEOUT (test timeout, s, default 300). One mutant at a time (in place).
# The script runs in place (`--in-place`: the mutated file is restored after each mutant), so
# the incremental build in target/ serves every mutant: do not edit the tree while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
scopes=("$@")
[ ${#scopes[@]} -gt 0 ] || scopes=(probe-metrics probe probe-rest data params run)
shard=()
[ -z "${MUTANTS_SHARD:-}" ] || shard=(--shard "$MUTANTS_SHARD")
for scope in "${scopes[@]}"; do
  case "$scope" in
    probe-metrics) args=(-p shiftlab-probe -f crates/shiftlab-probe/src/metrics.rs --no-default-features) ;;
    probe) args=(-p shiftlab-probe -f 'crates/shiftlab-probe/src/probe/*.rs' -f crates/shiftlab-probe/src/probe.rs) ;;
    probe-rest) args=(-p shiftlab-probe -e 'crates/shiftlab-probe/src/probe/*.rs' -e crates/shiftlab-probe/src/metrics.rs) ;;
    data) args=(-p shiftlab-data) ;;
    data-imaging) args=(-p shiftlab-data -f crates/shiftlab-data/src/imaging.rs) ;;
    params) args=(-p shiftlab-corrupt -f crates/shiftlab-corrupt/src/params.rs) ;;
    run) args=(-p shiftlab-pipeline -f crates/shiftlab-pipeline/src/run.rs) ;;
    *) echo "unknown scope $scope (see the header of $0)" >&2; exit 2 ;;
  esac
  out="target/mutants/$scope"
  mkdir -p "$out"
  echo "== $scope: cargo mutants ${args[*]} ${shard[*]}"
  # Exit status 2 = some mutants survived, 3 = some timed out: both are results, not errors.
  nice -n 19 cargo mutants --in-place --no-shuffle \
    --timeout "${MUTANTS_TIMEOUT:-300}" --output "$out" "${shard[@]}" "${args[@]}" || {
    rc=$?; [ $rc -eq 2 ] || [ $rc -eq 3 ] || exit $rc; }
  for kind in caught missed timeout unviable; do
    printf '%-9s %s\n' "$kind" "$(wc -l < "$out/mutants.out/$kind.txt")"
  done
done
