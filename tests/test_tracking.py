import json
import math

import pytest

from scaling import tracking
from scaling.config import config_hash, load, resolve
from scaling.errors import ConfigError
from scaling.io import read_json, read_jsonl
from scaling.training import train


class Interrupt(KeyboardInterrupt):
    pass


def stop_at(step_to_stop: int):
    def on_step(step):
        if step == step_to_stop:
            raise Interrupt()
    return on_step


def event_reader(directory):
    """TensorBoard's own reader of a directory's event files (what `tensorboard --logdir` loads per run)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(directory), size_guidance={"scalars": 0})  # 0: keep every event


def tensorboard_scalars(directory, reader=None) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in `directory`'s event files as TensorBoard reads them: tag -> [(step, value)]. `reader`: one
    that has read the files before (a TensorBoard left open) reads on from where it was."""
    events = reader or event_reader(directory)
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def jsonl_scalars(rows: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl's rows in the same form (its nulls are not scalars)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "step" and value is not None:
                out.setdefault(key, []).append((row["step"], value))
    return out


def assert_same_scalars(read: dict, expected: dict) -> None:
    """TensorBoard stores float32: equal to metrics.jsonl's values at that precision, at the same steps."""
    assert set(read) == set(expected)
    for tag, points in expected.items():
        assert [step for step, _ in read[tag]] == [step for step, _ in points], tag
        assert [value for _, value in read[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag


def test_tensorboard_events_hold_every_metrics_row(tmp_path, tiny_overrides):
    config = load(None, tiny_overrides + ["train.steps=12", "train.log_every=3", "train.eval_every=6",
                                          "log.tensorboard=true"])
    train(config, tmp_path, quiet=True)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    read = tensorboard_scalars(tmp_path / "tensorboard")
    assert {"loss", "val_loss", "lr", "tokens", "tokens_per_s", "mfu"} <= set(read)
    assert [step for step, _ in read["val_loss"]] == [6, 12]
    assert_same_scalars(read, jsonl_scalars(rows))


def test_resumed_run_has_each_step_once_in_tensorboard(tmp_path, tiny_overrides):
    config = load(None, tiny_overrides + ["train.steps=16", "checkpoint.every=5", "log.tensorboard=true"])
    with pytest.raises(Interrupt):
        train(config, tmp_path, on_step=stop_at(13), quiet=True)
    left_open = event_reader(tmp_path / "tensorboard")
    logged_before = [s for s, _ in tensorboard_scalars(tmp_path / "tensorboard", left_open)["loss"]]
    assert logged_before[-1] > 10  # steps past the checkpoint (10) that the resume trains again
    summary = train(config, tmp_path, quiet=True)
    assert summary["resumed_from_step"] == 10
    expected = jsonl_scalars(read_jsonl(tmp_path / "metrics.jsonl"))
    for read in tensorboard_scalars(tmp_path / "tensorboard"), tensorboard_scalars(tmp_path / "tensorboard", left_open):
        assert [s for s, _ in read["loss"]] == list(range(1, 17))
        assert_same_scalars(read, expected)
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one per attempt


def test_tensorboard_turned_on_for_a_resume_gets_the_rows_logged_before(tmp_path, tiny_overrides):
    overrides = tiny_overrides + ["train.steps=10", "checkpoint.every=4"]
    with pytest.raises(Interrupt):
        train(load(None, overrides), tmp_path, on_step=stop_at(6), quiet=True)
    summary = train(load(None, overrides + ["log.tensorboard=true"]), tmp_path, quiet=True)
    assert summary["resumed_from_step"] == 4  # the same run: [log] is not part of its id
    read = tensorboard_scalars(tmp_path / "tensorboard")
    assert [s for s, _ in read["loss"]] == list(range(1, 11))
    assert_same_scalars(read, jsonl_scalars(read_jsonl(tmp_path / "metrics.jsonl")))


def test_tracking_is_not_part_of_the_run_id(tiny_overrides):
    plain = resolve(load(None, tiny_overrides), 256)
    tracked = resolve(load(None, tiny_overrides + ["log.tensorboard=true", "log.wandb=proj", "log.group=g"]), 256)
    assert tracked.log != plain.log
    assert config_hash(tracked) == config_hash(plain)


def test_failing_tracker_warns_once_and_training_goes_on(tmp_path, tiny_overrides, monkeypatch, capsys):
    def broken(self, row):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tracking.TensorBoardSink, "write", broken)
    config = load(None, tiny_overrides + ["train.steps=6", "log.tensorboard=true"])
    summary = train(config, tmp_path, quiet=True)
    assert summary["status"] == "completed"
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == list(range(1, 7))
    warnings = [line for line in capsys.readouterr().err.splitlines() if "log.tensorboard failed" in line]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]


def test_missing_tracker_package_is_refused_before_the_run_directory_exists(tmp_path, tiny_overrides, monkeypatch):
    monkeypatch.setitem(tracking.PACKAGES, "wandb", ("no_such_module_for_tracking", "wandb"))
    config = load(None, tiny_overrides + ["log.wandb=proj"])
    with pytest.raises(ConfigError, match=r"pip install '\.\[wandb\]'"):
        train(config, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("setting, message", [
    ("log.wandb=team/proj", "must be a W&B project name"),
    ("log.tensorboard_dir=/tmp/elsewhere", "must be relative to the run directory"),
    ("log.tensorboard=yes", "must be bool"),
])
def test_bad_log_settings_are_refused(setting, message):
    with pytest.raises(ConfigError, match=message):
        load(None, [setting])


# Weights & Biases, offline: no network; its files go under the run directory.

def wandb_records(run_dir, attempt: int = 0) -> list:
    """The records of the run's offline .wandb file (a LevelDB-style log of protobuf records: 7-byte file
    header, 32 KiB blocks, each chunk with a 7-byte header: crc32, length, type FULL/FIRST/MIDDLE/LAST).
    `attempt`: which one of the offline runs (one per attempt, oldest first)."""
    from wandb.proto import wandb_internal_pb2

    path = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))[attempt]
    data, block, pos, payload, records = path.read_bytes(), 32768, 7, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        payload += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            records.append(record)
            payload = b""
    return records


