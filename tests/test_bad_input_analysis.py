"""Bad input to `scaling fit`, `allocate`, `predict` and `report`: each case a table row giving one
`error:` line, exit 2, and no output file written (the analysis side of the reliability issue)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis_helpers import chinchilla_surface
from scaling_cli.main import main


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A clean surface as a CSV, and a VPNLS fit of it written by `scaling fit --out`."""
    tmp = tmp_path_factory.mktemp("good")
    table, _ = chinchilla_surface()
    csv = tmp / "runs.csv"
    pd.DataFrame({"N": table.N, "D": table.D, "C": table.C, "loss": table.loss}).to_csv(csv, index=False)
    fit = tmp / "fit.json"
    assert main(["fit", str(csv), "--method", "vpnls", "--out", str(fit)]) == 0
    return csv, fit


def _fit_with(good, tmp: Path, change) -> Path:
    data = json.loads(good[1].read_text())
    change(data)
    path = tmp / "bad_fit.json"
    path.write_text(json.dumps(data))
    return path


def _table(tmp: Path, frame: dict) -> Path:
    path = tmp / "bad.csv"
    pd.DataFrame(frame).to_csv(path, index=False)
    return path


def _repeated(tmp):
    return ["fit", str(_table(tmp, {"N": [1e8] * 20, "D": [2e9] * 20, "loss": [3.0] * 20}))]


def _one_size(tmp):
    return ["fit", str(_table(tmp, {"N": [1e8] * 6, "D": np.logspace(9, 10, 6), "loss": np.linspace(3.2, 3, 6)}))]


def _one_budget(tmp):
    N = np.logspace(7, 9, 8)
    return ["fit", str(_table(tmp, {"N": N, "D": 1e18 / (6 * N), "C": [1e18] * 8,
                                    "loss": 3 + 0.1 * (np.log10(N) - 8) ** 2}))]


def _scaled(tmp):
    table, _ = chinchilla_surface()
    return ["fit", str(_table(tmp, {"N": table.N * 1e290, "D": table.D * 1e290, "loss": table.loss}))]


CASES = {
    # case: (argv builder(good, tmp) -> argv, words the error line must contain)
    "fit --out a directory": (lambda g, t: ["fit", str(g[0]), "--method", "isoflop", "--out", str(t)],
                              "is a directory"),
    "fit --out a file that is not a fit": (lambda g, t: ["fit", str(g[0]), "--method", "isoflop", "--out",
                                                         str(_write(t, "my notes"))], "not a fit written by"),
    "fit one point repeated 20 times": (lambda g, t: _repeated(t), "distinct (N, D) point"),
    "fit every run at one size": (lambda g, t: _one_size(t), "same model size"),
    "fit every run at one budget": (lambda g, t: _one_budget(t), "one compute budget"),
    "fit N and D scaled by 1e290": (lambda g, t: _scaled(t), "overflows"),
    "fit an unknown method": (lambda g, t: ["fit", str(g[0]), "--method", "approach9"], "--method"),
    "fit --bootstrap 1": (lambda g, t: ["fit", str(g[0]), "--bootstrap", "1"], "--bootstrap"),
    "allocate: a string parameter": (lambda g, t: ["allocate", "--fit", str(_fit_with(
        g, t, lambda d: d["params"].update(alpha="big"))), "--budget", "1e20"], "is not a number"),
    "allocate: alpha missing": (lambda g, t: ["allocate", "--fit", str(_fit_with(
        g, t, lambda d: d["params"].pop("alpha"))), "--budget", "1e20"], "needs parameter"),
    "allocate: a negative alpha": (lambda g, t: ["allocate", "--fit", str(_fit_with(
        g, t, lambda d: d["params"].update(alpha=-0.3))), "--budget", "1e20"], "alpha = -0.3"),
    "predict: E null": (lambda g, t: ["predict", "--fit", str(_fit_with(g, t, lambda d: d["params"].update(
        E=None))), "--N", "1e9", "--D", "2e10"], "null or not finite"),
    "predict: a fit_range that is not numbers": (lambda g, t: ["predict", "--fit", str(_fit_with(
        g, t, lambda d: d.update(fit_range={"N": [1, "x"]}))), "--N", "1e9", "--D", "2e10"], "'fit_range'"),
    "allocate: bootstrap not an object": (lambda g, t: ["allocate", "--fit", str(_fit_with(
        g, t, lambda d: d.update(bootstrap="yes"))), "--budget", "1e20"], "'bootstrap'"),
    "allocate: a JSON list": (lambda g, t: ["allocate", "--fit", str(_write(t, "[1, 2]")), "--budget", "1e20"],
                              "JSON list"),
    "allocate: a binary file": (lambda g, t: ["allocate", "--fit", str(_write(t, b"\x89PNG\x00\xff\xfe")),
                                              "--budget", "1e20"], "not a JSON fit"),
    "allocate: a directory": (lambda g, t: ["allocate", "--fit", str(t), "--budget", "1e20"], "is a directory"),
    "allocate --vocab-size 0": (lambda g, t: ["allocate", "--fit", str(g[1]), "--budget", "1e20",
                                              "--vocab-size", "0"], "vocab"),
    "allocate --vocab-size -5": (lambda g, t: ["allocate", "--fit", str(g[1]), "--budget", "1e20",
                                               "--vocab-size", "-5"], "vocab"),
    "predict on an approach-2 fit": (lambda g, t: ["predict", "--fit", str(_fit_with(g, t, _as_isoflop)),
                                                   "--N", "1e9", "--D", "2e10"], "predict"),
    "report --fit with a string parameter": (lambda g, t: ["report", str(g[0]), "--out", str(t / "report"),
                                                           "--fit", str(_fit_with(g, t, lambda d: d["params"].update(
                                                               E="x")))], "is not a number"),
}


def _write(tmp: Path, content) -> Path:
    path = tmp / "not_a_fit.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _as_isoflop(d: dict) -> None:
    d["spec"].update(method="isoflop", form="power_law")
    d["params"] = {"k_N": 0.1, "a": 0.5, "k_D": 1.0, "b": 0.5}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_error_line_and_writes_nothing(case, good, tmp_path, capfd):
    build, words = CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    argv = build(good, work)
    before = sorted(p.name for p in work.iterdir())
    assert main(argv) == 2, case
    err = capfd.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0], (case, err)
    assert not (work / "report").exists()
    assert sorted(p.name for p in work.iterdir()) == before  # nothing half-written
