"""`scaling sweep plan SPEC --audit`: the plan, then the design audit (analysis.design_audit).

The flags are added to the `sweep plan` parser from here, above both layers (scaling_cli.main wires it):
sweeps may not import analysis, and fitting simulated sweeps is analysis' job. Heavy imports stay inside
the functions so `--help` is fast.
"""

from __future__ import annotations

AUDIT_FLAGS = ("audit_fit", "audit_noise", "audit_noise_from", "audit_draws")


def extend(plan_parser) -> None:
    """Add --audit and its options to `sweep plan`, and route the command through `cmd_plan`. (The
    defaults live in analysis.design_audit, which imports numpy: the help names them without numbers so
    that `scaling --help` imports nothing heavy.)"""
    group = plan_parser.add_argument_group(
        "design audit (isoflop specs): simulate the planned runs under a prior law and fit them many times")
    group.add_argument("--audit", action="store_true",
                       help="after the plan, print per budget whether the expected minimum lies inside its sizes, "
                            "each approach's expected 95%% interval of a, approach 2's bias, and a verdict")
    group.add_argument("--audit-fit", metavar="FIT.json", default=None,
                       help="the prior law: an L(N, D) fit (scaling fit --method parametric|vpnls --out); default: "
                            "the make demo fit of byte-level stdlib runs")
    group.add_argument("--audit-noise", metavar="SD", type=float, default=None,
                       help="loss noise as a log SD (default: the --audit-fit's log-residual SD, else the make "
                            "demo fit's)")
    group.add_argument("--audit-noise-from", metavar="RESULTS", default=None,
                       help="measure the loss noise from seed repeats in a finished sweep (its results.parquet or "
                            "directory): runs that differ only in seed")
    group.add_argument("--audit-draws", metavar="N", type=int, default=None,
                       help="simulated sweeps (default: a few hundred, analysis.design_audit.DEFAULT_DRAWS)")
    plan_parser.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    """`sweep plan`, with the audit appended when asked; audit inputs are checked before planning."""
    from scaling.errors import ConfigError
    from sweeps import cli as sweeps_cli

    if not args.audit:
        given = [f"--{flag.replace('_', '-')}" for flag in AUDIT_FLAGS if getattr(args, flag) is not None]
        if given:
            raise ConfigError(f"{given[0]} applies only with --audit; add --audit or remove it")
        return sweeps_cli.cmd_plan(args)
    settings = _settings(args)
    from sweeps import spec as spec_lib

    spec = spec_lib.load(args.spec, args.overrides)
    if spec.kind != "isoflop":
        raise ConfigError(f"{args.spec}: --audit audits isoflop sweeps (parabolas per budget); this spec is kind "
                          f"'{spec.kind}'")
    return sweeps_cli.cmd_plan(args, extra=lambda plan: _audit_text(plan, *settings))


def _settings(args):
    """(prior, noise, noise source, draws) from the flags, refusing bad values in one line."""
    from analysis import design_audit
    from analysis.result import load_fit
    from scaling.errors import ConfigError

    noise, draws = args.audit_noise, args.audit_draws
    if noise is not None and not noise > 0:
        raise ConfigError(f"--audit-noise {noise}: must be a positive log SD of the loss, e.g. 0.02")
    if draws is not None and draws < design_audit.MIN_DRAWS:
        raise ConfigError(f"--audit-draws {draws}: must be at least {design_audit.MIN_DRAWS} for a 95% interval")
    if noise is not None and args.audit_noise_from is not None:
        raise ConfigError("--audit-noise and --audit-noise-from both set the loss noise; pass one")
    prior = (design_audit.prior_from_fit(load_fit(args.audit_fit), args.audit_fit) if args.audit_fit
             else design_audit.default_prior())
    source = "--audit-noise" if noise is not None else design_audit.DEFAULT_NOISE_SOURCE
    if noise is None and prior.noise is not None:
        noise, source = prior.noise, f"log-residual SD of {args.audit_fit}"
    if args.audit_noise_from is not None:
        noise, source = _measured_noise(args.audit_noise_from)
    return prior, noise or design_audit.DEFAULT_NOISE, source, draws or design_audit.DEFAULT_DRAWS


def _measured_noise(where: str) -> tuple[float, str]:
    """Noise from the seed repeats of a results.parquet (or a sweep directory holding one)."""
    from pathlib import Path

    import pandas as pd

    from analysis import design_audit
    from scaling.errors import DataError

    path = Path(where) / "results.parquet" if Path(where).is_dir() else Path(where)
    if not path.is_file():
        raise DataError(f"--audit-noise-from {where}: no results.parquet there; pass a sweep's results "
                        "(`scaling sweep collect SWEEP_DIR`) or its directory")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise DataError(f"--audit-noise-from {path}: not a readable parquet table ({type(err).__name__})") from None
    try:
        sd, groups = design_audit.seed_repeat_noise(frame)
    except DataError as err:
        raise DataError(f"--audit-noise-from {path}: {err}") from None
    return sd, f"measured from {groups} group(s) of seed repeats in {path}"


def _audit_text(plan, prior, noise: float, noise_source: str, draws: int) -> str:
    from analysis import design_audit
    from analysis.fitting import quiet_numerics

    head = ""
    if plan.spec.isoflop.adaptive:
        plan, head = _start_law_plan(plan), (
            f"auditing every budget centred by the start law ({plan.spec.isoflop.prior.text}); the adaptive "
            "sweep moves each later budget towards the optimum its results extrapolate to\n")
    design = design_audit.design_from_plan(plan, prior.n_convention)
    with quiet_numerics():
        result = design_audit.audit(design, prior, noise, noise_source, draws)
    return head + design_audit.format_audit(result)


def _start_law_plan(plan):
    """An adaptive spec's runs as if its start law centred every budget: the design it starts from (its
    later budgets are placed by results, unknown before running)."""
    import dataclasses

    from sweeps.planner import make_plan

    iso = dataclasses.replace(plan.spec.isoflop, adaptive=False, centres=())
    return make_plan(dataclasses.replace(plan.spec, isoflop=iso))
