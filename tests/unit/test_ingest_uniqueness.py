"""Uniqueness over a file's batches: hashed candidates, then an exact comparison, give Arrow's exact answer."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.ingest import uniqueness
from functions.ingest.uniqueness import UniqueColumn, _repeated, string_hashes

VALUES = st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "ab", "ba", "é", "x" * 300]), st.text(max_size=8)))


def _batches(values: list[str | None], cuts: list[int], kind: pa.DataType) -> list[pa.ChunkedArray]:
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(values)}), len(values)]
    whole = pa.array(values, kind)
    return [pa.chunked_array([whole.slice(a, b - a)], kind) for a, b in itertools.pairwise(bounds)]


@settings(max_examples=60, deadline=None)
@given(values=VALUES, cuts=st.lists(st.integers(0, 60), max_size=4), large=st.booleans())
def test_repeated_rows_are_arrows_exact_answer(values: list[str | None], cuts: list[int], large: bool) -> None:
    kind = pa.large_string() if large else pa.string()
    unique = UniqueColumn(kind)
    for batch in _batches(values, cuts, kind):
        unique.add(batch)

    assert unique.repeated().tolist() == _repeated(pa.chunked_array([pa.array(values, kind)])).tolist()


def test_a_hash_collision_costs_a_comparison_not_a_wrong_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uniqueness, "string_hashes", lambda array: np.zeros(len(array), np.uint64))
    unique = UniqueColumn(pa.string())
    unique.add(pa.chunked_array([pa.array(["a", "b", None, "c"])]))
    unique.add(pa.chunked_array([pa.array(["d", "b"])]))

    assert unique.repeated().tolist() == [1, 5]


def test_equal_strings_hash_equal_wherever_they_sit_in_their_buffers() -> None:
    left = pa.array(["zz", "abc", "q"]).slice(1, 1)
    right = pa.array(["abc"])
    assert string_hashes(left).tolist() == string_hashes(right).tolist()
    assert string_hashes(pa.array(["ab", "ba", "", "a"])).tolist() == list(
        dict.fromkeys(string_hashes(pa.array(["ab", "ba", "", "a"])).tolist())
    )  # distinct here


def test_other_types_use_the_exact_count() -> None:
    unique = UniqueColumn(pa.int64())
    unique.add(pa.chunked_array([pa.array([1, 2, None])]))
    unique.add(pa.chunked_array([pa.array([None, 2, 3])]))
    assert unique.repeated().tolist() == [1, 4]
