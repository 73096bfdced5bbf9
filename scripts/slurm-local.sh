#!/usr/bin/env bash
# A real single-node Slurm on this machine, for collectbus's integration tests
# and for trying the Slurm collectors by hand. Debian 12 (slurm-wlm 22.05),
# run as root, without systemd.
#
#   scripts/slurm-local.sh start    install what is missing, configure, start, wait until the node is idle
#   scripts/slurm-local.sh stop     cancel the jobs, stop exactly the daemons this script started
#   scripts/slurm-local.sh status   say what runs; exit 0 when the node answers, else 1
#   scripts/slurm-local.sh env      print the line that points Slurm's commands at this cluster
#
# Everything (configuration, state, spool, logs, pid files) lives in one folder,
# $COLLECTBUS_SLURM_DIR (default: $TMPDIR/collectbus-slurm). Slurm's commands
# find the cluster through SLURM_CONF=$COLLECTBUS_SLURM_DIR/slurm.conf.
#
# Accounting goes through slurmdbd into MariaDB on 127.0.0.1:3306 (root, empty
# password); when no MariaDB answers there it is started by hand, and stopped
# again by `stop`. `start` on a running cluster changes nothing.
#
# Knobs: COLLECTBUS_SLURM_DIR, COLLECTBUS_SLURM_CLUSTER (default collectbus),
#        COLLECTBUS_SLURM_CPUS (default: nproc), COLLECTBUS_SLURM_MEM_MB (default 1000),
#        COLLECTBUS_SLURM_DB (the accounting database, default collectbus_slurm_acct).
set -euo pipefail

DIR=${COLLECTBUS_SLURM_DIR:-${TMPDIR:-/tmp}/collectbus-slurm}
CLUSTER=${COLLECTBUS_SLURM_CLUSTER:-collectbus}
CPUS=${COLLECTBUS_SLURM_CPUS:-$(nproc)}
MEM_MB=${COLLECTBUS_SLURM_MEM_MB:-1000}
ACCT_DB=${COLLECTBUS_SLURM_DB:-collectbus_slurm_acct}
DB_HOST=127.0.0.1
DB_PORT=3306
export SLURM_CONF="$DIR/slurm.conf"

PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge)
# Daemons this script starts, with their pid files (munged and MariaDB only when
# they were not already running; their pid files are then ours, in $DIR).
PIDFILES=("$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$DIR/slurmdbd.pid" "$DIR/munged.pid" "$DIR/mariadb.pid")

log() { printf '[%(%H:%M:%S)T] slurm-local: %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_for SECONDS CMD...: run CMD every 0.2 s until it succeeds.
wait_for() {
  local until=$((SECONDS + $1)); shift
  while ! "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$until" ] || return 1
    sleep 0.2
  done
}

# alive PIDFILE: the process named there runs (a zombie counts as stopped:
# some sandboxes do not reap exited daemons).
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  mysql_up || command -v mariadbd >/dev/null || missing+=(mariadb-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends)
  if ! "${apt[@]}" "${missing[@]}" >"$DIR/log/apt.log" 2>&1; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq >>"$DIR/log/apt.log" 2>&1
    "${apt[@]}" "${missing[@]}" >>"$DIR/log/apt.log" 2>&1 || { tail -20 "$DIR/log/apt.log"; die "apt-get install failed"; }
  fi
}

# cgroup v1 hierarchies of the controllers Slurm's cgroup plugins use, writable.
cgroup_v1_ok() {
  local c
  for c in freezer cpuacct memory; do
    [ -w "/sys/fs/cgroup/$c" ] && [ "$(stat -fc %T "/sys/fs/cgroup/$c" 2>/dev/null)" = cgroupfs ] || return 1
  done
}

