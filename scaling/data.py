"""Datasets: the token ids of the train and validation splits, and the batch samplers.

`prepare_dataset` reads a text source (text files: `scaling.corpus`; .parquet, .jsonl and `datasets`
save_to_disk tables: `scaling.text_tables`) and tokenizes it, or memory-maps token files: a nanoGPT-format
directory (train.bin and val.bin holding data.bin_dtype token ids) or a directory of llm.c shards
(`scaling.llmc`); token files take no tokenizer. Text documents are concatenated in name order without
separator tokens (an HF tokenizer's BOS/EOS are not added).

Training batches come from a sampler whose whole state is (seed, step): batch `step` holds windows of
seq_len + 1 tokens at offsets drawn by `np.random.default_rng([seed, step])`, so resuming at any step
needs no replay. Validation windows start at evenly spaced offsets across the validation split: the
same for every run on the same data and seq_len, and spread over the whole split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from scaling.config import DataConfig
from scaling import llmc
from scaling.corpus import STDLIB, Corpus, Document, file_header, load_corpus, source_path, split_documents
from scaling.errors import DataError
from scaling.io import atomic_write, cache_dir
from scaling.text_tables import is_table_source, load_table_corpus
from scaling.tokenizer import (Tokenizer, bpe_tokenizer, byte_tokenizer, cache_key, hf_file_tokenizer, hf_path,
                               load_tokens, parse_spec, save_tokens, tokenizer_hash)

SPLITS = ("train", "val")


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    train_tokens: np.ndarray  # 1-D token ids (possibly a read-only memmap, or llmc.ShardedTokens)
    val_tokens: np.ndarray
    vocab_size: int  # the tokenizer's vocabulary; for .bin data the declared one or max id + 1
    tokenizer: dict  # description for scaling.tokenizer.load_tokenizer; kind "none" for .bin data
    fingerprint: dict  # {"source", "files", "bytes", "sha256"}
    val_bytes_per_token: float | None  # UTF-8 bytes per token on the validation split; None for .bin

    @property
    def unique_train_tokens(self) -> int:
        return int(self.train_tokens.shape[0])

    def save_tokenizer(self, path: str | Path) -> None:
        atomic_write(path, json.dumps(self.tokenizer).encode())


def prepare_dataset(cfg: DataConfig, seq_len: int, vocab_size: int | None = None) -> Dataset:
    """Tokenize (or map) the data named by `cfg`; `vocab_size` is model.vocab_size when the user set it."""
    if cfg.source != STDLIB:
        path = source_path(cfg.source)
        if path.is_file() and path.suffix == ".bin":
            raise DataError(f"data.source {path} is a token file, which would be read as text; token data is read "
                            "from the directory holding train.bin and val.bin (nanoGPT) or the *_train_*/*_val_* "
                            f"shards (llm.c): set data.source={path.parent}")
        if path.is_dir() and any((path / f"{split}.bin").exists() for split in SPLITS):
            return _prepare_bin(path, cfg, seq_len, vocab_size)
        shards = llmc.shard_files(path) if path.is_dir() else {}
        if shards:
            return _prepare_llmc(path, shards, cfg, seq_len, vocab_size)
    return _prepare_text(cfg, seq_len, vocab_size)


def _read_corpus(cfg: DataConfig) -> Corpus:
    if cfg.source != STDLIB and is_table_source(path := source_path(cfg.source)):
        return load_table_corpus(path, cfg.text_column)
    return load_corpus(cfg.source)


def _tokenizer(cfg: DataConfig, train_docs: list[Document], split_key: str, cache: Path) -> Tokenizer:
    bpe_vocab = parse_spec(cfg.tokenizer)
    if bpe_vocab is not None:  # trained on the training split only
        return bpe_tokenizer(bpe_vocab, [doc.text for doc in train_docs], split_key, cache)[0]
    path = hf_path(cfg.tokenizer)
    return byte_tokenizer() if path is None else hf_file_tokenizer(path)


def _prepare_text(cfg: DataConfig, seq_len: int, vocab_size: int | None) -> Dataset:
    corpus = _read_corpus(cfg)
    source = corpus.fingerprint["source"]
    train_docs, val_docs = split_documents(corpus.documents, cfg.val_fraction, source)
    cache = cache_dir(cfg.cache_dir)
    split_key = cache_key(corpus.fingerprint["sha256"], cfg.val_fraction)
    tokenizer = _tokenizer(cfg, train_docs, split_key, cache)
    if vocab_size is not None and vocab_size < tokenizer.vocab_size:
        raise DataError(f"model.vocab_size ({vocab_size}) is smaller than the vocabulary of data.tokenizer "
                        f"'{cfg.tokenizer}' ({tokenizer.vocab_size}); raise model.vocab_size or leave it unset")
    tokens_key = cache_key(split_key, tokenizer_hash(tokenizer.description))
    train, val = _tokenize(tokenizer, train_docs, val_docs, cache, tokens_key)
    _check_length(train, val, seq_len, source)
    val_bytes = sum(len(doc.text.encode("utf-8")) for doc in val_docs)
    return Dataset(train, val, tokenizer.vocab_size, tokenizer.description, corpus.fingerprint, val_bytes / len(val))


def _tokenize(tokenizer: Tokenizer, train_docs: list[Document], val_docs: list[Document], cache: Path, key: str,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of each split. BPE results are cached; bytes are cheaper to recompute than to load."""
    def encode(docs: list[Document]) -> np.ndarray:
        ids = tokenizer.encode_batch([doc.text for doc in docs])
        return np.concatenate(ids) if ids else np.zeros(0, np.uint8)

    if tokenizer.hf is None:
        return encode(train_docs), encode(val_docs)
    cached = [load_tokens(cache, key, split) for split in SPLITS]
    if all(tokens is not None for tokens in cached):
        return cached[0], cached[1]
    train, val = encode(train_docs), encode(val_docs)
    save_tokens(cache, key, "train", train)
    save_tokens(cache, key, "val", val)
    return train, val


