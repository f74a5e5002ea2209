#!/usr/bin/env bash
# A real one-node SLURM on this machine for the tests that need one (tests/test_sweeps_slurm.py): Debian's
# slurm-wlm and munge, a slurm.conf whose only node is this host (its CPUs and memory from `slurmd -C`), two
# partitions ("debug", the default, and "preemptible", whose jobs any debug job may preempt by requeueing
# them), and the three daemons started by hand (CI has no systemd). Idempotent and quick: with the node up
# and the configuration current it only checks; a changed configuration is loaded with `scontrol
# reconfigure`. Needs root to install or start anything. Exits non-zero when SLURM could not be brought
# up; .ci/run treats that as a warning, and the tests skip with their reason.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by .ci/start_slurm.sh"

node_ready() {
    command -v sinfo >/dev/null 2>&1 && sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'
}

render_conf() {
    cat <<EOF
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
$(slurmd -C | head -n 1) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=2
PartitionName=preemptible Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=1
EOF
}

ours() { [ ! -f "$CONF" ] || grep -qF "$MARK" "$CONF"; }  # never touch a site's own configuration

if node_ready && { ! ours || [ "$(render_conf)" = "$(cat "$CONF")" ]; }; then
    echo "slurm: node already up"; exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "slurm: needs root to install, configure and start the daemons" >&2; exit 1
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
changed=0
if ours && [ "$(render_conf)" != "$(cat "$CONF" 2>/dev/null)" ]; then
    render_conf > "$CONF"; changed=1
fi
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
chown munge:munge /run/munge

# A pid file left by a daemon that was killed may name another process by now: check the name too.
running() { [ -f "$2" ] && [ "$(cat "/proc/$(cat "$2")/comm" 2>/dev/null)" = "$1" ]; }
running munged /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
if running slurmctld /run/slurmctld.pid; then
    [ "$changed" -eq 0 ] || scontrol reconfigure
else
    slurmctld
fi
running slurmd /run/slurmd.pid || slurmd

for _ in $(seq 60); do
    if node_ready; then
        echo "slurm: node up"; sinfo; exit 0
    fi
    sleep 0.5  # a node that was down (an earlier slurmd killed) comes back on its own: ReturnToService=2
done
echo "slurm: the node did not become idle in 30 s; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