configure() {
  mkdir -p "$DIR"/{state,spool,log}
  if cgroup_v1_ok; then
    PROCTRACK=cgroup ACCT_GATHER=cgroup
  else
    PROCTRACK=linuxproc ACCT_GATHER=linux
    log "no writable cgroup v1 freezer, cpuacct and memory: jobs run without cgroups"
  fi
  cat >"$DIR/slurm.conf" <<EOF
# single-node test cluster written by scripts/slurm-local.sh
ClusterName=$CLUSTER
# "localhost" is replaced by the short host name by slurmctld, so this works
# whatever the machine is called; slurmd is started with -N localhost.
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Each job in a cgroup of its own where cgroup v1 allows (cgroup.conf beside
# this file, nothing constrained), as on a production node: proctrack/cgroup
# puts it in freezer/slurm/uid_U/job_J/step_S, jobacct_gather/cgroup in
# cpuacct/ and memory/ likewise; else /proc is read (linuxproc, linux).
# sacct's MaxRSS and TotalCPU are gathered every 2 s.
ProctrackType=proctrack/$PROCTRACK
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/$ACCT_GATHER
JobAcctGatherFrequency=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
# completion records without the database too (read with "sacct -c")
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
# finished jobs stay visible to squeue for 10 minutes
MinJobAge=600
# a job past its time limit is killed at once
KillWait=2
OverTimeLimit=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=long Nodes=ALL Default=NO MaxTime=2-00:00:00 State=UP
EOF
  # cgroup.conf is read beside slurm.conf. The v1 hierarchies are mounted one
  # controller per folder under /sys/fs/cgroup (tmpfs), hence cgroup/v1.
  cat >"$DIR/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainSwapSpace=no
ConstrainDevices=no
EOF
  # slurmdbd reads slurmdbd.conf beside slurm.conf (the folder of SLURM_CONF).
  cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=$DB_HOST
StoragePort=$DB_PORT
StorageUser=root
StorageLoc=$ACCT_DB
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
DebugLevel=info
EOF
  chmod 600 "$DIR/slurmdbd.conf"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    return 0  # a munged already answers (ours or the system's)
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating a munge key"
    if command -v mungekey >/dev/null; then mungekey --create --force; else create-munge-key -f; fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/collectbus-munged.pid
  wait_for 10 test -s /run/munge/collectbus-munged.pid || die "munged did not start"
  cp /run/munge/collectbus-munged.pid "$DIR/munged.pid"
  wait_for 10 bash -c 'munge -n | unmunge' || die "munge does not work"
}

mysql_up() { mysqladmin --connect-timeout=2 -h "$DB_HOST" -P "$DB_PORT" -uroot ping >/dev/null 2>&1; }

start_mariadb() {
  mysql_up && return 0
  log "starting MariaDB"
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld
  (cd / && setsid /usr/sbin/mariadbd --user=mysql --bind-address=$DB_HOST --port=$DB_PORT \
      --pid-file=/run/mysqld/collectbus-mariadb.pid >"$DIR/log/mariadb.log" 2>&1 </dev/null &)
  wait_for 60 mysql_up || { tail -20 "$DIR/log/mariadb.log"; die "MariaDB did not start"; }
  cp /run/mysqld/collectbus-mariadb.pid "$DIR/mariadb.pid"
}

start_slurmdbd() {
  alive "$DIR/slurmdbd.pid" && return 0
  mysql -h "$DB_HOST" -P "$DB_PORT" -uroot -e "CREATE DATABASE IF NOT EXISTS \`$ACCT_DB\`"
  log "starting slurmdbd"
  /usr/sbin/slurmdbd
  wait_for 30 sacctmgr -n list cluster || { tail -20 "$DIR/log/slurmdbd.log"; die "slurmdbd does not answer"; }
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
}

start_slurmctld() {
  alive "$DIR/slurmctld.pid" && return 0
  log "starting slurmctld"
  # -c: a clean start, without the jobs of an earlier run (job ids start at 1 again)
  /usr/sbin/slurmctld -c
  wait_for 30 scontrol ping || { tail -20 "$DIR/log/slurmctld.log"; die "slurmctld does not answer"; }
}

start_slurmd() {
  alive "$DIR/slurmd.pid" && return 0
  log "starting slurmd"
  /usr/sbin/slurmd -N localhost
}

node_ready() { sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }

do_start() {
  local t0=$EPOCHREALTIME
  [ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts daemons)"
  mkdir -p "$DIR/log"
  if [ -s "$DIR/slurm.conf" ] && alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" \
      && alive "$DIR/slurmdbd.pid" && node_ready; then
    log "already running (SLURM_CONF=$SLURM_CONF)"
    return 0
  fi
  install_packages
  configure
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurmctld
  start_slurmd
  wait_for 60 node_ready || { sinfo -N -l; tail -20 "$DIR/log/slurmd.log"; die "the node is not idle"; }
  log "up in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }") s; SLURM_CONF=$SLURM_CONF"
}

do_stop() {
  local f pid ids
  if alive "$DIR/slurmctld.pid" && scontrol ping >/dev/null 2>&1; then
    # Cancel the jobs first: otherwise their slurmstepd processes outlive slurmd.
    ids=$(squeue -h -o %i -t PD,R,S,CG 2>/dev/null | tr '\n' ' ')
    if [ -n "${ids// /}" ]; then
      # shellcheck disable=SC2086
      scancel $ids 2>/dev/null || true
      wait_for 30 bash -c '[ -z "$(squeue -h -t R,CG,S -o %i)" ]' || log "jobs still running"
    fi
  fi
  for f in "${PIDFILES[@]}"; do
    alive "$f" || continue
    pid=$(cat "$f")
    log "stopping $(basename "$f" .pid) (pid $pid)"
    kill "$pid" 2>/dev/null || true
    # slurmd before slurmctld before slurmdbd before munged and MariaDB
    wait_for 30 bash -c "! { [ -e /proc/$pid ] && ! grep -q '^State:.*Z' /proc/$pid/status; }" \
      || log "pid $pid did not stop"
  done
  rm -f "$DIR/munged.pid" "$DIR/mariadb.pid"
  log "stopped"
}

do_status() {
  local f rc=0
  for f in "${PIDFILES[@]}"; do
    if alive "$f"; then echo "$(basename "$f" .pid): running (pid $(cat "$f"))"; fi
  done
  if node_ready; then
    echo "node: $(sinfo -h -N -o '%N %T' | sort -u)"
  else
    echo "node: not answering"
    rc=1
  fi
  echo "SLURM_CONF=$SLURM_CONF"
  return $rc
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  env) printf 'SLURM_CONF=%q\n' "$SLURM_CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
