"""Data files built the way their real producers build them, shared by the data tests: an HF tokenizer.json
and llm.c token shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tokenizers
from tokenizers import models, pre_tokenizers, processors, trainers

from scaling.llmc import MAGIC, VERSION


def save_hf_tokenizer(path: Path, texts: list[str], vocab_size: int = 120) -> tokenizers.Tokenizer:
    """A tiny BPE saved as a tokenizer.json the way HF models ship theirs: special tokens, a post-processor
    adding BOS (id 1) and EOS (id 2) around every text, and truncation switched on (8 tokens)."""
    hf = tokenizers.Tokenizer(models.BPE(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["[UNK]", "[BOS]", "[EOS]"],
                                  show_progress=False)
    hf.train_from_iterator(texts, trainer=trainer)
    hf.post_processor = processors.TemplateProcessing(single="[BOS] $A [EOS]",
                                                      special_tokens=[("[BOS]", 1), ("[EOS]", 2)])
    hf.enable_truncation(max_length=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    hf.save(str(path))
    return hf


def write_shard(path: Path, ids, magic: int = MAGIC, version: int = VERSION, count: int | None = None) -> Path:
    """A shard as llm.c's dev/data/data_common.py write_datafile writes it: 256 int32 header, uint16 ids."""
    header = np.zeros(256, dtype="<i4")
    header[:3] = magic, version, len(ids) if count is None else count
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.tobytes() + np.asarray(ids, dtype="<u2").tobytes())
    return path