def _refuse_tokenizer(cfg: DataConfig, path: Path) -> None:
    if parse_spec(cfg.tokenizer) is not None or hf_path(cfg.tokenizer) is not None:
        raise DataError(f"data.tokenizer '{cfg.tokenizer}' cannot apply to the token files in {path}; "
                        "they are already tokenized: leave data.tokenizer unset")


def _prepare_bin(path: Path, cfg: DataConfig, seq_len: int, vocab_size: int | None) -> Dataset:
    _refuse_tokenizer(cfg, path)
    files = [path / f"{split}.bin" for split in SPLITS]
    for file in files:
        if not file.is_file():
            raise DataError(f"{file} is missing; a nanoGPT-format data directory needs both train.bin and val.bin")
    dtype = np.dtype(cfg.bin_dtype)
    scan = _scan_bin(files, dtype, cache_dir(cfg.cache_dir))
    _check_bin_dtype(path, cfg.bin_dtype, scan)
    vocab = vocab_size if vocab_size is not None else max(scan["max_ids"]) + 1
    tokens = [np.memmap(file, dtype=dtype, mode="r") for file in files]
    _check_ids(files, tokens, scan["max_ids"], vocab, f"check data.bin_dtype ('{cfg.bin_dtype}')")
    fingerprint = {"source": str(path.resolve()), "files": 2, "bytes": sum(f.stat().st_size for f in files),
                   "sha256": scan["sha256"]}
    _check_length(tokens[0], tokens[1], seq_len, fingerprint["source"])
    description = {"kind": "none", "vocab_size": vocab, "bin_dtype": cfg.bin_dtype}
    return Dataset(tokens[0], tokens[1], vocab, description, fingerprint, None)


def _check_ids(files: list[Path], tokens: list[np.ndarray], max_ids: list[int], vocab: int, hint: str) -> None:
    """Every id below the vocabulary, else an error locating the first one that is not."""
    for file, max_id, ids in zip(files, max_ids, tokens):
        if max_id >= vocab:
            position = _first_at_least(ids, vocab)
            raise DataError(f"token id {int(ids[position])} at position {position} of {file} is not below the "
                            f"vocabulary size {vocab}; set model.vocab_size to at least {max(max_ids) + 1} or {hint}")


def _prepare_llmc(path: Path, shards: dict[str, list[Path]], cfg: DataConfig, seq_len: int,
                  vocab_size: int | None) -> Dataset:
    """A directory of llm.c shards: the train and val splits named by scaling.llmc.shard_files."""
    _refuse_tokenizer(cfg, path)
    if cfg.bin_dtype != "uint16":
        raise DataError(f"data.bin_dtype={cfg.bin_dtype} does not apply to the llm.c shards in {path}, whose "
                        "header says uint16: leave data.bin_dtype unset")
    files = shards["train"] + shards["val"]
    arrays = [llmc.read_shard(file) for file in files]  # checks every header and length first
    scan = _scan_bin(files, llmc.TOKEN_DTYPE, cache_dir(cfg.cache_dir), offset=llmc.HEADER_BYTES)
    vocab = vocab_size if vocab_size is not None else max(scan["max_ids"]) + 1
    _check_ids(files, arrays, scan["max_ids"], vocab, "check the shards")
    train, val = (llmc.split_tokens(shards[split]) for split in SPLITS)
    fingerprint = {"source": str(path.resolve()), "files": len(files),
                   "bytes": sum(f.stat().st_size for f in files), "sha256": scan["sha256"]}
    _check_length(train, val, seq_len, fingerprint["source"])
    description = {"kind": "none", "vocab_size": vocab, "bin_dtype": "uint16", "format": "llm.c"}
    return Dataset(train, val, vocab, description, fingerprint, None)


