"""The profile's mergeable per-column accumulators: a numerical column's count, moments, range and bucket
counts (Chan et al.'s parallel update), a categorical column's frequencies (the rarest folded into OTHER past
MAX_CATEGORIES), and their round trip to and from the stored feature profiles.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from schemas.profile_sketch import BucketScheme, ProfileError, accumulate, bin_and_moment
from schemas.profile_types import QUANTILE_PROBS, CategoricalProfile, FeatureProfile, NumericalProfile

MAX_CATEGORIES = 1000  # distinct values kept per categorical feature; the rarest fold into OTHER
OTHER = "__other__"


def category_key(value: object) -> str:
    """The one spelling of a category value: bools lower-case, integral numbers without '.0'."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


class NumericalState:
    __slots__ = ("count", "counts", "keys", "m2", "max", "mean", "min", "missing")

    def __init__(self) -> None:
        self.count = 0
        self.missing = 0
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations (Chan et al.'s parallel update)
        self.min = math.inf
        self.max = -math.inf
        self.keys = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int64)

    def add(
        self,
        count: int,
        missing: int,
        mean: float,
        m2: float,
        lo: float,
        hi: float,
        keys: np.ndarray,
        counts: np.ndarray,
    ) -> None:
        self.missing += missing
        if count:
            total = self.count + count
            delta = mean - self.mean
            self.mean += delta * count / total
            self.m2 += m2 + delta * delta * self.count * count / total
            self.count = total
            self.min, self.max = min(self.min, lo), max(self.max, hi)
            self.keys, self.counts = accumulate(
                np.concatenate([self.keys, keys]), np.concatenate([self.counts, counts])
            )

    def update(self, values: np.ndarray, scheme: BucketScheme) -> None:
        finite = np.isfinite(values)
        x = values if bool(finite.all()) else values[finite]
        if x.size == 0:
            empty = np.zeros(0, np.int64)
            self.add(0, int(values.size), 0.0, 0.0, math.inf, -math.inf, empty, empty)
            return
        mean, lo, hi = float(x.mean()), float(x.min()), float(x.max())
        keys, counts, m2 = bin_and_moment(x, scheme, mean, lo, hi)
        self.add(int(x.size), int(values.size - x.size), mean, m2, lo, hi, keys, counts)

    def finish(self, scheme: BucketScheme) -> NumericalProfile:
        quantiles: tuple[float, ...] = ()
        if self.count:
            cum = np.cumsum(self.counts)
            ranks = np.asarray(QUANTILE_PROBS) * (self.count - 1)
            idx = np.searchsorted(cum, ranks, side="right")
            reps = scheme.values(self.keys[np.minimum(idx, self.keys.size - 1)])
            qs = np.clip(reps, self.min, self.max)
            qs[0], qs[-1] = self.min, self.max
            quantiles = tuple(float(q) for q in qs)
        std = math.sqrt(self.m2 / self.count) if self.count else 0.0
        return NumericalProfile(
            count=self.count,
            missing=self.missing,
            mean=self.mean if self.count else 0.0,
            std=std,
            min=self.min if self.count else 0.0,
            max=self.max if self.count else 0.0,
            quantiles=quantiles,
            keys=self.keys.copy(),
            counts=self.counts.copy(),
        )


class CategoricalState:
    __slots__ = ("frequencies", "max_categories", "missing")

    def __init__(self, max_categories: int) -> None:
        self.missing = 0
        self.frequencies: dict[str, int] = {}
        self.max_categories = max_categories

    def add(self, missing: int, frequencies: Mapping[str, int]) -> None:
        self.missing += missing
        for key, n in frequencies.items():
            self.frequencies[key] = self.frequencies.get(key, 0) + int(n)
        if len(self.frequencies) > self.max_categories:
            # keep the most frequent; ties broken by key so the result does not depend on merge order
            other = self.frequencies.pop(OTHER, 0)
            ranked = sorted(self.frequencies.items(), key=lambda kv: (-kv[1], kv[0]))
            kept = dict(ranked[: self.max_categories - 1])
            kept[OTHER] = other + sum(v for _, v in ranked[self.max_categories - 1 :])
            self.frequencies = kept

    def update(self, values: Sequence[object] | np.ndarray) -> None:
        arr = np.asarray(values) if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        if arr.dtype.kind in "USiub":  # typed arrays hold no missing values: count distinct values only
            uniques, counts = np.unique(arr, return_counts=True)
            missing = 0
        else:
            arr = arr.astype(object)
            present = np.not_equal(arr, np.array(None, dtype=object)) & np.equal(
                arr, arr
            )  # elementwise; x == x is False for NaN
            try:
                counted = Counter(arr[present].tolist())  # hashing beats sorting Python objects by ~10x
            except TypeError:
                raise ProfileError("a categorical value is not a scalar (list or object?)") from None
            uniques, counts = np.asarray(list(counted), dtype=object), np.asarray(list(counted.values()))
            missing = int(arr.size - present.sum())
        freqs: dict[str, int] = {}
        for value, n in zip(uniques.tolist(), counts.tolist(), strict=True):
            key = category_key(value)
            freqs[key] = freqs.get(key, 0) + int(n)
        self.add(missing, freqs)

    def finish(self) -> CategoricalProfile:
        return CategoricalProfile(missing=self.missing, frequencies=dict(sorted(self.frequencies.items())))


ColumnState = NumericalState | CategoricalState


def finish_state(state: ColumnState, scheme: BucketScheme) -> FeatureProfile:
    return state.finish(scheme) if isinstance(state, NumericalState) else state.finish()


def restore_state(state: ColumnState, profile: FeatureProfile) -> None:
    if isinstance(state, NumericalState) and isinstance(profile, NumericalProfile):
        m2 = profile.std**2 * profile.count
        state.add(
            profile.count, profile.missing, profile.mean, m2, profile.min, profile.max, profile.keys, profile.counts
        )
    elif isinstance(state, CategoricalState) and isinstance(profile, CategoricalProfile):
        state.add(profile.missing, profile.frequencies)
    else:
        raise ProfileError(f"feature kind mismatch: {profile.kind} profile into another kind")


def as_float(values: Sequence[object] | np.ndarray, name: str) -> np.ndarray:
    """Numbers as float64 with None -> NaN; a non-numeric value is an error naming the column."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64)
    try:
        return np.array([np.nan if v is None else float(v) for v in arr.tolist()], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ProfileError(f"column {name!r} has a non-numeric value: {err}") from None
