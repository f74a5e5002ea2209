"""Small file helpers: atomic writes (temp file, fsync, rename), JSON-lines metrics, run-directory locks."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator


def process_umask() -> int:
    """The process umask, read without changing it (Linux: /proc/self/status); elsewhere set and restored."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def cache_dir(configured: str = "") -> Path:
    """The cache for tokenizers, token arrays and measured peaks: data.cache_dir, $SCALING_CACHE or ~/.cache/scaling."""
    return Path(configured or os.environ.get("SCALING_CACHE") or "~/.cache/scaling").expanduser()


def atomic_write(path: str | Path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write bytes, text, or whatever a writer function puts in a binary file, so that readers see the old
    file or the whole new one, never a part: temp file in the same directory, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, str):
                handle.write(data.encode())
            elif isinstance(data, bytes):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~process_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise



MANIFEST = ".scaling-manifest.json"  # in an output directory: the files the command wrote there


@contextlib.contextmanager
def staged_directory(out: str | Path, command: str = "this command") -> Iterator[Path]:
    """Yield a fresh directory beside `out` to build outputs in; when the block ends without an error its
    files go to `out`, with a manifest of them (MANIFEST), and on an error `out` is left untouched.

    `out` must be new, empty, or hold an earlier output of ours (a manifest): files not in the manifest
    are never replaced or deleted, so a directory of the user's is refused (`check_output_dir`). When
    `out` holds only our files it is swapped whole (a reader sees the old set of files or the new one);
    otherwise the new files are moved in by name and our stale ones (in the old manifest only) removed."""
    out = Path(os.path.realpath(out))  # a symlinked --out is written through, not replaced by a directory
    check_output_dir(out, command)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(staging, 0o777 & ~process_umask())  # mkdtemp makes it private; it may become `out`
    try:
        yield staging
        _publish(staging, out, command)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_output_dir(out: str | Path, command: str) -> None:
    """Refuse, before any work, an output directory `command` may not write into: an existing file, a
    non-empty directory without our manifest (the user's files), or one whose manifest is unreadable."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise _output_error(f"--out {out} exists and is not a directory; pass a directory path")
    _owned_files(out, command)


def _output_error(message: str) -> Exception:
    from scaling.errors import ScalingError

    return ScalingError(message)


def _owned_files(out: Path, command: str) -> set[str]:
    """The files an earlier output put in `out` (relative POSIX paths); empty for a new or empty `out`."""
    if not out.is_dir() or not any(out.iterdir()):
        return set()
    path = out / MANIFEST
    if not path.is_file():
        raise _output_error(f"--out {out} is a non-empty directory that {command} did not write (no {MANIFEST} "
                            f"there); pass a new or empty directory ({command} never replaces files it did not write)")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        if not isinstance(files, list) or not all(isinstance(f, str) and _safe_relative(f) for f in files):
            raise ValueError("'files' must be a list of relative paths inside the directory")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise _output_error(f"--out {out}: its {MANIFEST} is unreadable ({type(err).__name__}: {err}); pass a new "
                            "or empty directory") from None
    owner = manifest.get("written_by")
    if owner not in (None, command):  # e.g. a report written into moore's output directory
        raise _output_error(f"--out {out} holds the output of {owner}, not of {command}; pass another directory")
    return set(files)


def _safe_relative(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and not any(p in ("..", ".") for p in parts) \
        and name != MANIFEST


def _entries(root: Path) -> tuple[set[str], set[str]]:
    """Relative paths of the files (links included) and of the directories under `root`, links not followed."""
    files, dirs = set(), set()
    for parent, dirnames, filenames in os.walk(root):
        rel = Path(parent).relative_to(root)
        for name in dirnames:
            ((files if (Path(parent) / name).is_symlink() else dirs)).add((rel / name).as_posix())
        files.update((rel / name).as_posix() for name in filenames)
    return files, dirs


def _foreign(root: Path, owned: set[str]) -> set[str]:
    """What under `root` is not ours: files outside `owned`, and directories that hold none of `owned`."""
    files, dirs = _entries(root)
    ours = {parent.as_posix() for f in owned for parent in Path(f).parents}
    return (files - owned - {MANIFEST}) | (dirs - ours)


def _write_manifest(directory: Path, files: set[str], command: str) -> None:
    atomic_write(directory / MANIFEST, json.dumps({"written_by": command, "files": sorted(files)}, indent=1) + "\n")


def _publish(staging: Path, out: Path, command: str) -> None:
    new = _entries(staging)[0]
    _write_manifest(staging, new, command)
    owned = _owned_files(out, command)  # again: the directory may have changed while the outputs were made
    if not out.exists():
        os.replace(staging, out)
    elif not _swap_whole(staging, out, owned):
        _merge(staging, out, owned, new, command)


def _swap_whole(staging: Path, out: Path, owned: set[str]) -> bool:
    """Replace `out` by `staging` in two renames when `out` holds nothing but our files; False (and `out`
    as it was) when it holds anything else. The check is made after `out` is moved aside, so a file
    dropped in meanwhile is not lost either."""
    holder = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    os.replace(out, holder / "previous")
    if _foreign(holder / "previous", owned):
        os.replace(holder / "previous", out)
        holder.rmdir()
        return False
    os.replace(staging, out)
    shutil.rmtree(holder, ignore_errors=True)
    return True


def _merge(staging: Path, out: Path, owned: set[str], new: set[str], command: str) -> None:
    """Move the new files into `out` by name and delete our stale ones, leaving everything else alone."""
    real_out = os.path.realpath(out)
    for name in sorted(new | owned):
        target = os.path.realpath(out / name)
        if os.path.commonpath([real_out, target]) != real_out:
            raise _output_error(f"--out {out}: {name} leads outside the directory (a symbolic link?); "
                                "pass a new or empty directory")
        taken = [p for p in (Path(name), *Path(name).parents[:-1]) if os.path.lexists(out / p)
                 and (p == Path(name) or not (out / p).is_dir())]
        if name in new and name not in owned and taken:
            raise _output_error(f"--out {out}: {taken[0].as_posix()} is there but was not written by {command}; "
                                "move it away or pass a new directory")
    _write_manifest(out, owned | new, command)  # a crash part-way leaves every file we may have written listed
    for name in sorted(new):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, out / name)
    for name in sorted(owned - new):
        path = out / name
        if path.is_file() or path.is_symlink():
            path.unlink()
        for parent in path.parents:  # directories emptied by removing our files
            if parent == out or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()
    os.replace(staging / MANIFEST, out / MANIFEST)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


def to_json(obj: Any) -> str:
    """JSON with NaN/inf made explicit (null / "inf") so that every reader can parse it."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return _finite_or_none(value)
    return json.dumps(clean(obj), indent=1, sort_keys=False)


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(path, to_json(obj) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a crash ends the readable log
    return records


def truncate_jsonl(path: str | Path, keep_through_step: int) -> None:
    """Keep only records with step <= keep_through_step (used when resuming from a checkpoint)."""
    path = Path(path)
    if path.exists():
        kept = [r for r in read_jsonl(path) if r.get("step", 0) <= keep_through_step]
        atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept))


class JsonlWriter:
    """Appends one JSON object per line. Each line goes to the file in one write call, and a write that
    fails part-way (a full disk) is cut back off, so the file never ends in half a record; a crash
    (SIGKILL) in the middle of a write can still leave one, which `truncate_jsonl` drops on resume."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def write(self, record: dict) -> None:
        data = (json.dumps({k: _finite_or_none(v) for k, v in record.items()}) + "\n").encode()
        size = os.fstat(self._fd).st_size
        try:
            _write_all(self._fd, data)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise OSError(err.errno, err.strerror, str(self.path)) from err

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a write may be short when the disk fills)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


LOCK_FILE = ".lock"  # the same file sweeps.store locks, so a sweep and `scaling train` exclude each other


def try_lock_directory(directory: str | Path) -> int | None:
    """An fd holding an exclusive flock on `directory`/.lock, or None when another process holds it.
    The kernel drops the lock when its holder dies, even by SIGKILL, so a crash never leaves it taken."""
    fd = os.open(Path(directory) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    for attempt in range(5):  # `sweep status` probes with a shared lock for an instant: wait that out
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            time.sleep(0.05 * (attempt + 1))
    os.close(fd)
    return None
