#!/usr/bin/env bash
# Mutation testing with cargo-mutants (crates.io), outside CI: it rebuilds and retests once per
# mutant, hours for the whole list on 2 cores. Results and the caught rate per scope are in
# docs/testing.md; each scope's full report lands in target/mutants/SCOPE/mutants.out/.
#
# Usage: scripts/mutants.sh [SCOPE...] [-- CARGO_MUTANTS_ARGS...]
#   (default: every scope below, cheapest first; arguments after `--` go to cargo mutants,
#   e.g. `-- --re 'keeps_original' --baseline skip --timeout 120` to re-run some survivors)
#   params         shiftlab-corrupt's parameter tables (src/params.rs), tested by
#                  tests/constants.rs alone, at opt-level 0
#   probe-metrics  the probe scope's metric math: shiftlab-metrics, every file (no libtorch;
#                  shiftlab-probe re-exports it)
#   probe          the probe scope's probes: shiftlab-probe, every file (libtorch)
#   run            shiftlab-pipeline's run-folder code (src/folder.rs, src/run.rs)
#   data           shiftlab-data, every file but the test fixtures (src/testutil.rs)
#   data-imaging   shiftlab-data's src/imaging.rs only (dimension limits, decoding, normalising)
# Each mutant is tested by the tests of the crate that owns the mutated file (cargo-mutants'
# default), so a caught mutant is caught where the logic lives.
# Environment:
#   MUTANTS_SHARD=k/n   test mutant i only when i mod n = k (k from 0; round-robin, so the
#                       sample spreads over every file): a sample, say so when quoting it.
#   MUTANTS_TIMEOUT     test timeout in s (default: cargo-mutants' own, from the baseline's
#                       test time, at least MUTANTS_MIN_TIMEOUT, default 60 s: a loaded
#                       machine must not turn slow tests into timeouts).
#   MUTANTS_TAG         suffix of the output folder (target/mutants/SCOPE-TAG), for re-runs.
# One mutant at a time, in place (`--in-place`: the mutated file is restored after each
# mutant), so the incremental build in target/ serves every mutant: do not edit the tree while
# it runs, and run it only in your own checkout. `nice -n 19` lets other builds of the same
# session go first; another session (Linux autogroups) needs `echo 19 > /proc/PID/autogroup`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
scopes=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do scopes+=("$1"); shift; done
[ $# -eq 0 ] || shift
extra=("$@")
[ ${#scopes[@]} -gt 0 ] || scopes=(params probe-metrics run data probe)
common=(--in-place --no-shuffle)
[ -z "${MUTANTS_SHARD:-}" ] || common+=(--shard "$MUTANTS_SHARD" --sharding round-robin)
if [ -n "${MUTANTS_TIMEOUT:-}" ]; then
  common+=(--timeout "$MUTANTS_TIMEOUT")
else
  common+=(--minimum-test-timeout "${MUTANTS_MIN_TIMEOUT:-60}")
fi
for scope in "${scopes[@]}"; do
  case "$scope" in
    # The tables' owner test is tests/constants.rs (every constant against the reference
    # scripts' tables); built at opt-level 0 it takes seconds a mutant instead of minutes (the
    # crate, its lib tests and its examples at opt-level 3), and a mutant it misses counts as
    # missed even if a lib test would catch it.
    params) args=(-p shiftlab-corrupt -f crates/shiftlab-corrupt/src/params.rs
                  --cargo-arg=--config=profile.dev.package.shiftlab-corrupt.opt-level=0
                  --cargo-test-arg=--test=constants) ;;
    probe-metrics) args=(-p shiftlab-metrics) ;;
    probe) args=(-p shiftlab-probe) ;;
    run) args=(-p shiftlab-pipeline -f crates/shiftlab-pipeline/src/folder.rs
               -f crates/shiftlab-pipeline/src/run.rs) ;;
    data) args=(-p shiftlab-data -e crates/shiftlab-data/src/testutil.rs) ;;
    data-imaging) args=(-p shiftlab-data -f crates/shiftlab-data/src/imaging.rs) ;;
    *) echo "unknown scope $scope (see the header of $0)" >&2; exit 2 ;;
  esac
  out="target/mutants/$scope${MUTANTS_TAG:+-$MUTANTS_TAG}"
  mkdir -p "$out"
  echo "== $scope: cargo mutants ${common[*]} ${args[*]} ${extra[*]}"
  # Exit status 2 = some mutants survived, 3 = some timed out: both are results, not errors.
  rc=0
  nice -n 19 cargo mutants "${common[@]}" --output "$out" "${args[@]}" "${extra[@]}" || rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 2 ] || [ $rc -eq 3 ] || exit $rc
  for kind in caught missed timeout unviable; do
    f="$out/mutants.out/$kind.txt"
    printf '%-9s %s\n' "$kind" "$( [ -f "$f" ] && wc -l < "$f" || echo 0)"
  done
done
