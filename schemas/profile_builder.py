"""ProfileBuilder: accumulates a Profile partition by partition (pyarrow tables or plain columns), merges with
builders of the same features, resumes from a stored profile; infer_kinds for a table without a contract.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Self

import numpy as np

from schemas.profile_sketch import DEFAULT_RELATIVE_ACCURACY, BucketScheme, ProfileError
from schemas.profile_states import (
    MAX_CATEGORIES,
    CategoricalState,
    ColumnState,
    NumericalState,
    as_float,
    category_key,
    finish_state,
    restore_state,
)
from schemas.profile_types import FeatureKind, Profile

if TYPE_CHECKING:
    import pyarrow as pa

    from schemas.contract import Contract

_PARALLEL_ROWS = 200_000  # from this many rows a partition's numerical columns are binned on threads


class ProfileBuilder:
    """Accumulates a Profile partition by partition; builders of the same contract merge by addition."""

    def __init__(
        self,
        contract: Contract | str,
        kinds: Mapping[str, FeatureKind] | None = None,
        *,
        outputs: Mapping[str, FeatureKind] | None = None,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        max_categories: int = MAX_CATEGORIES,
    ) -> None:
        """`contract` is a Contract (its features are profiled) or a bare ref string with explicit `kinds`."""
        if not isinstance(contract, str):  # a Contract
            self.contract_ref = contract.ref
            self.kinds: dict[str, FeatureKind] = {f.name: f.kind for f in contract.features}
        else:
            if kinds is None:
                raise ProfileError("a builder without a Contract needs explicit feature kinds")
            self.contract_ref = contract
            self.kinds = dict(kinds)
        self.output_kinds: dict[str, FeatureKind] = dict(outputs or {})
        self.scheme = BucketScheme(relative_accuracy)
        self.max_categories = max_categories
        self.rows = 0
        self._features: dict[str, ColumnState] = {n: self._new(k) for n, k in self.kinds.items()}
        self._outputs: dict[str, ColumnState] = {n: self._new(k) for n, k in self.output_kinds.items()}

    def _new(self, kind: FeatureKind) -> ColumnState:
        return NumericalState() if kind == "numerical" else CategoricalState(self.max_categories)

    @classmethod
    def from_profile(cls, profile: Profile, *, max_categories: int = MAX_CATEGORIES) -> ProfileBuilder:
        builder = cls(
            profile.contract,
            {n: p.kind for n, p in profile.features.items()},
            outputs={n: p.kind for n, p in profile.outputs.items()},
            relative_accuracy=profile.relative_accuracy,
            max_categories=max_categories,
        )
        builder.rows = profile.rows
        for states, profiles in ((builder._features, profile.features), (builder._outputs, profile.outputs)):
            for name, p in profiles.items():
                restore_state(states[name], p)
        return builder

    def update(self, table: pa.Table, *, outputs: pa.Table | None = None) -> Self:
        """Add one partition (pyarrow). Extra columns are ignored; a missing feature column is an error."""
        import pyarrow as pa
        import pyarrow.compute as pc

        def add(states: dict[str, ColumnState], t: pa.Table, what: str) -> None:
            absent = [n for n in states if n not in t.column_names]
            if absent:
                raise ProfileError(f"{what} lacks column(s) {absent}")
            numerical: list[tuple[NumericalState, np.ndarray]] = []
            for name, state in states.items():
                col = t.column(name)
                if isinstance(state, NumericalState):
                    if not (
                        pa.types.is_null(col.type)  # e.g. a CSV column with no value at all: all missing
                        or pa.types.is_integer(col.type)
                        or pa.types.is_floating(col.type)
                        or pa.types.is_boolean(col.type)
                        or pa.types.is_decimal(col.type)
                    ):
                        raise ProfileError(f"{what} column {name!r} is {col.type}, not numeric")
                    if col.type == pa.float64() and col.null_count == 0 and col.num_chunks == 1:
                        values = col.chunk(0).to_numpy()  # zero copy
                    else:
                        values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
                    numerical.append((state, np.asarray(values, dtype=np.float64)))
                else:
                    freqs: dict[str, int] = {}
                    for chunk in col.chunks:  # chunk by chunk: dictionary chunks may not share a dictionary
                        counted = pc.value_counts(chunk)
                        for v, n in zip(
                            counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
                        ):
                            if v is not None:
                                key = category_key(v)
                                freqs[key] = freqs.get(key, 0) + int(n)
                    state.add(col.null_count, freqs)
            self._update_numerical(numerical, parallel=t.num_rows >= _PARALLEL_ROWS)

        add(self._features, table, "table")
        if self._outputs:
            if outputs is None:
                raise ProfileError(f"this builder profiles outputs {sorted(self._outputs)}; pass outputs=")
            add(self._outputs, outputs, "outputs table")
        self.rows += table.num_rows
        return self

    def _update_numerical(self, work: list[tuple[NumericalState, np.ndarray]], parallel: bool) -> None:
        """Bin columns on threads when worth it: numpy releases the GIL in the ufuncs that do the work."""
        if not parallel or len(work) < 2 or (os.cpu_count() or 1) < 2:
            for state, values in work:
                state.update(values, self.scheme)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(work), os.cpu_count() or 1)) as pool:
            for done in [pool.submit(state.update, values, self.scheme) for state, values in work]:
                done.result()

    def update_columns(
        self,
        columns: Mapping[str, Sequence[object] | np.ndarray],
        *,
        outputs: Mapping[str, Sequence[object] | np.ndarray] | None = None,
    ) -> Self:
        """Add rows given as columns (numpy arrays or lists; None/NaN are missing). No pyarrow needed."""
        rows = _column_length(columns, self._features, "columns")
        if self._outputs:
            if outputs is None:
                raise ProfileError(f"this builder profiles outputs {sorted(self._outputs)}; pass outputs=")
            _column_length(outputs, self._outputs, "outputs")
        for states, data in ((self._features, columns), (self._outputs, outputs or {})):
            numerical: list[tuple[NumericalState, np.ndarray]] = []
            for name, state in states.items():
                if isinstance(state, NumericalState):
                    numerical.append((state, as_float(data[name], name)))
                else:
                    state.update(data[name])
            self._update_numerical(numerical, parallel=rows >= _PARALLEL_ROWS)
        self.rows += rows
        return self

    def merge(self, other: ProfileBuilder) -> Self:
        """Add another builder's partitions to this one (in place)."""
        if (self.contract_ref, self.kinds, self.output_kinds) != (other.contract_ref, other.kinds, other.output_kinds):
            raise ProfileError(
                f"cannot merge a {other.contract_ref} builder into a {self.contract_ref} builder "
                "with different features or outputs"
            )
        if self.scheme != other.scheme:
            raise ProfileError("cannot merge builders with different relative accuracy")
        for mine, theirs in ((self._features, other._features), (self._outputs, other._outputs)):
            for name, state in mine.items():
                restore_state(state, finish_state(theirs[name], other.scheme))
        self.rows += other.rows
        return self

    def finalize(self) -> Profile:
        return Profile(
            contract=self.contract_ref,
            rows=self.rows,
            relative_accuracy=self.scheme.relative_accuracy,
            features={n: finish_state(s, self.scheme) for n, s in self._features.items()},
            outputs={n: finish_state(s, self.scheme) for n, s in self._outputs.items()},
        )


