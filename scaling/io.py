"""Small file helpers: atomic writes (temp file, fsync, rename) and JSON-lines metrics."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator


_UMASK = os.umask(0o022)
os.umask(_UMASK)


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
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise



@contextlib.contextmanager
def staged_directory(out: str | Path, replace_whole: bool = True) -> Iterator[Path]:
    """Yield a fresh directory beside `out` to build outputs in; when the block ends without an error it
    becomes `out`, and on an error `out` is left untouched. With `replace_whole` an existing `out` is swapped
    out as a whole (a reader sees the old set of files or the new one, never a mix); otherwise the new files
    are moved into it by name, leaving other files there alone."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(staging, 0o777 & ~_UMASK)  # mkdtemp makes it private; it becomes `out`
    try:
        yield staging
        if not out.exists():
            os.replace(staging, out)
        elif replace_whole:
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "previous")
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            for path in staging.iterdir():
                os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    for line in path.read_text().splitlines():
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
    """Appends one JSON object per line, flushed so that a crash loses at most the line in flight."""

    def __init__(self, path: str | Path):
        self._handle = open(path, "a")

    def write(self, record: dict) -> None:
        self._handle.write(json.dumps({k: _finite_or_none(v) for k, v in record.items()}) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
