#!/usr/bin/env bash
# Record the cgroup v1 folders of a running Slurm job, and /proc of its
# processes, into a fixture tree: record-slurm-job.sh JOBID DEST
#
# DEST/sys/fs/cgroup/<controller>/slurm*/uid_U/job_J/...: the files the job
# usage collector reads (and a few beside them), copied as the kernel gave them;
# DEST/proc/<pid>/{stat,io,cgroup}: the job's processes; environ keeps only the
# SLURM_* variables (the rest of a job's environment is not for a repository).
set -euo pipefail
job=$1 dest=$2
files="cgroup.procs tasks cpuacct.usage cpuacct.stat memory.usage_in_bytes
memory.max_usage_in_bytes memory.limit_in_bytes memory.stat freezer.state
blkio.throttle.io_service_bytes pids.current"
mkdir -p "$dest/sys/fs/cgroup" "$dest/proc"
pids=()
for controller in /sys/fs/cgroup/*/; do
  for folder in "$controller"slurm*/uid_*/job_"$job"; do
    [ -d "$folder" ] || continue
    while IFS= read -r dir; do
      rel=${dir#/sys/fs/cgroup/}
      mkdir -p "$dest/sys/fs/cgroup/$rel"
      for f in $files; do
        [ -f "$dir/$f" ] && cat "$dir/$f" >"$dest/sys/fs/cgroup/$rel/$f" 2>/dev/null || true
      done
      [ -f "$dir/cgroup.procs" ] && mapfile -t -O "${#pids[@]}" pids <"$dir/cgroup.procs"
    done < <(find "$folder" -type d)
  done
done
for pid in $(printf '%s\n' "${pids[@]}" | sort -un); do
  [ -d "/proc/$pid" ] || continue
  mkdir -p "$dest/proc/$pid"
  for f in stat io cgroup; do cat "/proc/$pid/$f" >"$dest/proc/$pid/$f"; done
  tr '\0' '\n' <"/proc/$pid/environ" | grep '^SLURM_' | grep -v '^SLURM_\(CONF\|SUBMIT_DIR\)=' \
    | tr '\n' '\0' >"$dest/proc/$pid/environ" || true
done
