"""A wide synthetic dataset for the drift proofs and benchmark: 20 numerical + 5 categorical features.

jobs.datagen's `transactions` has 7 numerical and 3 categorical features; the drift claims are stated for
20 + 5, so this module declares a `wide` contract (parsed from YAML like any other) and draws seeded data
of mixed shapes (normal, lognormal, exponential, gamma, Poisson counts, uniform, bimodal; some nullable),
with the same shift knobs as datagen: covariate shift in standard deviations and category moves in
percentage points (taken from the other categories pro rata).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from schemas.contract import Contract, parse_contract

if TYPE_CHECKING:
    import pyarrow as pa

NUMERICAL = tuple(f"x{i:02d}" for i in range(20))
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "c0": ("a", "b", "c"),
    "c1": ("grocery", "restaurants", "travel", "electronics", "fashion", "fuel", "other"),
    "c2": tuple(f"k{i}" for i in range(15)),
    "c3": ("pos", "online", "mobile", "atm"),
    "c4": ("yes", "no"),
}
_P_CATEGORICAL: dict[str, tuple[float, ...]] = {
    "c0": (0.5, 0.3, 0.2),
    "c1": (0.30, 0.20, 0.10, 0.10, 0.12, 0.13, 0.05),
    "c2": tuple(np.round(np.geomspace(0.2, 0.01, 15) / np.geomspace(0.2, 0.01, 15).sum(), 6)),
    "c3": (0.55, 0.25, 0.15, 0.05),
    "c4": (0.9, 0.1),
}
NULLABLE = ("x04", "x11", "c2")  # 2% missing


def wide_contract() -> Contract:
    lines = ["dataset: wide", "version: 1", "columns:"]
    lines += [
        f"  - {{name: {n}, type: float64, role: feature, nullable: {str(n in NULLABLE).lower()}}}" for n in NUMERICAL
    ]
    for name, cats in CATEGORICAL.items():
        lines.append(
            f"  - {{name: {name}, type: string, role: feature, nullable: {str(name in NULLABLE).lower()}, "
            f"categories: [{', '.join(cats)}]}}"
        )
    return parse_contract("\n".join(lines), "<wide>")


@dataclass(frozen=True)
class WideShift:
    covariate: Mapping[str, float] = field(default_factory=dict)  # feature -> shift in standard deviations
    categories: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # feature -> {category: +pp}


def _draw(rng: np.random.Generator, i: int, rows: int) -> np.ndarray:
    shape = i % 7
    if shape == 0:
        return rng.normal(10.0 * i, 1.0 + i, rows)
    if shape == 1:
        return rng.lognormal(3.0, 0.8, rows)
    if shape == 2:
        return rng.exponential(5.0 + i, rows)
    if shape == 3:
        return rng.gamma(2.0, 100.0, rows)
    if shape == 4:
        return rng.poisson(3.0, rows).astype(np.float64)
    if shape == 5:
        return rng.uniform(-1.0, 1.0, rows)
    return np.where(rng.random(rows) < 0.3, rng.normal(-2.0, 0.5, rows), rng.normal(3.0, 1.0, rows))


def generate_wide(rows: int, seed: int, shift: WideShift | None = None) -> dict[str, np.ndarray]:
    """Columns as numpy arrays (float64 with NaN for missing numbers, object arrays with None otherwise)."""
    shift = shift or WideShift()
    unknown = (set(shift.covariate) - set(NUMERICAL)) | (set(shift.categories) - set(CATEGORICAL))
    if unknown:
        raise ValueError(f"shift names unknown features: {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(NUMERICAL):
        values = _draw(rng, i, rows)
        if name in shift.covariate:
            values = values + shift.covariate[name] * values.std()
        if name in NULLABLE:
            values[rng.random(rows) < 0.02] = np.nan
        out[name] = values
    for name, cats in CATEGORICAL.items():
        p = np.asarray(_P_CATEGORICAL[name], np.float64)
        p = p / p.sum()
        moves = shift.categories.get(name, {})
        if moves:
            moved = np.array([moves.get(c, 0.0) / 100 for c in cats])
            rest = moved == 0
            p = p + moved
            p[rest] -= moved.sum() * p[rest] / p[rest].sum()
        picked = np.asarray(cats, dtype=object)[rng.choice(len(cats), size=rows, p=p)]
        if name in NULLABLE:
            picked[rng.random(rows) < 0.02] = None
        out[name] = picked
    return out


def to_table(columns: Mapping[str, np.ndarray]) -> pa.Table:
    import pyarrow as pa

    return pa.table({n: pa.array(v, from_pandas=True) for n, v in columns.items()})
