#!/usr/bin/env bash
# Smoke test of scripts/slurm-cluster.sh: starts the local cluster, checks what shiftlab's tests
# rely on (sbatch --wait exit codes, arrays with fake GPUs, afterany, scancel and requeue of array
# tasks, idempotent start/stop), prints what it checked and the timings, stops the cluster.
# Exits non-zero on any failure. Needs root and `scripts/slurm-cluster.sh install` done.
set -uo pipefail
cd "$(dirname "$0")/.."
CL=$PWD/scripts/slurm-cluster.sh
STATE=${SHIFTLAB_SLURM_DIR:-/tmp/shiftlab-slurm}
export SLURM_CONF=$STATE/slurm.conf
FAILS=0
W=$STATE/smoke

ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
jstate() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n 's/^JobState=//p' | head -1; }
jfield() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
# wait_state JOB STATE TIMEOUT
wait_state() {
  local t0=$SECONDS s
  while ((SECONDS - t0 < $3)); do
    s=$(jstate "$1")
    [ "$s" = "$2" ] && return 0
    sleep 0.2
  done
  echo "     (job $1 is '${s:-?}' after $3 s, wanted $2)"
  return 1
}
no_daemons() { local d; for d in slurmctld slurmd munged slurmstepd; do pgrep -x $d >/dev/null && return 1; done; return 0; }
trap '$CL stop >/dev/null 2>&1' EXIT

echo "# start"
$CL stop >/dev/null 2>&1
t=$(now); $CL start >/dev/null || { echo "FAIL - start"; exit 1; }
T_START=$(secs "$t" "$(now)")
ok "start from cold: ${T_START}s"
rm -rf "$W"; mkdir -p "$W"; cd "$W"

echo "# 1. sbatch --wait exit codes"
t=$(now); J=$(sbatch --parsable --wait -o /dev/null --wrap true); rc=$?
T_WAIT_COLD=$(secs "$t" "$(now)")
echo "     first job: submit $(jfield "$J" SubmitTime), start $(jfield "$J" StartTime), end $(jfield "$J" EndTime)"
check "sbatch --wait of 'true' returns 0 (got $rc, ${T_WAIT_COLD}s, first job)" [ $rc = 0 ]
t=$(now); sbatch -Q --wait -o /dev/null --wrap true; rc=$?
T_WAIT_WARM=$(secs "$t" "$(now)")
check "sbatch --wait of 'true' again returns 0 (got $rc, ${T_WAIT_WARM}s)" [ $rc = 0 ]
J=$(sbatch --parsable -o /dev/null --wrap true); sleep 3
echo "     a 'true' job: submit $(jfield "$J" SubmitTime), start $(jfield "$J" StartTime), end $(jfield "$J" EndTime)"
t=$(now); sbatch -Q --wait -o /dev/null --wrap 'sleep 12'; rc=$?
T_WAIT_12=$(secs "$t" "$(now)")
echo "     sbatch --wait of 'sleep 12': ${T_WAIT_12}s (polls at 2, 10, 42 s: sleeps 2, 8, 32)"
t=$(now); sbatch -Q --wait -o /dev/null --wrap 'exit 3'; rc=$?
T_WAIT_FAIL=$(secs "$t" "$(now)")
check "sbatch --wait of 'exit 3' returns 3 (got $rc, ${T_WAIT_FAIL}s)" [ $rc = 3 ]
sbatch -Q --wait -o /dev/null --wrap 'kill -9 $$'; rc=$?
check "sbatch --wait of a job killed by SIGKILL returns non-zero (got $rc)" [ $rc != 0 ]

echo "# environment of a job"
mkdir -p "$W/sub"
(cd "$W/sub" && sbatch -Q --wait --cpus-per-task=1 --gres=gpu:1 -o "$W/env.txt" \
  --wrap 'echo "user=$(id -un) uid=$(id -u) pwd=$PWD"; env | grep -E "^(SLURM|CUDA|GPU_|ROCR|ZE_)" | sort')
sed 's/^/     /' "$W/env.txt"
check "a job runs as root" grep -q '^user=root uid=0' "$W/env.txt"
check "a job runs in the submitter's working directory" grep -q "pwd=$W/sub\$" "$W/env.txt"

CUDA_VISIBLE_DEVICES=7 sbatch -Q --wait -o "$W/nogpu.txt" --wrap 'echo "cuda=${CUDA_VISIBLE_DEVICES-unset}"'
check "without --gres, CUDA_VISIBLE_DEVICES is unset even if the submitter had 7 ($(cat "$W/nogpu.txt"))" grep -qx cuda=unset "$W/nogpu.txt"
sbatch -Q --wait --gres=gpu:2 -o "$W/gpu2.txt" --wrap 'echo "cuda=${CUDA_VISIBLE_DEVICES-unset}"'
check "with --gres=gpu:2, CUDA_VISIBLE_DEVICES=0,1 ($(cat "$W/gpu2.txt"))" grep -qx cuda=0,1 "$W/gpu2.txt"
sbatch -Q --wait -o /dev/null --array=1-3 --wrap 'exit $SLURM_ARRAY_TASK_ID'; rc=$?
check "sbatch --wait of an array whose tasks exit 1, 2, 3 returns 3 (got $rc)" [ $rc = 3 ]

