"""`scaling sweep plan|run|status|collect`: size x budget sweeps from TOML specs in sweeps/."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from scaling.run_status import DIVERGED, FAILED, FINAL, PREEMPTED

EPILOG = """\
examples:
  scaling sweep plan sweeps/quickstart.toml
  scaling sweep run sweeps/quickstart.toml --out sweeps_out/quickstart --workers 2
  scaling sweep status sweeps_out/quickstart
  scaling sweep collect sweeps_out/quickstart          # -> sweeps_out/quickstart/results.parquet

Re-running `sweep run` on the same --out skips finished runs, resumes interrupted ones from their
checkpoints and starts the rest; several `sweep run` processes (or machines sharing the directory)
may work on one sweep at once: a lock per run makes each run train in one place only. A spec that
plans other runs than the sweep directory's is refused unless --force, which re-plans the directory
and keeps every finished run in results.parquet. SIGTERM or Ctrl-C stops `sweep run` cleanly: no new run
starts, the running ones checkpoint their current step and stop ("preempted" in `sweep status`), and it
exits 75; running it again resumes them.
"""


def register(subparsers):
    """Add `sweep` and its subcommands; returns the `sweep plan` parser, which the top-level CLI extends
    (--audit: analysis, which sweeps may not import)."""
    parser = subparsers.add_parser("sweep", help="plan, run, monitor and collect model-size x budget sweeps",
                                   description="Sweeps of runs from a TOML spec (kinds: isoflop, grid, wsd; see "
                                               "sweeps/*.toml).", epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND", required=True)

    def spec_args(p):
        p.add_argument("spec", metavar="SPEC", help="sweep spec, e.g. sweeps/quickstart.toml")
        p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                       help="override a spec key, e.g. --set base.train.seq_len=64 or --set hparams.lr=1e-3")
        p.add_argument("--threads", type=int, default=None,
                       help="CPU threads per run (default 1 on CPU, CPUs / GPUs on GPU); results depend on it, "
                            "not on --workers")
        p.add_argument("--workers", type=int, default=None,
                       help="runs at once (default: one per GPU, or CPUs / threads)")

    plan = sub.add_parser("plan", help="print the runs of a spec and their cost, without training")
    spec_args(plan)
    plan.add_argument("--no-estimate", action="store_true", help="skip the throughput probe and time estimates")
    plan.add_argument("--out", metavar="SWEEP_DIR", default=None,
                      help="prior = 'adaptive' only: the sweep directory whose finished budgets centre the next "
                           "(read, never written)")
    plan.set_defaults(func=cmd_plan)

    run = sub.add_parser("run", help="run a sweep (resumable; safe to run concurrently on one --out)")
    spec_args(run)
    run.add_argument("--out", metavar="SWEEP_DIR", required=True,
                     help="sweep directory: new, empty, or one of this spec's (resumed)")
    run.add_argument("--force", action="store_true",
                     help="re-plan a sweep directory of another spec (its finished runs stay in results.parquet)")
    run.add_argument("--executor", choices=("local", "ray", "slurm"), default="local",
                     help="local worker processes (default), tasks on a Ray cluster, or one SLURM job per run")
    run.add_argument("--retries", type=int, default=1, help="extra attempts for a failed run (default 1)")
    run.add_argument("--gpus-per-run", type=float, default=None, help="Ray: GPUs per run (default 1 if GPUs)")
    run.add_argument("--ray-address", default=None,
                     help="Ray cluster to join (e.g. auto or HOST:6379); default: start one on this machine")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--pack", action=argparse.BooleanOptionalAction, default=None,
                     help="train the runs of one shape that differ only in lr/seed as one vmapped program "
                          "(default: on when this machine has a GPU/TPU; off on CPU, where only sweeps of very short "
                          "runs gained; local and ray executors)")
    slurm_args(run)
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="counts per status, progress of running runs, failures")
    status.add_argument("sweep_dir", metavar="SWEEP_DIR")
    status.set_defaults(func=cmd_status)

    collect = sub.add_parser("collect", help="write SWEEP_DIR/results.parquet (one row per finished run)")
    collect.add_argument("sweep_dir", metavar="SWEEP_DIR")
    collect.add_argument("--out", default=None, help="output file (default SWEEP_DIR/results.parquet)")
    collect.set_defaults(func=cmd_collect)
    return plan


def slurm_args(run) -> None:
    """--slurm-*: override the spec's [slurm] table (see sweeps/slurm.py)."""
    group = run.add_argument_group("SLURM (--executor slurm; each overrides the spec's [slurm] key)")
    group.add_argument("--slurm-partition", metavar="NAME", help="partition to submit to (default: the cluster's)")
    group.add_argument("--slurm-time", metavar="TIME",
                       help="time limit per run: minutes or [days-]hours:minutes:seconds")
    group.add_argument("--slurm-cpus-per-task", type=int, metavar="N", help="CPUs per run (default --threads)")
    group.add_argument("--slurm-gpus", type=int, metavar="N", help="GPUs per run")
    group.add_argument("--slurm-mem", metavar="SIZE", help="memory per run, e.g. 8G")
    group.add_argument("--slurm-account", metavar="NAME", help="account to charge")
    group.add_argument("--slurm-arg", action="append", default=[], dest="slurm_extra", metavar="ARG",
                       help="a further sbatch argument, e.g. --slurm-arg=--qos=low (repeatable)")


