import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from scaling import tokenizer as tok_mod
from scaling.config import DataConfig
from scaling.data import bits_per_byte, prepare_dataset, train_batch, val_batches
from scaling.errors import DataError
from scaling.tokenizer import load_tokenizer

WORDS = "alpha beta gamma delta return import class def self value tensor scale law compute".split()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALING_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def text_dir(tmp_path) -> Path:
    rng = random.Random(0)
    root = tmp_path / "corpus"
    for i in range(60):
        path = root / f"part{i % 3}" / f"doc{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(" ".join(rng.choice(WORDS) for _ in range(12)) + "\n" for _ in range(20)))
    return root


def write_bin(root: Path, train: np.ndarray, val: np.ndarray) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, ids in (("train.bin", train), ("val.bin", val)):
        ids.tofile(root / name)
    return root


def test_prepare_text_dir_with_bytes(text_dir):
    ds = prepare_dataset(DataConfig(source=str(text_dir), val_fraction=0.2), seq_len=32)
    assert ds.vocab_size == 256 and ds.tokenizer == {"kind": "byte", "vocab_size": 256}
    assert ds.train_tokens.ndim == 1 and ds.val_tokens.ndim == 1
    assert ds.unique_train_tokens + len(ds.val_tokens) == ds.fingerprint["bytes"]
    assert ds.fingerprint["files"] == 60 and ds.val_bytes_per_token == 1.0
    assert 0.05 < len(ds.val_tokens) / ds.fingerprint["bytes"] < 0.4
    json.dumps(ds.tokenizer), json.dumps(ds.fingerprint)


def test_prepare_stdlib_default():
    ds = prepare_dataset(DataConfig(), seq_len=128)
    assert ds.fingerprint["source"] == "stdlib" and ds.fingerprint["files"] > 300
    assert ds.unique_train_tokens > 1_000_000 and len(ds.val_tokens) > 10_000


def test_prepare_bpe_trains_on_train_split_and_caches(text_dir, monkeypatch):
    trained_on = []
    real_train = tok_mod.train_bpe
    monkeypatch.setattr(tok_mod, "train_bpe", lambda texts, vocab: trained_on.extend(texts) or real_train(texts, vocab))
    cfg = DataConfig(source=str(text_dir), tokenizer="bpe:300", val_fraction=0.2)
    ds = prepare_dataset(cfg, seq_len=16)
    assert ds.tokenizer["kind"] == "bpe" and ds.vocab_size <= 300 and ds.val_bytes_per_token > 1.5
    assert int(max(ds.train_tokens.max(), ds.val_tokens.max())) < ds.vocab_size
    n_val_bytes = round(ds.val_bytes_per_token * len(ds.val_tokens))
    assert sum(len(t) for t in trained_on) == ds.fingerprint["bytes"] - n_val_bytes  # training split only

    # second time: neither training nor encoding
    monkeypatch.setattr(tok_mod, "train_bpe", lambda *a: pytest.fail("retrained despite the cache"))
    monkeypatch.setattr(tok_mod.Tokenizer, "encode_batch", lambda *a: pytest.fail("re-encoded despite the cache"))
    again = prepare_dataset(cfg, seq_len=16)
    np.testing.assert_array_equal(again.train_tokens, ds.train_tokens)
    np.testing.assert_array_equal(again.val_tokens, ds.val_tokens)
    assert again.tokenizer == ds.tokenizer


def test_saved_tokenizer_reloads(text_dir, tmp_path):
    ds = prepare_dataset(DataConfig(source=str(text_dir), tokenizer="bpe:300", val_fraction=0.2), seq_len=16)
    ds.save_tokenizer(tmp_path / "run" / "tokenizer.json")
    tok = load_tokenizer(json.loads((tmp_path / "run" / "tokenizer.json").read_text()))
    sample = (text_dir / "part0" / "doc0.txt").read_text()
    assert tok.decode(tok.encode(sample)) == sample


def test_train_batch_is_a_function_of_seed_and_step(text_dir):
    ds = prepare_dataset(DataConfig(source=str(text_dir)), seq_len=24)
    batch = train_batch(ds, seed=1, step=5, batch_size=8, seq_len=24)
    assert batch.shape == (8, 25) and batch.dtype == np.int32
    assert batch.min() >= 0 and batch.max() < ds.vocab_size
    np.testing.assert_array_equal(batch, train_batch(ds, 1, 5, 8, 24))
    assert not np.array_equal(batch, train_batch(ds, 1, 6, 8, 24))
    assert not np.array_equal(batch, train_batch(ds, 2, 5, 8, 24))
    train = ds.train_tokens.tobytes()
    assert all(row.astype(np.uint8).tobytes() in train for row in batch)  # contiguous windows
    with pytest.raises(DataError, match="seed >= 0"):
        train_batch(ds, -1, 0, 8, 24)


def test_processes_building_their_rows_make_up_the_whole_batch(text_dir):
    """A multi-process run: each process builds the rows of its devices, and together they are the batch."""
    ds = prepare_dataset(DataConfig(source=str(text_dir)), seq_len=24)
    whole = train_batch(ds, 3, 7, 8, 24)
    parts = [train_batch(ds, 3, 7, 8, 24, rows=slice(start, start + 2)) for start in range(0, 8, 2)]
    assert [part.shape for part in parts] == [(2, 25)] * 4
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert not np.array_equal(parts[0], parts[1])


