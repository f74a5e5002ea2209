"""The SLURM executor: each planned run is one batch job, submitted with sbatch and followed with squeue.

A job runs `python -P -m sweeps.slurm RUN_DIR --threads T` on its node, which is `executors.execute`:
it takes the run's lock (so a run trains in one place only, whichever executors and machines share the
sweep directory), starts the same `sweeps.worker` process as the local executor and records the attempt.
The sweep directory must therefore be on a file system that the nodes share.

Preemption: jobs are submitted with --requeue and --signal=B:TERM@60, so SLURM warns the job a minute
before its time limit. The job passes SIGTERM on to the worker, which checkpoints at its current step
and exits 75 (preempted); the job then requeues itself (`scontrol requeue`, the job id stays) and the
run resumes from that step when the job starts again. A job that SLURM preempted with a requeue is
restarted by SLURM; one that ended PREEMPTED (or on a failed node) is submitted again by the sweep.

Per run directory (besides what `sweeps.store` lists):
  slurm/job.sh         the batch script (the sbatch options are on sbatch's command line, in jobs.jsonl)
  slurm/jobs.jsonl     one line per submission (job id, sbatch command) and per job start (restart count)
  slurm/<job id>.out   the job's own output; the worker's is in worker.log as with the other executors
  slurm/outcome.json   how the job's last attempt ended, written by the job
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from scaling import io
from scaling.config import Where, check_keys
from scaling.errors import EXIT_PREEMPTED, ConfigError, ScalingError
from scaling.run_status import FAILED, PREEMPTED
from sweeps import executors, store

SIGNAL_LEAD_S = 60  # how long before the time limit SLURM sends SIGTERM: one step and a checkpoint
POLL_S = 2.0  # squeue at most this often
# How long an ended job's outcome.json may take to appear here: on NFS another host's new file can stay
# invisible for up to a minute (attribute caching); only then is the job taken to have died without one.
OUTCOME_GRACE_S = 60.0
RESUBMITS = 10  # per run and `sweep run`: a run preempted more often than this is recorded failed
# States in which a job may still run; any other state is final. (squeue's long names.)
ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
          "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD")
# Final states that are no fault of the run: it is submitted again, resuming from its checkpoint.
RESUBMIT = ("PREEMPTED", "NODE_FAIL", "BOOT_FAIL")
TIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")  # minutes, [days-]hours:minutes:seconds
MEM = re.compile(r"\d+[KMGT]?")


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    """What each run's job asks SLURM for; None leaves it to the cluster's defaults."""

    partition: str | None = None
    time: str | None = None  # sbatch --time: minutes, or [days-]hours:minutes:seconds
    cpus_per_task: int | None = None  # None: --threads
    gpus: int | None = None
    mem: str | None = None  # sbatch --mem, e.g. "8G"
    account: str | None = None
    extra: tuple[str, ...] = ()  # further sbatch arguments, as given, e.g. ("--qos=low",)


FIELDS = tuple(f.name for f in dataclasses.fields(SlurmOptions))


def _checked(key: str, value) -> object:
    """`value` for the option `key` in the form SlurmOptions holds it; ValueError says what is wrong."""
    if key in ("cpus_per_task", "gpus"):
        least = 1 if key == "cpus_per_task" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"must be a whole number of at least {least}, got {value!r}")
        return value
    if key == "extra":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.startswith("-") for v in value):
            raise ValueError(f"must be a list of sbatch arguments such as [\"--qos=low\"], got {value!r}")
        return tuple(value)
    if key == "time" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # minutes
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    if key == "time" and not TIME.fullmatch(value):
        raise ValueError(f"must be minutes or [days-]hours:minutes:seconds (e.g. 90 or 1-12:00:00), got {value!r}")
    if key == "mem" and not MEM.fullmatch(value):
        raise ValueError(f"must be a size such as 4000 (MB) or 8G, got {value!r}")
    return value


def parse_table(table, path: str) -> SlurmOptions:
    """The spec's [slurm] table (None: absent), checked key by key."""
    if table is None:
        return SlurmOptions()
    where = Where(path)
    values = {}
    for key, value in check_keys(table, "slurm", FIELDS, where).items():
        try:
            values[key] = _checked(key, value)
        except ValueError as err:
            raise where.error(f"slurm.{key}", str(err)) from None
    return SlurmOptions(**values)


def flag(key: str) -> str:
    """The command-line flag of an option (extra arguments come one by one, as --slurm-arg)."""
    return "--slurm-arg" if key == "extra" else f"--slurm-{key.replace('_', '-')}"


