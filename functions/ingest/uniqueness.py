"""`expect_column_values_to_be_unique` over a file read in batches, in memory that stays small per row.

A repeated value makes every row holding it unexpected (GE's semantics), wherever in the file they are, so the
column's values are kept until the end. Arrow's hash table over millions of strings costs ~100 bytes a row at
its peak; instead, each batch's strings are hashed to 64 bits with numpy (8 bytes a row), the hashes that occur
more than once give the candidate rows, and only those are compared by value (a collision costs a comparison,
never a wrong answer). Columns of other types keep Arrow's exact count over the whole column.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_P = np.uint64(0x100000001B3)  # FNV prime: the base of the polynomial hash
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)  # murmur3's finaliser, to spread bits


def _mix(h: np.ndarray) -> np.ndarray:
    h ^= h >> np.uint64(33)
    h *= _M1
    h ^= h >> np.uint64(33)
    h *= _M2
    h ^= h >> np.uint64(33)
    return h


def string_hashes(array: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string (nulls hash like the empty string; callers mask them)."""
    wide = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64 if wide else np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    first, last = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buffer, np.uint8)[first:last] if data_buffer is not None else np.empty(0, np.uint8)
    starts, lengths = (offsets[:-1] - first).astype(np.int64), np.diff(offsets).astype(np.int64)
    longest = int(lengths.max()) if len(lengths) else 0
    with np.errstate(over="ignore"):
        powers = np.ones(max(longest, 1), np.uint64)  # P**i, wrapping
        powers[1:] = np.cumprod(np.full(len(powers) - 1, _P, np.uint64))
        position = np.arange(len(data), dtype=np.int64) - np.repeat(starts, lengths)
        sums = np.concatenate([np.zeros(1, np.uint64), np.cumsum(data.astype(np.uint64) * powers[position])])
        h = sums[starts + lengths] - sums[starts]
        return _mix(h ^ (lengths.astype(np.uint64) * _M1))


def _is_text(kind: pa.DataType) -> bool:
    return any(f(kind) for f in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary))


class UniqueColumn:
    """One unique column's values over a whole file; `repeated()` gives the positions of the rows whose value
    occurs more than once (nulls are the not-null expectation's, as in GE)."""

    def __init__(self, kind: pa.DataType) -> None:
        self.kind = kind
        self.chunks: list[pa.Array] = []
        self._hashes: list[np.ndarray] = []
        self._valid: list[np.ndarray] = []

    def add(self, column: pa.ChunkedArray) -> None:
        for chunk in column.chunks:
            self.chunks.append(chunk)
            if _is_text(self.kind):
                self._hashes.append(string_hashes(chunk))
                self._valid.append(chunk.is_valid().to_numpy(zero_copy_only=False))

    def column(self) -> pa.ChunkedArray:
        return pa.chunked_array(self.chunks, self.kind)

    def repeated(self) -> np.ndarray:
        column = self.column()
        if not _is_text(self.kind):
            return _repeated(column)
        if not self._hashes:
            return np.empty(0, np.int64)
        hashes, valid = np.concatenate(self._hashes), np.concatenate(self._valid)
        ordered = np.sort(hashes[valid])
        twice = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
        if len(twice) == 0:
            return np.empty(0, np.int64)
        candidates = np.flatnonzero(valid & np.isin(hashes, twice))
        found: np.ndarray = candidates[_repeated(column.take(pa.array(candidates)))]
        return found


def _repeated(column: pa.ChunkedArray) -> np.ndarray:
    """Positions of the non-null values that occur more than once (Arrow's exact count)."""
    counts = pc.value_counts(column.drop_null())
    twice = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(twice) == 0:
        return np.empty(0, np.int64)
    mask = pc.fill_null(pc.is_in(column, value_set=twice), False)
    return np.flatnonzero(mask.to_numpy(zero_copy_only=False))
