import json
import math

import pytest

from scaling.io import (JsonlWriter, atomic_write, cache_dir, read_json, read_jsonl, staged_directory, truncate_jsonl,
                        write_json)


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("SCALING_CACHE", str(tmp_path / "env"))
    assert cache_dir("") == tmp_path / "env"
    assert cache_dir(str(tmp_path / "cfg")) == tmp_path / "cfg"
    monkeypatch.delenv("SCALING_CACHE")
    assert str(cache_dir("")).endswith(".cache/scaling")


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    atomic_write(path, b"first version")
    atomic_write(path, lambda f: f.write(b"second"))
    assert path.read_bytes() == b"second" and len(list(path.parent.iterdir())) == 1
    atomic_write(path, "text")
    assert path.read_text() == "text"
    assert path.stat().st_mode & 0o644 == 0o644  # readable by others, like any ordinary file


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write(path, "old")

    def broken(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    try:
        atomic_write(path, broken)
    except RuntimeError:
        pass
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_json_makes_non_finite_explicit(tmp_path):
    write_json(tmp_path / "s.json", {"a": math.nan, "b": math.inf, "c": [1.5, -math.inf]})
    assert read_json(tmp_path / "s.json") == {"a": None, "b": "inf", "c": [1.5, "-inf"]}


def test_jsonl_append_read_truncate(tmp_path):
    path = tmp_path / "m.jsonl"
    writer = JsonlWriter(path)
    for step in range(1, 6):
        writer.write({"step": step, "loss": 1.0 / step})
    writer.close()
    with open(path, "a") as handle:
        handle.write('{"step": 6, "lo')  # a line cut short by a crash
    assert [r["step"] for r in read_jsonl(path)] == [1, 2, 3, 4, 5]
    truncate_jsonl(path, 3)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3]


def test_staged_directory_replaces_whole_or_merges_and_leaves_out_alone_on_error(tmp_path):
    out = tmp_path / "report"
    with staged_directory(out) as staging:
        (staging / "a.txt").write_text("first")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    assert out.stat().st_mode & 0o755 == 0o755
    with staged_directory(out) as staging:
        (staging / "b.txt").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]  # replaced whole
    with staged_directory(out, replace_whole=False) as staging:
        (staging / "c.txt").write_text("third")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt", "c.txt"]  # merged by name
    with pytest.raises(RuntimeError):
        with staged_directory(out) as staging:
            (staging / "d.txt").write_text("half")
            raise RuntimeError("drawing failed")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt", "c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging left behind
