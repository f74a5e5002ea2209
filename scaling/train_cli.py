"""`scaling train`: train one model from a TOML config and/or `--set key=value` overrides."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap

from scaling.run_status import COMPLETED

HELP_WIDTH = 110  # the epilog is preformatted (RawDescriptionHelpFormatter), so it is wrapped here


def _default_text(value) -> str:
    return "unset" if value is None else json.dumps(value)  # TOML's spelling, as in config.toml


def config_keys_help(width: int = HELP_WIDTH) -> str:
    """Every config key with its default and meaning, from the config dataclasses (scaling.config.option)."""
    from scaling.config import documented_keys

    rows = [(f"{key} = {_default_text(default)}", meaning) for key, default, meaning in documented_keys()]
    column = max(len(left) for left, _ in rows) + 4
    lines = textwrap.wrap("config keys (all optional; the default after '='), as [section] tables in --config "
                          "FILE.toml or as --set section.key=VALUE:", width)
    for left, meaning in rows:
        wrapped = textwrap.wrap(meaning, width - column) or [""]
        lines.append(f"  {left:<{column - 2}}{wrapped[0]}")
        lines += [" " * column + more for more in wrapped[1:]]
    return "\n".join(lines) + "\n"


EPILOG = config_keys_help() + """
examples:
  scaling train --set train.steps=200 --out runs/tiny
  scaling train --config scaling/configs/demo.toml --out runs/demo --set train.lr=1e-3

Re-running on an existing RUN_DIR resumes from its newest checkpoint (or, when only the summary is
missing, finishes from the final one); a completed run is not retrained. One process trains in a
RUN_DIR at a time (it holds RUN_DIR/.lock). SIGTERM or Ctrl-C stops the run after its current step with a
checkpoint there (summary.json status "preempted"); re-running resumes at that step.
Exit codes: 0 completed, 2 bad input or environment (one `error:` line), 3 diverged (non-finite loss),
75 preempted (stopped by SIGTERM/SIGINT, checkpointed; rerun to resume).