def infer_kinds(
    schema: pa.Schema, overrides: Mapping[str, FeatureKind] | None = None
) -> tuple[dict[str, FeatureKind], dict[str, str]]:
    """Kinds of a table's columns for a profile without a contract: numbers (and all-empty columns) are
    numerical; strings, booleans and dictionaries categorical; `overrides` win (e.g. an integer code that is
    a category). Returns (kinds, skipped): columns no kind fits (timestamps, lists, ...) -> their type, for
    the caller to report."""
    import pyarrow as pa

    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(schema.names))
    if unknown:
        raise ProfileError(f"--kind names column(s) the data lacks: {unknown}; it has {schema.names}")
    kinds: dict[str, FeatureKind] = {}
    skipped: dict[str, str] = {}
    for f in schema:
        t = f.type
        numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t)
        textual = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t)
        if f.name in overrides:
            if overrides[f.name] == "numerical" and not numeric and not pa.types.is_boolean(t):
                raise ProfileError(f"column {f.name!r} is {t}: it cannot be profiled as numerical")
            if overrides[f.name] == "categorical" and not (numeric or textual or pa.types.is_dictionary(t)):
                raise ProfileError(f"column {f.name!r} is {t}: it cannot be profiled as categorical")
            kinds[f.name] = overrides[f.name]
        elif numeric:
            kinds[f.name] = "numerical"
        elif textual or pa.types.is_dictionary(t):
            kinds[f.name] = "categorical"
        else:
            skipped[f.name] = str(t)
    return kinds, skipped


def _column_length(data: Mapping[str, Sequence[object] | np.ndarray], states: Iterable[str], what: str) -> int:
    names = list(states)
    absent = [n for n in names if n not in data]
    if absent:
        raise ProfileError(f"{what} lack column(s) {absent}")
    lengths = {len(data[n]) for n in names}
    if len(lengths) > 1:
        raise ProfileError(f"{what} have different lengths: {sorted(lengths)}")
    return lengths.pop() if lengths else 0
