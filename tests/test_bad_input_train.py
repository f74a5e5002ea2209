"""Bad input to `scaling train`, one case per row: a one-line `error:` with exit 2 and nothing written (no run
directory, no partial file), or a one-line `warning:` where the input is legal but suspicious."""

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY
from scaling import io
from scaling_cli.main import main
from scaling.config import load
from scaling.training import train

TWO_STEPS = TINY + ["train.steps=2"]


def sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


def stderr_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def write_bin(directory: Path, values, dtype) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        np.asarray(values, dtype=dtype).tofile(directory / f"{split}.bin")
    return directory


def _nan_lr(tmp):
    return ["train.lr=nan"], [], "train.lr"


def _negative_clip(tmp):
    return ["train.grad_clip=-1"], [], "train.grad_clip"


def _beta2(tmp):
    return ["train.beta2=1.5"], [], "train.beta2"


def _negative_seed(tmp):
    return ["train.seed=-1"], [], "train.seed"


def _host_devices_not_dividing(tmp):
    return ["train.batch_size=4"], ["--host-devices", "3"], "use one of 1, 2, 4"


def _cache_dir_file(tmp):
    (tmp / "cachefile").write_text("not a directory")
    return [f"data.cache_dir={tmp / 'cachefile'}"], [], "is a file, not a directory"


def _vocab_beyond_memory(tmp):
    return ["model.vocab_size=100000000", "model.d_model=256"], [], "lower model.vocab_size"


def _bin_file_as_source(tmp):
    data = write_bin(tmp / "tokens", np.arange(3000) % 50, np.uint16)
    return [f"data.source={data / 'train.bin'}"], [], f"data.source={data}"


def _uint32_read_as_uint16(tmp):
    data = write_bin(tmp / "tokens", np.arange(3000) % 50, np.uint32)
    return [f"data.source={data}"], [], "set data.bin_dtype=uint32"


def _uint16_read_as_uint32(tmp):
    data = write_bin(tmp / "tokens", np.arange(3000) % 3, np.uint16)
    return [f"data.source={data}", "data.bin_dtype=uint32"], [], "set data.bin_dtype=uint16"


ERRORS = {
    "lr nan": _nan_lr,
    "grad_clip -1": _negative_clip,
    "beta2 1.5": _beta2,
    "seed -1": _negative_seed,
    "--host-devices 3, batch 4": _host_devices_not_dividing,
    "data.cache_dir a file": _cache_dir_file,
    "vocab_size 1e8": _vocab_beyond_memory,
    "train.bin as data.source": _bin_file_as_source,
    "uint32 data read as uint16": _uint32_read_as_uint16,
    "uint16 data read as uint32": _uint16_read_as_uint32,
}


@pytest.mark.parametrize("case", ERRORS)
def test_bad_input_is_one_error_line_and_writes_nothing(case, tmp_path, capsys):
    overrides, extra, message = ERRORS[case](tmp_path)
    before = sorted(tmp_path.rglob("*"))
    code = main(["train", "--out", str(tmp_path / "run"), "--quiet", *extra, *sets(TWO_STEPS + overrides)])
    lines = stderr_lines(capsys)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert message in lines[0]
    assert not (tmp_path / "run").exists()
    assert sorted(tmp_path.rglob("*")) == before


def test_empty_out_is_refused_and_nothing_lands_in_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--out", "", "--quiet", *sets(TWO_STEPS)])
    lines = stderr_lines(capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "--out" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["out", "parent"])
def test_out_through_an_existing_file_is_refused(where, tmp_path, capsys):
    existing = tmp_path / "file"
    existing.write_text("keep me")
    out = existing if where == "out" else existing / "run"
    code = main(["train", "--out", str(out), "--quiet", *sets(TWO_STEPS)])
    lines = stderr_lines(capsys)
    assert code == 2 and len(lines) == 1 and "is an existing file" in lines[0]
    assert existing.read_text() == "keep me" and list(tmp_path.iterdir()) == [existing]


def test_read_only_out_is_one_line(tmp_path, capsys, monkeypatch):
    # Tests may run as root, for whom chmod does not make a directory read-only: fail mkdir as EROFS would.
    out = tmp_path / "ro" / "run"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == out:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    code = main(["train", "--out", str(out), "--quiet", *sets(TWO_STEPS)])
    lines = stderr_lines(capsys)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("error: ") and "Read-only file system" in lines[0] and str(out) in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("holder", ["scaling train", "sweep executor"])
