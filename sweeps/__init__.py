"""Sweeps of training runs from TOML specs (sweeps/*.toml): plan them, run them, collect their results.

The Python API mirrors `scaling sweep plan|run|collect`, with the same defaults and errors (a
scaling.errors.ConfigError carrying the CLI's one-line message); sweeps/cli.py parses the flags, calls these
functions and prints. Importing the package imports nothing heavy: each function imports what it needs.

    import sweeps
    plan = sweeps.plan("sweeps/quickstart.toml", estimate=False)  # SweepPlan: .to_frame(), a table in Jupyter
    result = sweeps.run("sweeps/quickstart.toml", "sweeps_out/quickstart", workers=2)  # SweepResult
    results = sweeps.collect("sweeps_out/quickstart")  # DataFrame; results.attrs["path"]: the parquet written
"""

from __future__ import annotations

import dataclasses
import html
import os
import sys
import time
from pathlib import Path
from typing import Any

from scaling.run_status import FINAL, PREEMPTED

EXECUTORS = ("local", "ray", "slurm")


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """The runs a spec plans (`plan`: sweeps.planner.Plan), with the time estimate when one was made."""

    plan: Any  # sweeps.planner.Plan
    estimate: Any = None  # sweeps.throughput.Estimate, or None without the probe
    workers: int = 1
    threads: int = 1
    adaptive_lines: tuple[str, ...] = ()  # prior = "adaptive": how each budget is (or will be) centred

    @property
    def runs(self) -> tuple:
        return self.plan.runs

    def to_frame(self):
        """One row per planned run: its shape, N, D, C under each formula, lr, and with an estimate its seconds."""
        import pandas as pd

        return pd.DataFrame([_plan_row(run, self.estimate) for run in self.plan.runs])

    def headline(self) -> str:
        spec = self.plan.spec
        head = (f"sweep '{spec.name}' ({spec.kind}) from {spec.path}: {len(self.plan.runs)} runs, C_exact "
                f"{self.plan.total_flops('flops_exact'):.4g} FLOPs")
        if self.estimate is not None:
            from sweeps.throughput import format_seconds

            head += f", about {format_seconds(self.estimate.total(self.workers))} with {self.workers} worker(s)"
        return head

    def __repr__(self) -> str:
        return f"<SweepPlan: {self.headline()}>"

    def _repr_html_(self) -> str:
        return _html_table(self.headline(), self.to_frame())


def _plan_row(run, estimate) -> dict:
    m, counts = run.config.model, run.counts
    row = {"run_id": run.run_id, "role": run.role, "label": run.label, "budget": run.budget,
           "d_model": m.d_model, "n_layers": m.n_layers, "n_heads": m.n_heads, "d_ff": m.d_ff, **counts,
           "tokens": run.tokens, "tokens_per_param": run.tokens / counts["n_params"], "steps": run.steps,
           "lr": run.config.train.lr, **run.flops}
    return row if estimate is None else {**row, "est_seconds": estimate.seconds[run.run_id]}


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """What one `run` did. `counts`: runs per status over the whole plan; `skipped`: runs already finished
    when it started; `failures`: run id -> error; `stopped`: SIGTERM/SIGINT stopped it (rerun to resume);
    `results_path`: the results.parquet it wrote (`n_rows` rows); `warnings`: damaged summaries."""

    name: str
    sweep_dir: Path
    counts: dict[str, int]
    skipped: int
    failures: dict[str, str]
    stopped: bool
    preempted: tuple[str, ...]
    results_path: Path
    n_rows: int
    warnings: tuple[str, ...]
    runs: tuple[dict, ...]  # per run: run_id, label, role, budget, n_params, flops_exact, status, step, steps, error

    def to_frame(self):
        """One row per planned run with its status now (and step, error)."""
        import pandas as pd

        return pd.DataFrame(list(self.runs))

    def headline(self) -> str:
        return (f"sweep '{self.name}' in {self.sweep_dir}: " + ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
                + f"; {self.n_rows} rows in {self.results_path}" + (" (stopped by a signal)" if self.stopped else ""))

    def __repr__(self) -> str:
        return f"<SweepResult: {self.headline()}>"

    def _repr_html_(self) -> str:
        return _html_table(self.headline(), self.to_frame())