def _slurm_executor(args, spec, threads: int, n_runs: int):
    """The SLURM executor (None for the other executors, which take no --slurm-* flag)."""
    from scaling.errors import ConfigError
    from sweeps import slurm

    flags = {key: getattr(args, f"slurm_{key}") for key in slurm.FIELDS}
    if args.executor != "slurm":
        given = [slurm.flag(key) for key, value in flags.items() if value not in (None, [])]
        if given:
            raise ConfigError(f"{given[0]} applies to --executor slurm only; add --executor slurm or remove it")
        return None
    return slurm.SlurmExecutor(slurm.with_flags(spec.slurm, flags), threads, args.workers or n_runs)


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


def _load_plan(args):
    from sweeps import spec as spec_lib
    from sweeps.planner import make_plan

    spec = spec_lib.load(args.spec, args.overrides)  # spec errors surface before JAX starts
    spec = _with_adaptive_centres(spec, args)
    _quiet_jax()
    return spec, make_plan(spec)


def _with_adaptive_centres(spec, args):
    """prior = "adaptive": the spec with the centres of the budgets ready to plan (sweeps.adaptive)."""
    from scaling.errors import ConfigError
    from sweeps import adaptive

    out = getattr(args, "out", None)
    if not adaptive.is_adaptive(spec):
        if out is not None and args.sweep_command == "plan":
            raise ConfigError(f"--out {out}: `sweep plan --out` reads an adaptive sweep's results; {args.spec} "
                              "is not adaptive (isoflop.prior = 'adaptive'); remove --out")
        return spec
    return adaptive.with_centres(spec, adaptive.stages(spec, Path(out) if out else None))


def _adaptive_lines(spec, sweep_dir, stage_list=None) -> list[str]:
    """`stage_list`: the stages already computed for `sweep_dir` (None: compute them)."""
    from sweeps import adaptive

    lines = adaptive.describe(adaptive.stages(spec, sweep_dir) if stage_list is None else stage_list)
    return [f"adaptive centring (isoflop.prior {spec.isoflop.prior.text}), smallest budget first:"] + \
        [f"  {line}" for line in lines]


def _check_counts(args) -> None:
    """Refuse counts that mean nothing before anything is planned or written."""
    from scaling.errors import ConfigError

    for flag, least in (("threads", 1), ("workers", 1), ("retries", 0), ("gpus_per_run", 0)):
        value = getattr(args, flag, None)
        if value is not None and value < least:
            raise ConfigError(f"--{flag.replace('_', '-')} {value}: must be at least {least} (or leave it out "
                              "for the default)")


PACK_ON_CPU = False  # bench/sweep_pack.py on 2 cores: slower unless the runs are very short (BENCHMARKS.md)