Multi-process runs: start the same command once per process with JAX_COORDINATOR_ADDRESS=host:port
JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i (0..N-1), or under srun with several tasks (README: Devices).
"""


def register(subparsers) -> None:
    from scaling.config import SECTIONS

    parser = subparsers.add_parser(
        "train", help="train one model; resumes when RUN_DIR already holds the run",
        description="Train one decoder-only transformer and write config, metrics.jsonl, checkpoints and "
                    "summary.json to RUN_DIR.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE.toml",
                        help=f"TOML config with {', '.join(f'[{name}]' for name in SECTIONS)}")
    parser.add_argument("--out", metavar="RUN_DIR", required=True, help="run directory (created; resumed if present)")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                        help="override one config key, e.g. --set train.lr=1e-3 (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--host-devices", type=int, default=None, metavar="N",
                        help="CPU only: split the CPUs into N data-parallel JAX devices (default: one per "
                             "usable CPU, up to 8, as many as divide the micro-batch; N must divide it; 1 = a single device "
                             "using all CPUs). Ignored on GPU/TPU and when XLA_FLAGS forces a device count.")
    parser.set_defaults(func=run)


PROCESS_VARIABLES = ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def distributed_arguments(environ) -> dict | None:
    """jax.distributed.initialize's arguments for this process, or None for a single-process run.

    JAX_COORDINATOR_ADDRESS=host:port (JAX's own variable) with JAX_NUM_PROCESSES=N and JAX_PROCESS_ID=i: the
    launch the README documents, one process per host (or several on one). With the address alone, under
    `srun` with several tasks (SLURM_STEP_NUM_TASKS > 1), or with SCALING_DISTRIBUTED=1, JAX finds the rest
    itself (SLURM, Open MPI, TPU pods)."""
    from scaling.errors import ConfigError

    given = {name: environ[name] for name in PROCESS_VARIABLES if environ.get(name)}
    address = environ.get("JAX_COORDINATOR_ADDRESS")
    missing = [name for name in ("JAX_COORDINATOR_ADDRESS", *PROCESS_VARIABLES) if not environ.get(name)]
    if given and missing:
        raise ConfigError(f"{' and '.join(missing)} not set: a multi-process run needs JAX_COORDINATOR_ADDRESS="
                          "host:port, JAX_NUM_PROCESSES=N and JAX_PROCESS_ID=i (0..N-1) together")
    if given:
        try:
            count, index = int(given["JAX_NUM_PROCESSES"]), int(given["JAX_PROCESS_ID"])
        except ValueError:
            count = index = -1
        if not 0 <= index < count:
            raise ConfigError(f"JAX_NUM_PROCESSES={given['JAX_NUM_PROCESSES']} and JAX_PROCESS_ID={given['JAX_PROCESS_ID']} "
                              "must be whole numbers with 0 <= JAX_PROCESS_ID < JAX_NUM_PROCESSES")
        return {"coordinator_address": address, "num_processes": count, "process_id": index}
    if address or environ.get("SCALING_DISTRIBUTED") == "1" or int(environ.get("SLURM_STEP_NUM_TASKS") or 1) > 1:
        return {}
    return None


def maybe_initialize_distributed() -> None:
    """Multi-process runs: join the others (see `distributed_arguments`) before JAX starts its backend. On CPU
    the processes' collectives go through gloo (jax_cpu_collectives_implementation, JAX's default here)."""
    arguments = distributed_arguments(os.environ)
    if arguments is None:
        return
    import jax

    try:
        jax.distributed.initialize(**arguments)
    except (ValueError, RuntimeError) as err:
        from scaling.errors import ConfigError

        raise ConfigError(f"cannot start the multi-process run ({' '.join(str(err).split())[:300]}); check "
                          "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID") from err


SHUTDOWN_NOISE = ("Event loop is closed", "Python is likely shutting down")


def ignore_shutdown_noise(hook):
    """An unraisable-exception hook that drops what orbax's abandoned writes raise while the interpreter
    exits after a failed save (a full disk): their event loops are closed by then. The failure itself has
    been reported as one `error:` line."""
    def hook_without_noise(unraisable) -> None:
        if not any(text in str(unraisable.exc_value) for text in SHUTDOWN_NOISE):
            hook(unraisable)
    return hook_without_noise


def run(args: argparse.Namespace) -> int:
    """Parse, call scaling.train, print; the process settings (logging, joining a multi-process run) are the
    entry point's."""
    import scaling
    from scaling import config as config_lib

    config = config_lib.load(args.config, args.overrides)  # config errors surface before JAX starts
    # Orbax logs each failure of its background writes (a full disk) with a traceback, through absl and as
    # asyncio's never-retrieved futures; train() raises the same failure as one line.
    for name in ("absl", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    sys.unraisablehook = ignore_shutdown_noise(sys.unraisablehook)
    maybe_initialize_distributed()
    summary = scaling.train(config, args.out, quiet=args.quiet, host_devices=getattr(args, "host_devices", None))
    import jax

    if jax.process_index() != 0:  # process 0 reports for a multi-process run
        return 0
    print(format_summary(summary))
    print(f"outputs: {os.path.abspath(args.out)} (summary.json, metrics.jsonl, config.toml, checkpoints/)")
    return 0 if summary["status"] == COMPLETED else 1


def format_summary(summary: dict) -> str:
    val, bpb = summary.get("final_val_loss"), summary.get("val_bpb")
    return (f"run {summary['run_id']} {summary['status']}: N={summary['n_params']:,} D={summary['tokens']:,} "
            f"C_exact={summary['flops_exact']:.3g} val_loss={val if val is None else round(val, 4)} "
            f"val_bpb={bpb if bpb is None else round(bpb, 4)}")


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace()))
