"""What a report reads: a sweep directory (its results.parquet and each run's metrics.jsonl for the loss
curves) or a results file (parquet or CSV: no loss curves). It reads result files only: collecting a sweep
writes into it, which is the sweep layer's job (`scaling report` collects first when needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.loading import RunTable, load_runs
from scaling.accounting import N_CONVENTIONS
from scaling.errors import DataError
from scaling.run_status import COMPLETED
from sweeps import store


@dataclasses.dataclass(frozen=True, eq=False)
class ReportInput:
    source: str  # the path as given
    kind: str  # "sweep" or "table"
    table: RunTable  # the fitted points (completed runs only)
    results: pd.DataFrame  # every row of the results file, as read
    curves: dict[str, pd.DataFrame]  # run_id -> metrics.jsonl rows (sweeps only)
    sweep_name: str | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # also printed as `warning:` lines (damaged inputs)


def read_input(path: str | Path, columns: dict[str, str] | None = None, n_convention: str = "total",
               flops: str | None = None) -> ReportInput:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such sweep directory or results file; pass a sweep directory "
                        "(with sweep.json) or a results.parquet/CSV")
    notes = []
    if path.is_dir():
        results_path = path / "results.parquet"
        if not results_path.exists():
            if not (path / "sweep.json").exists():
                raise DataError(f"{path}: neither results.parquet nor sweep.json found; pass a sweep directory "
                                "written by `scaling sweep run`, or a results file")
            raise DataError(f"{path}: no results.parquet; collect it first with `scaling sweep collect {path}` "
                            "(`scaling report` does so itself)")
        table = load_runs(results_path, columns=columns, n_convention=n_convention, flops=flops)
        results = pd.read_parquet(results_path)
        curves, missing, unreadable = read_curves(path, results)
        if missing:
            notes.append(f"{len(missing)} completed run(s) have no metrics.jsonl, so no loss curve: "
                         + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
        warnings = tuple(f"{file} is unreadable (not JSON lines): no loss curve for that run" for file in unreadable)
        sweep_name = _sweep_name(path, results)
        return ReportInput(str(path), "sweep", table, results, curves, sweep_name, tuple(notes) + warnings, warnings)
    table = load_runs(path, columns=columns, n_convention=n_convention, flops=flops)
    results = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    notes.append("the input is a results table, not a sweep directory: there are no per-run loss curves "
                 "(pass the sweep directory to see them)")
    return ReportInput(str(path), "table", table, results, {}, _sweep_name(None, results), tuple(notes))


def read_curves(sweep_dir: Path, results: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], list[str], list[Path]]:
    """metrics.jsonl of every completed run in `results`, as frames; the run ids that had none; and the
    metrics files that could not be read (binary, damaged): a broken curve costs its figure, not the report."""
    from scaling.io import read_jsonl

    curves, missing, unreadable = {}, [], []
    done = results[results["status"].astype(str) == COMPLETED] if "status" in results else results
    for run_id in done.get("run_id", pd.Series([], dtype=str)).astype(str):
        path = store.run_dir(sweep_dir, run_id) / "metrics.jsonl" if store.is_run_id(run_id) else None
        if path is None or not path.is_file():
            missing.append(run_id)
            continue
        try:
            rows = [r for r in read_jsonl(path) if isinstance(r, dict)]
        except (OSError, UnicodeDecodeError, ValueError):
            rows = []
        if rows:
            curves[run_id] = pd.DataFrame(rows)
        elif path.stat().st_size:
            unreadable.append(path)
        else:
            missing.append(run_id)
    return curves, missing, unreadable


def run_sizes(results: pd.DataFrame, n_convention: str) -> dict[str, float]:
    """run_id -> N under the convention (for colouring loss curves)."""
    column = N_CONVENTIONS[n_convention]
    if "run_id" not in results or column not in results:
        return {}
    return dict(zip(results["run_id"].astype(str), results[column].astype(float)))


def counts(inp: ReportInput) -> dict:
    """Runs per status, distinct sizes and budgets: the page's opening line."""
    status = (inp.results["status"].astype(str).value_counts().to_dict() if "status" in inp.results
              else {COMPLETED: len(inp.results)})
    table = inp.table
    budgets = np.unique(table.budget[np.isfinite(table.budget)]) if np.isfinite(table.budget).any() else []
    return {"rows": len(inp.results), "status": status, "points": len(table), "sizes": len(np.unique(table.N)),
            "budgets": len(budgets), "C_range": [float(table.C.min()), float(table.C.max())],
            "N_range": [float(table.N.min()), float(table.N.max())]}


def _sweep_name(path: Path | None, results: pd.DataFrame) -> str | None:
    if "sweep_name" in results and results["sweep_name"].notna().any():
        return str(results["sweep_name"].dropna().iloc[0])
    if path is not None and (path / "sweep.json").exists():
        from scaling.io import read_json
        return read_json(path / "sweep.json").get("name")
    return None
