"""The profile's histogram sketch: the relative-error bucket scheme (DDSketch's, Masson et al. 2019) and the
binning pass over a column; ProfileError, the one error of the profile modules. schemas.profile's docstring says
what the scheme guarantees and why it is hand-written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_RELATIVE_ACCURACY = 0.002
MIN_VALUE = 1e-9  # |x| at or below this is the zero bucket
_CHUNK = 1 << 16  # values binned per pass: keeps the temporaries in cache


class ProfileError(ValueError):
    """A profile cannot be built, merged or loaded; the message says which feature and why."""


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


def bin_and_moment(
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


def accumulate(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique keys with summed counts."""
    if keys.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    unique, inverse = np.unique(keys, return_inverse=True)
    summed = np.bincount(inverse, weights=counts, minlength=unique.size).astype(np.int64)
    return unique.astype(np.int64), summed
