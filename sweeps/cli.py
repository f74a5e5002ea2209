"""`scaling sweep plan|run|status|collect`: size x budget sweeps from TOML specs in sweeps/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaling.run_status import DIVERGED, FAILED

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
    plan.add_argument("--no-estimate", action="store_true",
                      help="skip the time estimates and the probe behind them (timing the cheapest and dearest "
                           "models in worker processes: tens of seconds the first time on a machine)")
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


# bench/sweep_overhead.py plans and sizes a sweep as `sweep run` does, from its own parsed flags, through these three.
def _load_plan(args):
    """(spec, plan) as `sweep plan` or `sweep run` (args.sweep_command) plans them."""
    import sweeps

    return sweeps._load_plan(args.spec, args.overrides, getattr(args, "out", None), args.sweep_command == "plan")


def _local_gpus() -> list[str]:
    import sweeps

    return sweeps._local_gpus()


def _parallelism(args, gpus: list[str]) -> tuple[int, int]:
    import sweeps

    return sweeps._parallelism(args.threads, args.workers, gpus)


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
    import sweeps

    planned = sweeps.plan(args.spec, args.overrides, estimate=not args.no_estimate, threads=args.threads,
                          workers=args.workers, out=args.out)
    print(format_plan(planned.plan, planned.estimate, planned.workers))
    if planned.adaptive_lines:
        print("\n".join(planned.adaptive_lines))
    if extra is not None:
        print(extra(planned.plan))
    return 0


def cmd_run(args) -> int:
    """`sweep run`: sweeps.run with the flags, then its outcome as lines and an exit code."""
    import sweeps
    from sweeps import slurm

    result = sweeps.run(args.spec, args.out, overrides=args.overrides, workers=args.workers, threads=args.threads,
                        executor=args.executor, pack=args.pack, force=args.force, quiet=args.quiet,
                        retries=args.retries, gpus_per_run=args.gpus_per_run, ray_address=args.ray_address,
                        slurm={key: getattr(args, f"slurm_{key}") for key in slurm.FIELDS})
    _warn(result.warnings)
    print(f"sweep '{result.name}' done: " + ", ".join(f"{n} {s}" for s, n in sorted(result.counts.items()))
          + f" ({result.skipped} were already finished); {result.n_rows} rows in {result.results_path}")
    for run_id, error in result.failures.items():
        print(f"failed {run_id}: {error}", file=sys.stderr)
    if result.stopped or result.preempted:
        from scaling.errors import EXIT_PREEMPTED

        print(f"sweep stopped by a signal: {len(result.preempted)} running run(s) stopped, each resumable from its "
              "last checkpoint; run the same command again to resume them and start the rest", file=sys.stderr)
        return EXIT_PREEMPTED
    return 1 if result.failures else 0


def _warn(lines) -> None:
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
    import sweeps

    results = sweeps.collect(args.sweep_dir, args.out)
    _warn(results.attrs["warnings"])
    print(f"wrote {len(results)} rows to {results.attrs['path']}")
    return 0