def _scan_bin(files: list[Path], dtype: np.dtype, cache: Path, chunk_bytes: int = 1 << 26, offset: int = 0) -> dict:
    """One pass over the token files: their fingerprint sha256 (of whole files) and each file's largest id
    (after the first `offset` bytes: a header).

    Cached by path, size and modification time, so a large dataset is read once, not on every run.
    """
    stats = [file.stat() for file in files]
    key = cache_key(*(f"{file.resolve()}:{st.st_size}:{st.st_mtime_ns}" for file, st in zip(files, stats)), dtype,
                    "words", *([offset] if offset else []))
    cached = cache / "bin-scans" / f"{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    digest, max_ids, words = hashlib.sha256(), [], [0, 0]
    for file, st in zip(files, stats):
        if st.st_size == 0:
            raise DataError(f"data file {file} is empty; it should hold {dtype} token ids")
        if st.st_size % dtype.itemsize:
            raise DataError(f"data file {file} has {st.st_size} bytes, not a whole number of {dtype} token ids; "
                            "check data.bin_dtype")
        digest.update(file_header(file.name, st.st_size))
        max_id = 0
        with open(file, "rb") as f:
            digest.update(f.read(offset))
            while chunk := f.read(chunk_bytes):  # chunk_bytes is a multiple of every itemsize
                digest.update(chunk)
                max_id = max(max_id, int(np.frombuffer(chunk, dtype=dtype).max()))
                words = _max_words(chunk, words)
        max_ids.append(max_id)
    scan = {"sha256": digest.hexdigest(), "max_ids": max_ids, "max_words": words}
    atomic_write(cached, json.dumps(scan).encode())
    return scan


def _max_words(chunk: bytes, words: list[int]) -> list[int]:
    """The largest 16-bit word at even and at odd word positions (chunks start at even positions). Read as
    uint32 (little-endian), these are the ids' low and high halves; read as uint16, alternate ids."""
    view = np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype="<u2")
    even, odd = view[0::2], view[1::2]
    return [max(words[0], int(even.max()) if even.size else 0), max(words[1], int(odd.max()) if odd.size else 0)]


def _check_bin_dtype(path: Path, bin_dtype: str, scan: dict) -> None:
    """Refuse token files read with the wrong data.bin_dtype. uint32 ids below 65536 read as uint16 make
    every second id 0 (the high halves); uint16 ids read as uint32 pair two ids into one, whose high half
    is then as large as the low half (a real uint32 vocabulary keeps the high half below 16: ids < 2**20)."""
    low, high = scan["max_words"]
    if bin_dtype == "uint16" and high < 16 and 16 * high < low:
        raise DataError(f"the token files in {path} look like uint32 ids read as uint16: every second id is at most "
                        f"{high} while the others reach {low}; set data.bin_dtype=uint32")
    if bin_dtype == "uint32" and (high >= 16 or 0 < high and low < 16 * high):
        raise DataError(f"the token files in {path} look like uint16 ids read as uint32: the ids reach "
                        f"{max(scan['max_ids']):,}, pairs of small ids; set data.bin_dtype=uint16")


def _first_at_least(tokens: np.ndarray, bound: int, chunk: int = 1 << 24) -> int:
    for start in range(0, len(tokens), chunk):
        hits = np.flatnonzero(tokens[start:start + chunk] >= bound)
        if hits.size:
            return start + int(hits[0])
    raise AssertionError("no token id at or above the bound")


def _check_length(train: np.ndarray, val: np.ndarray, seq_len: int, source: str) -> None:
    for split, tokens in zip(SPLITS, (train, val)):
        if len(tokens) < seq_len + 1:
            raise DataError(f"the {split} split of {source} has {len(tokens)} tokens, fewer than "
                            f"train.seq_len + 1 = {seq_len + 1}; lower train.seq_len or use more data")


def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> np.ndarray:
    return np.stack([tokens[start:start + seq_len + 1] for start in starts]).astype(np.int32)


def train_batch(ds: Dataset, seed: int, step: int, batch_size: int, seq_len: int,
                rows: slice = slice(None)) -> np.ndarray:
    """Training batch `step`: int32 (batch_size, seq_len + 1), a function of (seed, step) alone; `rows`: only
    those rows of it (a process of a multi-process run builds the rows of its own devices)."""
    if seed < 0 or step < 0:
        raise DataError(f"the sampler needs seed >= 0 and step >= 0, got seed {seed}, step {step}; check train.seed")
    _check_length(ds.train_tokens, ds.val_tokens, seq_len, ds.fingerprint["source"])
    rng = np.random.default_rng([seed, step])
    starts_B = rng.integers(0, len(ds.train_tokens) - seq_len, size=batch_size)
    return _windows(ds.train_tokens, starts_B[rows], seq_len)


def val_batches(ds: Dataset, n_batches: int, batch_size: int, seq_len: int) -> np.ndarray:
    """The fixed validation batches: int32 (n_batches, batch_size, seq_len + 1)."""
    _check_length(ds.train_tokens, ds.val_tokens, seq_len, ds.fingerprint["source"])
    last_start = len(ds.val_tokens) - seq_len - 1
    starts_N = np.linspace(0, last_start, n_batches * batch_size).round().astype(np.int64)
    return _windows(ds.val_tokens, starts_N, seq_len).reshape(n_batches, batch_size, seq_len + 1)


def bits_per_byte(loss_nats: float, bytes_per_token: float | None) -> float | None:
    """Convert a mean per-token loss in nats to bits per UTF-8 byte (None when bytes are unknown)."""
    if bytes_per_token is None:
        return None
    return loss_nats / (math.log(2) * bytes_per_token)
