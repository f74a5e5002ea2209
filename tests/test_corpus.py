import os
from pathlib import Path

import pytest

from scaling.corpus import (CHUNK_CHARS, STDLIB_EXCLUDED_DIRS, Document, chunk_text, fingerprint, load_corpus,
                            split_documents, split_position)
from scaling.errors import DataError


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def docs(n: int) -> tuple[Document, ...]:
    return tuple(Document(f"dir/file{i}.txt", f"text {i}\n") for i in range(n))


def test_stdlib_corpus_excludes_tests_and_is_fingerprinted():
    corpus = load_corpus("stdlib")
    names = [doc.name for doc in corpus.documents]
    assert len(names) > 300 and names == sorted(names)
    assert all(name.endswith(".py") for name in names)
    assert not any(set(name.split("/")[:-1]) & STDLIB_EXCLUDED_DIRS for name in names)
    fp = corpus.fingerprint
    assert fp["source"] == "stdlib" and fp["files"] == len(names) and len(fp["sha256"]) == 64
    assert fp["bytes"] == sum(len(doc.text.encode()) for doc in corpus.documents)


def test_directory_reads_nested_files_and_skips_hidden(tmp_path):
    write_tree(tmp_path, {"a.txt": "alpha\n", "sub/b.md": "beta\n", ".git/objects/x": b"\xff\xfe",
                          "sub/.hidden": "no", "__pycache__/m.pyc": b"\x00\xff"})
    corpus = load_corpus(str(tmp_path))
    assert [(d.name, d.text) for d in corpus.documents] == [("a.txt", "alpha\n"), ("sub/b.md", "beta\n")]
    assert corpus.fingerprint["files"] == 2 and corpus.fingerprint["bytes"] == 11


def test_single_file_is_chunked_at_line_ends(tmp_path):
    text = "".join(f"line {i} of the file\n" for i in range(3000))
    path = tmp_path / "book.txt"
    path.write_text(text)
    corpus = load_corpus(str(path))
    chunks = [doc.text for doc in corpus.documents]
    assert "".join(chunks) == text and len(chunks) > 3
    assert all(len(c) >= CHUNK_CHARS and c.endswith("\n") for c in chunks[:-1])
    assert [doc.name for doc in corpus.documents][:2] == ["book.txt:0", "book.txt:1"]
    assert corpus.fingerprint["files"] == 1 and corpus.fingerprint["bytes"] == len(text)
    assert chunk_text("no newline at all" * 1000) == ["no newline at all" * 1000]


def test_fingerprint_changes_with_content_or_name_only():
    base = fingerprint("s", [("a.txt", b"hello"), ("b.txt", b"world")])
    assert base == fingerprint("s", [("b.txt", b"world"), ("a.txt", b"hello")])  # order does not matter
    assert base["sha256"] != fingerprint("s", [("a.txt", b"hellO"), ("b.txt", b"world")])["sha256"]
    assert base["sha256"] != fingerprint("s", [("c.txt", b"hello"), ("b.txt", b"world")])["sha256"]
    # contents moving across the file boundary change the hash too
    assert base["sha256"] != fingerprint("s", [("a.txt", b"hellow"), ("b.txt", b"orld")])["sha256"]


def test_fingerprint_changes_when_a_file_changes(tmp_path):
    write_tree(tmp_path, {"a.txt": "one\n", "b.txt": "two\n"})
    before = load_corpus(str(tmp_path)).fingerprint
    assert load_corpus(str(tmp_path)).fingerprint == before
    (tmp_path / "b.txt").write_text("two!\n")
    assert load_corpus(str(tmp_path)).fingerprint["sha256"] != before["sha256"]


def test_split_is_deterministic_and_leak_free():
    documents = docs(400)
    train, val = split_documents(documents, 0.1)
    assert (train, val) == split_documents(documents, 0.1)
    train_names, val_names = {d.name for d in train}, {d.name for d in val}
    assert not train_names & val_names and train_names | val_names == {d.name for d in documents}
    assert 20 <= len(val) <= 60
    assert all(split_position(d.name) < 0.1 for d in val)
    # a document keeps its split when others are added
    _, val_more = split_documents(documents + docs(600)[400:], 0.1)
    assert val_names <= {d.name for d in val_more}


def test_split_keeps_both_sides_non_empty():
    two = docs(2)
    train, val = split_documents(two, 1e-9)
    assert len(train) == len(val) == 1
    assert val[0].name == min(two, key=lambda d: split_position(d.name)).name
    train, val = split_documents(two, 0.999999)
    assert len(train) == len(val) == 1
    with pytest.raises(DataError, match="at least 2"):
        split_documents(docs(1), 0.5)


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_corpus(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="data.source is empty"):
        load_corpus("")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no text"):
        load_corpus(str(tmp_path / "empty"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="empty.txt is empty"):
        load_corpus(str(tmp_path / "empty.txt"))


def test_undecodable_file_is_named(tmp_path):
    write_tree(tmp_path, {"good.txt": "fine\n", "sub/bad.txt": b"ok \xff\xfe bytes"})
    with pytest.raises(DataError) as err:
        load_corpus(str(tmp_path))
    message = str(err.value)
    assert "bad.txt" in message and "not UTF-8" in message and "offset 3" in message and "\n" not in message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_is_named(tmp_path):
    write_tree(tmp_path, {"a.txt": "fine\n", "secret.txt": "hidden\n"})
    (tmp_path / "secret.txt").chmod(0)
    try:
        with pytest.raises(DataError, match="cannot read data file .*secret.txt"):
            load_corpus(str(tmp_path))
    finally:
        (tmp_path / "secret.txt").chmod(0o644)


def test_broken_link_is_named(tmp_path):
    write_tree(tmp_path, {"a.txt": "fine\n"})
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing-target")
    with pytest.raises(DataError, match="cannot read data file .*gone.txt: No such file"):
        load_corpus(str(tmp_path))


def test_permission_error_is_named(tmp_path, monkeypatch):
    # the chmod test above is skipped when running as root; simulate the error instead
    write_tree(tmp_path, {"a.txt": "fine\n", "locked.txt": "hidden\n"})
    real_read = Path.read_bytes

    def read_bytes(self):
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(DataError, match="cannot read data file .*locked.txt: Permission denied; fix its permissions"):
        load_corpus(str(tmp_path))
