"""Which code produced a result: the project's version and, when it runs from a git checkout, the commit and
whether the tree had uncommitted changes. Recorded in every summary.json, fit.json and report.

The commit is read from .git's files, so a machine without git still records it; only the dirty flag needs
`git`, run with a short timeout and left None when git is absent, slow or refuses the directory.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

PROJECT = "scaling"  # the distribution name in pyproject.toml
PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout, when the package is imported from one
GIT_TIMEOUT_S = 2.0
SHORT_COMMIT = 12  # hex digits shown in one-line descriptions


def project_version(root: Path = PROJECT_ROOT) -> str:
    """The installed package's version; else pyproject.toml's beside the package; else "unknown"."""
    try:
        return metadata.version(PROJECT)
    except metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text()).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "unknown"
    return str(project["version"]) if project.get("name") == PROJECT and "version" in project else "unknown"


def git_dir(root: Path) -> Path | None:
    """`root`'s .git directory: .git itself, or where a worktree's or submodule's .git file points."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    try:
        text = dot_git.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    target = Path(text.removeprefix("gitdir:").strip())
    return target if target.is_absolute() else root / target


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _is_commit(text: str | None) -> bool:
    return text is not None and len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def resolve_ref(directory: Path, ref: str) -> str | None:
    """A branch's commit from its loose ref file or packed-refs; worktrees keep both in the common dir."""
    common = _read(directory / "commondir")
    places = [directory] + ([directory / common] if common else [])
    for place in places:
        loose = _read(place / ref)
        if _is_commit(loose):
            return loose
        for line in (_read(place / "packed-refs") or "").splitlines():
            commit, _, name = line.partition(" ")
            if name == ref and _is_commit(commit):
                return commit
    return None


def git_commit(root: Path) -> str | None:
    """The commit checked out at `root`, read from .git without running git; None outside a checkout."""
    directory = git_dir(root)
    head = _read(directory / "HEAD") if directory else None
    if head is None:
        return None
    if head.startswith("ref:"):
        return resolve_ref(directory, head.removeprefix("ref:").strip())
    return head if _is_commit(head) else None


def git_dirty(root: Path) -> bool | None:
    """Whether tracked files differ from the commit; None when git cannot say (absent, too slow, refused)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # a hook's GIT_DIR would point elsewhere
    try:
        # --no-optional-locks: a status must not take the index lock from someone committing meanwhile
        done = subprocess.run(["git", "--no-optional-locks", "-C", str(root), "status", "--porcelain",
                               "--untracked-files=no"], capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                              env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(done.stdout.strip()) if done.returncode == 0 else None


def describe_checkout(root: Path) -> dict:
    """version, git_commit and git_dirty for the project at `root` (commit and dirty None outside a checkout)."""
    commit = git_commit(root)
    return {"version": project_version(root), "git_commit": commit,
            "git_dirty": git_dirty(root) if commit else None}


@functools.cache
def _this_process() -> tuple[tuple[str, object], ...]:
    # Read once per process: the code a process runs is what it imported at start, not what the tree holds later.
    return tuple(describe_checkout(PROJECT_ROOT).items())


def provenance() -> dict:
    """This process' code: {"version", "git_commit", "git_dirty"}, for the records a run or a fit writes."""
    return dict(_this_process())


def describe(record: dict) -> str:
    """One line for a page footer, e.g. "scaling 0.1.0, git commit 8d459f0c1a2b (uncommitted changes)"."""
    line = f"{PROJECT} {record.get('version') or 'unknown'}"
    commit = record.get("git_commit")
    if commit:
        line += f", git commit {commit[:SHORT_COMMIT]}"
        line += {True: " (uncommitted changes)", False: "", None: " (uncommitted changes unknown)"}[record.get("git_dirty")]
    return line