def with_flags(options: SlurmOptions, flags: dict) -> SlurmOptions:
    """`options` with the command line's --slurm-* values (None or []: not given) in place of the spec's."""
    given = {}
    for key, value in flags.items():
        if value is None or value == []:
            continue
        try:
            given[key] = _checked(key, value)
        except ValueError as err:
            raise ConfigError(f"{flag(key)}: {err}") from None
    return dataclasses.replace(options, **given)


def resource_args(options: SlurmOptions, threads: int) -> list[str]:
    """What each job asks for: one task of `cpus_per_task` (default `threads`) CPUs, and the options given."""
    args = ["--ntasks=1", f"--cpus-per-task={options.cpus_per_task or threads}"]
    for key in ("partition", "time", "mem", "account", "gpus"):
        value = getattr(options, key)
        if value is not None:
            args.append(f"--{key}={value}")
    return args + list(options.extra)


def sbatch_args(options: SlurmOptions, run_dir: Path, threads: int, cwd: str) -> list[str]:
    """sbatch's options for one run's job (run_dir absolute)."""
    return [f"--job-name=sweep-{run_dir.name}", f"--output={run_dir / 'slurm' / '%j.out'}", f"--chdir={cwd}",
            "--requeue", f"--signal=B:TERM@{SIGNAL_LEAD_S}", "--parsable", *resource_args(options, threads)]


def job_script(run_dir: Path, threads: int) -> str:
    """The batch script: `exec`, so that the job's Python is the process SLURM signals (B:TERM)."""
    # -P for the reason given at executors.worker_command: the installed code, not a sweeps/ in --chdir.
    command = [sys.executable, "-P", "-m", "sweeps.slurm", str(run_dir), "--threads", str(threads)]
    return "#!/bin/bash\n# One run of a sweep; submitted by `scaling sweep run --executor slurm`.\nexec " \
        + " ".join(shlex.quote(part) for part in command) + "\n"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ScalingError(f"--executor slurm needs SLURM's {name} on PATH (not found); run the sweep on a "
                           "SLURM login node, or use --executor local or ray")
    return path


def _run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ScalingError(f"{Path(cmd[0]).name} did not answer in {timeout:.0f} s; is slurmctld up? "
                           "(`sinfo` should list the partitions)") from None


def check_cluster(options: SlurmOptions, threads: int) -> None:
    """Refuse before anything is written: no sbatch, no answer from the controller, an unknown partition,
    resources the cluster cannot give (`sbatch --test-only`: validated and scheduled, never submitted)."""
    sbatch = _tool("sbatch")
    listing = _run([_tool("sinfo"), "-h", "-o", "%R"])
    if listing.returncode != 0:
        first = (listing.stderr.strip().splitlines() or ["no output"])[0]
        raise ScalingError(f"--executor slurm: sinfo failed ({first}); is slurmctld reachable from this machine?")
    partitions = sorted(set(listing.stdout.split()))
    if options.partition is not None and options.partition not in partitions:
        raise ConfigError(f"slurm partition '{options.partition}' does not exist here (partitions: "
                          f"{', '.join(partitions) or 'none'}); set [slurm] partition or --slurm-partition")
    asked = resource_args(options, threads)
    trial = _run([sbatch, "--test-only", *asked, "--wrap", "true"])
    if trial.returncode != 0:
        why = " | ".join([line for line in trial.stderr.strip().splitlines() if line.strip()][:2]) or "no reason given"
        raise ConfigError(f"SLURM refuses the job settings {' '.join(asked)} ({why}); change the [slurm] table or "
                          "the --slurm-* flags")


@dataclasses.dataclass(eq=False)  # hashed by identity: run_sweep keys its in-flight dict by these
class Job:
    run_dir: Path
    job_id: str
    resubmits: int = 0
    outcome: executors.Outcome | None = None
    ended: float | None = None  # when (monotonic) it was first seen ended without an outcome


def _log_job(run_dir: Path, entry: dict) -> None:
    with open(run_dir / "slurm" / "jobs.jsonl", "a") as handle:
        handle.write(json.dumps(dict(entry, time=time.time())) + "\n")


