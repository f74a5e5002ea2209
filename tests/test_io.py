import json
import math
import os

import pytest

from scaling.errors import ScalingError
from scaling.io import (MANIFEST, JsonlWriter, atomic_write, cache_dir, process_umask, read_json, read_jsonl,
                        staged_directory, truncate_jsonl, write_json)


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


def test_atomic_write_follows_the_umask_in_force_when_it_writes(tmp_path):
    previous = os.umask(0o027)
    try:
        assert process_umask() == 0o027
        atomic_write(tmp_path / "f.txt", "x")
        with staged_directory(tmp_path / "out", "test") as staging:
            (staging / "g.txt").write_text("y")
    finally:
        os.umask(previous)
    assert process_umask() == previous
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o750


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


def test_staged_directory_replaces_its_own_files_and_leaves_out_alone_on_error(tmp_path):
    out = tmp_path / "report"
    with staged_directory(out) as staging:
        (staging / "a.txt").write_text("first")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "a.txt"]
    assert out.stat().st_mode & 0o755 == 0o755
    with staged_directory(out) as staging:
        (staging / "b.txt").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "b.txt"]  # a.txt was ours and is stale
    with pytest.raises(RuntimeError):
        with staged_directory(out) as staging:
            (staging / "d.txt").write_text("half")
            raise RuntimeError("drawing failed")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging left behind


def test_staged_directory_never_replaces_or_deletes_files_it_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    (mine / "photos").mkdir(parents=True)
    for name, text in (("index.html", "my page"), ("photos/cat.jpg", "cat"), ("notes.txt", "notes")):
        (mine / name).write_text(text)
    with pytest.raises(ScalingError, match=f"non-empty directory that scaling report did not write"):
        with staged_directory(mine, "scaling report") as staging:
            raise AssertionError("the check comes before any work")
    assert (mine / "index.html").read_text() == "my page" and (mine / "photos/cat.jpg").read_text() == "cat"

    out = tmp_path / "out"
    with staged_directory(out) as staging:
        (staging / "figures").mkdir()
        (staging / "figures/old.png").write_text("1")
        (staging / "index.html").write_text("1")
    (out / "notes.txt").write_text("mine")  # the user's files, dropped in later
    (out / "figures/mine.png").write_text("mine")
    (out / "extra").mkdir()
    with staged_directory(out) as staging:
        (staging / "figures").mkdir()
        (staging / "figures/new.png").write_text("2")
        (staging / "index.html").write_text("2")
    assert (out / "index.html").read_text() == "2" and (out / "figures/new.png").exists()
    assert not (out / "figures/old.png").exists()  # ours and stale
    assert (out / "notes.txt").read_text() == "mine" and (out / "figures/mine.png").exists() and (out / "extra").is_dir()
    assert json.loads((out / MANIFEST).read_text())["files"] == ["figures/new.png", "index.html"]
    with pytest.raises(ScalingError, match="notes.txt is there but was not written"):
        with staged_directory(out) as staging:
            (staging / "notes.txt").write_text("would overwrite the user's")
    assert (out / "notes.txt").read_text() == "mine"
    (out / "data").write_text("a file where the output wants a directory")
    with pytest.raises(ScalingError, match="data is there but was not written"):
        with staged_directory(out) as staging:
            (staging / "data").mkdir()
            (staging / "data/x.csv").write_text("1")
    (out / MANIFEST).write_text('{"files": ["../outside.txt"]}')
    with pytest.raises(ScalingError, match="unreadable"):
        with staged_directory(out):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]


def test_jsonl_writer_cuts_back_a_line_the_disk_refused(tmp_path, monkeypatch):
    import errno
    import os

    from scaling import io

    path = tmp_path / "m.jsonl"
    writer = JsonlWriter(path)
    writer.write({"step": 1})

    def half_then_full(fd, data):
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io, "_write_all", half_then_full)
    with pytest.raises(OSError) as err:
        writer.write({"step": 2, "loss": 1.5})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    writer.close()
    assert path.read_text() == '{"step": 1}\n'


def test_directory_lock_is_exclusive_until_closed(tmp_path):
    import os

    from scaling.io import try_lock_directory

    fd = try_lock_directory(tmp_path)
    assert fd is not None and try_lock_directory(tmp_path) is None
    os.close(fd)
    again = try_lock_directory(tmp_path)
    assert again is not None
    os.close(again)


def test_staged_directory_writes_through_a_symlink_and_keeps_to_its_own_command(tmp_path):
    from scaling.errors import ScalingError
    from scaling.io import staged_directory
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to("real")
    with staged_directory(tmp_path / "link", "scaling report") as staging:
        (staging / "index.html").write_text("new")
    assert (tmp_path / "link").is_symlink() and (real / "index.html").read_text() == "new"
    with pytest.raises(ScalingError, match="holds the output of scaling report"):
        with staged_directory(real, "scaling moore") as staging:
            (staging / "moore.json").write_text("{}")
    assert sorted(p.name for p in real.iterdir()) == [".scaling-manifest.json", "index.html"]
