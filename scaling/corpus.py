"""Text corpora: finding and reading documents, the corpus fingerprint, and the train/val split.

A text source is one of
- "stdlib": the Python standard library's own `*.py` files (under `sysconfig.get_paths()["stdlib"]`),
  leaving out every file below a directory named in `STDLIB_EXCLUDED_DIRS`; each file is a document.
- a directory: every file below it (recursively) is a document, except hidden files and directories
  (names starting with ".") and `__pycache__`. A file that cannot be read or is not UTF-8 is an error.
- a single text file: cut into documents of at least `CHUNK_CHARS` characters, each ending at a line end
  (the last one may be shorter), named `<file name>:<index>`.

Documents are assigned to the validation split by a hash of their name (the relative path), so a
document lies entirely in one split and keeps its split when other files are added or removed.
Tables of text (.parquet, .jsonl, `datasets` save_to_disk directories) are read by `scaling.text_tables`
into documents split the same way; token directories (nanoGPT's train.bin/val.bin, llm.c's shards) are
handled in `scaling.data`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sysconfig
from pathlib import Path

from scaling.errors import DataError

STDLIB = "stdlib"
# Tests hold generated and repetitive data, site-packages is third-party code that differs per machine,
# idlelib is an application rather than library code, __pycache__ holds bytecode, and pydoc_data is one
# large generated file of English documentation that would dominate whichever split it fell in.
STDLIB_EXCLUDED_DIRS = frozenset({"test", "tests", "site-packages", "idlelib", "__pycache__", "pydoc_data"})
CHUNK_CHARS = 8192


@dataclasses.dataclass(frozen=True)
class Document:
    name: str  # path relative to the source root (POSIX), or "<file>:<index>" for a chunk of one file
    text: str


@dataclasses.dataclass(frozen=True)
class Corpus:
    documents: tuple[Document, ...]  # sorted by name
    fingerprint: dict  # {"source", "files", "bytes", "sha256"}


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def load_corpus(source: str) -> Corpus:
    """Read every document of a text source ("stdlib", a text file or a directory)."""
    if source == STDLIB:
        root = stdlib_root()
        files = list_files(root, excluded=STDLIB_EXCLUDED_DIRS, suffix=".py")
        label = STDLIB
    else:
        root = source_path(source)
        label = str(root.resolve())
        if root.is_file():
            data = read_bytes(root)
            if not data:
                raise DataError(f"data file {root} is empty; point data.source at a file with text in it")
            text = decode(root, data)
            documents = tuple(Document(f"{root.name}:{i}", chunk) for i, chunk in enumerate(chunk_text(text)))
            return Corpus(documents, fingerprint(label, [(root.name, data)]))
        files = list_files(root, excluded=frozenset({"__pycache__"}), suffix="")
    named_data = [(name, read_bytes(path)) for name, path in files]
    fp = fingerprint(label, named_data)
    if fp["bytes"] == 0:
        raise DataError(f"data source {root} has no text ({len(files)} files, 0 bytes); "
                        "point data.source at a text file or a directory of text files")
    documents = tuple(Document(name, decode(root / name, data)) for name, data in named_data)
    return Corpus(documents, fp)


def source_path(source: str) -> Path:
    """The path named by data.source (not "stdlib"), which must exist."""
    what = ("give 'stdlib', a text, .parquet or .jsonl file, a directory of them, a datasets save_to_disk "
            "directory, or a directory with train.bin and val.bin or llm.c shards")
    if not source.strip():
        raise DataError(f"data.source is empty; {what}")
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"data.source '{source}' does not exist; {what}")
    return path


def list_files(root: Path, excluded: frozenset[str], suffix: str) -> list[tuple[str, Path]]:
    """(relative POSIX path, path) of the files below `root`, sorted, skipping hidden and excluded dirs."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise_walk_error):
        dirnames[:] = [d for d in dirnames if d not in excluded and not d.startswith(".")]
        for name in filenames:
            if name.endswith(suffix) and not name.startswith("."):
                path = Path(dirpath, name)
                files.append((path.relative_to(root).as_posix(), path))
    return sorted(files)


def _raise_walk_error(err: OSError) -> None:
    raise DataError(f"cannot list directory {err.filename}: {err.strerror}; check its permissions")


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read data file {path}: {err.strerror}; "
                        "fix its permissions or remove it from data.source") from err


def decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"data file {path} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                        "convert it to UTF-8 or remove it from data.source") from err


def chunk_text(text: str) -> list[str]:
    """Cut `text` into pieces of at least CHUNK_CHARS characters that end at a line end."""
    chunks, start = [], 0
    while start < len(text):
        newline = text.find("\n", start + CHUNK_CHARS - 1)
        end = len(text) if newline < 0 else newline + 1
        chunks.append(text[start:end])
        start = end
    return chunks


def file_header(name: str, size: int) -> bytes:
    """What the fingerprint hashes before each file's contents: its relative path and byte count."""
    return name.encode("utf-8") + b"\0" + size.to_bytes(8, "little")


def fingerprint(source: str, named_data: list[tuple[str, bytes]]) -> dict:
    """Identify a corpus: file count, total bytes and sha256 over the sorted (relative path, contents)."""
    digest = hashlib.sha256()
    for name, data in sorted(named_data):
        digest.update(file_header(name, len(data)))
        digest.update(data)
    return {"source": source, "files": len(named_data), "bytes": sum(len(d) for _, d in named_data),
            "sha256": digest.hexdigest()}


def split_position(name: str) -> float:
    """A document's place in [0, 1), from the hash of its name; below val_fraction means validation."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2.0**64


def split_documents(documents: tuple[Document, ...], val_fraction: float, source: str = "the corpus",
                    ) -> tuple[list[Document], list[Document]]:
    """(train, val): a document is in val when split_position(name) < val_fraction.

    Both splits must be non-empty: when the hash puts no document in val (small corpora), the
    document with the smallest position goes to val; when it puts every document in val, the one
    with the largest position goes to train. A corpus of one document cannot be split and is an error.
    """
    if len(documents) < 2:
        raise DataError(f"{source} has {len(documents)} document(s) but a train/validation split needs at least 2; "
                        f"use a text file longer than {CHUNK_CHARS} characters or a directory with more files")
    order = sorted(documents, key=lambda doc: split_position(doc.name))
    n_val = sum(split_position(doc.name) < val_fraction for doc in order)
    n_val = min(max(n_val, 1), len(order) - 1)
    val, train = order[:n_val], order[n_val:]
    return sorted(train, key=lambda d: d.name), sorted(val, key=lambda d: d.name)
