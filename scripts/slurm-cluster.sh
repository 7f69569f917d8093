#!/usr/bin/env bash
# A local one-node Slurm cluster for shiftlab's tests, without systemd.
#
#   scripts/slurm-cluster.sh install   apt-get install slurm-wlm munge (skipped when present)
#   scripts/slurm-cluster.sh start     start munged, slurmctld, slurmd; wait for the node to be idle;
#                                      prints `export SLURM_CONF=...` (also in $STATE/env)
#   scripts/slurm-cluster.sh stop      cancel jobs, stop the daemons (TERM, then KILL)
#   scripts/slurm-cluster.sh status    exit 0 when the cluster answers
#
# State folder: ${SHIFTLAB_SLURM_DIR:-/tmp/shiftlab-slurm} (slurm.conf, gres.conf, fake GPU
# devices nvidia0/1, spool, logs, pid files). The munge key is the system one, /etc/munge/munge.key
# (created if missing); munged's socket and pid file are in /run/munge. Needs root. Ports 6817/6818,
# so one such cluster per machine. slurmctld starts with -c (no jobs survive a stop/start);
# SHIFTLAB_SLURM_KEEP_STATE=1 keeps them. SHIFTLAB_SLURM_GPUS (default 2) fake GPUs.
#
# Measured on the project's 2-core Debian 12 VM (Slurm 22.05.8, munge 0.5.15; busy with builds),
# see scripts/slurm-smoke.sh, which checks all of this:
# - install: 25 s (apt lists already present, so no update; --no-install-recommends). The image's
#   /usr/sbin/policy-rc.d (exit 101) keeps the packages from starting daemons; `install` writes one
#   for the duration if it is missing. The package creates /etc/munge/munge.key.
# - start: 1.2 s cold, 1.5-1.7 s after a stop; a no-op start (already up) 0.1-0.2 s; stop 6-9 s (slurmctld
#   takes 4-8 s to save state and exit on TERM).
# - sbatch --wait of `true`: 2.0 s or 10.0 s (runs: first job 10.0, next 2.0; another run: first
#   2.1, next 10.1): sbatch --wait is not told, it polls (src/sbatch/sbatch.c _job_wait): sleeps 2 s,
#   then 8 s, then 32 s each time (growth stops once the sleep reaches MinJobAge/2, so MinJobAge=300
#   gives polls at 2, 10, 42, 74... s), and slurmctld starts a submitted job 0-2 s after
#   submission, so a trivial job is seen done at 2 s or at 10 s. A job of `sleep 12` takes 42 s
#   under --wait. Poll `scontrol show job` (or squeue) yourself for anything faster.
# - Exit codes: sbatch --wait returns the job's exit status (exit 3 -> 3); killed by a signal -> 1;
#   for an array, the largest over the tasks.
# - `scontrol requeue` of a running task: it is killed (its log gets "slurmstepd-localhost: error:
#   *** JOB n ON localhost CANCELLED AT ... DUE TO JOB REQUEUE ***"), goes COMPLETING, then PENDING
#   with Reason=BeginTime and EligibleTime = now + 120 s (hard-coded by Slurm): it ran again only
#   after 135 s. `scontrol update JobId=<id>_<task> StartTime=now` once it is PENDING makes it run
#   within ~2 s. The rerun sees SLURM_RESTART_COUNT=1 (unset on the first run). Without
#   --open-mode=append the rerun truncates the log.
# - Confirmed: after a FAILED array task, a job with --dependency=afterok:<array> stays PENDING
#   (Reason=DependencyNeverSatisfied) even after the task is requeued and COMPLETES; use afterany.
#   `scontrol requeue` of a FAILED (finished) task works (rc 0). scancel <array>_<task> of a running
#   task leaves it CANCELLED (scontrol show job and squeue -t all, kept MinJobAge=300 s) and an
#   afterany job still runs.
# - Jobs run as root (the submitter) in the submitter's working directory (SLURM_SUBMIT_DIR). With
#   --gres=gpu:1 a job sees CUDA_VISIBLE_DEVICES=0 or 1 (index in gres.conf; two tasks at once get 0
#   and 1), and the same value in GPU_DEVICE_ORDINAL, ROCR_VISIBLE_DEVICES, ZE_AFFINITY_MASK,
#   SLURM_JOB_GPUS; SLURM_GPUS_ON_NODE=1; --gres=gpu:2 gives "0,1". Without --gres Slurm unsets
#   CUDA_VISIBLE_DEVICES even when the submitter had one (the rest of the submitter's environment,
#   SLURM_CONF included, is passed through).
# - Refused submissions: sbatch exits 1 and prints to stderr, e.g.
#     -p nosuch:          "sbatch: error: invalid partition specified: nosuch" and
#                         "sbatch: error: Batch job submission failed: Invalid partition name specified"
#     --gres=gpu:5:       "sbatch: error: Batch job submission failed: Requested node configuration is not available"
#     --cpus-per-task=8:  "sbatch: error: Batch job submission failed: More processors requested than permitted"
#   (the last only with EnforcePartLimits=ALL; without it the job is accepted and stays PENDING
#   forever with Reason=PartitionConfig).
# - Harmless log noise: "mpi/pmix_v4: ... can not load PMIx library" (no libpmix; MpiDefault=none).
#   "Configured MailProg is invalid" is silenced with MailProg=/bin/true. Clients without SLURM_CONF
#   fail with "fetch_config: DNS SRV lookup failed ... Could not establish a configuration source".
# - SelectTypeParameters=CR_CPU: each --cpus-per-task=1 task takes one of the 2 CPUs, so
#   --array=...%2 runs two tasks at once (observed, with GPUs 0 and 1).
# - A start that times out (SHIFTLAB_SLURM_START_TIMEOUT) prints the tail of the daemon logs and
#   exits 1, leaving the daemons up; the next start or stop deals with them.
set -euo pipefail