def test_val_batches_are_fixed(text_dir):
    ds = prepare_dataset(DataConfig(source=str(text_dir), val_fraction=0.2), seq_len=24)
    vb = val_batches(ds, n_batches=3, batch_size=4, seq_len=24)
    assert vb.shape == (3, 4, 25) and vb.dtype == np.int32
    np.testing.assert_array_equal(vb, val_batches(ds, 3, 4, 24))
    np.testing.assert_array_equal(vb.reshape(12, 25), val_batches(ds, 2, 6, 24).reshape(12, 25))
    val = ds.val_tokens
    assert (vb[0, 0] == val[:25]).all() and (vb[-1, -1] == val[-25:]).all()  # spread over the whole split


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_bin_data(tmp_path, dtype):
    rng = np.random.default_rng(0)
    high = 70_000 if dtype == "uint32" else 50_000
    train, val = rng.integers(0, high, 5000).astype(dtype), rng.integers(0, high, 500).astype(dtype)
    root = write_bin(tmp_path / "bin", train, val)
    ds = prepare_dataset(DataConfig(source=str(root), bin_dtype=dtype), seq_len=64)
    assert isinstance(ds.train_tokens, np.memmap) and ds.train_tokens.dtype == dtype
    np.testing.assert_array_equal(ds.train_tokens, train)
    np.testing.assert_array_equal(ds.val_tokens, val)
    assert ds.vocab_size == max(train.max(), val.max()) + 1 and ds.val_bytes_per_token is None
    assert ds.fingerprint["files"] == 2 and ds.fingerprint["bytes"] == (train.nbytes + val.nbytes)
    assert ds.tokenizer["kind"] == "none"
    assert prepare_dataset(DataConfig(source=str(root), bin_dtype=dtype), 64, vocab_size=high).vocab_size == high
    batch = train_batch(ds, 0, 0, 4, 64)
    assert batch.dtype == np.int32 and batch.max() < ds.vocab_size


def test_bin_fingerprint_follows_contents(tmp_path):
    root = write_bin(tmp_path / "bin", np.arange(300, dtype=np.uint16), np.arange(100, dtype=np.uint16))
    before = prepare_dataset(DataConfig(source=str(root)), 8).fingerprint
    np.arange(1, 301, dtype=np.uint16).tofile(root / "train.bin")
    assert prepare_dataset(DataConfig(source=str(root)), 8).fingerprint["sha256"] != before["sha256"]


def test_bin_id_beyond_vocab_is_located(tmp_path):
    train = np.zeros(1000, np.uint16)
    train[123] = 5000
    root = write_bin(tmp_path / "bin", train, np.zeros(100, np.uint16))
    with pytest.raises(DataError) as err:
        prepare_dataset(DataConfig(source=str(root)), seq_len=8, vocab_size=4096)
    message = str(err.value)
    assert all(s in message for s in ("train.bin", "position 123", "id 5000", "vocabulary size 4096", "5001"))


def test_bin_bad_files(tmp_path):
    root = write_bin(tmp_path / "bin", np.zeros(100, np.uint16), np.zeros(11, np.uint16))
    with pytest.raises(DataError, match="val.bin has 22 bytes, not a whole number of uint32"):
        prepare_dataset(DataConfig(source=str(root), bin_dtype="uint32"), 4)
    (root / "val.bin").write_bytes(b"")
    with pytest.raises(DataError, match="val.bin is empty"):
        prepare_dataset(DataConfig(source=str(root)), 4)
    (root / "val.bin").unlink()
    with pytest.raises(DataError, match="val.bin is missing"):
        prepare_dataset(DataConfig(source=str(root)), 4)
    with pytest.raises(DataError, match="already tokenized"):
        prepare_dataset(DataConfig(source=str(root), tokenizer="bpe:1000"), 4)


def test_seq_len_longer_than_data(tmp_path, text_dir):
    root = write_bin(tmp_path / "bin", np.zeros(1000, np.uint16), np.zeros(50, np.uint16))
    with pytest.raises(DataError, match=r"the val split of .* has 50 tokens, fewer than train.seq_len \+ 1 = 65"):
        prepare_dataset(DataConfig(source=str(root)), seq_len=64)
    ds = prepare_dataset(DataConfig(source=str(root)), seq_len=8)
    with pytest.raises(DataError, match="the val split"):
        val_batches(ds, 1, 1, 100)
    too_long = r"the train split of .*corpus has \d+ tokens, fewer than train.seq_len \+ 1 = 100001"
    with pytest.raises(DataError, match=too_long):
        prepare_dataset(DataConfig(source=str(text_dir)), seq_len=100_000)


def test_bad_text_sources(tmp_path, text_dir):
    with pytest.raises(DataError, match="does not exist"):
        prepare_dataset(DataConfig(source=str(tmp_path / "missing")), 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no text"):
        prepare_dataset(DataConfig(source=str(tmp_path / "empty")), 8)
    (text_dir / "part1" / "broken.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match="broken.txt is not UTF-8"):
        prepare_dataset(DataConfig(source=str(text_dir)), 8)


def test_vocab_size_smaller_than_tokenizer(text_dir):
    with pytest.raises(DataError, match=r"model.vocab_size \(100\) is smaller .* \(256\)"):
        prepare_dataset(DataConfig(source=str(text_dir)), 8, vocab_size=100)
    assert prepare_dataset(DataConfig(source=str(text_dir)), 8, vocab_size=512).vocab_size == 256


def test_single_text_file(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("".join(f"sentence number {i} of a longer book.\n" for i in range(20_000)))
    ds = prepare_dataset(DataConfig(source=str(path), val_fraction=0.1), seq_len=64)
    assert ds.unique_train_tokens + len(ds.val_tokens) == path.stat().st_size
    assert len(ds.val_tokens) > 0


def test_bits_per_byte():
    assert bits_per_byte(math.log(2), 1.0) == pytest.approx(1.0)
    assert bits_per_byte(2.0, 4.0) == pytest.approx(2.0 / (4.0 * math.log(2)))
    assert bits_per_byte(2.0, None) is None
