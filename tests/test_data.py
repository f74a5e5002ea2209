import dataclasses
import hashlib
import json
import math
import random
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import PROJECT_ROOT, TINY
from data_helpers import save_hf_tokenizer, write_shard
from scaling import tokenizer as tok_mod
from scaling.config import NOT_IN_RUN_ID, DataConfig, RunConfig, config_hash, to_dict
from scaling.corpus import load_corpus, split_documents
from scaling.data import bits_per_byte, prepare_dataset, train_batch, val_batches
from scaling.errors import DataError
from scaling_cli.main import main
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


def test_hf_tokenizer_encodes_the_train_split_without_separators(text_dir, tmp_path):
    path = tmp_path / "hf" / "tokenizer.json"
    hf = save_hf_tokenizer(path, [p.read_text() for p in sorted(text_dir.rglob("*.txt"))])
    cfg = DataConfig(source=str(text_dir), tokenizer=f"hf:{path}", val_fraction=0.2)
    ds = prepare_dataset(cfg, seq_len=16)
    assert ds.vocab_size == hf.get_vocab_size() and ds.tokenizer["kind"] == "hf"
    assert ds.tokenizer["path"] == str(path.resolve()) and len(ds.tokenizer["sha256"]) == 64
    train_docs = split_documents(load_corpus(str(text_dir)).documents, 0.2)[0]
    hf.no_truncation()  # the file truncates to 8 tokens; the dataset must not
    expected = np.concatenate([hf.encode(doc.text, add_special_tokens=False).ids for doc in train_docs])
    np.testing.assert_array_equal(ds.train_tokens, expected)  # no BOS/EOS, nothing truncated
    ds.save_tokenizer(tmp_path / "run" / "tokenizer.json")
    saved = json.loads((tmp_path / "run" / "tokenizer.json").read_text())
    assert saved == ds.tokenizer


def test_hf_tokenizer_file_changed_in_place_is_not_served_from_the_cache(text_dir, tmp_path):
    texts = [p.read_text() for p in sorted(text_dir.rglob("*.txt"))]
    path = tmp_path / "tokenizer.json"
    save_hf_tokenizer(path, texts, vocab_size=60)
    cfg = DataConfig(source=str(text_dir), tokenizer=f"hf:{path}", val_fraction=0.2)
    first = prepare_dataset(cfg, seq_len=16)
    save_hf_tokenizer(path, texts, vocab_size=120)
    second = prepare_dataset(cfg, seq_len=16)
    assert second.tokenizer["sha256"] != first.tokenizer["sha256"] and second.vocab_size > first.vocab_size
    assert len(second.train_tokens) < len(first.train_tokens)  # more merges: fewer tokens


TABLE_TEXTS = [f"row {i} " + "words in a table row " * (i % 7 + 3) for i in range(80)]


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
def test_table_sources_split_and_tokenize_like_text(tmp_path, kind):
    path = tmp_path / f"rows.{kind}"
    if kind == "parquet":
        pq.write_table(pa.table({"content": TABLE_TEXTS}), path)
    else:
        path.write_text("".join(json.dumps({"content": t}) + "\n" for t in TABLE_TEXTS))
    ds = prepare_dataset(DataConfig(source=str(path), text_column="content", val_fraction=0.2), seq_len=16)
    assert ds.unique_train_tokens + len(ds.val_tokens) == sum(len(t.encode()) for t in TABLE_TEXTS)
    assert 0.05 < len(ds.val_tokens) / (ds.unique_train_tokens + len(ds.val_tokens)) < 0.4
    assert ds.fingerprint["files"] == 1 and ds.fingerprint["bytes"] == path.stat().st_size
    with pytest.raises(DataError, match=f"rows.{kind}.* has no column 'text'"):
        prepare_dataset(DataConfig(source=str(path)), seq_len=16)


def test_another_column_of_the_same_file_is_not_served_from_the_token_cache(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"text": t, "title": t[:20]}) + "\n" for t in TABLE_TEXTS))
    cfg = DataConfig(source=str(path), tokenizer="bpe:300", val_fraction=0.2)
    full = prepare_dataset(cfg, seq_len=16)
    titles = prepare_dataset(dataclasses.replace(cfg, text_column="title"), seq_len=16)
    assert titles.fingerprint["sha256"] != full.fingerprint["sha256"]
    assert len(titles.train_tokens) < len(full.train_tokens) / 2


def llmc_dir(root: Path, train_shards: int = 2, tokens: int = 400) -> Path:
    """llm.c's layout: the first shard is val, the rest train; ids run on across shards."""
    ids = np.arange((train_shards + 1) * tokens) % 50_000
    write_shard(root / "fw_val_000000.bin", ids[:tokens])
    for shard in range(1, train_shards + 1):
        write_shard(root / f"fw_train_{shard:06d}.bin", ids[shard * tokens:(shard + 1) * tokens])
    return root


