"""scaling.provenance: the project's version and git state, read from a checkout's files (git itself only for the
dirty flag), and recorded where results are written: summary.json, fit.json (FitResult) and the report's footer."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from scaling import provenance as prov

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(root), *args],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    (root / "pyproject.toml").write_text('[project]\nname = "scaling"\nversion = "9.8.7"\n')
    git(root, "add", "pyproject.toml")
    git(root, "commit", "-q", "-m", "first")
    return root


@needs_git
def test_commit_is_read_from_the_checkout_as_git_names_it(checkout):
    assert prov.git_commit(checkout) == git(checkout, "rev-parse", "HEAD")
    git(checkout, "commit", "-q", "--allow-empty", "-m", "second")
    git(checkout, "pack-refs", "--all")  # the branch now lives in packed-refs only
    assert prov.git_commit(checkout) == git(checkout, "rev-parse", "HEAD")
    git(checkout, "checkout", "-q", "--detach", "HEAD~1")
    assert prov.git_commit(checkout) == git(checkout, "rev-parse", "HEAD")


@needs_git
def test_a_worktree_reads_its_own_head(checkout, tmp_path):
    git(checkout, "commit", "-q", "--allow-empty", "-m", "second")
    git(checkout, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"), "HEAD~1")
    assert prov.git_commit(tmp_path / "wt") == git(tmp_path / "wt", "rev-parse", "HEAD")
    assert prov.git_commit(tmp_path / "wt") != prov.git_commit(checkout)


@needs_git
def test_dirty_means_tracked_files_changed(checkout):
    assert prov.git_dirty(checkout) is False
    (checkout / "notes.txt").write_text("untracked files do not count")
    assert prov.git_dirty(checkout) is False
    (checkout / "pyproject.toml").write_text('[project]\nname = "scaling"\nversion = "9.8.8"\n')
    assert prov.git_dirty(checkout) is True


@needs_git
def test_without_git_the_commit_is_still_recorded(checkout, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    record = prov.describe_checkout(checkout)
    assert record["git_commit"] == prov.git_commit(checkout) and record["git_commit"] is not None
    assert record["git_dirty"] is None


def test_outside_a_checkout_there_is_no_commit(tmp_path):
    assert prov.git_commit(tmp_path) is None
    assert prov.describe_checkout(tmp_path)["git_dirty"] is None
    (tmp_path / ".git").write_text("not a gitdir line")
    assert prov.git_commit(tmp_path) is None


def test_version_falls_back_to_pyproject_when_not_installed(tmp_path, monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(prov.metadata, "version", not_installed)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "scaling"\nversion = "9.8.7"\n')
    assert prov.project_version(tmp_path) == "9.8.7"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "another"\nversion = "1.0"\n')
    assert prov.project_version(tmp_path) == "unknown"
    (tmp_path / "pyproject.toml").unlink()
    assert prov.project_version(tmp_path) == "unknown"


def test_this_process_records_the_installed_version():
    record = prov.provenance()
    assert set(record) == {"version", "git_commit", "git_dirty"}
    assert record["version"] == metadata.version("scaling")
    record["version"] = "changed"
    assert prov.provenance()["version"] != "changed"  # callers get a copy


def test_describe_says_version_commit_and_state():
    commit = "0123456789abcdef" * 2 + "01234567"
    assert prov.describe({"version": "1.2", "git_commit": None, "git_dirty": None}) == "scaling 1.2"
    assert prov.describe({"version": "1.2", "git_commit": commit, "git_dirty": False}) == \
        "scaling 1.2, git commit 0123456789ab"
    assert prov.describe({"version": "1.2", "git_commit": commit, "git_dirty": True}).endswith("(uncommitted changes)")
    assert prov.describe({}) == "scaling unknown"


def test_every_summary_records_it(tmp_path, tiny_overrides):
    from scaling.config import load
    from scaling.training import train

    summary = train(load(None, tiny_overrides + ["train.steps=2"]), tmp_path, quiet=True)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["provenance"] == summary["provenance"] == prov.provenance()


def test_every_fit_records_it_and_an_older_fit_file_says_unknown(tmp_path):
    from analysis.result import FitResult, FitSpec, load_fit

    spec = FitSpec(method="parametric", form="chinchilla", loss="huber_log", delta=1e-3, init_grid=None,
                   n_convention="total", flops="flops_6nd", data_hash="abc", n_points=9)
    result = FitResult(spec, {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28})
    written = json.loads(result.to_json())
    assert written["provenance"] == prov.provenance()
    (tmp_path / "fit.json").write_text(result.to_json())
    assert load_fit(tmp_path / "fit.json").provenance == prov.provenance()
    del written["provenance"]  # as written before fits recorded it
    (tmp_path / "old.json").write_text(json.dumps(written))
    assert load_fit(tmp_path / "old.json").provenance is None


def test_the_report_footer_names_the_code():
    import pandas as pd

    from analysis.reporting import page
    from analysis.reporting.fits import BacktestEntry

    made_by = {"version": "3.4.5", "git_commit": "ab" * 20, "git_dirty": True}
    fields = dict(title="t", source="s", kind="table", counts={"rows": 0, "status": {}, "points": 0, "sizes": 0,
                                                               "budgets": 0, "C_range": [1.0, 2.0]},
                  conventions="", notes=[], problems=[], headline=[], headline_from="", headline_warnings=[],
                  figures=[], missing_figures=[], entries=[], backtest=BacktestEntry(), runs=pd.DataFrame(),
                  generated="g", command="c")
    assert page.Content(**fields).made_by == prov.provenance()  # a report records the code that builds it
    text = page.render(page.Content(**fields, made_by=made_by))
    footer = text[text.index("<footer"):text.index("</footer>")]
    assert prov.describe(made_by) in footer and "abababababab" in footer and "3.4.5" in footer
    assert text.index("</footer>") < text.index("</body>")
