"""Two-sample drift statistics on aligned histograms, numpy + math only.

Every numerical statistic takes the two samples as counts over one sorted support (`aligned`): the exact
sample values (then the result is exact) or the baseline profile's sketch buckets (then it is the statistic
of the bucket-rounded samples; see schemas.profile for the error bounds). P-values are computed here by hand
(Kolmogorov and chi-square tails, normal tail) rather than with scipy: scipy is ~100 MB unpacked and takes
~0.3-0.5 s to import, which would blow the function's artifact size and cold-start budget for four formulas.
tests/unit/test_drift_stats.py checks every function against scipy.

NaN/inf never reach these functions: the profile counts them as missing. Empty histograms give NaN statistics
(and p-value 1.0), which the decision layer reports as insufficient data rather than drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

PSI_SMOOTHING = 0.5  # pseudo-count added to every PSI bin of both samples, so an empty bin gives a finite PSI


@dataclass(frozen=True)
class Aligned:
    """Two samples as counts over one strictly increasing support."""

    support: np.ndarray  # float64, sorted values (bucket representatives or exact values)
    a: np.ndarray  # counts of the reference sample
    b: np.ndarray  # counts of the current sample

    @property
    def n(self) -> int:
        return int(self.a.sum())

    @property
    def m(self) -> int:
        return int(self.b.sum())


def aligned_samples(x: np.ndarray, y: np.ndarray) -> Aligned:
    """Exact alignment of two raw samples (finite values only)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    support, inverse = np.unique(np.concatenate([x, y]), return_inverse=True)
    a = np.bincount(inverse[: x.size], minlength=support.size)
    b = np.bincount(inverse[x.size :], minlength=support.size)
    return Aligned(support, a.astype(np.int64), b.astype(np.int64))


def aligned_keys(
    keys_a: np.ndarray, counts_a: np.ndarray, keys_b: np.ndarray, counts_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of two sorted sparse key sets with both count vectors on it."""
    keys = np.union1d(keys_a, keys_b)
    a = np.zeros(keys.size, np.int64)
    b = np.zeros(keys.size, np.int64)
    a[np.searchsorted(keys, keys_a)] = counts_a
    b[np.searchsorted(keys, keys_b)] = counts_b
    return keys, a, b


# --- numerical ----------------------------------------------------------------------------------------------


def ks_statistic(h: Aligned) -> float:
    """Two-sample Kolmogorov-Smirnov D = sup |F_a - F_b| (evaluated at the support points)."""
    if h.n == 0 or h.m == 0:
        return math.nan
    return float(np.max(np.abs(np.cumsum(h.a) / h.n - np.cumsum(h.b) / h.m)))


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution (two series, each used where it converges fast)."""
    if lam <= 0:
        return 1.0
    if lam < 1.18:
        # Jacobi-theta form of the CDF, fast for small lam
        t = -(math.pi**2) / (8 * lam * lam)
        cdf = math.sqrt(2 * math.pi) / lam * sum(math.exp((2 * k - 1) ** 2 * t) for k in range(1, 6))
        return min(1.0, max(0.0, 1.0 - cdf))
    tail = 2.0 * sum((-1.0) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam) for k in range(1, 101))
    return min(1.0, max(0.0, tail))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Two-sided p-value of D for samples of n and m: Kolmogorov's limit with Stephens' finite-n correction
    (lam = (sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) * D, ne = nm/(n+m)), within ~0.01 of scipy's for ne >= 50."""
    if math.isnan(d) or n == 0 or m == 0:
        return 1.0
    ne = n * m / (n + m)
    root = math.sqrt(ne)
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * d)


def wasserstein(h: Aligned) -> float:
    """First Wasserstein distance: the integral of |F_a - F_b| over the support."""
    if h.n == 0 or h.m == 0:
        return math.nan
    diff = np.abs(np.cumsum(h.a)[:-1] / h.n - np.cumsum(h.b)[:-1] / h.m)
    return float(np.sum(diff * np.diff(h.support)))


def psi(expected: np.ndarray, actual: np.ndarray, smoothing: float = PSI_SMOOTHING) -> float:
    """Population stability index sum((a - e) ln(a / e)) over bins, with `smoothing` added to every bin's
    count of both samples so an empty bin contributes a large but finite term (never inf or NaN)."""
    e = np.asarray(expected, np.float64) + smoothing
    a = np.asarray(actual, np.float64) + smoothing
    pe, pa = e / e.sum(), a / a.sum()
    return float(np.sum((pa - pe) * np.log(pa / pe)))