def _html_table(headline: str, frame) -> str:
    """A notebook's display: the headline, then the frame as an HTML table."""
    return f"<p>{html.escape(headline)}</p>" + frame.to_html(index=False, float_format="{:.4g}".format)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """`run`'s arguments, as the `sweep run` flags name them."""

    spec: str
    out: Path
    overrides: tuple[str, ...] = ()
    workers: int | None = None
    threads: int | None = None
    executor: str = "local"
    pack: bool | None = None
    force: bool = False
    quiet: bool = True
    retries: int = 1
    gpus_per_run: float | None = None
    ray_address: str | None = None
    slurm: dict | None = None


def plan(spec, overrides=(), *, estimate: bool = True, threads: int | None = None, workers: int | None = None,
         out=None) -> SweepPlan:
    """The runs the spec file `spec` plans, with `overrides` ("key=value" strings, as `--set`). `estimate`:
    time the plan's cheapest and dearest models in worker processes to estimate each run's time (cached per
    machine; `--no-estimate` is estimate=False); `threads` and `workers` as in `run`. `out`: an adaptive
    spec's sweep directory, whose finished budgets centre the next (read, never written)."""
    _check_counts(threads=threads, workers=workers)
    spec_obj, planned = _load_plan(_spec_path(spec), _overrides(overrides), out, planning=True)
    threads, workers = _parallelism(threads, workers, _local_gpus())
    measured = None
    if estimate:
        from sweeps.throughput import measure

        print("timing the plan's cheapest and dearest models to estimate run times (a worker process each, "
              "cached per machine; tens of seconds the first time; --no-estimate skips it)", file=sys.stderr, flush=True)
        measured = measure(planned, threads)
    lines = ()
    if spec_obj.isoflop is not None and spec_obj.isoflop.adaptive:
        lines = tuple(_adaptive_lines(spec_obj, Path(out) if out else None))
    return SweepPlan(planned, measured, workers, threads, lines)


def run(spec, out, *, overrides=(), workers: int | None = None, threads: int | None = None, executor: str = "local",
        pack: bool | None = None, force: bool = False, quiet: bool = True, retries: int = 1,
        gpus_per_run: float | None = None, ray_address: str | None = None, slurm: dict | None = None) -> SweepResult:
    """Run the sweep the spec file `spec` plans into the sweep directory `out` (new, empty, or one of this
    spec's: finished runs are skipped, interrupted ones resumed) and collect out/results.parquet.

    Keywords are `sweep run`'s flags: `overrides` (--set), `workers` (runs at once; default one per GPU, or
    CPUs / threads), `threads` (CPU threads per run; default 1 on CPU), `executor` ("local", "ray" or
    "slurm"), `pack` (None: on where this machine has a GPU/TPU), `force` (re-plan another spec's
    directory), `quiet` (no progress display; the header line still goes to stderr), `retries`,
    `gpus_per_run` and `ray_address` (Ray), `slurm` (the --slurm-* flags without their prefix, e.g.
    {"partition": "gpu", "time": "1:00:00", "extra": ["--qos=low"]}). An adaptive spec runs stage by stage
    until no new budget can be centred (or a run failed). SIGTERM/SIGINT stops it cleanly (`stopped`)."""
    from sweeps import adaptive
    from sweeps import spec as spec_lib

    _check_counts(threads=threads, workers=workers, retries=retries, gpus_per_run=gpus_per_run)
    o = RunOptions(_spec_path(spec), Path(out), _overrides(overrides), workers, threads, executor, pack, force, quiet,
                   retries, gpus_per_run, ray_address, slurm)
    _check_executor(o)
    if not adaptive.is_adaptive(spec_lib.load(o.spec, o.overrides)):
        return _run_stage(o)
    ready, result = -1, None
    while True:
        staged = _with_adaptive_centres(spec_lib.load(o.spec, o.overrides), o.out, planning=False)
        if len(staged.isoflop.centres) == ready:
            return result
        ready, result = len(staged.isoflop.centres), _run_stage(o)
        if result.failures or result.stopped:
            return result


