"""`scaling sweep plan SPEC --audit`: the audit after the plan; bad audit input as one `error:` line, exit 2,
before anything is planned."""

from __future__ import annotations

import json

import pytest

from scaling_cli.main import main
from sweep_helpers import TINY_GRID

# Two budgets x 3 listed sizes of the tiny shapes: plans in a second, no training.
TINY_ISOFLOP = """
kind = "isoflop"
[sizes]
n_params = [2.06e4, 3.3e4, 4.5e4]
aspect_ratio = 16
[hparams]
lr = 3e-3
batch_size = 8
[isoflop]
budgets = [1e10, 3e10, 1e11]
tolerance = 0.05
[base.data]
val_batches = 2
[base.train]
seq_len = 32
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def error_line(capsys) -> str:
    """The one `error:` line, with nothing on stdout (nothing was planned)."""
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert captured.out == ""
    return err[0]


def test_audit_follows_the_plan(tmp_path, capsys):
    spec = write(tmp_path, "iso.toml", TINY_ISOFLOP)
    assert main(["sweep", "plan", spec, "--no-estimate", "--audit", "--audit-draws", "40"]) == 0
    out = capsys.readouterr().out
    assert out.index("total compute") < out.index("design audit: 40 simulated sweeps")
    assert "make demo" in out  # the default prior says where it came from
    assert out.count("  budget ") == 3 and "approach 2:" in out and "approach 3:" in out
    assert "\nverdict: " in out


@pytest.mark.parametrize("flags, says", [
    (["--audit", "--audit-noise", "0"], "--audit-noise 0.0: must be a positive"),
    (["--audit", "--audit-noise", "-1"], "--audit-noise -1.0: must be a positive"),
    (["--audit", "--audit-draws", "3"], "--audit-draws 3: must be at least"),
    (["--audit", "--audit-fit", "{tmp}/missing.json"], "no such fit file"),
    (["--audit", "--audit-fit", "{tmp}/powerlaw.json"], "the audit draws losses from an L(N, D) surface"),
    (["--audit-noise", "0.01"], "--audit-noise applies only with --audit"),
])
def test_bad_audit_input_is_one_line_before_planning(tmp_path, capsys, flags, says):
    spec = write(tmp_path, "iso.toml", TINY_ISOFLOP)
    fit = {"schema": "scaling.fit/1", "spec": {"method": "isoflop", "form": "power_law", "loss": "ols_loglog",
                                               "delta": None, "init_grid": None, "n_convention": "total",
                                               "flops": "exact", "data_hash": "x", "n_points": 9},
           "params": {"k_N": 0.1, "a": 0.5, "k_D": 1.0, "b": 0.5}}
    (tmp_path / "powerlaw.json").write_text(json.dumps(fit))
    argv = ["sweep", "plan", spec, "--no-estimate"] + [f.format(tmp=tmp_path) for f in flags]
    assert main(argv) == 2
    assert says in error_line(capsys)


def test_audit_of_a_grid_spec_is_refused(tmp_path, capsys):
    spec = write(tmp_path, "grid.toml", TINY_GRID)
    assert main(["sweep", "plan", spec, "--no-estimate", "--audit"]) == 2
    assert "--audit audits isoflop sweeps" in error_line(capsys)


def test_an_adaptive_spec_is_audited_as_its_start_law_would_centre_it(tmp_path, capsys):
    text = TINY_ISOFLOP.replace("n_params = [2.06e4, 3.3e4, 4.5e4]\n", "tolerance = 0.3\n").replace(
        "tolerance = 0.05", 'tolerance = 0.05\nprior = "adaptive"\nadaptive_start = "tokens_per_param:1"\npoints = 3')
    spec = write(tmp_path, "adaptive.toml", text)
    assert main(["sweep", "plan", spec, "--no-estimate", "--audit", "--audit-draws", "20"]) == 0
    out = capsys.readouterr().out
    assert ": 3 runs" in out  # the plan itself: the smallest budget only, the others pending
    assert "auditing every budget centred by the start law (adaptive, start tokens_per_param:1)" in out
    assert out.count("  budget ") == 3  # the audit: every budget


def test_noise_from_seed_repeats_of_a_finished_sweep(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    rows = [{"n_params": n, "tokens": 10 ** 6, "budget": 1e12, "lr": 1e-3, "seed": s, "status": "completed",
             "final_val_loss": 2.0 * (1 + 0.05 * (s % 2 - 0.5))} for n in (10 ** 4, 2 * 10 ** 4) for s in range(2)]
    pd.DataFrame(rows).to_parquet(tmp_path / "results.parquet")
    spec = write(tmp_path, "iso.toml", TINY_ISOFLOP)
    argv = ["sweep", "plan", spec, "--no-estimate", "--audit", "--audit-draws", "20",
            "--audit-noise-from", str(tmp_path)]
    assert main(argv) == 0
    sd = np.std(np.log([1.95, 2.05]), ddof=1)
    assert f"loss noise {sd:.3g} log SD (measured from 2 group(s) of seed repeats in {tmp_path / 'results.parquet'})" \
        in capsys.readouterr().out


@pytest.mark.parametrize("flags, says", [
    (["--audit-noise-from", "{tmp}/nothing"], "no results.parquet there"),
    (["--audit-noise-from", "{tmp}/iso.toml"], "not a readable parquet table"),
    (["--audit-noise", "0.01", "--audit-noise-from", "{tmp}"], "pass one"),
])
def test_bad_noise_sources_are_one_line(tmp_path, capsys, flags, says):
    spec = write(tmp_path, "iso.toml", TINY_ISOFLOP)
    assert main(["sweep", "plan", spec, "--no-estimate", "--audit"] + [f.format(tmp=tmp_path) for f in flags]) == 2
    assert says in error_line(capsys)


def test_the_noise_defaults_to_the_given_fits_log_residual_sd(tmp_path, capsys):
    from analysis.result import FitResult, FitSpec

    spec = FitSpec(method="parametric", form="chinchilla", loss="huber_log", delta=1e-3, init_grid=None,
                   n_convention="total", flops="exact", data_hash="x", n_points=18)
    fit = FitResult(spec=spec, params={"E": 1.0, "A": 60.0, "B": 400.0, "alpha": 0.44, "beta": 0.36},
                    details={"log_residual_sd": 0.031})
    (tmp_path / "FIT.json").write_text(fit.to_json())
    argv = ["sweep", "plan", write(tmp_path, "iso.toml", TINY_ISOFLOP), "--no-estimate", "--audit", "--audit-draws",
            "20", "--audit-fit", str(tmp_path / "FIT.json")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"(true a = 0.450; {tmp_path / 'FIT.json'} (parametric fit)), loss noise 0.031 log SD (log-residual SD of " \
        f"{tmp_path / 'FIT.json'})" in out


def test_the_flags_are_added_without_importing_the_audit():
    """`scaling --help` stays fast: the audit (numpy, the fitters) is imported only when --audit runs."""
    import subprocess
    import sys

    code = ("import sys; from scaling_cli.main import build_parser; build_parser(); "
            "print('analysis.design_audit' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_an_lr_list_is_one_point_and_a_seed_list_repeats_it(tmp_path):
    from analysis.design_audit import design_from_plan
    from sweeps import spec as spec_lib
    from sweeps.planner import make_plan

    def points(hparams: str) -> int:
        text = TINY_ISOFLOP.replace("lr = 3e-3\n", hparams)
        return len(design_from_plan(make_plan(spec_lib.load(write(tmp_path, "s.toml", text)))).N)

    assert points("lr = 3e-3\n") == 9
    assert points("lr = [1e-3, 3e-3]\n") == 9  # the analysis keeps the best lr of each point
    assert points("lr = 3e-3\nseed = [0, 1]\n") == 18
