"""Executors: run a sweep's planned runs, each once, in worker processes, locally or on a Ray cluster.

`execute` is the unit of work and is the same for both executors: take the run's lock (or report
it taken), start `python -P -m sweeps.worker run RUN_DIR` pinned to its CPU share (and GPU), wait, and
read the outcome from the exit code and summary.json. The worker inherits the lock's descriptor, so
the lock lasts as long as the training does, whichever of the two processes dies first.

`run_sweep` is the scheduler: it skips finished runs, defers runs another process holds, starts
WSD branches once their parent has checkpointed the branch point, retries failures up to `retries`
times, and records a run as failed when its worker died without saying why. On SIGTERM or SIGINT it
starts no new run and passes SIGTERM on to the running workers, which checkpoint their current step
and exit EXIT_PREEMPTED; those runs are preempted, not failed, and the next `sweep run` resumes them.

Packing (`run_sweep(pack=True)`, `sweep run --pack`): runs with one `pack_key` (the same config but for
train.seed and train.lr) that are ready together are split evenly over the free workers, and each share
is one `execute_group`: every member's lock taken (a member held elsewhere or finished meanwhile is left
out), one `python -P -m sweeps.worker group DIR...` (scaling.packed), and each member's outcome read from
its own summary.json, so the scheduler retries, fails or finishes members one by one as it does runs.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from scaling.errors import EXIT_PREEMPTED
from scaling.preemption import stop_on_signals
from scaling.run_status import COMPLETED, DIVERGED, FAILED, FINAL, FINISHED, PREEMPTED
from sweeps import store

MAX_PACK = 64  # members per packed group: where bench/replicas.py's gain on a GPU levels off (BENCHMARKS.md)


def worker_command(*args: str) -> list[str]:
    """The command line of a worker process. `-P`: without it `-m` puts the current directory first on
    sys.path, so a `sweeps/worker.py` (or `scaling/`) in the directory the sweep was started from would
    run instead of the installed code. The worker keeps that directory as its working directory, so
    relative paths in a config (data.source) still mean what they meant to the user."""
    return [sys.executable, "-P", "-m", "sweeps.worker", *args]


@dataclasses.dataclass(frozen=True)
class Outcome:
    run_id: str
    status: str  # completed, diverged, failed, preempted, locked (another process has it), no_source (branch)
    error: str | None = None
    seconds: float = 0.0


def cores_for(slot: int, threads: int) -> list[int]:
    """The CPUs of worker slot `slot`: consecutive blocks of `threads`, wrapping when oversubscribed."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    return [available[(slot * threads + i) % len(available)] for i in range(threads)]


