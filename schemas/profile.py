"""The drift baseline profile: a small, mergeable summary of every feature (a contract's, or a table's columns).

Interface (the batch-ingestion job builds it per partition and merges; the drift check loads it):

    from schemas.profile import ProfileBuilder, Profile
    builder = ProfileBuilder(contract)                    # contract: schemas.contract.Contract
    builder = ProfileBuilder("sensors", infer_kinds(table.schema)[0])   # any table: a name + inferred kinds
    builder.update(table)                                 # pyarrow.Table with (at least) the feature columns
    builder.update_columns({"amount": np.array(...), "channel": ["pos", None, ...]})   # numpy-only path
    total = builder_a.merge(builder_b)                    # in place, returns self; same contract/accuracy only
    profile = total.finalize()                            # -> Profile (immutable)
    text = profile.to_json(); Profile.from_json(text)     # loading needs json + numpy only
    ProfileBuilder.from_profile(profile)                  # resume building from a stored profile
    # prediction drift: the training/evaluation step profiles the model's outputs beside the features
    ProfileBuilder(contract, outputs={"score": "numerical"}).update(table, outputs=pa.table({"score": scores}))

Builders pickle (Dask: build one per partition on the workers, merge on the client); merging is exact and
order-independent for counts and histograms (floating-point mean/std up to rounding). update() bins the
numerical columns of a large partition on threads (numpy releases the GIL). Bad input raises ProfileError
naming the column: a missing feature column, a non-numeric value in a numerical feature, a mismatched merge.

A Profile holds the row count and, per feature (and optionally per model output, `outputs=` in the builder):
- numerical: non-missing count, missing count (null, NaN or +-inf: non-finite values are *missing*, never
  binned), mean, std, min, max, a 101-point quantile grid (0%, 1%, ..., 100%) and a fine histogram;
- categorical: missing count and the frequency of every category (values keyed by `category_key`).

The histogram is a relative-error sketch (the DDSketch bucket scheme, Masson et al. 2019): value x > 0 falls
in bucket i = ceil(log_gamma x), gamma = (1 + a) / (1 - a), mirrored for x < 0, and |x| up to about MIN_VALUE
(exactly: up to the bucket edge just below it) shares one zero bucket. Buckets are fixed by `a` alone (no
ranges to agree on), so partitions merge by adding counts, and the drift check bins the current window with
the *same* scheme. Consequences the drift statistics rely on (tested in tests/unit/test_drift_stats.py):
- every value is represented within relative error `a` (default 0.002), so the Wasserstein distance
  between binned samples is within a * (E|X| + E|Y|) of the exact one;
- the KS statistic between binned samples is at most the exact one and at least the exact one minus the
  largest single-bucket probability mass (reported by the check as `ks_error_bound`); the KS test on binned data is
  the exact KS test on rounded data, so its false-alarm rate stays controlled.
Only non-empty buckets are stored (sorted signed keys + counts), so a profile of 25 features is a few
hundred KB of JSON that loads in milliseconds. We hand-write this sketch rather than depend on `ddsketch`
because we need the bucket keys themselves (aligned histograms), not only quantile queries.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal, Self

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from schemas.contract import Contract

FeatureKind = Literal["numerical", "categorical"]  # as schemas.contract (not imported: loading stays light)

FORMAT: Literal["tidewater.profile/v1"] = "tidewater.profile/v1"
DEFAULT_RELATIVE_ACCURACY = 0.002
MIN_VALUE = 1e-9  # |x| at or below this is the zero bucket
MODEL_OUTPUT: Final = "score"  # a model's single unnamed output: training profiles it, captures decode to it
MAX_CATEGORIES = 1000  # distinct values kept per categorical feature; the rarest fold into OTHER
OTHER = "__other__"
QUANTILE_PROBS: tuple[float, ...] = tuple(i / 100 for i in range(101))
_CHUNK = 1 << 16  # values binned per pass: keeps the temporaries in cache
_PARALLEL_ROWS = 200_000  # from this many rows a partition's numerical columns are binned on threads


class ProfileError(ValueError):
    """A profile cannot be built, merged or loaded; the message says which feature and why."""


def category_key(value: object) -> str:
    """The one spelling of a category value: bools lower-case, integral numbers without '.0'."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class BucketScheme:
    """Maps values to ordered signed integer bucket keys and back (see the module docstring)."""

    relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY

    def __post_init__(self) -> None:
        if not 0.0 < self.relative_accuracy < 0.5:
            raise ProfileError(f"relative_accuracy must be in (0, 0.5), got {self.relative_accuracy}")

    @property
    def gamma(self) -> float:
        return (1 + self.relative_accuracy) / (1 - self.relative_accuracy)

    @property
    def _offset(self) -> int:
        # keys of positive buckets start at 1 just above MIN_VALUE
        return math.ceil(math.log(MIN_VALUE) / math.log(self.gamma)) - 1

    def keys(self, values: np.ndarray) -> np.ndarray:
        """Signed bucket keys of finite values (monotone non-decreasing in the value).

        Written for speed (the check bins 20M values per 1M-row window): in-place passes, and the sign pass only
        when there are negative values. Magnitudes up to gamma**offset (just under MIN_VALUE, log(0) = -inf
        included) clamp to key 0, the zero bucket."""
        x = np.asarray(values, dtype=np.float64)
        negative = bool(x.size) and float(x.min()) < 0
        index = np.abs(x) if negative else x.copy()
        with np.errstate(divide="ignore"):
            np.log(index, out=index)
        index *= 1.0 / math.log(self.gamma)
        index -= self._offset
        np.ceil(index, out=index)
        np.maximum(index, 0.0, out=index)
        if negative:
            np.copysign(index, x, out=index)
        result: np.ndarray = index.astype(np.int64)
        return result

    def values(self, keys: np.ndarray) -> np.ndarray:
        """Representative value of each bucket: within relative error `relative_accuracy` of its members."""
        k = np.asarray(keys, dtype=np.int64)
        index = np.abs(k) + self._offset
        rep = 2.0 * np.power(self.gamma, index.astype(np.float64)) / (self.gamma + 1.0)
        out: np.ndarray = np.where(k == 0, 0.0, np.where(k < 0, -rep, rep))
        return out