def collect(sweep_dir, out=None):
    """Write the results table (sweep_dir/results.parquet, or `out`) and return it as a pandas DataFrame,
    one row per finished run; `frame.attrs["path"]` is the file written and `frame.attrs["warnings"]` names
    the runs whose summary.json is damaged."""
    import pandas as pd

    from sweeps.collector import collect as write_results, problems

    path, _ = write_results(sweep_dir, out)
    frame = pd.read_parquet(path)
    frame.attrs["path"] = path
    frame.attrs["warnings"] = problems(sweep_dir)
    return frame


def _spec_path(spec) -> str:
    from scaling.errors import ConfigError

    if not isinstance(spec, (str, os.PathLike)):
        raise ConfigError(f"spec must be a sweep spec file's path, got {type(spec).__name__}; write the spec to a "
                          "TOML file (see sweeps/*.toml) and pass its path")
    return str(spec)


def _overrides(overrides) -> tuple[str, ...]:
    """`--set`'s "key=value" strings; one string alone is one override."""
    return (overrides,) if isinstance(overrides, str) else tuple(overrides)


def _check_counts(**counts) -> None:
    """Refuse counts that mean nothing before anything is planned or written."""
    from scaling.errors import ConfigError

    least = {"threads": 1, "workers": 1, "retries": 0, "gpus_per_run": 0}
    for name, value in counts.items():
        if value is not None and value < least[name]:
            raise ConfigError(f"--{name.replace('_', '-')} {value}: must be at least {least[name]} (or leave it out "
                              "for the default)")


def _check_executor(o: RunOptions) -> None:
    from scaling.errors import ConfigError
    from sweeps import slurm

    if o.executor not in EXECUTORS:
        raise ConfigError(f"--executor {o.executor}: choose one of {', '.join(EXECUTORS)}")
    unknown = sorted(set(o.slurm or {}) - set(slurm.FIELDS))
    if unknown:
        raise ConfigError(f"slurm option '{unknown[0]}' is not one of {', '.join(slurm.FIELDS)}")


def _quiet_jax() -> None:
    # The sweep process only plans; its workers own the accelerators, so it must not grab GPU memory.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _local_gpus() -> list[str]:
    import jax

    if jax.default_backend() != "gpu":
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",") if visible else [str(i) for i in range(jax.local_device_count())]


def _load_plan(spec_path, overrides, out, planning: bool):
    """(spec, plan) of the spec file; `out`: an adaptive sweep's directory; `planning`: for `sweep plan`."""
    from sweeps import spec as spec_lib
    from sweeps.planner import make_plan

    spec = spec_lib.load(spec_path, list(overrides))  # spec errors surface before JAX starts
    spec = _with_adaptive_centres(spec, Path(out) if out else None, planning, spec_path)
    _quiet_jax()
    return spec, make_plan(spec)


def _with_adaptive_centres(spec, out: Path | None, planning: bool, spec_path=None):
    """prior = "adaptive": the spec with the centres of the budgets ready to plan (sweeps.adaptive)."""
    from scaling.errors import ConfigError
    from sweeps import adaptive

    if not adaptive.is_adaptive(spec):
        if out is not None and planning:
            raise ConfigError(f"--out {out}: `sweep plan --out` reads an adaptive sweep's results; "
                              f"{spec_path or spec.path} is not adaptive (isoflop.prior = 'adaptive'); remove --out")
        return spec
    return adaptive.with_centres(spec, adaptive.stages(spec, out))


def _adaptive_lines(spec, sweep_dir, stage_list=None) -> list[str]:
    """`stage_list`: the stages already computed for `sweep_dir` (None: compute them)."""
    from sweeps import adaptive

    lines = adaptive.describe(adaptive.stages(spec, sweep_dir) if stage_list is None else stage_list)
    return [f"adaptive centring (isoflop.prior {spec.isoflop.prior.text}), smallest budget first:"] + \
        [f"  {line}" for line in lines]


PACK_ON_CPU = False  # bench/sweep_pack.py on 2 cores: slower unless the runs are very short (BENCHMARKS.md)


def _pack(executor: str, pack: bool | None) -> bool:
    """pack, else on where this machine's JAX backend is an accelerator (GPU/TPU)."""
    if executor == "slurm":
        if pack:
            from scaling.errors import ConfigError

            raise ConfigError("--pack: the slurm executor submits one job per run and cannot pack; use "
                              "--executor local or ray, or leave --pack out")
        return False
    if pack is not None:
        return pack
    import jax

    return jax.default_backend() != "cpu" or PACK_ON_CPU


