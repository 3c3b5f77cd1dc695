"""Features -> model inputs, shared by training and serving: category -> index, numbers -> signed log1p plus
a missing indicator per nullable numerical feature. numpy only (ships in model.tar.gz).

Columns come in as plain data: a categorical column is a sequence of values (None = missing), a numerical
column a float64 array (NaN = missing). Training converts its Arrow columns to these; serving parses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from serving.spec import FeatureSpec

UNKNOWN = 0  # embedding index of a missing or unknown category; known categories start at 1


class FeatureEncoder:
    def __init__(self, features: Sequence[FeatureSpec]) -> None:
        self.categorical = [f for f in features if f.kind == "categorical"]
        self.numerical = [f for f in features if f.kind == "numerical"]
        self.indicators = [f for f in self.numerical if f.nullable]
        self.vocab = [{str(c): i + 1 for i, c in enumerate(f.categories or ())} for f in self.categorical]

    @property
    def cardinalities(self) -> list[int]:
        return [len(v) + 1 for v in self.vocab]

    @property
    def numerical_width(self) -> int:
        return len(self.numerical) + len(self.indicators)

    def encode(self, columns: Mapping[str, Any], rows: int) -> tuple[np.ndarray, np.ndarray]:
        """(categorical int64 [rows, n_cat], numerical float32 [rows, numerical_width]) before standardisation."""
        cats = np.zeros((rows, len(self.categorical)), dtype=np.int64)
        for j, (feature, vocab) in enumerate(zip(self.categorical, self.vocab, strict=True)):
            values = columns[feature.name]
            cats[:, j] = [vocab.get(str(v), UNKNOWN) if v is not None else UNKNOWN for v in values]
        nums = np.zeros((rows, self.numerical_width), dtype=np.float32)
        for j, feature in enumerate(self.numerical):
            raw = np.asarray(columns[feature.name], dtype=np.float64)
            missing = np.isnan(raw)
            nums[:, j] = np.where(missing, 0.0, np.sign(raw) * np.log1p(np.abs(np.nan_to_num(raw))))
            if feature.nullable:
                nums[:, len(self.numerical) + self.indicators.index(feature)] = missing
        return cats, nums
