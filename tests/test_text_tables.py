import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scaling.corpus import split_documents
from scaling.errors import DataError
from scaling.text_tables import is_table_source, load_table_corpus

TEXTS = [f"document {i}: " + "tokens and more tokens " * (i % 5 + 1) for i in range(30)]


def write_jsonl(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def write_parquet(path: Path, table: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(table), path)
    return path


def save_to_disk(root: Path, shards: list[dict]) -> Path:
    """The directory `datasets.Dataset.save_to_disk` writes (checked against datasets 5.2): one Arrow IPC
    *stream* per shard named data-XXXXX-of-NNNNN.arrow, state.json listing them, dataset_info.json."""
    root.mkdir(parents=True)
    names = [f"data-{i:05d}-of-{len(shards):05d}.arrow" for i in range(len(shards))]
    for name, columns in zip(names, shards):
        table = pa.table(columns)
        with pa.OSFile(str(root / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    state = {"_data_files": [{"filename": name} for name in names], "_fingerprint": "0", "_format_columns": None,
             "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False, "_split": None}
    (root / "state.json").write_text(json.dumps(state))
    (root / "dataset_info.json").write_text(json.dumps({"features": {}, "description": ""}))
    return root


def texts_of(corpus) -> list[str]:
    return [doc.text for doc in corpus.documents]


def test_jsonl_rows_are_documents_named_by_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": t, "id": i} for i, t in enumerate(TEXTS)])
    corpus = load_table_corpus(path, "text")
    assert sorted(texts_of(corpus)) == sorted(TEXTS)
    assert {doc.name for doc in corpus.documents} == {f"a.jsonl:{line}" for line in range(1, 31)}
    assert corpus.fingerprint["files"] == 1 and corpus.fingerprint["bytes"] == path.stat().st_size


def test_parquet_reads_the_named_column_and_skips_empty_rows(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", {"body": TEXTS + [None, ""], "text": ["decoy"] * 32})
    corpus = load_table_corpus(path, "body")
    assert sorted(texts_of(corpus)) == sorted(TEXTS)
    assert "a.parquet:0" in {doc.name for doc in corpus.documents}


def test_directory_of_tables_reads_only_table_files_recursively(tmp_path, capsys):
    write_jsonl(tmp_path / "d" / "part1.jsonl", [{"text": t} for t in TEXTS[:10]])
    write_parquet(tmp_path / "d" / "sub" / "part2.parquet", {"text": TEXTS[10:]})
    (tmp_path / "d" / "README.md").write_text("# not training text\n")
    assert is_table_source(tmp_path / "d")
    corpus = load_table_corpus(tmp_path / "d", "text")
    [warning] = capsys.readouterr().err.splitlines()
    assert warning.startswith("warning: ") and "only those 2 are read" in warning and "README.md" in warning
    (tmp_path / "d" / "README.md").unlink()
    assert load_table_corpus(tmp_path / "d", "text") == corpus and not capsys.readouterr().err
    assert sorted(texts_of(corpus)) == sorted(TEXTS)
    assert corpus.fingerprint["files"] == 2
    assert {doc.name.split(":")[0] for doc in corpus.documents} == {"part1.jsonl", "sub/part2.parquet"}


def test_save_to_disk_directory_reads_its_arrow_shards(tmp_path):
    large = pa.array(TEXTS[12:], pa.large_string())  # datasets' Value("large_string")
    root = save_to_disk(tmp_path / "ds", [{"text": TEXTS[:12], "n": list(range(12))}, {"text": large}])
    assert is_table_source(root)
    corpus = load_table_corpus(root, "text")
    assert sorted(texts_of(corpus)) == sorted(TEXTS) and corpus.fingerprint["files"] == 2


def test_split_is_by_document_like_text(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": t} for t in TEXTS * 4])
    corpus = load_table_corpus(path, "text")
    train, val = split_documents(corpus.documents, 0.25)
    assert len(train) + len(val) == 120 and 10 <= len(val) <= 50
    assert not {d.name for d in train} & {d.name for d in val}


def test_fingerprint_follows_the_files_and_the_column(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": t, "title": t[:12]} for t in TEXTS])
    before = load_table_corpus(path, "text").fingerprint["sha256"]
    assert load_table_corpus(path, "title").fingerprint["sha256"] != before
    assert load_table_corpus(path, "title").fingerprint["text_column"] == "title"
    write_jsonl(path, [{"text": t} for t in TEXTS[:-1]] + [{"text": "changed"}])
    assert load_table_corpus(path, "text").fingerprint["sha256"] != before


def test_not_table_sources(tmp_path):
    (tmp_path / "notes.txt").write_text("plain text\n")
    assert not is_table_source(tmp_path / "notes.txt") and not is_table_source(tmp_path)


@pytest.mark.parametrize("make, message", [
    (lambda d: write_parquet(d / "a.parquet", {"body": TEXTS}),
     r"a.parquet has no column 'text' \(its columns: body\); set data.text_column"),
    (lambda d: write_jsonl(d / "a.jsonl", [{"text": "fine"}, {"body": "x", "id": 2}]),
     r"line 2 of .*a.jsonl has no column 'text' \(it has: body, id\)"),
    (lambda d: write_jsonl(d / "a.jsonl", [{"text": 3}]), r"line 1 of .*a.jsonl: 'text' holds a int, not text"),
    (lambda d: write_parquet(d / "a.parquet", {"text": [1, 2]}), r"column 'text' of .*a.parquet holds int64"),
    (lambda d: (d / "a.jsonl").write_text('{"text": "ok"}\n{"text": \n'), r"line 2 of .*a.jsonl is not JSON"),
    (lambda d: (d / "a.parquet").write_bytes(b"PAR1 but not really"), r"a.parquet is not a readable Parquet file"),
    (lambda d: write_jsonl(d / "a.jsonl", [{"text": None}, {"text": ""}]), r"has no text in column 'text'"),
])
def test_bad_tables_are_one_line_naming_the_file(tmp_path, make, message):
    make(tmp_path)
    [path] = tmp_path.iterdir()
    with pytest.raises(DataError, match=message) as err:
        load_table_corpus(path, "text")
    assert "\n" not in str(err.value)


def test_bad_save_to_disk_directories(tmp_path):
    root = save_to_disk(tmp_path / "ds", [{"text": TEXTS}])
    (root / "data-00000-of-00001.arrow").write_bytes(b"garbage")
    with pytest.raises(DataError, match="data-00000-of-00001.arrow is not a readable Arrow stream"):
        load_table_corpus(root, "text")
    (root / "state.json").write_text("{}")
    with pytest.raises(DataError, match="state.json does not list the dataset's Arrow files"):
        load_table_corpus(root, "text")


def test_dataset_dict_points_at_a_split(tmp_path):
    save_to_disk(tmp_path / "dd" / "train", [{"text": TEXTS}])
    save_to_disk(tmp_path / "dd" / "test", [{"text": TEXTS[:2]}])
    (tmp_path / "dd" / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    with pytest.raises(DataError, match=r"DatasetDict with splits test, train; .* e.g. .*dd/train"):
        load_table_corpus(tmp_path / "dd", "text")
    assert len(load_table_corpus(tmp_path / "dd" / "train", "text").documents) == 30
