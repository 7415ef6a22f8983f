"""Records kept in one flat byte buffer, so DataLoader workers share them without copying.

A forked worker shares its parent's memory until a page is written. Reading a Python object
writes its reference count, so touching a list of 860k annotation dicts copies nearly every
page that holds them into every worker (COCO train2017: ~1 GB per worker). Here each record
(an image's annotation list, an image dict) is pickled once into one numpy uint8 buffer with an
int64 offset array: two Python objects in all, whose pages reading never writes. A record is
unpickled when asked for, a fresh Python object owned by the caller (the same idea as
detectron2's serialised dataset lists).

Pickle keeps every value exactly as the JSON parser made it: ints stay ints, unknown fields,
RLE dicts and keypoints come back untouched.
"""
from __future__ import annotations

import pickle
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class PackedRecords(Sequence):
    """A read-only sequence of picklable records stored as bytes in one buffer.

    `buffer`: uint8 (total bytes,); `offsets`: int64 (len + 1,), record i is
    buffer[offsets[i]:offsets[i + 1]].
    """

    def __init__(self, records: Iterable[Any]) -> None:
        # appended to one bytearray (grown in place, mremap) rather than joined from a list of
        # blobs: the blobs and their join would hold the data twice at the peak
        data, ends = bytearray(), []
        for record in records:
            data += pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
            ends.append(len(data))
        self.offsets = np.zeros(len(ends) + 1, dtype=np.int64)
        self.offsets[1:] = ends
        self.buffer = np.frombuffer(data, dtype=np.uint8)  # shares `data`, no copy
        self.buffer.flags.writeable = False

    @classmethod
    def from_slices(cls, items: list[Any], bounds: np.ndarray) -> PackedRecords:
        """One record per slice: record i is the list items[bounds[i]:bounds[i + 1]]."""
        starts, ends = bounds[:-1].tolist(), bounds[1:].tolist()
        return cls(items[start:end] for start, end in zip(starts, ends))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        if not -len(self) <= index < len(self):
            raise IndexError(f"record {index} of {len(self)}")
        index %= len(self)
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return pickle.loads(memoryview(self.buffer)[start:end])

    @property
    def nbytes(self) -> int:
        """Bytes held: the buffer plus the offsets."""
        return int(self.buffer.nbytes + self.offsets.nbytes)