class LiveWorkers:
    """The worker processes running now, so that a stopping sweep can pass its signal on to them. A worker
    registered after the signal gets it at once (its run was submitted just before the sweep stopped)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._workers: set[subprocess.Popen] = set()
        self._sent: int | None = None

    @contextlib.contextmanager
    def running(self, worker: subprocess.Popen):
        with self._lock:
            self._workers.add(worker)
            late = self._sent
        if late is not None:
            worker.send_signal(late)
        try:
            yield worker
        finally:
            with self._lock:
                self._workers.discard(worker)

    def signal_all(self, signum: int) -> None:
        with self._lock:
            workers, self._sent = list(self._workers), signum
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                worker.send_signal(signum)


def wait_passing_interrupt(worker: subprocess.Popen) -> int:
    """The worker's exit code. A KeyboardInterrupt meanwhile (Ray's way of cancelling a running task, or
    Ctrl-C) is passed on as SIGTERM, so that the run checkpoints and exits EXIT_PREEMPTED, and waited out.
    The wait polls: Ray raises the interrupt between bytecodes, never inside a blocking waitpid."""
    try:
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return worker.wait(timeout=0.5)
    except KeyboardInterrupt:
        worker.send_signal(signal.SIGTERM)
        return worker.wait()


def execute(run_dir: str, threads: int, cores: list[int] | None = None, gpus: str | None = None,
            cwd: str | None = None, live: LiveWorkers | None = None) -> Outcome:
    """Train one run in a worker process (started in `cwd`, default ours), holding its lock; returns how it ended.
    `live`: where the worker is registered while it runs, for `LiveWorkers.signal_all`."""
    directory = Path(run_dir)
    run_id = directory.name
    fd = store.try_lock(directory)
    if fd is None:
        return Outcome(run_id, "locked")
    started = time.time()
    try:
        summary = store.read_summary(directory)
        if summary and summary.get("status") in FINAL:  # finished by another process since we looked
            return Outcome(run_id, summary["status"], summary.get("error"))
        env = dict(os.environ, SWEEP_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1")
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        cores_arg = ",".join(map(str, cores or []))
        cmd = worker_command("run", str(directory), "--threads", str(threads), "--cores", cores_arg)
        store.append_attempt(directory, {"event": "start", "pid": os.getpid(), "host": os.uname().nodename})
        with open(directory / "worker.log", "ab") as log:
            log.write(f"--- attempt at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            log.flush()
            worker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=(fd,), cwd=cwd)
            with (live or LiveWorkers()).running(worker):
                code = wait_passing_interrupt(worker)
        summary = store.read_summary(directory) or {}
        fresh = summary.get("status") and (directory / "summary.json").stat().st_mtime >= started
        if code == 0 and summary.get("status") == COMPLETED:
            status, error = COMPLETED, None
        elif summary.get("status") == DIVERGED and fresh:
            status, error = DIVERGED, summary.get("error")
        elif code == EXIT_PREEMPTED:
            status, error = PREEMPTED, None
        elif code == -signal.SIGTERM:  # before its training loop could catch it: nothing lost but the set-up
            status, error = PREEMPTED, "SIGTERM ended the worker before its training loop began"
        elif code == 4:
            status, error = "no_source", store.log_tail(directory, 1)
        else:
            status = FAILED
            error = (summary.get("error") if fresh and summary.get("status") == FAILED else None) \
                or f"worker exited with code {code}: {store.log_tail(directory, 3)}"
        store.append_attempt(directory, {"event": "end", "exit_code": code, "status": status, "error": error})
        return Outcome(run_id, status, error, time.time() - started)
    finally:
        store.release(fd)


def pack_key(record: dict) -> str | None:
    """Runs whose keys are equal may train as one packed program (scaling.packed): their configs differ at
    most in scaling.replicas.VARYING (train.seed, train.lr). None: never packed (a WSD stable run or branch
    keeps or starts from branch-point checkpoints; FSDP shards what packing keeps whole)."""
    from scaling.replicas import VARYING

    config = record["config"]
    if record.get("role") in ("parent", "branch") or record.get("keep_steps") or config["train"].get("fsdp"):
        return None
    shared_train = {k: v for k, v in config["train"].items() if k not in VARYING}
    return json.dumps({**config, "train": shared_train}, sort_keys=True)


def execute_group(run_dirs: Sequence[str], threads: int, cores: list[int] | None = None, gpus: str | None = None,
                  cwd: str | None = None, live: LiveWorkers | None = None) -> list[Outcome]:
    """Train runs of one pack key as one packed worker (`sweeps.worker group`), holding every member's lock;
    returns each member's outcome. A member another process holds is left out ("locked"), one finished
    meanwhile is reported as it ended; a lone remaining member trains as a plain run (`execute`)."""
    held: list[tuple[Path, int]] = []
    outcomes: list[Outcome] = []
    try:
        for directory in map(Path, run_dirs):
            fd = store.try_lock(directory)
            summary = store.read_summary(directory) if fd is not None else None
            if fd is None or (summary and summary.get("status") in FINAL):
                outcomes.append(Outcome(directory.name, "locked") if fd is None
                                else Outcome(directory.name, summary["status"], summary.get("error")))
                if fd is not None:
                    store.release(fd)
                continue
            held.append((directory, fd))
        if len(held) == 1:  # nothing to pack it with: exactly the unpacked run
            directory, fd = held.pop()
            store.release(fd)
            return outcomes + [execute(str(directory), threads, cores, gpus, cwd, live)]
        if held:
            outcomes += _run_group(held, threads, cores, gpus, cwd, live)
        return outcomes
    finally:
        for _, fd in held:
            store.release(fd)


def _run_group(held: list[tuple[Path, int]], threads: int, cores, gpus, cwd, live) -> list[Outcome]:
    """Start the packed worker with every member's lock and read each member's outcome. The worker's output
    goes to the first member's worker.log and is copied into the others'."""
    directories = [d for d, _ in held]
    started = time.time()
    env = dict(os.environ, SWEEP_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1")
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpus
    cmd = worker_command("group", *map(str, directories), "--threads", str(threads),
                         "--cores", ",".join(map(str, cores or [])))
    for directory in directories:
        store.append_attempt(directory, {"event": "start", "pid": os.getpid(), "host": os.uname().nodename,
                                         "packed_with": [d.name for d in directories if d != directory]})
    log_path = directories[0] / "worker.log"
    with open(log_path, "ab") as log:
        log.write(f"--- packed attempt at {time.strftime('%Y-%m-%d %H:%M:%S')} with "
                  f"{' '.join(d.name for d in directories)}\n".encode())
        log.flush()
        offset = log.tell()
        worker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  pass_fds=tuple(fd for _, fd in held), cwd=cwd)
        with (live or LiveWorkers()).running(worker):
            code = wait_passing_interrupt(worker)
    with open(log_path, "rb") as log:
        log.seek(offset)
        text = log.read()
    for directory in directories[1:]:
        with open(directory / "worker.log", "ab") as log:
            log.write(f"--- packed attempt (log of {directories[0].name}'s worker)\n".encode() + text)
    outcomes = [_member_outcome(directory, code, started) for directory in directories]
    for directory, outcome in zip(directories, outcomes):
        store.append_attempt(directory, {"event": "end", "exit_code": code, "status": outcome.status,
                                         "error": outcome.error})
    return outcomes


def _member_outcome(directory: Path, code: int, started: float) -> Outcome:
    """A packed member's outcome from its own summary.json; the worker's exit code covers the whole pack."""
    summary = store.read_summary(directory) or {}
    fresh = summary.get("status") and (directory / "summary.json").stat().st_mtime >= started
    if fresh and summary["status"] in FINAL:
        return Outcome(directory.name, summary["status"], summary.get("error"), time.time() - started)
    if code in (EXIT_PREEMPTED, -signal.SIGTERM):
        return Outcome(directory.name, PREEMPTED, None, time.time() - started)
    error = (summary.get("error") if fresh and summary.get("status") == FAILED else None) \
        or f"packed worker exited with code {code}: {store.log_tail(directory, 3)}"
    return Outcome(directory.name, FAILED, error, time.time() - started)


class LocalExecutor:
    """K worker processes on this machine; slot i owns GPU i (when there are GPUs) or a block of CPUs."""

    def __init__(self, workers: int, threads: int, gpus: list[str] | None = None):
        self.workers, self.threads, self.gpus = workers, threads, gpus
        self.live = LiveWorkers()
        self.pool = concurrent.futures.ThreadPoolExecutor(workers)
        self.slots: queue.Queue[int] = queue.Queue()
        for slot in range(workers):
            self.slots.put(slot)

    def _execute(self, run_dir: str) -> Outcome:
        slot = self.slots.get()
        try:
            gpus = self.gpus[slot % len(self.gpus)] if self.gpus else None
            return execute(run_dir, self.threads, cores_for(slot, self.threads), gpus, live=self.live)
        finally:
            self.slots.put(slot)

    def stop(self) -> None:
        """Pass SIGTERM on to the running workers: each checkpoints its current step and exits EXIT_PREEMPTED."""
        self.live.signal_all(signal.SIGTERM)

    def submit(self, run_dir: str):
        return self.pool.submit(self._execute, run_dir)

    def _execute_group(self, run_dirs: list[str]) -> list[Outcome]:
        slot = self.slots.get()
        try:
            gpus = self.gpus[slot % len(self.gpus)] if self.gpus else None
            return execute_group(run_dirs, self.threads, cores_for(slot, self.threads), gpus, live=self.live)
        finally:
            self.slots.put(slot)

    def submit_group(self, run_dirs: list[str]):
        """One worker slot trains the group packed; the future's result is a list of Outcome."""
        return self.pool.submit(self._execute_group, run_dirs)

    def wait(self, futures: list, timeout: float) -> list:
        done, _ = concurrent.futures.wait(futures, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
        return list(done)

    @staticmethod
    def result(future) -> Outcome:
        return future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _interruptible() -> None:
    """Let Ray's cancel reach this task: it raises KeyboardInterrupt through Python's SIGINT handler, which does
    nothing when the worker inherited SIGINT ignored (a sweep started in the background of a script, or by
    pytest-xdist), and then the run trained on after its sweep had stopped."""
    with contextlib.suppress(ValueError):  # not the main thread: Ray runs tasks there, but never fail on it
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _ray_execute(run_dir: str, threads: int, cwd: str | None = None) -> Outcome:
    """Ray task body: the same `execute`, on whichever node Ray placed it (which must see SWEEP_DIR)."""
    import zlib

    _interruptible()

    # Ray assigns CPU counts, not CPU ids: pin by the run id so that concurrent tasks usually differ.
    slot = zlib.crc32(Path(run_dir).name.encode())
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")  # set by Ray for tasks that asked for GPUs
    cwd = cwd if cwd and os.path.isdir(cwd) else None  # the driver's directory, where this node has it
    return execute(run_dir, threads, cores_for(slot, threads), gpus, cwd)


def _ray_execute_group(run_dirs: list[str], threads: int, cwd: str | None = None) -> list[Outcome]:
    """Ray task body for a packed group: `execute_group`, placed and pinned as `_ray_execute` is."""
    import zlib

    _interruptible()

    slot = zlib.crc32(Path(run_dirs[0]).name.encode())
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    cwd = cwd if cwd and os.path.isdir(cwd) else None
    return execute_group(run_dirs, threads, cores_for(slot, threads), gpus, cwd)


# A sweep has no business on the network: no usage statistics and no prompt about them (a user's own
# setting wins). What Ray still does, whatever these say: its head asks cloud metadata servers
# (169.254.169.254, metadata.google.internal) once for the cluster's provider, and each node finds its
# own address by connect()ing a UDP socket towards 8.8.8.8, which sends nothing; offline both fail at
# once and Ray carries on (tests/test_bad_input_sweeps.py runs sweeps in a namespace with no network).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_USAGE_STATS_PROMPT_ENABLED": "0"}


def _set_ray_env(address: str | None) -> None:
    """RAY_ENV, and for the one-machine cluster we start, token authentication with a token of its own in
    the environment (Ray would otherwise enable it with a notice on every run and keep a token in ~/.ray).
    Set before Ray is imported (it reads its settings then) and inherited by every process it starts; a
    user's own setting wins."""
    import secrets

    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    if not address and "RAY_AUTH_MODE" not in os.environ and "ray" not in sys.modules:
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))