STATE=${SHIFTLAB_SLURM_DIR:-/tmp/shiftlab-slurm}
NGPU=${SHIFTLAB_SLURM_GPUS:-2}
CONF=$STATE/slurm.conf
MUNGE_KEY=/etc/munge/munge.key
MUNGE_RUN=/run/munge
MUNGE_PID=$MUNGE_RUN/munged.pid
START_TIMEOUT=${SHIFTLAB_SLURM_START_TIMEOUT:-60}
export SLURM_CONF=$CONF

die() { echo "slurm-cluster: error: $*" >&2; exit 1; }
say() { echo "slurm-cluster: $*" >&2; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# pid_alive PIDFILE NAME: the pid in PIDFILE is alive and its command is NAME.
pid_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(tr -dc 0-9 <"$1")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

have_all() { command -v sbatch && command -v slurmctld && command -v slurmd && command -v munged; } >/dev/null 2>&1

cmd_install() {
  if have_all; then return 0; fi
  need_root
  local log=/tmp/shiftlab-slurm-install.log policy_made=
  export DEBIAN_FRONTEND=noninteractive
  # Only update the lists when apt does not know the packages.
  if [ "$(apt-cache policy slurm-wlm munge 2>/dev/null | grep -c 'Candidate: [0-9]')" != 2 ]; then
    say "apt-get update"
    apt-get update -qq >"$log" 2>&1 || { tail -20 "$log" >&2; die "apt-get update failed (log: $log)"; }
  fi
  # Without systemd, keep the packages' init scripts from starting daemons.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_made=1
  fi
  say "apt-get install slurm-wlm munge"
  local rc=0
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >"$log" 2>&1 || rc=$?
  [ -n "$policy_made" ] && rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || { tail -20 "$log" >&2; die "apt-get install failed (log: $log)"; }
  have_all || die "installed, but sbatch/slurmctld/slurmd/munged still missing"
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

# The cluster answers: all three daemons alive and sinfo reports the node.
answers() {
  pid_alive "$STATE/slurmctld.pid" slurmctld && pid_alive "$STATE/slurmd.pid" slurmd &&
    pid_alive "$MUNGE_PID" munged && [ -f "$CONF" ] &&
    timeout 10 sinfo -h -N -n localhost -o %T >/dev/null 2>&1
}

write_conf() {
  local cpus mem i
  cpus=$(nproc)
  # A little under the real memory, or slurmd drains the node with "Low RealMemory".
  mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo)
  cat >"$CONF" <<EOF
# Written by shiftlab scripts/slurm-cluster.sh; rewritten on each start.
ClusterName=shiftlab
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
ReturnToService=2
JobRequeue=1
# Refuse at submission what can never run here (e.g. --cpus-per-task=8) instead of PENDING forever.
EnforcePartLimits=ALL
MailProg=/bin/true
MinJobAge=300
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=10
InactiveLimit=0
KillWait=5
Waittime=0
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost CPUs=$cpus RealMemory=$mem Gres=gpu:$NGPU State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$STATE/gres.conf"
  for ((i = 0; i < NGPU; i++)); do
    [ -c "$STATE/nvidia$i" ] || { rm -f "$STATE/nvidia$i"; mknod "$STATE/nvidia$i" c 1 3; }
  done
  echo "Name=gpu File=$STATE/nvidia[0-$((NGPU - 1))]" >"$STATE/gres.conf"
}

start_munge() {
  if pid_alive "$MUNGE_PID" munged && munge_ok; then return 0; fi
  if [ ! -s "$MUNGE_KEY" ]; then
    install -d -o munge -g munge -m 0700 "$(dirname "$MUNGE_KEY")"
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile="$MUNGE_KEY" --force
    else
      dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
    fi
  fi
  chown munge:munge "$MUNGE_KEY"
  chmod 0400 "$MUNGE_KEY"
  install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  rm -f "$MUNGE_PID"
  runuser -u munge -- munged --key-file="$MUNGE_KEY" --pid-file="$MUNGE_PID" \
    --socket="$MUNGE_RUN/munge.socket.2" >"$STATE/log/munged.out" 2>&1 ||
    { cat "$STATE/log/munged.out" >&2; tail -5 /var/log/munge/munged.log >&2 2>/dev/null; die "munged failed to start"; }
  local i
  for ((i = 0; i < 50; i++)); do munge_ok && return 0; sleep 0.1; done
  tail -5 /var/log/munge/munged.log >&2 2>/dev/null
  die "munged does not answer (munge -n | unmunge)"
}

logs_tail() {
  local f
  for f in "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" "$STATE/log/slurmctld.out" "$STATE/log/slurmd.out"; do
    [ -s "$f" ] && { echo "--- $f" >&2; grep -v -e pmix -e 'MPI: Cannot' "$f" | tail -15 >&2; }
  done
  return 0
}

print_env() {
  echo "export SLURM_CONF=$CONF" >"$STATE/env"
  cat "$STATE/env"
}

cmd_start() {
  if answers; then print_env; return 0; fi
  need_root
  have_all || die "slurm is not installed; run: $0 install"
  local t0=$SECONDS t0n
  t0n=$(date +%s%N)
  # Whatever is half up from an earlier start goes first (munged stays if it answers).
  stop_slurm
  mkdir -p "$STATE"/{ctld,spool,log}
  chmod 0755 "$STATE"
  write_conf
  start_munge
  local ctld_args=(-c)
  [ "${SHIFTLAB_SLURM_KEEP_STATE:-0}" = 1 ] && ctld_args=()
  slurmctld -f "$CONF" "${ctld_args[@]}" >"$STATE/log/slurmctld.out" 2>&1 </dev/null ||
    { logs_tail; die "slurmctld failed to start"; }
  slurmd -f "$CONF" -N localhost >"$STATE/log/slurmd.out" 2>&1 </dev/null ||
    { logs_tail; die "slurmd failed to start"; }
  local st=
  while ((SECONDS - t0 < START_TIMEOUT)); do
    st=$(timeout 5 sinfo -h -N -n localhost -o %T 2>/dev/null || true)
    case $st in idle*) break ;; esac
    pid_alive "$STATE/slurmctld.pid" slurmctld || sleep 0.5
    pid_alive "$STATE/slurmctld.pid" slurmctld || { logs_tail; die "slurmctld exited"; }
    sleep 0.5
  done
  case $st in
    idle*) ;;
    *) logs_tail; die "node not idle after ${START_TIMEOUT}s (sinfo state: '${st:-no answer}')" ;;
  esac
  say "up in $(( ($(date +%s%N) - t0n) / 1000000 )) ms"
  print_env
}