def _parallelism(threads: int | None, workers: int | None, gpus: list[str]) -> tuple[int, int]:
    # On CPU one thread per run (small models scale poorly with threads; more runs at once do better);
    # on GPU the CPUs are shared among the GPUs' workers, which feed their device.
    cpus = os.cpu_count() or 1
    threads = threads if threads is not None else (max(1, cpus // len(gpus)) if gpus else 1)
    workers = workers if workers is not None else (len(gpus) if gpus else max(1, cpus // threads))
    return threads, workers


def _slurm_executor(o: RunOptions, spec, threads: int, n_runs: int):
    """The SLURM executor (None for the other executors, which take no --slurm-* flag)."""
    from scaling.errors import ConfigError
    from sweeps import slurm

    flags = {key: (o.slurm or {}).get(key) for key in slurm.FIELDS}
    if o.executor != "slurm":
        given = [slurm.flag(key) for key, value in flags.items() if value not in (None, [])]
        if given:
            raise ConfigError(f"{given[0]} applies to --executor slurm only; add --executor slurm or remove it")
        return None
    return slurm.SlurmExecutor(slurm.with_flags(spec.slurm, flags), threads, o.workers or n_runs)


def _check_sweep_dir(sweep_dir: Path, spec_path: str, run_ids: list[str], force: bool, grows: bool = False) -> None:
    """`sweep run` writes into a new or empty directory or a sweep directory planned from the same runs;
    another plan's directory only with --force (which keeps its finished runs), never a directory of the
    user's. `grows`: an adaptive sweep, whose plan gains the runs of each budget once it is centred."""
    from scaling.errors import ConfigError, ScalingError
    from sweeps import store

    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise ConfigError(f"--out {sweep_dir} exists and is not a directory; pass a sweep directory (new, or one "
                          "written by `scaling sweep run`)")
    if not (sweep_dir / "sweep.json").exists():
        # A plan is written runs/ first, sweep.json last: runs/ alone is a sweep killed while planning.
        foreign = [p.name for p in sweep_dir.iterdir() if p.name != "runs" and not p.name.startswith(".sweep.json.")] \
            if sweep_dir.is_dir() else []
        if foreign:
            raise ConfigError(f"--out {sweep_dir} is a non-empty directory that is not a sweep directory (no "
                              f"sweep.json; it holds {foreign[0]}); pass a new or empty directory")
        return
    try:
        sweep = store.read_sweep(sweep_dir)
    except ScalingError:
        if force:
            return  # rewritten from the spec; the runs' own directories are untouched
        raise
    planned = set(sweep["run_ids"])
    if planned != set(run_ids) and not force and not (grows and planned <= set(run_ids)):
        added, dropped = len(set(run_ids) - planned), len(planned - set(run_ids))
        raise ConfigError(f"--out {sweep_dir} holds sweep '{sweep.get('name')}' planned from {sweep.get('spec_path')} "
                          f"({len(planned)} runs); {spec_path} plans {len(run_ids)} runs, {added} of them new and "
                          f"{dropped} of the directory's missing: pass another --out, or --force to re-plan this "
                          "directory (its finished runs stay in results.parquet)")


def _executor(o: RunOptions, threads: int, workers: int, gpus: list[str], slurm_executor):
    from sweeps.executors import LocalExecutor, RayExecutor

    if o.executor == "ray":  # GPUs per run default from the cluster's GPUs, not this machine's
        return RayExecutor(o.ray_address, o.workers, threads, o.gpus_per_run, neutral_dir=o.out)
    if slurm_executor is not None:
        return slurm_executor
    return LocalExecutor(workers, threads, gpus)


def _run_stage(o: RunOptions) -> SweepResult:
    """Plan, record the plan, train every unfinished run, collect. One pass of an adaptive sweep."""
    from sweeps import adaptive, store
    from sweeps.executors import run_sweep

    spec, planned = _load_plan(o.spec, o.overrides, o.out, planning=False)
    # Parents first (their branches wait on them), then the dearest runs, so that the sweep ends evenly.
    order = sorted(planned.runs, key=lambda r: (r.role != "parent", r.role == "branch", -r.flops["flops_exact"]))
    records = [run.record(spec) for run in order]
    _check_sweep_dir(o.out, o.spec, [r["run_id"] for r in records], o.force, grows=adaptive.is_adaptive(spec))
    gpus = _local_gpus() if o.executor == "local" else []
    threads, workers = _parallelism(o.threads, o.workers, gpus)
    pack = _pack(o.executor, o.pack)
    # Checked before the plan is written: a bad partition or a missing sbatch leaves nothing behind.
    slurm_executor = _slurm_executor(o, spec, threads, len(records))
    store.write_plan(o.out, Path(o.spec).read_text(), spec.name, o.spec, records, list(o.overrides))
    if adaptive.is_adaptive(spec):  # each centre is recorded with the plan, and used as recorded from then on
        stage_list = adaptive.stages(spec, o.out)  # reads every run's summary: once, for both
        adaptive.record(o.out, stage_list)
        for line in _adaptive_lines(spec, o.out, stage_list):
            print(line, file=sys.stderr)
    executor = _executor(o, threads, workers, gpus, slurm_executor)
    print(f"sweep '{spec.name}': {len(records)} runs in {o.out}, {o.executor} executor, "
          f"{executor.workers} worker(s) x {threads} thread(s)" + (f", GPUs {','.join(gpus)}" if gpus else "")
          + (", packing runs that differ only in lr/seed" if pack else ""), file=sys.stderr, flush=True)
    display = Display(o.out, records, enabled=not o.quiet)
    try:
        tally = run_sweep(o.out, records, executor, retries=o.retries, on_event=display, pack=pack)
    finally:
        display.close()
        executor.close()
    return _result(spec.name, o.out, records, tally)


def _result(name: str, sweep_dir: Path, records: list[dict], tally) -> SweepResult:
    """Collect results.parquet and read each run's state now."""
    from sweeps import collector, store

    path, n_rows = collector.collect(sweep_dir)
    runs, counts = [], {}
    for record in records:
        state = store.run_state(sweep_dir, record)
        counts[state.status] = counts.get(state.status, 0) + 1
        runs.append({"run_id": record["run_id"], "label": record["label"], "role": record["role"],
                     "budget": record.get("budget"), "n_params": record["n_params"],
                     "flops_exact": record["flops_exact"], "status": state.status, "step": state.step,
                     "steps": state.steps, "error": state.error})
    return SweepResult(name, sweep_dir, counts, tally.skipped, dict(tally.failures), tally.stopped,
                       tuple(tally.preempted), path, n_rows, tuple(collector.problems(sweep_dir)), tuple(runs))


def run_work(record: dict) -> float:
    """The FLOPs (flops_exact) a run trains itself: a branch's steps before its branch point are its parent's."""
    steps = record["config"]["train"]["steps"]
    return record["flops_exact"] * (1 - (record.get("branch_step") or 0) / steps)


def work_done(record: dict, step: int) -> float:
    """The part of run_work(record) done once the run has reached `step`."""
    steps = record["config"]["train"]["steps"]
    own = max(0, min(step, steps) - (record.get("branch_step") or 0))
    return record["flops_exact"] * own / steps


def progress_text(done: float, total: float, rate: float | None) -> str:
    """E.g. "3.1e+12 of 7.7e+12 FLOPs (40%), ETA 3.0m": compute, with the time left at `rate` FLOP/s."""
    from sweeps.throughput import format_seconds

    eta = format_seconds((total - done) / rate) if rate else "-"
    return f"{done:.2g} of {total:.2g} FLOPs ({100 * done / total if total else 100:.0f}%), ETA {eta}"


def _compute_bar(total: float, done: float):
    """A bar of FLOPs on stderr, sized as scaling.progress sizes a run's bar: to the terminal's width, to $COLUMNS
    when the terminal reports zero columns (a bar sized to zero prints nothing), else None (plain lines)."""
    from tqdm import tqdm

    from scaling.progress import environment_columns, terminal_columns

    reported = terminal_columns(sys.stderr)
    columns = reported or environment_columns()
    if not columns:
        return None
    return tqdm(total=total, initial=done, file=sys.stderr, dynamic_ncols=bool(reported),
                ncols=None if reported else columns, bar_format="|{bar}| {desc}")


class Display:
    """Run starts and ends as lines, and the compute done of the sweep's total with an ETA from the compute rate
    so far: a bar on a terminal (with running runs' steps), a line every 30 s otherwise."""

    def __init__(self, sweep_dir: Path, records: list[dict], enabled: bool):
        from sweeps import store

        self.store, self.sweep_dir, self.enabled = store, sweep_dir, enabled
        self.by_id = {r["run_id"]: r for r in records}
        self.total_runs, self.total = len(records), sum(run_work(r) for r in records)
        self.finished, self.partial, self.running = 0.0, {}, {}
        self.done = 0
        for record in records:
            directory = store.run_dir(sweep_dir, record["run_id"])
            if (store.read_summary(directory) or {}).get("status") in FINAL:
                self.done, self.finished = self.done + 1, self.finished + run_work(record)
            elif enabled:  # progress made before this sweep started is not this sweep's rate
                self.partial[record["run_id"]] = work_done(record, (store.last_metrics(directory) or {}).get("step", 0))
        self.baseline, self.started, self.last_line = self.work(), time.monotonic(), time.monotonic()
        self.bar = _compute_bar(self.total, self.work()) if enabled and sys.stderr.isatty() else None

    def work(self) -> float:
        return self.finished + sum(self.partial.values())

    def compute_text(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = (self.work() - self.baseline) / elapsed if elapsed > 0 else None
        return progress_text(self.work(), self.total, rate if rate and rate > 0 else None)

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif self.enabled:
            print(text, file=sys.stderr, flush=True)

    def running_steps(self) -> str:
        """Each running run's step, read from its metrics; updates its compute done."""
        parts = []
        for run_id, record in self.running.items():
            step = (self.store.last_metrics(self.store.run_dir(self.sweep_dir, run_id)) or {}).get("step", 0)
            self.partial[run_id] = work_done(record, step)
            parts.append(f"{run_id[:6]} {step}/{record['config']['train']['steps']}")
        return " | ".join(parts)

    def tick(self) -> None:
        steps = self.running_steps()
        if self.bar is not None:
            self.bar.n = self.work()
            self.bar.set_description_str(f"{self.compute_text()} | {steps}" if steps else self.compute_text(), refresh=True)
        elif self.enabled and self.running and time.monotonic() - self.last_line > 30:
            self.say(f"{self.compute_text()}; running: {steps}")
            self.last_line = time.monotonic()

    def __call__(self, event: str, record: dict | None, outcome) -> None:
        if event == "tick":
            self.tick()
            return
        run_id = record["run_id"]
        if event == "start":
            self.running[run_id] = record
            self.say(f"[{self.done}/{self.total_runs}] start {run_id} {record['label']}")
            return
        self.running.pop(run_id, None)
        if event == "retry":
            self.say(f"retry {run_id} {record['label']}: {outcome.error}")
            return
        if event == PREEMPTED:  # not done: the next `sweep run` resumes it
            self.say(f"[{self.done}/{self.total_runs}] preempted {run_id} {record['label']} (checkpointed)")
            return
        self.done += 1
        self.partial.pop(run_id, None)
        self.finished += run_work(record)
        self.say(self.end_line(event, record, outcome))

    def end_line(self, event: str, record: dict, outcome) -> str:
        directory = self.store.run_dir(self.sweep_dir, record["run_id"])
        summary = self.store.read_summary(directory) or {}
        detail = f"val_loss {summary['final_val_loss']:.4f}" if summary.get("final_val_loss") else (
            outcome.error if outcome and outcome.error else "")
        took = f" in {outcome.seconds:.0f}s" if outcome and outcome.seconds else ""
        notes = "".join(f"\n    {line}" for line in _notable_lines(directory))
        return (f"[{self.done}/{self.total_runs}] {event} {record['run_id']} {record['label']}{took}"
                f"{' ' + detail if detail else ''}; {self.compute_text()}{notes}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _notable_lines(directory: Path) -> list[str]:
    """What a run's last attempt said about resuming or damaged checkpoints (from worker.log)."""
    path = directory / "worker.log"
    if not path.exists():
        return []
    text = path.read_text(errors="replace").rsplit("--- attempt at", 1)[-1]
    return [line.strip() for line in text.splitlines()
            if line.startswith(("warning: checkpoint", "resuming ", "branch: "))][:6]
