"""analysis.reporting.inputs: what a report reads from an already-collected sweep directory or a results
file, on synthetic sweeps whose runs, statuses and loss curves the tests write (tests/report_helpers.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from analysis.reporting.inputs import counts, read_curves, read_input, run_sizes
from report_helpers import make_sweep
from scaling.errors import DataError

BUDGETS, SIZES, FAILED = (1e17, 1e18), 3, 1


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """A collected sweep: 2 budgets x 3 sizes completed, 1 failed run."""
    return make_sweep(tmp_path_factory.mktemp("inputs") / "sweep", budgets=BUDGETS, sizes_per_budget=SIZES,
                      failed=FAILED)


@pytest.fixture
def damaged(collected, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(collected, copy)
    return copy


def completed_ids(sweep) -> list[str]:
    results = pd.read_parquet(sweep / "results.parquet")
    return results.loc[results["status"] == "completed", "run_id"].astype(str).tolist()


def test_a_sweep_gives_its_completed_points_and_every_completed_runs_curve(collected):
    inp = read_input(collected)
    done = completed_ids(collected)
    assert inp.kind == "sweep" and inp.source == str(collected) and inp.sweep_name == "synthetic"
    assert len(inp.results) == len(BUDGETS) * SIZES + FAILED and len(inp.table) == len(done)
    assert sorted(inp.curves) == sorted(done)
    metrics_lines = {run_id: len((collected / "runs" / run_id / "metrics.jsonl").read_text().splitlines())
                     for run_id in done}
    assert {run_id: len(frame) for run_id, frame in inp.curves.items()} == metrics_lines
    assert inp.notes == () and inp.warnings == ()


def test_counts_are_the_opening_line_of_the_page(collected):
    inp = read_input(collected)
    c = counts(inp)
    results = inp.results
    ok = results[results["status"] == "completed"]
    assert c["rows"] == len(results) and c["points"] == len(ok)
    assert c["status"] == {"completed": len(ok), "failed": FAILED}
    assert c["budgets"] == len(BUDGETS) and c["sizes"] == ok["n_params"].nunique()
    assert c["N_range"] == [float(ok["n_params"].min()), float(ok["n_params"].max())]


def test_a_missing_empty_or_unreadable_metrics_file_costs_only_that_runs_curve(damaged):
    gone, empty, binary, *rest = completed_ids(damaged)
    (damaged / "runs" / gone / "metrics.jsonl").unlink()
    (damaged / "runs" / empty / "metrics.jsonl").write_text("")
    unreadable = damaged / "runs" / binary / "metrics.jsonl"
    unreadable.write_bytes(b"\x00\xff\xfe" * 50)
    inp = read_input(damaged)
    assert sorted(inp.curves) == sorted(rest)
    assert len(inp.table) == len(rest) + 3  # the points themselves are still fitted
    assert inp.warnings == (f"{unreadable} is unreadable (not JSON lines): no loss curve for that run",)
    missing_note = next(n for n in inp.notes if "no metrics.jsonl" in n)
    assert missing_note.startswith("2 completed run(s)") and gone in missing_note and empty in missing_note
    assert set(inp.warnings) <= set(inp.notes)


def test_a_run_id_that_is_not_a_run_directory_name_is_never_read(collected):
    results = pd.DataFrame({"run_id": ["../outside", completed_ids(collected)[0]], "status": "completed"})
    curves, missing, unreadable = read_curves(collected, results)
    assert missing == ["../outside"] and list(curves) == [results["run_id"][1]] and unreadable == []


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_a_results_file_has_its_points_but_no_curves_and_says_so(collected, tmp_path, suffix):
    frame = pd.read_parquet(collected / "results.parquet")
    path = tmp_path / f"results.{suffix}"
    frame.to_parquet(path) if suffix == "parquet" else frame.to_csv(path, index=False)
    inp = read_input(path)
    assert inp.kind == "table" and inp.curves == {} and inp.sweep_name == "synthetic"
    assert len(inp.results) == len(frame) and len(inp.table) == len(completed_ids(collected))
    assert len(inp.notes) == 1 and "no per-run loss curves" in inp.notes[0]


def test_inputs_that_are_neither_are_refused(tmp_path):
    with pytest.raises(DataError, match="no such sweep directory or results file"):
        read_input(tmp_path / "absent")
    with pytest.raises(DataError, match="neither results.parquet nor sweep.json"):
        read_input(tmp_path)


def test_an_uncollected_sweep_is_refused_and_left_as_it_was(collected, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(collected, sweep)
    (sweep / "results.parquet").unlink()
    before = sorted(p.relative_to(sweep) for p in sweep.rglob("*"))
    with pytest.raises(DataError, match="no results.parquet; collect it first with `scaling sweep collect"):
        read_input(sweep)
    assert sorted(p.relative_to(sweep) for p in sweep.rglob("*")) == before  # the analysis writes nothing there


def test_run_sizes_follow_the_n_convention(collected):
    results = pd.read_parquet(collected / "results.parquet")
    total, nonembedding = run_sizes(results, "total"), run_sizes(results, "nonembedding")
    assert set(total) == set(results["run_id"].astype(str))
    assert all(nonembedding[r] < total[r] for r in total)  # every synthetic run has an embedding
    assert np.allclose([total[r] for r in results["run_id"]], results["n_params"])
    assert run_sizes(results.drop(columns="n_params"), "total") == {}
