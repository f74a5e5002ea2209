import hashlib
import json
import random

import numpy as np
import pytest

from data_helpers import save_hf_tokenizer
from scaling import tokenizer as tok_mod
from scaling.errors import DataError
from scaling.io import atomic_write
from scaling.tokenizer import (bpe_tokenizer, byte_tokenizer, hf_file_tokenizer, hf_path, load_tokenizer, parse_spec,
                               token_dtype, tokenizer_hash, train_bpe)

WORDS = "the quick brown fox jumps over lazy dog def return import class self value data model train".split()


def small_texts(n: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(40)) + "\n" for _ in range(n)]


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(small_texts(), 300)


def test_byte_round_trip():
    tok = byte_tokenizer()
    text = "héllo wörld ✓ 🚀\n"
    ids = tok.encode(text)
    assert ids.dtype == np.uint8 and len(ids) == len(text.encode())
    assert tok.decode(ids) == text
    assert tok.description == {"kind": "byte", "vocab_size": 256}
    assert load_tokenizer(json.loads(json.dumps(tok.description))).vocab_size == 256


def test_bpe_trains_and_round_trips(bpe):
    assert bpe.description["kind"] == "bpe" and 256 < bpe.vocab_size <= 300
    text = "the lazy fox returns data ü\n"  # includes a byte never seen in training
    ids = bpe.encode(text)
    assert ids.dtype == np.uint16 and ids.max() < bpe.vocab_size
    assert len(ids) < len(text.encode())  # merges compress
    assert bpe.decode(ids) == text


def test_bpe_description_reloads_to_identical_ids(bpe, tmp_path):
    path = tmp_path / "tokenizer.json"
    atomic_write(path, json.dumps(bpe.description).encode())
    reloaded = load_tokenizer(json.loads(path.read_text()))
    texts = small_texts(20, seed=1) + ["unseen words: zebra quasar\n"]
    for a, b in zip(bpe.encode_batch(texts), reloaded.encode_batch(texts)):
        np.testing.assert_array_equal(a, b)
    assert tokenizer_hash(reloaded.description) == tokenizer_hash(bpe.description)


def test_bpe_training_is_deterministic(bpe):
    assert train_bpe(small_texts(), 300).description == bpe.description


def test_bpe_cache_is_used_the_second_time(tmp_path, monkeypatch):
    first, from_cache = bpe_tokenizer(300, small_texts(), "key1", tmp_path)
    assert not from_cache
    monkeypatch.setattr(tok_mod, "train_bpe", lambda *a: pytest.fail("retrained despite the cache"))
    second, from_cache = bpe_tokenizer(300, small_texts(), "key1", tmp_path)
    assert from_cache and second.description == first.description
    assert [p.name for p in (tmp_path / "tokenizers").iterdir()] == ["bpe300-key1.json"]  # no temp files left


def test_bad_descriptions_and_specs():
    for bad in ({"kind": "byte", "vocab_size": 300}, {"kind": "wordpiece"}, {"kind": "none", "vocab_size": 9}, []):
        with pytest.raises(DataError, match="not a tokenizer description"):
            load_tokenizer(bad)
    with pytest.raises(DataError, match="cannot rebuild"):
        load_tokenizer({"kind": "bpe", "vocab_size": 300, "hf": {"model": "garbage"}})
    assert parse_spec("byte") is None and parse_spec("bpe:1024") == 1024 and parse_spec("hf:tok.json") is None
    assert hf_path("hf:models/tok.json") == "models/tok.json" and hf_path("byte") is None
    for bad in ("bpe:100", "bpe:x", "word", "hf:", "hf: "):
        with pytest.raises(DataError, match="data.tokenizer"):
            parse_spec(bad)


def test_token_dtype():
    assert token_dtype(256) == np.uint8 and token_dtype(257) == np.uint16
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32


def test_hf_tokenizer_file_is_described_by_path_hash_and_vocab(tmp_path):
    path = tmp_path / "model" / "tokenizer.json"
    hf = save_hf_tokenizer(path, small_texts())
    tok = hf_file_tokenizer(str(path))
    d = tok.description
    assert d["kind"] == "hf" and d["path"] == str(path.resolve())
    assert d["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert d["vocab_size"] == hf.get_vocab_size() == tok.vocab_size
    assert hf_file_tokenizer(str(path.parent)).description == d  # a model directory holding tokenizer.json
    json.dumps(d)
    hf.add_special_tokens(["<|endoftext|>"])  # GPT-2's end-of-text: an added token past the model's vocabulary
    hf.save(str(path))
    assert hf_file_tokenizer(str(path)).vocab_size == d["vocab_size"] + 1 == hf.token_to_id("<|endoftext|>") + 1


def test_hf_tokenizer_adds_no_special_tokens_and_never_truncates(tmp_path):
    path = tmp_path / "tokenizer.json"
    hf = save_hf_tokenizer(path, small_texts())
    text = small_texts(1, seed=3)[0]
    assert hf.encode(text).ids[0] == 1 and len(hf.encode(text).ids) == 8  # what the file itself would do
    ids = hf_file_tokenizer(str(path)).encode(text)
    assert 1 not in ids and 2 not in ids and len(ids) == len(text.split())  # every word is a merged token
    assert hf_file_tokenizer(str(path)).decode(ids).split() == text.split()


def test_hf_description_reloads_to_identical_ids(tmp_path):
    path = tmp_path / "tokenizer.json"
    save_hf_tokenizer(path, small_texts())
    tok = hf_file_tokenizer(str(path))
    reloaded = load_tokenizer(json.loads(json.dumps(tok.description)))
    texts = small_texts(10, seed=4) + ["unseen zebra quasar"]
    for a, b in zip(tok.encode_batch(texts), reloaded.encode_batch(texts)):
        np.testing.assert_array_equal(a, b)
    assert reloaded.description == tok.description


@pytest.mark.parametrize("content, message", [
    (None, "cannot read data.tokenizer file"),
    (b"not json at all", "is not a valid HF tokenizer.json"),
    (b'{"model": {"type": "Nothing"}}', "is not a valid HF tokenizer.json"),
    (b"\xff\xfe", "is not a valid HF tokenizer.json"),
])
def test_hf_tokenizer_bad_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "tokenizer.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        hf_file_tokenizer(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_hf_tokenizer_directory_without_tokenizer_json(tmp_path):
    with pytest.raises(DataError, match="cannot read data.tokenizer file .*tokenizer.json"):
        hf_file_tokenizer(str(tmp_path))