def submit_job(options: SlurmOptions, run_dir: Path, threads: int, cwd: str) -> str:
    """sbatch one run's job; returns its id (recorded in slurm/jobs.jsonl)."""
    (run_dir / "slurm").mkdir(parents=True, exist_ok=True)
    script = run_dir / "slurm" / "job.sh"
    io.atomic_write(script, job_script(run_dir, threads))
    cmd = [_tool("sbatch"), *sbatch_args(options, run_dir, threads, cwd), str(script)]
    done = _run(cmd)
    job_id = done.stdout.strip().split(";")[0]  # --parsable: "id" or "id;cluster"
    if done.returncode != 0 or not job_id.isdigit():
        first = (done.stderr.strip().splitlines() or [done.stdout.strip() or "no output"])[0]
        raise ScalingError(f"sbatch refused run {run_dir.name}: {first}; check the [slurm] table or --slurm-* flags")
    _log_job(run_dir, {"event": "submit", "job_id": job_id, "command": cmd})
    return job_id


def job_states(job_ids: list[str]) -> dict[str, str] | None:
    """Job id -> SLURM state (squeue knows jobs until MinJobAge after they end; then sacct, where it works).
    None when squeue could not answer (the controller busy or restarting): nothing is known, not even an end."""
    if not job_ids or shutil.which("squeue") is None:
        return {}
    states = {}
    for ids in (job_ids[i:i + 500] for i in range(0, len(job_ids), 500)):
        listing = _run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T"])
        if listing.returncode != 0 and "invalid job id" not in listing.stderr.lower():  # not just all ids unknown
            return None
        states.update(_parse_listing(listing.stdout if listing.returncode == 0 else ""))
    missing = [job_id for job_id in job_ids if job_id not in states]
    if missing and shutil.which("sacct"):
        listing = _run(["sacct", "-n", "-X", "-P", "-j", ",".join(missing), "-o", "JobID,State"])
        states.update(_parse_listing(listing.stdout if listing.returncode == 0 else ""))
    return states


def _parse_listing(text: str) -> dict[str, str]:
    """'id|STATE' lines (sacct may write 'CANCELLED by 0')."""
    found = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0].isdigit():
            found[parts[0]] = parts[1].split()[0] if parts[1].strip() else "UNKNOWN"
    return found


def read_outcome(run_dir: Path, job_id: str) -> executors.Outcome | None:
    """The outcome the job `job_id` wrote at its end, or None (it died first, or it is another job's)."""
    try:
        found = io.read_json(run_dir / "slurm" / "outcome.json")
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.pop("job_id", None) != job_id:
        return None
    try:
        return executors.Outcome(**found)
    except TypeError:
        return None


def _log_tail(run_dir: Path, job_id: str) -> str:
    path = run_dir / "slurm" / f"{job_id}.out"
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return " | ".join(lines[-3:]) or "no output"


def job_outcome(run_dir: Path, job_id: str, state: str | None) -> executors.Outcome | None:
    """How an ended job left its run; None when it should be submitted again (preempted, node lost)."""
    outcome = read_outcome(run_dir, job_id)
    if outcome is not None and outcome.status != PREEMPTED:
        return outcome
    if outcome is not None or state in RESUBMIT:
        return None
    ended = f"ended {state}" if state else "is no longer known to SLURM"
    return executors.Outcome(run_dir.name, FAILED, f"SLURM job {job_id} {ended} before the run did: "
                             f"{_log_tail(run_dir, job_id)}")


class SlurmExecutor:
    """The executor interface of executors.LocalExecutor: submit, wait, result, close."""

    def __init__(self, options: SlurmOptions, threads: int, workers: int, cwd: str | None = None):
        check_cluster(options, threads)
        self.options, self.threads, self.workers = options, threads, workers
        self.cwd = cwd or os.getcwd()
        self.last_poll = 0.0
        self.unfinished: set[Job] = set()

    def submit(self, run_dir: str) -> Job:
        directory = Path(run_dir).resolve()
        job = Job(directory, submit_job(self.options, directory, self.threads, self.cwd))
        self.unfinished.add(job)
        return job

    def wait(self, futures: list[Job], timeout: float) -> list[Job]:
        time.sleep(max(0.0, min(timeout, self.last_poll + POLL_S - time.monotonic())))
        if time.monotonic() < self.last_poll + POLL_S:
            return []
        self.last_poll = time.monotonic()
        states = job_states([job.job_id for job in futures])
        if states is None:
            return []  # ask again at the next poll
        done = [job for job in futures if states.get(job.job_id) not in ACTIVE and self._settle(job, states)]
        self.unfinished.difference_update(done)
        return done

    def _settle(self, job: Job, states: dict[str, str]) -> bool:
        """Give an ended job its outcome (True), or submit its run again (False), or wait (False) while its
        outcome.json may still be on its way."""
        state = states.get(job.job_id)
        if read_outcome(job.run_dir, job.job_id) is None and state not in RESUBMIT:
            job.ended = job.ended or time.monotonic()
            if time.monotonic() - job.ended < OUTCOME_GRACE_S:
                return False
        outcome = job_outcome(job.run_dir, job.job_id, state)
        if outcome is None and job.resubmits >= RESUBMITS:
            outcome = executors.Outcome(job.run_dir.name, FAILED, f"preempted {job.resubmits + 1} times; "
                                        "`sweep run` again to resume it")
        if outcome is not None:
            job.outcome = outcome
            return True
        job.job_id = submit_job(self.options, job.run_dir, self.threads, self.cwd)
        job.resubmits, job.ended = job.resubmits + 1, None
        return False

    @staticmethod
    def result(future: Job) -> executors.Outcome:
        return future.outcome

    def close(self) -> None:
        """Jobs outlive a stopped sweep (they hold their runs' locks: a later `sweep run` waits, never duplicates)."""
        if self.unfinished:
            ids = sorted(job.job_id for job in self.unfinished)
            print(f"note: {len(ids)} SLURM job(s) of this sweep still queued or running ({', '.join(ids[:10])}"
                  f"{', ...' if len(ids) > 10 else ''}); `scaling sweep status` follows them, `scancel` stops them",
                  file=sys.stderr)