echo "# 2. array 1-4%2, gpu:1 each, afterany dependency"
cat >"$W/task.sh" <<'EOF'
#!/bin/bash
echo "task=$SLURM_ARRAY_TASK_ID cpus=$SLURM_CPUS_PER_TASK cuda=${CUDA_VISIBLE_DEVICES-unset} start=$(date +%s.%N)"
sleep 2
echo "task=$SLURM_ARRAY_TASK_ID end=$(date +%s.%N)"
EOF
A=$(sbatch --parsable --array=1-4%2 --cpus-per-task=1 --gres=gpu:1 --open-mode=append \
  -o "$W/log-%a.txt" "$W/task.sh")
D=$(sbatch --parsable --dependency=afterany:$A -o "$W/dep.txt" \
  --wrap 'echo "dep start=$(date +%s.%N)"; for i in 1 2 3 4; do grep -h end= log-$i.txt; done')
echo "     array job $A, dependent job $D"
wait_state "$D" COMPLETED 60
for i in 1 2 3 4; do
  check "task $i: SLURM_ARRAY_TASK_ID, SLURM_CPUS_PER_TASK=1, CUDA_VISIBLE_DEVICES set ($(head -1 "$W/log-$i.txt" 2>/dev/null | cut -d' ' -f1-3))" \
    grep -qE "^task=$i cpus=1 cuda=[0-9]" "$W/log-$i.txt"
done
check "the afterany job ran after all 4 tasks ended" \
  awk '/^dep start=/ { split($2, a, "="); s = a[2] } /end=/ { split($2, b, "="); if (b[2] > m) m = b[2]; n++ }
       END { exit !(n == 4 && s > m) }' "$W/dep.txt"
# At most 2 tasks at a time (%2), and the two running at once got different GPUs.
max_conc() {
  awk 'FNR == 1 { split($4, a, "="); print a[2], 1 } /end=/ { split($2, b, "="); print b[2], -1 }' "$@" |
    sort -n | awk '{ c += $2; if (c > m) m = c } END { print m + 0 }'
}
CONC=$(max_conc "$W"/log-[1-4].txt)
check "at most 2 tasks ran at once (max $CONC)" [ "$CONC" -le 2 ]
echo "     CUDA_VISIBLE_DEVICES per task: $(for i in 1 2 3 4; do sed -n '1s/.*cuda=\([^ ]*\).*/\1/p' "$W/log-$i.txt"; done | tr '\n' ' ')"

echo "# 3. scancel of a running array task; afterany still runs"
A=$(sbatch --parsable --array=1-2 --gres=gpu:1 --open-mode=append -o "$W/c-%a.txt" \
  --wrap 'echo "task $SLURM_ARRAY_TASK_ID start"; if [ $SLURM_ARRAY_TASK_ID = 2 ]; then sleep 60; else sleep 1; fi; echo end')
D=$(sbatch --parsable --dependency=afterany:$A -o "$W/c-dep.txt" --wrap 'echo dep ran')
wait_state "${A}_2" RUNNING 30
scancel "${A}_2"
wait_state "${A}_2" CANCELLED 30
check "task ${A}_2 is CANCELLED after scancel (scontrol: $(jstate "${A}_2"), squeue -t all: $(squeue -h -t all -j "${A}_2" -o %T))" \
  [ "$(jstate "${A}_2")" = CANCELLED ]
wait_state "$D" COMPLETED 30
check "the afterany job ran after the cancel ($(cat "$W/c-dep.txt" 2>/dev/null))" grep -q 'dep ran' "$W/c-dep.txt"
check "task ${A}_1 COMPLETED" [ "$(jstate "${A}_1")" = COMPLETED ]

echo "# 4. scontrol requeue of a running task; its log is appended"
A=$(sbatch --parsable --array=1-2 --open-mode=append -o "$W/r-%a.txt" \
  --wrap 'echo "task $SLURM_ARRAY_TASK_ID start restarts=${SLURM_RESTART_COUNT-unset} at $(date +%s)"; sleep 5; echo end')
wait_state "${A}_1" RUNNING 30
sleep 1
t=$(now); scontrol requeue "${A}_1"; rc=$?
check "scontrol requeue ${A}_1 returns 0 (got $rc)" [ $rc = 0 ]
echo "     after requeue: $(jstate "${A}_1"), $(jfield "${A}_1" Reason), BeginTime=$(jfield "${A}_1" BeginTime) (now $(date +%FT%T))"
wait_state "${A}_1" PENDING 30
echo "     requeued: $(jstate "${A}_1"), Reason=$(jfield "${A}_1" Reason), EligibleTime=$(jfield "${A}_1" EligibleTime) (now $(date +%FT%T))"
# Slurm holds a requeued job back 120 s (BeginTime); StartTime=now lets it go at once.
scontrol update JobId="${A}_1" StartTime=now
wait_state "${A}_1" RUNNING 200
T_REQ=$(secs "$t" "$(now)")
wait_state "${A}_1" COMPLETED 30
sed 's/^/     r-1: /' "$W/r-1.txt"
check "requeued task ran again after ${T_REQ}s, restart count 1 ($(jfield "${A}_1" Restarts) restarts)" \
  grep -q 'restarts=1' "$W/r-1.txt"