def _pack(args) -> bool:
    """--pack/--no-pack, else on where this machine's JAX backend is an accelerator (GPU/TPU)."""
    if args.executor == "slurm":
        if args.pack:
            from scaling.errors import ConfigError

            raise ConfigError("--pack: the slurm executor submits one job per run and cannot pack; use "
                              "--executor local or ray, or leave --pack out")
        return False
    if args.pack is not None:
        return args.pack
    import jax

    return jax.default_backend() != "cpu" or PACK_ON_CPU


def _parallelism(args, gpus: list[str]) -> tuple[int, int]:
    # On CPU one thread per run (small models scale poorly with threads; more runs at once do better);
    # on GPU the CPUs are shared among the GPUs' workers, which feed their device.
    cpus = os.cpu_count() or 1
    threads = args.threads if args.threads is not None else (max(1, cpus // len(gpus)) if gpus else 1)
    workers = args.workers if args.workers is not None else (len(gpus) if gpus else max(1, cpus // threads))
    return threads, workers


def format_plan(plan, estimate=None, workers: int = 1) -> str:
    from sweeps.throughput import format_seconds

    axes = plan.spec.hparams.axes
    # A list axis names itself at the end of each label, so the label column widens to show it whole.
    width = max(24, *(len(run.label) for run in plan.runs)) if axes and plan.runs else 24
    header = (f"{'run_id':12} {'role':6} {'label':{width}} {'d':>5} {'L':>3} {'H':>3} {'d_ff':>5} {'N':>11} "
              f"{'N_nonemb':>11} {'D':>12} {'D/N':>7} {'steps':>7} {'lr':>8} {'C_6ND':>9} {'C_6ND_ne':>9} "
              f"{'C_exact':>9} {'est':>6}")
    lines = [f"sweep '{plan.spec.name}' ({plan.spec.kind}) from {plan.spec.path}: {len(plan.runs)} runs"]
    if axes:
        product = " x ".join(f"{key} {list(values)}" for key, values in axes)
        lines.append(f"hyperparameter axes: {product} = {len(plan.spec.hparams.points())} runs per point")
    lines.append(header)
    for run in plan.runs:
        m, counts, flops = run.config.model, run.counts, run.flops
        est = format_seconds(estimate.seconds[run.run_id]) if estimate else "-"
        lines.append(f"{run.run_id:12} {run.role:6} {run.label[:width]:{width}} {m.d_model:5d} {m.n_layers:3d} "
                     f"{m.n_heads:3d} {m.d_ff:5d} {counts['n_params']:11,d} {counts['n_params_nonembedding']:11,d} "
                     f"{run.tokens:12,d} {run.tokens / counts['n_params']:7.2f} {run.steps:7d} "
                     f"{run.config.train.lr:8.2g} {flops['flops_6nd']:9.3g} {flops['flops_6nd_nonembed']:9.3g} "
                     f"{flops['flops_exact']:9.3g} {est:>6}")
    lines.append(f"total compute: C_exact {plan.total_flops('flops_exact'):.4g} FLOPs, C_6ND "
                 f"{plan.total_flops('flops_6nd'):.4g}, C_6ND_nonembed {plan.total_flops('flops_6nd_nonembed'):.4g}; "
                 f"vocab {plan.vocab_size}, {plan.unique_tokens:,} unique training tokens")
    if estimate:
        lines.append(f"estimated time: {format_seconds(estimate.total())} of training, about "
                     f"{format_seconds(estimate.total(workers))} with {workers} worker(s); {estimate.how}")
    if plan.budgets:
        lines.append(f"predicted optimum per budget (isoflop.prior {plan.spec.isoflop.prior.text}):")
        lines += [f"  {budget.describe()}" for budget in plan.budgets]
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines)


def cmd_plan(args, extra=None) -> int:
    """Print the plan; `extra(plan)`, when given, returns text printed after it (the design audit)."""
    _check_counts(args)
    spec, plan = _load_plan(args)
    threads, workers = _parallelism(args, _local_gpus())
    estimate = None
    if not args.no_estimate:
        from sweeps.throughput import measure

        estimate = measure(plan, threads)
    print(format_plan(plan, estimate, workers))
    if spec.isoflop is not None and spec.isoflop.adaptive:
        print("\n".join(_adaptive_lines(spec, Path(args.out) if args.out else None)))
    if extra is not None:
        print(extra(plan))
    return 0


class Display:
    """Run starts and ends as lines; on a terminal also a bar of finished runs with running runs' steps."""

    def __init__(self, sweep_dir: Path, records: list[dict], done_before: int, enabled: bool):
        from sweeps import store

        self.store, self.sweep_dir, self.enabled = store, sweep_dir, enabled
        self.total, self.done = len(records), done_before
        self.running: dict[str, dict] = {}
        self.last_line = time.monotonic()
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=done_before, unit="run", file=sys.stderr, dynamic_ncols=True)

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif self.enabled:
            print(text, file=sys.stderr, flush=True)

    def progress(self) -> str:
        parts = []
        for run_id, record in self.running.items():
            last = self.store.last_metrics(self.store.run_dir(self.sweep_dir, run_id)) or {}
            parts.append(f"{run_id[:6]} {last.get('step', 0)}/{record['config']['train']['steps']}")
        return " | ".join(parts)

    def __call__(self, event: str, record: dict | None, outcome) -> None:
        if event == "tick":
            if self.bar is not None:
                self.bar.set_postfix_str(self.progress(), refresh=True)
            elif self.enabled and self.running and time.monotonic() - self.last_line > 30:
                self.say(f"[{self.done}/{self.total}] running: {self.progress()}")
                self.last_line = time.monotonic()
            return
        run_id = record["run_id"]
        if event == "start":
            self.running[run_id] = record
            self.say(f"[{self.done}/{self.total}] start {run_id} {record['label']}")
            return
        self.running.pop(run_id, None)
        if event == "retry":
            self.say(f"retry {run_id} {record['label']}: {outcome.error}")
            return
        if event == PREEMPTED:  # not done: the next `sweep run` resumes it
            self.say(f"[{self.done}/{self.total}] preempted {run_id} {record['label']} (checkpointed)")
            return
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        directory = self.store.run_dir(self.sweep_dir, run_id)
        summary = self.store.read_summary(directory) or {}
        detail = f"val_loss {summary['final_val_loss']:.4f}" if summary.get("final_val_loss") else (
            outcome.error if outcome and outcome.error else "")
        took = f" in {outcome.seconds:.0f}s" if outcome and outcome.seconds else ""
        self.say(f"[{self.done}/{self.total}] {event} {run_id} {record['label']}{took} {detail}")
        for line in _notable_lines(directory):
            self.say(f"    {line}")

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


def cmd_run(args) -> int:
    """`sweep run`. An adaptive spec runs stage by stage: each pass plans the budgets whose centre is
    known, trains them, and the next pass centres the budgets those results made ready; it stops when a
    pass centres no new budget (all done, or a run failed)."""
    from sweeps import adaptive
    from sweeps import spec as spec_lib

    if not adaptive.is_adaptive(spec_lib.load(args.spec, args.overrides)):
        return _run_stage(args)
    ready = -1
    while True:
        spec = _with_adaptive_centres(spec_lib.load(args.spec, args.overrides), args)
        now = len(spec.isoflop.centres)
        if now == ready:
            return 0
        ready, code = now, _run_stage(args)
        if code != 0:
            return code


def _run_stage(args) -> int:
    from sweeps import adaptive, collector, store
    from sweeps.executors import LocalExecutor, RayExecutor, run_sweep

    _check_counts(args)
    spec, plan = _load_plan(args)
    sweep_dir = Path(args.out)
    # Parents first (their branches wait on them), then the dearest runs, so that the sweep ends evenly.
    order = sorted(plan.runs, key=lambda r: (r.role != "parent", r.role == "branch", -r.flops["flops_exact"]))
    records = [run.record(spec) for run in order]
    _check_sweep_dir(sweep_dir, str(args.spec), [r["run_id"] for r in records], args.force,
                     grows=adaptive.is_adaptive(spec))
    gpus = _local_gpus() if args.executor == "local" else []
    threads, workers = _parallelism(args, gpus)
    pack = _pack(args)
    # Checked before the plan is written: a bad partition or a missing sbatch leaves nothing behind.
    slurm_executor = _slurm_executor(args, spec, threads, len(records))
    store.write_plan(sweep_dir, Path(args.spec).read_text(), spec.name, str(args.spec), records, args.overrides)
    if adaptive.is_adaptive(spec):  # each centre is recorded with the plan, and used as recorded from then on
        stage_list = adaptive.stages(spec, sweep_dir)  # reads every run's summary: once, for both
        adaptive.record(sweep_dir, stage_list)
        for line in _adaptive_lines(spec, sweep_dir, stage_list):
            print(line, file=sys.stderr)
    if args.executor == "ray":  # GPUs per run default from the cluster's GPUs, not this machine's
        executor = RayExecutor(args.ray_address, args.workers, threads, args.gpus_per_run, neutral_dir=sweep_dir)
    elif slurm_executor is not None:
        executor = slurm_executor
    else:
        executor = LocalExecutor(workers, threads, gpus)
    print(f"sweep '{spec.name}': {len(records)} runs in {sweep_dir}, {args.executor} executor, "
          f"{executor.workers} worker(s) x {threads} thread(s)" + (f", GPUs {','.join(gpus)}" if gpus else "")
          + (", packing runs that differ only in lr/seed" if pack else ""), file=sys.stderr)
    done_before = sum(1 for r in records if (store.read_summary(store.run_dir(sweep_dir, r["run_id"])) or {})
                      .get("status") in FINAL)
    display = Display(sweep_dir, records, done_before, enabled=not args.quiet)
    try:
        tally = run_sweep(sweep_dir, records, executor, retries=args.retries, on_event=display, pack=pack)
    finally:
        display.close()
        executor.close()
    path, n_rows = collector.collect(sweep_dir)
    _warn(collector.problems(sweep_dir))
    counts = {}
    for record in records:
        state = store.run_state(sweep_dir, record)
        counts[state.status] = counts.get(state.status, 0) + 1
    print(f"sweep '{spec.name}' done: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
          + f" ({tally.skipped} were already finished); {n_rows} rows in {path}")
    for run_id, error in tally.failures.items():
        print(f"failed {run_id}: {error}", file=sys.stderr)
    if tally.stopped or tally.preempted:
        from scaling.errors import EXIT_PREEMPTED

        print(f"sweep stopped by a signal: {len(tally.preempted)} running run(s) stopped, each resumable from its "
              "last checkpoint; run the same command again to resume them and start the rest", file=sys.stderr)
        return EXIT_PREEMPTED
    return 1 if tally.failures else 0


def _warn(lines: list[str]) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)


def cmd_status(args) -> int:
    from sweeps import slurm, store

    sweep_dir = Path(args.sweep_dir)
    records = store.load_records(sweep_dir)
    states = [(record, store.run_state(sweep_dir, record)) for record in records]
    counts: dict[str, int] = {}
    for _, state in states:
        counts[state.status] = counts.get(state.status, 0) + 1
    print(f"{sweep_dir}: {len(records)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for record, state in states:
        if state.status in store.IN_PROGRESS:
            print(f"  {state.status:11} {state.run_id} {record['label']:24} step {state.step}/{state.steps} "
                  f"({100 * state.step / state.steps:.0f}%)")
    for record, state in states:
        if state.status in (FAILED, DIVERGED):
            print(f"  {state.status:11} {state.run_id} {record['label']:24} {state.error}")
    for record, state in states:
        if state.status == store.CORRUPT:
            print(f"  {state.status} {state.run_id} {record['label']:24} step {state.step}/{state.steps}")
    _warn([f"run {s.run_id}: {s.error}" for _, s in states if s.status == store.CORRUPT])
    for line in slurm.status_lines(sweep_dir, records):  # nothing unless the sweep ran with --executor slurm
        print(line)
    return 0


def cmd_collect(args) -> int:
    from sweeps.collector import collect, problems

    path, n_rows = collect(args.sweep_dir, args.out)
    _warn(problems(args.sweep_dir))
    print(f"wrote {n_rows} rows to {path}")
    return 0