def psi_bin_edges(counts: np.ndarray, bins: int = 10) -> np.ndarray:
    """Group consecutive support points into about `bins` groups of equal reference mass (quantile bins);
    returns the index where each group starts. Heavy atoms keep a group of their own."""
    total = counts.sum()
    if total == 0:
        return np.zeros(1, np.int64)
    cum = np.cumsum(counts)
    cuts = np.searchsorted(cum, total * np.arange(1, bins) / bins, side="left") + 1
    starts = np.unique(np.concatenate([[0], cuts[cuts < counts.size]]))
    return starts.astype(np.int64)


def grouped(counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    summed: np.ndarray = np.add.reduceat(counts, starts)
    return summed


# --- categorical --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Categories:
    names: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray

    @property
    def n(self) -> int:
        return int(self.a.sum())

    @property
    def m(self) -> int:
        return int(self.b.sum())


def aligned_categories(a: Mapping[str, int], b: Mapping[str, int]) -> Categories:
    names = tuple(sorted(set(a) | set(b)))
    return Categories(
        names,
        np.array([a.get(k, 0) for k in names], np.int64),
        np.array([b.get(k, 0) for k in names], np.int64),
    )


@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    dof: int
    pvalue: float


def chi_square(c: Categories, pool_below: float = 5.0) -> ChiSquare:
    """Chi-square test of homogeneity on the 2 x K table [reference; current] (as scipy's chi2_contingency,
    Yates-corrected when dof == 1). Categories whose expected count is below `pool_below` in either row are
    pooled into one cell first (Cochran's rule), so rare or unseen categories do not make the test invalid;
    pool_below=0 disables pooling."""
    a, b = c.a.astype(np.float64), c.b.astype(np.float64)
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    n, m = a.sum(), b.sum()
    if n == 0 or m == 0 or a.size < 2:
        return ChiSquare(0.0, 0, 1.0)
    if pool_below > 0:
        col = a + b
        small = np.minimum(col * n, col * m) / (n + m) < pool_below
        if small.any():
            a = np.append(a[~small], a[small].sum())
            b = np.append(b[~small], b[small].sum())
            if a[-1] + b[-1] == 0:
                a, b = a[:-1], b[:-1]
        if a.size < 2:
            return ChiSquare(0.0, 0, 1.0)
    table = np.vstack([a, b])
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    dof = a.size - 1
    diff = np.abs(table - expected)
    if dof == 1:
        diff = np.maximum(diff - 0.5, 0.0)  # Yates, as scipy does for 2x2
    stat = float(np.sum(diff * diff / expected))
    return ChiSquare(stat, dof, chi2_sf(stat, dof))


def chi2_sf(x: float, dof: int) -> float:
    """P(chi2_dof > x) = Q(dof/2, x/2), the regularized upper incomplete gamma function."""
    if dof <= 0:
        return 1.0
    if x <= 0:
        return 1.0
    return _gammq(dof / 2.0, x / 2.0)


def _gammq(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x): series below a + 1, Lentz's continued fraction above
    (Numerical Recipes 6.2); accurate to ~1e-12 relative."""
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def js_distance(c: Categories) -> float:
    """Jensen-Shannon distance in base 2 (0 = same distribution, 1 = disjoint), as scipy's jensenshannon."""
    if c.n == 0 or c.m == 0:
        return math.nan
    p, q = c.a / c.n, c.b / c.m
    mid = (p + q) / 2

    def kl(u: np.ndarray) -> float:
        nz = u > 0
        return float(np.sum(u[nz] * np.log2(u[nz] / mid[nz])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def unseen_share(c: Categories) -> float:
    """Share of the current sample whose category never occurs in the reference."""
    return float(c.b[c.a == 0].sum() / c.m) if c.m else math.nan


# --- rates and multiple testing -----------------------------------------------------------------------------


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def two_proportion_pvalue(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided pooled z-test of equal proportions (e.g. missing-value rates)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return min(1.0, 2 * normal_sf(abs(k1 / n1 - k2 / n2) / se))


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values): reject where adjusted <= alpha controls the false discovery rate,
    and under the global null the chance of any rejection, at alpha."""
    p = np.asarray(pvalues, np.float64)
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out
