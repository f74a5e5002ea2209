"""llm.c's token shards: headered .bin files, and a directory of them as train and validation splits.

A shard (llm.c's dev/data scripts, e.g. fineweb.py) is a header of 256 little-endian int32 — magic
20240520, version 1, the token count — followed by that many uint16 GPT-2 token ids. A directory of shards
maps onto the splits by name, as llm.c writes them: files whose name has a `_`-separated part `train`
(`fineweb_train_000001.bin`, `tiny_shakespeare_train.bin`) make the training split, those with a part `val`
(`fineweb_val_000000.bin`) the validation split, each the concatenation of its shards in name order.
Documents run across shard boundaries in llm.c's files, so a window may too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaling.errors import DataError

MAGIC = 20240520
VERSION = 1  # uint16 token ids
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
TOKEN_DTYPE = np.dtype("<u2")
SPLIT_PARTS = {"train": "train", "val": "val"}  # the `_`-separated part of a shard's name -> its split


def split_of(file: Path) -> str | None:
    """The split a shard belongs to by its name, or None when the name names neither (or both)."""
    parts = set(file.stem.split("_"))
    splits = [split for part, split in SPLIT_PARTS.items() if part in parts]
    return splits[0] if len(splits) == 1 else None


def shard_files(root: Path) -> dict[str, list[Path]]:
    """{"train": [...], "val": [...]}: the .bin files directly in `root` by split, in name order; empty when
    `root` holds no .bin files."""
    files = sorted(p for p in root.glob("*.bin") if p.is_file() and not p.name.startswith("."))
    if not files:
        return {}
    splits = {split: [] for split in SPLIT_PARTS.values()}
    for file in files:
        split = split_of(file)
        if split is None:
            raise DataError(f"{file} is in an llm.c shard directory but its name says neither train nor val; "
                            "llm.c names shards <name>_train_<n>.bin and <name>_val_<n>.bin: rename or move it")
        splits[split].append(file)
    for split, members in splits.items():
        if not members:
            raise DataError(f"{root} has no {split} shard (a .bin file named *_{split}_*.bin); llm.c's scripts "
                            "write the first shard as val and the rest as train")
    return splits


def token_count(file: Path) -> int:
    """The shard's token count, after checking its header and that its length matches it."""
    try:
        with open(file, "rb") as f:
            header = np.frombuffer(f.read(HEADER_BYTES), dtype="<i4")
        size = file.stat().st_size
    except OSError as err:
        raise DataError(f"cannot read llm.c shard {file}: {err.strerror}; fix its permissions") from err
    if header.size < HEADER_INTS or header[0] != MAGIC:
        raise DataError(f"{file} is not an llm.c token shard (no {HEADER_BYTES}-byte header starting with magic "
                        f"{MAGIC}); re-create it with llm.c's dev/data scripts or remove it")
    if header[1] != VERSION:
        raise DataError(f"llm.c shard {file} has header version {header[1]}; only version {VERSION} "
                        "(uint16 GPT-2 token ids) is read")
    count = int(header[2])
    expected = HEADER_BYTES + count * TOKEN_DTYPE.itemsize
    if count <= 0 or size != expected:
        raise DataError(f"llm.c shard {file} has {size} bytes but its header promises {count} tokens "
                        f"({expected} bytes); the file is truncated or corrupt: re-create it")
    return count


def read_shard(file: Path) -> np.memmap:
    """The token ids of a checked shard, memory-mapped past the header."""
    return np.memmap(file, dtype=TOKEN_DTYPE, mode="r", offset=HEADER_BYTES, shape=(token_count(file),))


class ShardedTokens:
    """Shards read as one 1-D array of token ids: len(), .shape, .dtype and indexing by int or by a slice
    with step 1, which is how the samplers read windows; a window across a boundary is copied together."""

    def __init__(self, shards: list[np.ndarray]):
        self.shards = shards
        self.starts = np.cumsum([0] + [len(s) for s in shards])
        self.dtype = shards[0].dtype

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    @property
    def ndim(self) -> int:
        return 1

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise IndexError("ShardedTokens takes slices with step 1")
            return self._range(start, max(start, stop))
        position = int(index) + (len(self) if int(index) < 0 else 0)
        if not 0 <= position < len(self):
            raise IndexError(f"token {index} is outside {len(self)} tokens")
        shard = int(np.searchsorted(self.starts, position, side="right")) - 1
        return self.shards[shard][position - self.starts[shard]]

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._range(0, len(self)), dtype=dtype)

    def _range(self, start: int, stop: int) -> np.ndarray:
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        pieces = []
        for shard in range(max(first, 0), len(self.shards)):
            if self.starts[shard] >= stop:
                break
            lo, hi = start - self.starts[shard], stop - self.starts[shard]
            pieces.append(self.shards[shard][max(lo, 0):hi])
        return np.concatenate(pieces) if pieces else np.zeros(0, self.dtype)


def split_tokens(shards: list[Path]) -> np.ndarray | ShardedTokens:
    """One split's tokens: the memmap itself for a single shard, else the shards read as one array."""
    arrays = [read_shard(file) for file in shards]
    return arrays[0] if len(arrays) == 1 else ShardedTokens(arrays)
