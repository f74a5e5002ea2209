"""The `scaling` command line. Each subcommand lives in its own module, which exposes
`register(subparsers)`; that module adds its parser and sets `func` (args -> exit code).
Modules keep heavy imports (jax, pandas) inside their functions so `--help` stays fast.
This package sits above scaling/, sweeps/ and analysis/, so it alone may import all three.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from scaling import xla_defaults
from scaling.errors import ScalingError
from scaling_cli import design_audit

# Order here is the order in `scaling --help`.
SUBCOMMAND_MODULES = (
    "scaling.train_cli",
    "sweeps.cli",
    "scaling_cli.fit",
    "scaling_cli.predict",
    "scaling_cli.moore",
    "scaling_cli.report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaling",
        description="Scaling-law experiments on JAX: train runs and sweeps, fit scaling laws, report.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered = {name: importlib.import_module(name).register(subparsers) for name in SUBCOMMAND_MODULES}
    # `sweep plan --audit` fits simulated sweeps: analysis' job, and sweeps may not import analysis, so the
    # flag is added here, above both.
    design_audit.extend(registered["sweeps.cli"])
    return parser


def main(argv: list[str] | None = None) -> int:
    xla_defaults.apply()  # before any subcommand starts JAX; importing scaling sets nothing
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ScalingError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # a path the command could not read or write: the path and the reason, not a traceback
        where = f" ({err.filename})" if err.filename else ""
        print(f"error: {one_line(err.strerror or str(err))}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def one_line(text: str) -> str:
    """A message as one line, so that every error is exactly one `error:` line."""
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
