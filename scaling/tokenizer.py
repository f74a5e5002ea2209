"""Tokenizers (byte-level, byte-level BPE trained with HF `tokenizers`, or a local HF `tokenizer.json`),
their descriptions, and the cache.

A tokenizer is fully described by a JSON-serialisable dict: {"kind": "byte", "vocab_size": 256},
{"kind": "bpe", "vocab_size": V, "hf": <the HF tokenizer JSON>} or, for data.tokenizer = "hf:PATH",
{"kind": "hf", "path": <resolved PATH>, "sha256": <of the file>, "vocab_size": V, "hf": <its JSON>};
`load_tokenizer` rebuilds it, so a run can be re-tokenized identically. HF tokenizers encode without
their special tokens (no BOS/EOS from a post-processor), truncation or padding: documents are
concatenated without separator tokens whatever the tokenizer file says. Trained tokenizers and tokenized arrays live in the cache directory
(data.cache_dir, else $SCALING_CACHE, else ~/.cache/scaling); every cache write is atomic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from scaling.config import BYTE_VOCAB, HF_PREFIX, bpe_vocab_size
from scaling.errors import ConfigError, DataError
from scaling.io import atomic_write


@dataclasses.dataclass(frozen=True, eq=False)
class Tokenizer:
    description: dict
    hf: tokenizers.Tokenizer | None = None  # None for the byte tokenizer

    @property
    def vocab_size(self) -> int:
        return self.description["vocab_size"]

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        dtype = token_dtype(self.vocab_size)
        if self.hf is None:
            return [np.frombuffer(text.encode("utf-8"), dtype=np.uint8) for text in texts]
        # encode_batch_fast (tokenizers >= 0.21) skips computing offsets, which we do not use.
        encode = getattr(self.hf, "encode_batch_fast", self.hf.encode_batch)
        return [np.asarray(enc.ids, dtype=dtype) for enc in encode(texts, add_special_tokens=False)]

    def encode(self, text: str) -> np.ndarray:
        return self.encode_batch([text])[0]

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.hf is None:
            return bytes(ids).decode("utf-8", errors="replace")
        return self.hf.decode(ids)


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type holding ids below vocab_size."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise DataError(f"vocabulary size {vocab_size} does not fit in uint32")


def byte_tokenizer() -> Tokenizer:
    return Tokenizer({"kind": "byte", "vocab_size": BYTE_VOCAB})


def train_bpe(texts: list[str], vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE (GPT-2 style pre-tokenization, all 256 bytes in the alphabet, so no <unk>)."""
    hf = tokenizers.Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    hf.train_from_iterator(texts, trainer=trainer, length=len(texts))
    # A small corpus may offer fewer merges than asked for; the description records the real size.
    return Tokenizer({"kind": "bpe", "vocab_size": hf.get_vocab_size(), "hf": json.loads(hf.to_str())}, hf)


def load_tokenizer(description: dict) -> Tokenizer:
    """Rebuild a tokenizer from its description (as saved with a run)."""
    kind = description.get("kind") if isinstance(description, dict) else None
    if kind == "byte" and description.get("vocab_size") == BYTE_VOCAB:
        return byte_tokenizer()
    if kind in ("bpe", "hf") and "hf" in description:
        try:
            hf = _plain(tokenizers.Tokenizer.from_str(json.dumps(description["hf"])))
        except Exception as err:  # the HF library raises its own exception types
            raise DataError(f"cannot rebuild the {kind} tokenizer from its description: {err}") from err
        if hf.get_vocab_size() != description.get("vocab_size"):
            raise DataError(f"{kind} tokenizer description says vocab_size {description.get('vocab_size')} "
                            f"but its HF tokenizer has {hf.get_vocab_size()} tokens; the file is corrupt")
        return Tokenizer(description, hf)
    raise DataError(f"not a tokenizer description (kind {kind!r}); expected kind 'byte' with vocab_size 256 "
                    "or kind 'bpe' or 'hf' with an 'hf' tokenizer, as written by Dataset.save_tokenizer")


def _plain(hf: tokenizers.Tokenizer) -> tokenizers.Tokenizer:
    """Turn off truncation and padding: either would cut or pad documents inside the token stream."""
    hf.no_truncation()
    hf.no_padding()
    return hf


def hf_file_tokenizer(path_text: str) -> Tokenizer:
    """The tokenizer in a local HF `tokenizer.json` (data.tokenizer = "hf:PATH", PATH the file or a model
    directory holding it); its vocabulary size counts added tokens, so every id it can emit is below it."""
    path = Path(path_text).expanduser()
    path = path / "tokenizer.json" if path.is_dir() else path
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read data.tokenizer file {path}: {err.strerror}; point data.tokenizer at "
                        "'hf:<a tokenizer.json>' (as saved by HF tokenizers or transformers)") from err
    try:
        hf = _plain(tokenizers.Tokenizer.from_str(data.decode("utf-8")))
    except Exception as err:  # the HF library raises its own exception types; a decode error too
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"data.tokenizer file {path} is not a valid HF tokenizer.json ({reason}); "
                        "give the tokenizer.json saved by HF tokenizers or transformers") from err
    return Tokenizer({"kind": "hf", "path": str(path.resolve()), "sha256": hashlib.sha256(data).hexdigest(),
                      "vocab_size": hf.get_vocab_size(), "hf": json.loads(hf.to_str())}, hf)


def tokenizer_hash(description: dict) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]


def parse_spec(spec: str) -> int | None:
    """data.tokenizer -> BPE vocabulary size, or None for "byte" and "hf:PATH", checked by scaling.config; a
    DataConfig built in code has skipped that check, so here a bad spec is an error of the data."""
    try:
        return bpe_vocab_size(spec)
    except ConfigError as err:
        raise DataError(str(err)) from None


def hf_path(spec: str) -> str | None:
    """The PATH of data.tokenizer = "hf:PATH", or None for the other kinds."""
    return spec.removeprefix(HF_PREFIX) if spec.startswith(HF_PREFIX) else None


# --- cache -------------------------------------------------------------------------------------------

def cache_key(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:16]


def bpe_tokenizer(vocab_size: int, train_texts: list[str], key: str, cache: Path) -> tuple[Tokenizer, bool]:
    """The BPE tokenizer for (training split `key`, vocab_size), trained only on a cache miss.

    Returns (tokenizer, whether it came from the cache).
    """
    path = cache / "tokenizers" / f"bpe{vocab_size}-{key}.json"
    if path.is_file():
        try:
            return load_tokenizer(json.loads(path.read_text())), True
        except (ValueError, DataError):
            pass  # an unreadable cache entry is rebuilt below
    tokenizer = train_bpe(train_texts, vocab_size)
    atomic_write(path, json.dumps(tokenizer.description).encode())
    return tokenizer, False


def load_tokens(cache: Path, key: str, split: str) -> np.ndarray | None:
    path = cache / "tokens" / key / f"{split}.npy"
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None


def save_tokens(cache: Path, key: str, split: str, tokens: np.ndarray) -> None:
    atomic_write(cache / "tokens" / key / f"{split}.npy", lambda f: np.save(f, tokens))