def test_second_trainer_on_one_out_is_refused(holder, tmp_path, capsys):
    """Another process holds the run's lock: `scaling train`'s own, or the one a sweep executor takes
    (sweeps.store.try_lock, the same file) and hands to its worker."""
    from sweeps import store

    out = tmp_path / "run"
    out.mkdir()
    fd = io.try_lock_directory(out) if holder == "scaling train" else store.try_lock(out)
    try:
        code = main(["train", "--out", str(out), "--quiet", *sets(TWO_STEPS)])
    finally:
        os.close(fd)
    lines = stderr_lines(capsys)
    assert code == 2 and len(lines) == 1 and "another process is training in" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_sweep_worker_trains_under_its_executors_lock(tmp_path):
    """The worker calls train() without taking the lock again: its executor holds it for the run."""
    from sweeps import store

    out = tmp_path / "run"
    fd = store.try_lock(out)
    try:
        summary = train(load(None, TWO_STEPS), out, quiet=True)
    finally:
        os.close(fd)
    assert summary["status"] == "completed"


def test_full_disk_is_one_line_keeps_metrics_whole_and_resumes(tmp_path, capsys, monkeypatch):
    overrides = TINY + ["train.steps=6", "checkpoint.every=2", "train.eval_every=3"]
    straight = train(load(None, overrides), tmp_path / "straight", quiet=True)
    capsys.readouterr()
    writes = {"n": 0}
    real_write_all = io._write_all

    def write_all(fd, data):
        writes["n"] += 1
        if writes["n"] == 5:  # the 5th metrics line: half of it reaches the disk, then the disk is full
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_all(fd, data)

    monkeypatch.setattr(io, "_write_all", write_all)
    run = tmp_path / "run"
    code = main(["train", "--out", str(run), "--quiet", *sets(overrides)])
    lines = stderr_lines(capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "No space left on device" in lines[0]
    assert str(run / "metrics.jsonl") in lines[0] and "rerun the same command" in lines[0]
    text = (run / "metrics.jsonl").read_text()
    assert text.endswith("\n") and [json.loads(line)["step"] for line in text.splitlines()] == [1, 2, 3, 4]
    monkeypatch.setattr(io, "_write_all", real_write_all)
    assert main(["train", "--out", str(run), "--quiet", *sets(overrides)]) == 0
    resumed = io.read_json(run / "summary.json")
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == 4
    losses = [r["loss"] for r in io.read_jsonl(run / "metrics.jsonl")]
    assert losses == [r["loss"] for r in io.read_jsonl(tmp_path / "straight" / "metrics.jsonl")]
    assert (resumed["final_train_loss"], resumed["final_val_loss"]) == \
        (straight["final_train_loss"], straight["final_val_loss"])


def test_resuming_on_other_device_count_warns(tmp_path, capsys):
    overrides = TINY + ["train.steps=4", "checkpoint.every=2"]

    def stop(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(load(None, overrides), tmp_path / "run", on_step=stop, quiet=True)
    meta_file = tmp_path / "run" / "checkpoints" / "2" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    assert meta["n_devices"] == 1
    meta_file.write_text(json.dumps(dict(meta, n_devices=2)))  # as if the run had started on 2 devices
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "run"), "--quiet", *sets(overrides)]) == 0
    warnings = [line for line in stderr_lines(capsys) if line.startswith("warning:")]
    assert warnings == ["warning: resuming on 1 devices, the run started on 2: losses will not be bitwise identical "
                        "to an uninterrupted run"]


def test_every_checkpoint_corrupt_warns_on_one_line_each_and_restarts(tmp_path, capsys):
    from test_checkpoint import corrupt_arrays

    overrides = TINY + ["train.steps=4", "checkpoint.every=2", "checkpoint.keep=3"]

    def stop(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(load(None, overrides), tmp_path / "run", on_step=stop, quiet=True)
    corrupt_arrays(tmp_path / "run" / "checkpoints" / "2")
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "run"), "--quiet", *sets(overrides)]) == 0
    lines = stderr_lines(capsys)
    assert all(line.startswith("warning: ") for line in lines), lines  # TensorStore's dumps, one line each
    assert "checkpoint at step 2 could not be restored" in lines[0]
    assert "training starts again from step 0" in lines[-1] and len(lines) == 2
    assert io.read_json(tmp_path / "run" / "summary.json")["resumed_from_step"] is None
