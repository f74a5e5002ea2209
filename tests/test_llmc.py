from pathlib import Path

import numpy as np
import pytest

from data_helpers import write_shard
from scaling.errors import DataError
from scaling.llmc import HEADER_BYTES, ShardedTokens, read_shard, shard_files, split_of, token_count


def test_shard_round_trips(tmp_path):
    ids = np.arange(1000, 1500, dtype=np.uint16)
    path = write_shard(tmp_path / "x_train_000001.bin", ids)
    assert token_count(path) == 500
    tokens = read_shard(path)
    np.testing.assert_array_equal(tokens, ids)
    assert path.stat().st_size == HEADER_BYTES + 2 * 500


@pytest.mark.parametrize("kwargs, cut, message", [
    ({"magic": 20240521}, 0, "is not an llm.c token shard"),
    ({"version": 2}, 0, "header version 2; only version 1"),
    ({"count": 501}, 0, "has 2024 bytes but its header promises 501 tokens"),
    ({}, 3, "has 2021 bytes but its header promises 500 tokens"),
    ({}, 2000, "is not an llm.c token shard"),  # shorter than a header
])
def test_bad_shards_are_one_line_naming_the_file(tmp_path, kwargs, cut, message):
    path = write_shard(tmp_path / "x_val_000000.bin", np.zeros(500), **kwargs)
    path.write_bytes(path.read_bytes()[:path.stat().st_size - cut])
    with pytest.raises(DataError, match=message) as err:
        read_shard(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_split_of_follows_llmc_names():
    assert split_of(Path("fineweb_train_000001.bin")) == "train"
    assert split_of(Path("edu_fineweb_val_000000.bin")) == "val"
    assert split_of(Path("tiny_shakespeare_train.bin")) == "train"
    assert split_of(Path("trainer_dump.bin")) is None and split_of(Path("train_val.bin")) is None


def test_shard_files_groups_by_split_in_name_order(tmp_path):
    for name in ("fw_train_000002.bin", "fw_val_000000.bin", "fw_train_000001.bin"):
        write_shard(tmp_path / name, [1, 2])
    (tmp_path / "README.md").write_text("not a shard")
    splits = shard_files(tmp_path)
    assert [p.name for p in splits["train"]] == ["fw_train_000001.bin", "fw_train_000002.bin"]
    assert [p.name for p in splits["val"]] == ["fw_val_000000.bin"]


def test_shard_files_errors(tmp_path):
    assert shard_files(tmp_path) == {}
    write_shard(tmp_path / "fw_train_000001.bin", [1, 2])
    with pytest.raises(DataError, match="has no val shard"):
        shard_files(tmp_path)
    write_shard(tmp_path / "fw_val_000000.bin", [1, 2])
    write_shard(tmp_path / "extra.bin", [1, 2])
    with pytest.raises(DataError, match="extra.bin is in an llm.c shard directory but its name says neither"):
        shard_files(tmp_path)


def test_sharded_tokens_read_as_one_array():
    parts = [np.arange(0, 5), np.arange(5, 12), np.arange(12, 13), np.arange(13, 20)]
    whole = np.arange(20)
    tokens = ShardedTokens(parts)
    assert len(tokens) == 20 and tokens.shape == (20,) and tokens.ndim == 1
    for start in range(21):
        for stop in range(start, 23):
            np.testing.assert_array_equal(tokens[start:stop], whole[start:stop])
    assert [int(tokens[i]) for i in (0, 4, 5, 12, 19, -1)] == [0, 4, 5, 12, 19, 19]
    np.testing.assert_array_equal(np.asarray(tokens), whole)
    with pytest.raises(IndexError):
        tokens[20]