def status_lines(sweep_dir: Path, records: list[dict]) -> list[str]:
    """For `sweep status`: the count of each state of the runs' latest jobs, and each job not COMPLETED."""
    latest = {}
    for record in records:
        path = store.run_dir(sweep_dir, record["run_id"]) / "slurm" / "jobs.jsonl"
        submits = [e for e in io.read_jsonl(path) if e.get("event") == "submit"] if path.exists() else []
        if submits:
            latest[record["run_id"]] = (str(submits[-1]["job_id"]), record["label"])
    if not latest:
        return []
    if shutil.which("squeue") is None:
        return [f"slurm jobs: {len(latest)} submitted (their ids in RUN_DIR/slurm/jobs.jsonl); no squeue here to ask"]
    states = job_states([job_id for job_id, _ in latest.values()]) or {}
    named = {run_id: states.get(job_id, "UNKNOWN") for run_id, (job_id, _) in latest.items()}
    counts: dict[str, int] = {}
    for state in named.values():
        counts[state] = counts.get(state, 0) + 1
    lines = ["slurm jobs: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))]
    for run_id, (job_id, label) in latest.items():
        if named[run_id] != "COMPLETED":
            lines.append(f"  {named[run_id]:11} job {job_id} {run_id} {label}")
    return lines


# ---- inside the job ----------------------------------------------------------------------------------

def pass_sigterm_on(live: executors.LiveWorkers) -> None:
    """On SIGTERM (SLURM's B:TERM to this process, the job's main one), signal the worker, which checkpoints
    and exits 75; this process stays to record how the run ended, since its death would kill the worker
    (PR_SET_PDEATHSIG). From a thread: the handler may interrupt this thread while it holds `live`'s lock."""
    def handler(signum, frame):
        threading.Thread(target=live.signal_all, args=(signal.SIGTERM,), daemon=True).start()

    signal.signal(signal.SIGTERM, handler)


def requeue_self(job_id: str | None) -> bool:
    """Put this job back in the queue (it keeps its id); False when SLURM would not."""
    if not job_id or shutil.which("scontrol") is None:
        return False
    return _run(["scontrol", "requeue", job_id]).returncode == 0


def run_job(run_dir: Path, threads: int) -> int:
    """The job's body: train the run under its lock; requeue the job when the run was preempted."""
    job_id = os.environ.get("SLURM_JOB_ID")
    (run_dir / "slurm").mkdir(parents=True, exist_ok=True)
    (run_dir / "slurm" / "outcome.json").unlink(missing_ok=True)
    _log_job(run_dir, {"event": "start", "job_id": job_id, "restart": int(os.environ.get("SLURM_RESTART_COUNT", 0)),
                       "host": os.uname().nodename})
    live = executors.LiveWorkers()
    pass_sigterm_on(live)
    outcome = executors.execute(str(run_dir), threads, executors.cores_for(0, threads),
                                os.environ.get("CUDA_VISIBLE_DEVICES"), live=live)
    io.write_json(run_dir / "slurm" / "outcome.json", dict(dataclasses.asdict(outcome), job_id=job_id))
    if outcome.status == PREEMPTED:  # the worker checkpointed on SIGTERM and exited EXIT_PREEMPTED
        requeue_self(job_id)
        return EXIT_PREEMPTED
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -P -m sweeps.slurm", description="one run as a SLURM job")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    return run_job(Path(args.run_dir), args.threads)


if __name__ == "__main__":
    sys.exit(main())