check "its log has both runs (append)" [ "$(grep -c start "$W/r-1.txt")" = 2 ]

echo "# 4b. (information) afterok vs afterany after a failed, then requeued, array task"
A=$(sbatch --parsable --array=1-2 -o "$W/f-%a.txt" --open-mode=append \
  --wrap 'echo "task $SLURM_ARRAY_TASK_ID restarts=${SLURM_RESTART_COUNT-0}"; [ $SLURM_ARRAY_TASK_ID = 1 ] || [ "${SLURM_RESTART_COUNT-0}" -ge 1 ]')
DOK=$(sbatch --parsable --dependency=afterok:$A -o /dev/null --wrap true)
DANY=$(sbatch --parsable --dependency=afterany:$A -o /dev/null --wrap true)
wait_state "${A}_2" FAILED 30
rq=$(scontrol requeue "${A}_2" 2>&1); echo "     scontrol requeue of the FAILED task: rc=$? ${rq}"
wait_state "${A}_2" COMPLETED 200
sleep 3
echo "     task 2 now $(jstate "${A}_2"); afterok job: $(jstate "$DOK") ($(jfield "$DOK" Reason)); afterany job: $(jstate "$DANY")"
scancel "$DOK" 2>/dev/null

echo "# refused submissions"
out=$(sbatch -p nosuch --wrap true 2>&1); rc=$?
echo "     sbatch -p nosuch: rc=$rc: $out"
check "an invalid partition is refused with a non-zero exit" [ $rc != 0 ]
out=$(sbatch --gres=gpu:5 --wrap true 2>&1); rc=$?
echo "     sbatch --gres=gpu:5: rc=$rc: $out"
check "--gres=gpu:5 is refused with a non-zero exit" [ $rc != 0 ]
out=$(sbatch --cpus-per-task=8 --wrap true 2>&1); rc=$?
echo "     sbatch --cpus-per-task=8: rc=$rc: $out"
check "--cpus-per-task=8 (2 CPUs here) is refused with a non-zero exit" [ $rc != 0 ]
out=$(sbatch --array=1-2 --gres=gpu:3 --wrap true 2>&1); rc=$?
echo "     sbatch --array=1-2 --gres=gpu:3: rc=$rc: $out"
out=$(sbatch --wait --gres=gpu:5 --wrap true 2>&1); rc=$?
echo "     sbatch --wait --gres=gpu:5: rc=$rc: $out"

echo "# 5. idempotent start/stop"
cd /
p1=$(cat "$STATE"/slurmctld.pid "$STATE"/slurmd.pid /run/munge/munged.pid)
t=$(now); $CL start >/dev/null; rc=$?
T_NOOP=$(secs "$t" "$(now)")
p2=$(cat "$STATE"/slurmctld.pid "$STATE"/slurmd.pid /run/munge/munged.pid)
check "start again is a no-op (rc $rc, same pids, ${T_NOOP}s)" [ "$rc $p1" = "0 $p2" ]
check "status says up" $CL status
t=$(now); $CL stop; rc=$?
T_STOP=$(secs "$t" "$(now)")
check "stop (rc $rc, ${T_STOP}s)" [ $rc = 0 ]
check "status says down after stop" bash -c "! $CL status 2>/dev/null"
check "no daemons left" no_daemons
check "stop again is a no-op" $CL stop
t=$(now); $CL start >/dev/null; rc=$?
T_RESTART=$(secs "$t" "$(now)")
check "start after stop (rc $rc, ${T_RESTART}s)" [ $rc = 0 ]
sbatch -Q --wait -o /dev/null --wrap true; rc=$?
check "a job runs after the restart (rc $rc)" [ $rc = 0 ]
# A job left running is cancelled by stop.
J=$(sbatch --parsable -o /dev/null --wrap 'sleep 300')
wait_state "$J" RUNNING 30
$CL stop
check "stop with a running job leaves no daemons nor job steps" \
  bash -c "$(declare -f no_daemons); no_daemons && ! pgrep -f '^sleep 300' >/dev/null"

echo "# timings: start ${T_START}s (cold), ${T_RESTART}s (after stop), no-op start ${T_NOOP}s, stop ${T_STOP}s;" \
  "sbatch --wait true: ${T_WAIT_COLD}s first, ${T_WAIT_WARM}s next, sleep 12: ${T_WAIT_12}s; requeue to running again with StartTime=now ${T_REQ}s"
if [ $FAILS = 0 ]; then echo "# all checks passed"; else echo "# $FAILS check(s) failed"; fi
[ $FAILS = 0 ]