def _init_ray(ray, address: str | None, env: dict, neutral_dir: Path) -> None:
    """ray.init from `neutral_dir`: Ray puts the driver's working directory first on its workers' sys.path
    (JobConfig py_driver_sys_path), which would let a sweeps/ package there stand in for ours in the tasks."""
    import warnings

    previous = os.getcwd()
    neutral_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(neutral_dir)
    try:
        with warnings.catch_warnings():
            # Planning imported JAX, which warns at every fork; Ray's forks exec at once, so the child never
            # takes a JAX lock and the deadlock it warns of cannot happen.
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            if address:
                ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
            else:  # a one-machine cluster that lives as long as this process
                with _home_without_cloud_probe(neutral_dir, env):
                    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, runtime_env={"env_vars": env},
                             log_to_driver=False)
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def _home_without_cloud_probe(neutral_dir: Path, env: dict):
    """Ray's head asks cloud metadata servers (169.254.169.254, metadata.google.internal) which cloud it is
    on unless ~/ray_bootstrap_config.yaml names a provider, whatever the usage-stats setting. The local
    cluster's processes get a HOME inside the sweep directory that names one ("local"); the training tasks
    get the user's real HOME back through the runtime env, so caches stay where they were."""
    home = neutral_dir / ".ray-home"
    home.mkdir(exist_ok=True)
    (home / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")
    real = os.environ.get("HOME")
    if real is not None:
        env.setdefault("HOME", real)
    os.environ["HOME"] = str(home)
    try:
        yield
    finally:
        if real is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = real


class RayExecutor:
    """Each run is a Ray task asking for `threads` CPUs and `gpus_per_run` GPUs (default: 1 when the
    cluster has GPUs). `neutral_dir` (the sweep directory) is where Ray is started from."""

    def __init__(self, address: str | None, workers: int | None, threads: int, gpus_per_run: float | None,
                 neutral_dir: str | Path = "."):
        _set_ray_env(address)
        try:
            import ray
        except ImportError:
            from scaling.errors import ScalingError
            raise ScalingError("--executor ray needs the ray package: pip install 'ray>=2.50' "
                               "(or use --executor local)") from None

        env = {k: os.environ[k] for k in ("SCALING_CACHE", "JAX_PLATFORMS", "XLA_FLAGS") if k in os.environ}
        if not ray.is_initialized():
            _init_ray(ray, address, env, Path(neutral_dir).resolve())
        self.ray = ray
        resources = ray.cluster_resources()
        if gpus_per_run is None:
            gpus_per_run = 1.0 if resources.get("GPU") else 0.0
        self.workers = workers or max(1, int(resources.get("CPU", 1)) // threads)
        self.threads = threads
        self.cwd = os.getcwd()
        self.task = ray.remote(num_cpus=threads, num_gpus=gpus_per_run, max_retries=0)(_ray_execute)
        self.submitted: list = []  # the tasks not yet read back, for `stop`
        self.cancel_requested = False  # set by `stop` (in a signal handler), acted on by `wait`
        self.cancelled: set = set()
        self.group_task = ray.remote(num_cpus=threads, num_gpus=gpus_per_run, max_retries=0)(_ray_execute_group)

    def submit(self, run_dir: str):
        # Absolute: Ray's workers do not run in our working directory.
        self.submitted.append(self.task.remote(os.path.abspath(run_dir), self.threads, self.cwd))
        return self.submitted[-1]

    def stop(self) -> None:
        """Ask to cancel the submitted tasks: a waiting one never starts, and Ray raises KeyboardInterrupt in a
        running one, which passes SIGTERM on to its worker (`wait_passing_interrupt`): the run checkpoints and
        stops. `stop` runs inside the sweep's signal handler, where a Ray call can interrupt Ray's own client
        mid-request, so the cancels are sent by the next `wait`, at most one poll later."""
        self.cancel_requested = True

    def _send_cancels(self) -> None:
        for future in self.submitted:
            if future not in self.cancelled:
                self.ray.cancel(future)
                self.cancelled.add(future)

    def submit_group(self, run_dirs: list[str]):
        """One task trains the group packed; its result is a list of Outcome."""
        self.submitted.append(self.group_task.remote([os.path.abspath(d) for d in run_dirs], self.threads, self.cwd))
        return self.submitted[-1]

    def wait(self, futures: list, timeout: float) -> list:
        if self.cancel_requested:
            self._send_cancels()
        done, _ = self.ray.wait(futures, num_returns=len(futures), timeout=timeout)
        return done

    def result(self, future) -> Outcome:
        self.submitted = [f for f in self.submitted if f != future]
        return self.ray.get(future)

    def close(self) -> None:
        pass  # a cluster we started ends with this process; one we joined is not ours to stop


@dataclasses.dataclass
class Tally:
    finished: dict[str, str] = dataclasses.field(default_factory=dict)  # run id -> status this invocation
    skipped: int = 0  # already finished before this invocation
    failures: dict[str, str] = dataclasses.field(default_factory=dict)  # run id -> error
    preempted: list[str] = dataclasses.field(default_factory=list)  # stopped by a signal; the next run resumes them
    stopped: bool = False  # this sweep got SIGTERM/SIGINT and started no new run after it


STOPPING_SWEEP = "no new run starts; the running ones checkpoint their current step and stop"


def run_sweep(sweep_dir: str | Path, records: list[dict], executor, retries: int = 1,
              on_event: Callable[[str, dict, Outcome | None], None] | None = None, poll_s: float = 0.5,
              pack: bool = False) -> Tally:
    """Run every unfinished run of `records` once; returns what happened. Blocks until all are finished
    (including runs that another process holds: they are waited for, not duplicated), or, after SIGTERM or
    SIGINT, until the running runs have checkpointed and stopped (see `_stop`). `pack`: runs of one pack_key
    that are ready together train as one packed group (executor.submit_group), each member still locked,
    reported and retried as a run of its own."""
    with stop_on_signals(STOPPING_SWEEP, on_first=getattr(executor, "stop", None)) as stop:
        return _schedule(Path(sweep_dir), records, executor, retries, on_event or (lambda *_: None), poll_s, stop,
                         pack)


def _stop(executor, todo: list[str], in_flight: dict, tally: Tally) -> None:
    """After the signal: start nothing more. The executor's `stop` has passed it on to the running runs, which
    are waited for; an executor without one (its runs live beyond this process, or end with it) is not."""
    todo.clear()
    tally.stopped = True
    if not hasattr(executor, "stop"):
        in_flight.clear()


def _pack_mates(sweep_dir: Path, run_id: str, todo: list[str], by_id: dict, free_workers: int) -> list[str]:
    """The runs waiting in `todo` that may train packed with `run_id` now: the same pack_key, not held by
    another process and not finished (those are left to the scheduler's own checks). The ready runs of a
    key are split evenly over the free workers, so that packing never leaves idle a worker that would have
    trained one of them."""
    key = pack_key(by_id[run_id])
    if key is None:
        return []
    mates = []
    for other in todo:
        directory = store.run_dir(sweep_dir, other)
        if other != run_id and pack_key(by_id[other]) == key and not store.is_locked(directory) \
                and (store.read_summary(directory) or {}).get("status") not in FINAL:
            mates.append(other)
    size = min(MAX_PACK, math.ceil((len(mates) + 1) / max(1, free_workers)))
    return mates[:size - 1]


def _submit(executor, sweep_dir: Path, run_id: str, todo: list[str], by_id: dict, in_flight: dict, pack: bool,
            notify) -> None:
    """Start `run_id`, with its pack mates as one group when packing; each member leaves `todo`."""
    free = executor.workers - len(in_flight)
    members = [run_id, *(_pack_mates(sweep_dir, run_id, todo, by_id, free) if pack else [])]
    for member in members:
        todo.remove(member)
        notify("start", by_id[member], None)
    if len(members) > 1:
        in_flight[executor.submit_group([str(store.run_dir(sweep_dir, m)) for m in members])] = tuple(members)
    else:
        in_flight[executor.submit(str(store.run_dir(sweep_dir, run_id)))] = run_id


def _outcomes(executor, future, run_ids: str | tuple[str, ...]) -> list[Outcome]:
    """The outcomes of a finished submission: one run's, or each member's of a packed group."""
    members = (run_ids,) if isinstance(run_ids, str) else run_ids
    try:
        result = executor.result(future)
    except Exception as err:  # noqa: BLE001 - e.g. a Ray worker lost with its node
        return [Outcome(run_id, FAILED, f"executor error: {type(err).__name__}: {err}") for run_id in members]
    return result if isinstance(result, list) else [result]


def _schedule(sweep_dir: Path, records: list[dict], executor, retries: int, notify, poll_s: float,
              stop: threading.Event, pack: bool = False) -> Tally:
    tally = Tally()
    by_id = {r["run_id"]: r for r in records}
    todo: list[str] = []
    for record in records:
        summary = store.read_summary(store.run_dir(sweep_dir, record["run_id"]))
        if summary and summary.get("status") in FINAL:
            tally.skipped += 1
        else:
            todo.append(record["run_id"])
    failed_attempts: dict[str, int] = {}
    in_flight: dict = {}
    while todo or in_flight:
        if stop.is_set():
            _stop(executor, todo, in_flight, tally)
        for run_id in list(todo):
            if len(in_flight) >= executor.workers:
                break
            if run_id not in todo:
                continue  # submitted just now, packed with an earlier run
            record, directory = by_id[run_id], store.run_dir(sweep_dir, run_id)
            summary = store.read_summary(directory)
            if summary and summary.get("status") in FINAL and run_id not in failed_attempts:
                todo.remove(run_id)  # another process finished it
                tally.finished[run_id] = summary["status"]
                notify("done elsewhere", record, None)
                continue
            if record.get("role") == "branch" and not store.has_checkpoint(directory) \
                    and not store.branch_source_ready(sweep_dir, record):
                parent = store.read_summary(store.run_dir(sweep_dir, record["parent_run_id"]))
                if parent and parent.get("status") in FINISHED and not store.is_locked(
                        store.run_dir(sweep_dir, record["parent_run_id"])):
                    error = (f"parent run {record['parent_run_id']} ended '{parent['status']}' before the branch point "
                             f"(step {record['branch_step']})")
                    store.record_failure(directory, record, error)
                    todo.remove(run_id)
                    tally.finished[run_id] = FAILED
                    tally.failures[run_id] = error
                    notify(FAILED, record, Outcome(run_id, FAILED, error))
                continue  # wait for the parent
            if store.is_locked(directory):
                continue  # another sweep process is training it; look again later
            _submit(executor, sweep_dir, run_id, todo, by_id, in_flight, pack, notify)
        notify("tick", None, None)
        if not in_flight:
            time.sleep(poll_s)
            continue
        ended = executor.wait(list(in_flight), timeout=poll_s)
        for outcome in [o for future in ended for o in _outcomes(executor, future, in_flight.pop(future))]:
            run_id = outcome.run_id
            record = by_id[run_id]
            if outcome.status in ("locked", "no_source"):
                todo.append(run_id)  # someone else has it, or the parent's checkpoint vanished: look again
                continue
            if outcome.status == PREEMPTED or (tally.stopped and outcome.status == FAILED):
                tally.preempted.append(run_id)  # not a failure: the signal may be what ended it
                notify(PREEMPTED, record, outcome)
                continue
            if outcome.status == FAILED:
                failed_attempts[run_id] = failed_attempts.get(run_id, 0) + 1
                if failed_attempts[run_id] <= retries:
                    notify("retry", record, outcome)
                    todo.append(run_id)
                    continue
                store.record_failure(store.run_dir(sweep_dir, run_id), record, outcome.error or "unknown error")
                tally.failures[run_id] = outcome.error or "unknown error"
            tally.finished[run_id] = outcome.status
            notify(outcome.status, record, outcome)
    return tally
