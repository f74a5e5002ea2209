#!/usr/bin/env bash
# A real one-node SLURM on this machine for tests/test_sweeps_slurm.py: Debian's slurm-wlm and munge,
# a slurm.conf whose only node is this host (its CPUs and memory from `slurmd -C`), two partitions
# ("debug", the default, and "urgent", whose jobs preempt debug's by requeueing them), and the three
# daemons started by hand (CI has no systemd). Idempotent and quick: with the node already up it only
# checks. Needs root (CI and the development machines run as root). Exits non-zero when SLURM could not
# be brought up; .ci/run treats that as a warning, and the tests skip with their reason.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by .ci/start_slurm.sh"

node_ready() {
    command -v sinfo >/dev/null 2>&1 && sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'
}

if node_ready; then
    echo "slurm: node already up"; exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "slurm: needs root to install and start the daemons" >&2; exit 1
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

if [ ! -f "$CONF" ] || grep -qF "$MARK" "$CONF"; then  # never overwrite a site's own configuration
    node_line=$(slurmd -C | head -n 1)  # NodeName=<host> CPUs=.. ... RealMemory=..
    cat > "$CONF" <<EOF
$MARK
ClusterName=scaling-ci
SlurmctldHost=$(hostname -s)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
ReturnToService=2
KillWait=30
MinJobAge=600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
$node_line State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=2
EOF
fi
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
chown munge:munge /run/munge

# A pid file left by a daemon that was killed may name another process by now: check the name too.
running() { [ -f "$2" ] && [ "$(cat "/proc/$(cat "$2")/comm" 2>/dev/null)" = "$1" ]; }
running munged /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
running slurmctld /run/slurmctld.pid || slurmctld
running slurmd /run/slurmd.pid || slurmd

for _ in $(seq 60); do
    if node_ready; then
        echo "slurm: node up"; sinfo; exit 0
    fi
    # A node that was down (an earlier daemon killed) comes back on its own with ReturnToService=2.
    sleep 0.5
done
echo "slurm: the node did not become idle in 30 s; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
