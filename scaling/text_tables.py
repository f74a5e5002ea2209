"""Text in tables: .parquet and .jsonl files, directories of them, and `datasets` save_to_disk directories.

Each row with text in data.text_column is a document named `<file relative to the source>:<row>` (rows
counted from 0, JSONL lines from 1 as editors do), so scaling.corpus splits them by the hash of that name
like text documents; null and empty texts are skipped. The fingerprint covers the bytes of every file read
and the column's name.

A save_to_disk directory (a `datasets.Dataset`) is recognised by its state.json, which lists its Arrow
files (Arrow IPC streams); they are read with pyarrow, so `datasets` itself is not needed. A DatasetDict
(dataset_dict.json) holds one such directory per split: point data.source at one of them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scaling.corpus import Corpus, Document, fingerprint, list_files, read_bytes
from scaling.errors import DataError

TABLE_SUFFIXES = (".parquet", ".jsonl")
SAVE_TO_DISK_STATE = "state.json"  # written by datasets.Dataset.save_to_disk beside dataset_info.json
DATASET_DICT = "dataset_dict.json"  # written by datasets.DatasetDict.save_to_disk
TEXT_TYPES = ("string", "large_string", "string_view")  # Arrow's text types, by name (string_view: pyarrow >= 16)


def is_table_source(path: Path) -> bool:
    """Whether data.source names a table file, a save_to_disk directory or a directory holding table files
    (then only those are read: a README or licence beside them is not text to train on)."""
    if path.is_file():
        return path.suffix in TABLE_SUFFIXES
    if (path / SAVE_TO_DISK_STATE).is_file() or (path / DATASET_DICT).is_file():
        return True
    return bool(_table_files(path))


def load_table_corpus(path: Path, text_column: str) -> Corpus:
    """Every document with text in `text_column` of the table source at `path`."""
    root = path if path.is_dir() else path.parent
    files = _source_files(path)
    named_data, documents = [], []
    for file in files:
        name = file.relative_to(root).as_posix()
        data = read_bytes(file)
        named_data.append((name, data))
        documents += [Document(f"{name}:{row}", text) for row, text in _read_texts(file, data, text_column) if text]
    if not documents:
        raise DataError(f"data source {path} has no text in column '{text_column}' ({len(files)} files); "
                        "check data.text_column")
    return Corpus(tuple(sorted(documents, key=lambda doc: doc.name)), _fingerprint(path, named_data, text_column))


def _fingerprint(path: Path, named_data: list[tuple[str, bytes]], text_column: str) -> dict:
    """scaling.corpus's fingerprint of the files, with the column named and hashed in: the same files read at
    another column are another corpus (and the token cache is keyed by this sha256)."""
    files = fingerprint(str(path.resolve()), named_data)
    sha256 = hashlib.sha256(f"{text_column}\0{files['sha256']}".encode()).hexdigest()
    return files | {"sha256": sha256, "text_column": text_column}


def _source_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if (path / DATASET_DICT).is_file():
        splits = sorted(p.name for p in path.iterdir() if (p / SAVE_TO_DISK_STATE).is_file())
        example = path / ("train" if "train" in splits or not splits else splits[0])
        raise DataError(f"data.source {path} is a DatasetDict with splits {', '.join(splits) or '(none)'}; point "
                        f"data.source at one split's directory, e.g. {example}")
    if (path / SAVE_TO_DISK_STATE).is_file():
        return _arrow_files(path)
    return _table_files(path, warn=True)


def _table_files(root: Path, warn: bool = False) -> list[Path]:
    """The .parquet/.jsonl files below `root`; `warn`: say on stderr which other files are not read, since a
    text corpus with one stray .jsonl in it would otherwise lose its text silently."""
    files = [file for _, file in list_files(root, excluded=frozenset({"__pycache__"}), suffix="")]
    tables = [file for file in files if file.suffix in TABLE_SUFFIXES]
    others = [file for file in files if file.suffix not in TABLE_SUFFIXES]
    if warn and tables and others:
        print(f"warning: data.source {root} holds .parquet/.jsonl files, so only those {len(tables)} are read; its "
              f"{len(others)} other files (e.g. {others[0].relative_to(root).as_posix()}) are not", file=sys.stderr)
    return tables


def _arrow_files(root: Path) -> list[Path]:
    """The Arrow files state.json lists, in its order (the dataset's row order)."""
    state_path = root / SAVE_TO_DISK_STATE
    try:
        state = json.loads(read_bytes(state_path))
        names = [entry["filename"] for entry in state["_data_files"]]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{state_path} does not list the dataset's Arrow files (_data_files); re-save the dataset "
                        "with datasets' save_to_disk") from err
    if state.get("_indices_data_files"):
        raise DataError(f"{state_path} keeps an indices mapping; call flatten_indices() before save_to_disk")
    files = [root / name for name in names]
    if not files:
        raise DataError(f"{state_path} lists no Arrow files; re-save the dataset with datasets' save_to_disk")
    return files


def _read_texts(file: Path, data: bytes, column: str) -> list[tuple[int, str | None]]:
    """(row, text) of every row of one file."""
    if file.suffix == ".jsonl":
        return _jsonl_texts(file, data, column)
    table = _read_table(file, data, column)
    if column not in table.column_names:
        raise DataError(f"{file} has no column '{column}' (its columns: {', '.join(table.column_names)}); "
                        "set data.text_column to the one holding the text")
    values = table.column(column)
    if str(values.type) not in TEXT_TYPES:
        raise DataError(f"column '{column}' of {file} holds {values.type}, not text; "
                        "set data.text_column to the column holding the text")
    return list(enumerate(values.to_pylist()))


def _read_table(file: Path, data: bytes, column: str) -> pa.Table:
    """A Parquet file (only `column` is decoded, when present) or an Arrow IPC stream."""
    try:
        if file.suffix == ".parquet":
            parquet = pq.ParquetFile(pa.BufferReader(data))
            if column not in parquet.schema_arrow.names:
                return parquet.schema_arrow.empty_table()  # enough to name the columns it has
            return parquet.read(columns=[column])
        return pa.ipc.open_stream(pa.BufferReader(data)).read_all()
    except (pa.ArrowException, OSError) as err:
        kind = "Parquet" if file.suffix == ".parquet" else "Arrow stream (as save_to_disk writes)"
        raise DataError(f"{file} is not a readable {kind} file ({str(err).splitlines()[0]}); "
                        "re-create it or remove it from data.source") from err


def _jsonl_texts(file: Path, data: bytes, column: str) -> list[tuple[int, str | None]]:
    """(line number, text) of each non-blank line: a JSON object with `column` holding a string or null."""
    rows = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise DataError(f"line {number} of {file} is not JSON ({err}); fix it or remove the file "
                            "from data.source") from err
        if not isinstance(record, dict) or column not in record:
            columns = ", ".join(record) if isinstance(record, dict) else f"a JSON {type(record).__name__}"
            raise DataError(f"line {number} of {file} has no column '{column}' (it has: {columns}); "
                            "set data.text_column to the key holding the text")
        text = record[column]
        if text is not None and not isinstance(text, str):
            raise DataError(f"line {number} of {file}: '{column}' holds a {type(text).__name__}, not text; "
                            "set data.text_column to the key holding the text")
        rows.append((number, text))
    return rows