def test_llmc_directory_maps_shards_onto_splits(tmp_path):
    root = llmc_dir(tmp_path / "fineweb10B")
    ds = prepare_dataset(DataConfig(source=str(root)), seq_len=32)
    np.testing.assert_array_equal(np.asarray(ds.val_tokens), np.arange(400))
    np.testing.assert_array_equal(np.asarray(ds.train_tokens), np.arange(400, 1200))
    assert ds.unique_train_tokens == 800 and ds.vocab_size == 1200 and ds.val_bytes_per_token is None
    assert ds.tokenizer == {"kind": "none", "vocab_size": 1200, "bin_dtype": "uint16", "format": "llm.c"}
    assert ds.fingerprint["files"] == 3 and ds.fingerprint["bytes"] == sum(f.stat().st_size for f in root.iterdir())
    batch = train_batch(ds, seed=0, step=0, batch_size=64, seq_len=32)
    assert (np.diff(batch, axis=1) == 1).all()  # windows are contiguous, across the shard boundary too
    assert ((batch[:, 0] < 800) & (batch[:, -1] > 800)).any()
    assert val_batches(ds, 2, 4, 32).shape == (2, 4, 33)


def test_llmc_fingerprint_and_vocab_checks(tmp_path):
    root = llmc_dir(tmp_path / "shards")
    before = prepare_dataset(DataConfig(source=str(root)), 8).fingerprint["sha256"]
    write_shard(root / "fw_train_000002.bin", np.full(400, 7000))
    assert prepare_dataset(DataConfig(source=str(root)), 8).fingerprint["sha256"] != before
    with pytest.raises(DataError, match=r"token id 7000 at position 0 of .*fw_train_000002.bin is not below .* 1000"):
        prepare_dataset(DataConfig(source=str(root)), 8, vocab_size=1000)
    with pytest.raises(DataError, match="data.bin_dtype=uint32 does not apply to the llm.c shards"):
        prepare_dataset(DataConfig(source=str(root), bin_dtype="uint32"), 8)
    for tokenizer in ("bpe:1000", f"hf:{tmp_path / 'tokenizer.json'}"):
        with pytest.raises(DataError, match="already tokenized"):
            prepare_dataset(DataConfig(source=str(root), tokenizer=tokenizer), 8)


def test_gpu_isoflop_spec_reads_an_llmc_directory(tmp_path):
    """sweeps/gpu_isoflop.toml says its data.source may be a directory of llm.c shards: its data section as
    written, pointed at one, prepares the data with its declared GPT-2 vocabulary."""
    spec = tomllib.loads((PROJECT_ROOT / "sweeps" / "gpu_isoflop.toml").read_text())
    root = llmc_dir(tmp_path / "fineweb10B", tokens=2000)
    cfg = DataConfig(**spec["base"]["data"] | {"source": str(root)})
    ds = prepare_dataset(cfg, seq_len=spec["base"]["train"]["seq_len"], vocab_size=spec["base"]["model"]["vocab_size"])
    assert ds.vocab_size == 50304 and ds.unique_train_tokens == 4000


def _hf_missing(tmp):
    return [f"data.tokenizer=hf:{tmp / 'gone.json'}"], "cannot read data.tokenizer file"


def _jsonl_without_column(tmp):
    (tmp / "rows.jsonl").write_text(json.dumps({"body": "x"}) + "\n")
    return [f"data.source={tmp / 'rows.jsonl'}"], "rows.jsonl has no column 'text' (it has: body)"


def _truncated_shard(tmp):
    root = llmc_dir(tmp / "shards")
    path = root / "fw_train_000001.bin"
    path.write_bytes(path.read_bytes()[:-2])
    return [f"data.source={root}"], "fw_train_000001.bin has 1822 bytes but its header promises 400 tokens"


@pytest.mark.parametrize("case", [_hf_missing, _jsonl_without_column, _truncated_shard])
def test_bad_sources_are_one_error_line_exit_2_and_nothing_written(case, tmp_path, capsys):
    inputs = tmp_path / "inputs"  # beside tmp_path / "cache", which the run may create (compilation cache)
    inputs.mkdir()
    overrides, message = case(inputs)
    before = sorted(inputs.rglob("*"))
    sets = [arg for o in TINY + ["train.steps=2"] + overrides for arg in ("--set", o)]
    code = main(["train", "--out", str(tmp_path / "run"), "--quiet", *sets])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "run").exists() and sorted(inputs.rglob("*")) == before


def test_text_column_at_its_default_keeps_the_run_ids_made_before_it_existed():
    config = RunConfig()
    before_the_key = {name: section for name, section in to_dict(config).items() if name not in NOT_IN_RUN_ID}
    del before_the_key["data"]["text_column"]
    old_id = hashlib.sha256(json.dumps(before_the_key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert config_hash(config) == old_id[:12]
    other_column = dataclasses.replace(config, data=dataclasses.replace(config.data, text_column="body"))
    assert config_hash(other_column) != config_hash(config)