# stop_daemon PIDFILE NAME: TERM, wait up to 15 s, then KILL; remove the pid file.
stop_daemon() {
  local pid i
  if pid_alive "$1" "$2"; then
    pid=$(tr -dc 0-9 <"$1")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then
      say "$2 ($pid) did not stop on TERM; KILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    fi
  fi
  rm -f "$1"
}

# Job steps (slurmstepd and what runs under them) outlive slurmd; cancel them while the
# controller still answers, then end what is left.
stop_slurm() {
  local ids pid i
  if pid_alive "$STATE/slurmctld.pid" slurmctld; then
    ids=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      scancel $ids 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        [ -z "$(timeout 5 squeue -h -t running,completing -o %A 2>/dev/null)" ] && break
        sleep 0.2
      done
    fi
  fi
  stop_daemon "$STATE/slurmd.pid" slurmd
  stop_daemon "$STATE/slurmctld.pid" slurmctld
  # Leftover step daemons: slurmstepd only ever runs under this (single-per-machine) cluster.
  for pid in $(pgrep -x slurmstepd || true); do
    say "leftover slurmstepd $pid; KILL (with its children)"
    kill_tree "$pid"
  done
}

kill_tree() {
  local c
  for c in $(pgrep -P "$1" || true); do kill_tree "$c"; done
  kill -KILL "$1" 2>/dev/null || true
}

cmd_stop() {
  need_root
  stop_slurm
  stop_daemon "$MUNGE_PID" munged
}

cmd_status() {
  if answers; then
    sinfo -N -n localhost -o '%N %T %C %G' 2>/dev/null || true
    return 0
  fi
  echo "slurm-cluster: not running (state: $STATE)" >&2
  return 1
}

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