def _bin_and_moment(
    values: np.ndarray, scheme: BucketScheme, mean: float, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Non-empty bucket keys of finite `values` (within [lo, hi]), their counts, and the sum of squared
    deviations from `mean`, in one pass over cache-sized chunks (the temporaries stay in cache; this is the
    hot loop of a 1M-row check). Keys are monotone, so the key range is known from lo and hi (at most ~365k
    keys for any float64 range) and counts go into one dense array."""
    k_lo, k_hi = (int(k) for k in scheme.keys(np.array([lo, hi])))
    dense = np.zeros(k_hi - k_lo + 1, np.int64)
    m2 = 0.0
    for start in range(0, values.size, _CHUNK):
        chunk = values[start : start + _CHUNK]
        dense += np.bincount(scheme.keys(chunk) - k_lo, minlength=dense.size)
        centred = chunk - mean
        centred *= centred  # not np.dot: BLAS threads on small chunks spin and oversubscribe the cores
        m2 += float(centred.sum())
    present = np.flatnonzero(dense)
    return present.astype(np.int64) + k_lo, dense[present], m2


def _accumulate(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique keys with summed counts."""
    if keys.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    unique, inverse = np.unique(keys, return_inverse=True)
    summed = np.bincount(inverse, weights=counts, minlength=unique.size).astype(np.int64)
    return unique.astype(np.int64), summed


@dataclass(frozen=True)
class NumericalProfile:
    count: int  # finite values
    missing: int  # null, NaN or +-inf
    mean: float
    std: float  # population standard deviation
    min: float
    max: float
    quantiles: tuple[float, ...]  # at QUANTILE_PROBS; empty when count == 0
    keys: np.ndarray = field(repr=False)  # sorted signed bucket keys of the non-empty buckets
    counts: np.ndarray = field(repr=False)
    kind: Literal["numerical"] = "numerical"

    @property
    def rows(self) -> int:
        return self.count + self.missing

    @property
    def missing_rate(self) -> float:
        return self.missing / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "quantiles": list(self.quantiles),
            "bins": {"keys": self.keys.tolist(), "counts": self.counts.tolist()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericalProfile:
        keys = np.asarray(data["bins"]["keys"], dtype=np.int64)
        counts = np.asarray(data["bins"]["counts"], dtype=np.int64)
        if keys.shape != counts.shape or (keys.size > 1 and bool(np.any(np.diff(keys) <= 0))):
            raise ProfileError("bins.keys must be strictly increasing and as long as bins.counts")
        if int(counts.sum()) != int(data["count"]) or bool(np.any(counts <= 0)):
            raise ProfileError("bins.counts must be positive and sum to count")
        return cls(
            count=int(data["count"]),
            missing=int(data["missing"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            min=float(data["min"]),
            max=float(data["max"]),
            quantiles=tuple(float(q) for q in data["quantiles"]),
            keys=keys,
            counts=counts,
        )


@dataclass(frozen=True)
class CategoricalProfile:
    missing: int
    frequencies: Mapping[str, int]
    kind: Literal["categorical"] = "categorical"

    @property
    def count(self) -> int:
        return sum(self.frequencies.values())

    @property
    def rows(self) -> int:
        return self.count + self.missing

    @property
    def missing_rate(self) -> float:
        return self.missing / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "missing": self.missing, "frequencies": dict(self.frequencies)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        freqs = {str(k): int(v) for k, v in data["frequencies"].items()}
        if any(v <= 0 for v in freqs.values()):
            raise ProfileError("category frequencies must be positive")
        return cls(missing=int(data["missing"]), frequencies=freqs)


FeatureProfile = NumericalProfile | CategoricalProfile


@dataclass(frozen=True)
class Profile:
    contract: str  # e.g. "transactions/v1", or a table's name for a profile built without a contract
    rows: int
    relative_accuracy: float
    features: Mapping[str, FeatureProfile]
    outputs: Mapping[str, FeatureProfile] = field(default_factory=dict)  # model outputs (prediction drift)

    @property
    def scheme(self) -> BucketScheme:
        return BucketScheme(self.relative_accuracy)

    @property
    def dataset(self) -> str:
        """The data's name: the contract's dataset ("transactions/v1" -> "transactions"), or the profile's name."""
        return self.contract.partition("/v")[0]

    @property
    def kinds(self) -> dict[str, FeatureKind]:
        """Each feature's kind, in profile order: all a drift check needs to decode and compare a window."""
        return {name: p.kind for name, p in self.features.items()}

    def with_outputs(self, outputs: Mapping[str, Sequence[object] | np.ndarray]) -> Profile:
        """This profile plus numerical profiles of model outputs (e.g. validation scores), binned with the same
        scheme, so a drift check compares served predictions with the model's own (prediction drift)."""
        profiled: dict[str, FeatureProfile] = dict(self.outputs)
        for name, values in outputs.items():
            state = _NumericalState()
            state.update(_as_float(values, name), self.scheme)
            if not state.count:
                raise ProfileError(f"output {name!r} has no finite value to profile")
            profiled[name] = state.finish(self.scheme)
        return replace(self, outputs=profiled)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "contract": self.contract,
                "rows": self.rows,
                "relative_accuracy": self.relative_accuracy,
                "min_value": MIN_VALUE,
                "features": {n: p.to_dict() for n, p in self.features.items()},
                "outputs": {n: p.to_dict() for n, p in self.outputs.items()},
            },
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ProfileError(f"profile is not valid JSON: {err}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProfileError(f"not a {FORMAT} document")
        if data.get("min_value") != MIN_VALUE:
            raise ProfileError(f"profile uses min_value {data.get('min_value')}, this code {MIN_VALUE}")

        def load(section: str) -> dict[str, FeatureProfile]:
            out: dict[str, FeatureProfile] = {}
            for name, entry in data.get(section, {}).items():
                try:
                    kind = entry["kind"]
                    if kind == "numerical":
                        out[name] = NumericalProfile.from_dict(entry)
                    elif kind == "categorical":
                        out[name] = CategoricalProfile.from_dict(entry)
                    else:
                        raise ProfileError(f"unknown kind {kind!r}")
                except (KeyError, TypeError, ValueError) as err:
                    raise ProfileError(f"{section}.{name}: {err}") from None
            return out

        try:
            return cls(
                contract=str(data["contract"]),
                rows=int(data["rows"]),
                relative_accuracy=float(data["relative_accuracy"]),
                features=load("features"),
                outputs=load("outputs"),
            )
        except KeyError as err:
            raise ProfileError(f"profile lacks {err}") from None


# --- building ---------------------------------------------------------------------------------------------


class _NumericalState:
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
            self.keys, self.counts = _accumulate(
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
        keys, counts, m2 = _bin_and_moment(x, scheme, mean, lo, hi)
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


class _CategoricalState:
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


_State = _NumericalState | _CategoricalState


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
        self._features: dict[str, _State] = {n: self._new(k) for n, k in self.kinds.items()}
        self._outputs: dict[str, _State] = {n: self._new(k) for n, k in self.output_kinds.items()}

    def _new(self, kind: FeatureKind) -> _State:
        return _NumericalState() if kind == "numerical" else _CategoricalState(self.max_categories)

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
                _restore(states[name], p)
        return builder

    def update(self, table: pa.Table, *, outputs: pa.Table | None = None) -> Self:
        """Add one partition (pyarrow). Extra columns are ignored; a missing feature column is an error."""
        import pyarrow as pa
        import pyarrow.compute as pc

        def add(states: dict[str, _State], t: pa.Table, what: str) -> None:
            absent = [n for n in states if n not in t.column_names]
            if absent:
                raise ProfileError(f"{what} lacks column(s) {absent}")
            numerical: list[tuple[_NumericalState, np.ndarray]] = []
            for name, state in states.items():
                col = t.column(name)
                if isinstance(state, _NumericalState):
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

    def _update_numerical(self, work: list[tuple[_NumericalState, np.ndarray]], parallel: bool) -> None:
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
            numerical: list[tuple[_NumericalState, np.ndarray]] = []
            for name, state in states.items():
                if isinstance(state, _NumericalState):
                    numerical.append((state, _as_float(data[name], name)))
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
                _restore(state, _finish(theirs[name], other.scheme))
        self.rows += other.rows
        return self

    def finalize(self) -> Profile:
        return Profile(
            contract=self.contract_ref,
            rows=self.rows,
            relative_accuracy=self.scheme.relative_accuracy,
            features={n: _finish(s, self.scheme) for n, s in self._features.items()},
            outputs={n: _finish(s, self.scheme) for n, s in self._outputs.items()},
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


def _finish(state: _State, scheme: BucketScheme) -> FeatureProfile:
    return state.finish(scheme) if isinstance(state, _NumericalState) else state.finish()


def _restore(state: _State, profile: FeatureProfile) -> None:
    if isinstance(state, _NumericalState) and isinstance(profile, NumericalProfile):
        m2 = profile.std**2 * profile.count
        state.add(
            profile.count, profile.missing, profile.mean, m2, profile.min, profile.max, profile.keys, profile.counts
        )
    elif isinstance(state, _CategoricalState) and isinstance(profile, CategoricalProfile):
        state.add(profile.missing, profile.frequencies)
    else:
        raise ProfileError(f"feature kind mismatch: {profile.kind} profile into another kind")


def _column_length(data: Mapping[str, Sequence[object] | np.ndarray], states: Iterable[str], what: str) -> int:
    names = list(states)
    absent = [n for n in names if n not in data]
    if absent:
        raise ProfileError(f"{what} lack column(s) {absent}")
    lengths = {len(data[n]) for n in names}
    if len(lengths) > 1:
        raise ProfileError(f"{what} have different lengths: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def _as_float(values: Sequence[object] | np.ndarray, name: str) -> np.ndarray:
    """Numbers as float64 with None -> NaN; a non-numeric value is an error naming the column."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64)
    try:
        return np.array([np.nan if v is None else float(v) for v in arr.tolist()], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ProfileError(f"column {name!r} has a non-numeric value: {err}") from None
