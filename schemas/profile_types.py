"""The stored profile: Profile and its per-feature NumericalProfile / CategoricalProfile, with their JSON form
(tidewater.profile/v1). Loading needs json and numpy only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import numpy as np

from schemas.profile_sketch import MIN_VALUE, BucketScheme, ProfileError

FeatureKind = Literal["numerical", "categorical"]  # as schemas.contract (not imported: loading stays light)

FORMAT: Literal["tidewater.profile/v1"] = "tidewater.profile/v1"
MODEL_OUTPUT: Final = "score"  # a model's single unnamed output: training profiles it, captures decode to it
QUANTILE_PROBS: tuple[float, ...] = tuple(i / 100 for i in range(101))


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
        from schemas.profile_states import NumericalState, as_float  # the accumulators build on these types

        profiled: dict[str, FeatureProfile] = dict(self.outputs)
        for name, values in outputs.items():
            state = NumericalState()
            state.update(as_float(values, name), self.scheme)
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