def wandb_history(records) -> dict[int, dict]:
    """step -> {key: value} of the history records (less W&B's own underscore keys)."""
    rows = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            rows[items["_step"]] = {k: v for k, v in items.items() if not k.startswith("_")}
    return rows


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    """Offline W&B with an empty HOME, which must stay empty: W&B writes only under the run directory."""
    pytest.importorskip("wandb")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DIR", "WANDB_DATA_DIR", "XDG_CACHE_HOME",
                 "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    return home


def test_wandb_offline_run_holds_the_metrics_rows(tmp_path, tiny_overrides, wandb_offline):
    config = load(None, tiny_overrides + ["train.steps=6", "train.eval_every=3", "log.wandb=tiny-proj",
                                          "log.group=grp", "log.name=nice name"])
    train(config, tmp_path / "run", quiet=True)
    assert list(wandb_offline.rglob("*")) == []
    records = wandb_records(tmp_path / "run")
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (run.project, run.run_group, run.display_name) == ("tiny-proj", "grp", "nice name")
    assert run.run_id.startswith(read_json(tmp_path / "run" / "config.json")["run_id"])
    history = wandb_history(records)
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert sorted(history) == [r["step"] for r in rows]
    for row in rows:
        expected = {k: v for k, v in row.items() if k != "step" and v is not None and math.isfinite(v)}
        assert history[row["step"]] == pytest.approx(expected), row["step"]


def test_wandb_failure_warns_and_training_goes_on(tmp_path, tiny_overrides, wandb_offline, monkeypatch, capsys):
    import wandb

    def refuse(**kwargs):
        raise RuntimeError("api key not configured")

    monkeypatch.setattr(wandb, "init", refuse)
    summary = train(load(None, tiny_overrides + ["train.steps=4", "log.wandb=proj"]), tmp_path, quiet=True)
    assert summary["status"] == "completed" and len(read_jsonl(tmp_path / "metrics.jsonl")) == 4
    assert capsys.readouterr().err.count("log.wandb failed (RuntimeError: api key not configured)") == 1


def test_resumed_run_continues_its_wandb_run_with_the_steps_after_the_checkpoint(tmp_path, tiny_overrides,
                                                                                  wandb_offline):
    config = load(None, tiny_overrides + ["train.steps=12", "checkpoint.every=5", "log.wandb=proj"])
    with pytest.raises(Interrupt):
        train(config, tmp_path, on_step=stop_at(8), quiet=True)
    train(config, tmp_path, quiet=True)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    attempts = [wandb_records(tmp_path, i) for i in (0, 1)]
    ids = [[r.run.run_id for r in records if r.WhichOneof("record_type") == "run"] for records in attempts]
    assert ids[0] == ids[1] and len(ids[0]) == 1  # one W&B run, resumed
    first, second = (wandb_history(records) for records in attempts)
    assert max(first) > 5 and sorted(second) == list(range(6, 13))  # the checkpoint was at step 5
    merged = {step: values for step, values in first.items() if step <= 5} | second
    assert merged == {r["step"]: pytest.approx({k: v for k, v in r.items() if k != "step" and v is not None})
                      for r in rows}
