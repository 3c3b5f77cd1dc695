"""Classification quality of labelled predictions, each metric with a bootstrap confidence interval.

Metrics: ROC AUC (Mann-Whitney, ties at half weight), precision and recall at the serving threshold (score >=
threshold is a positive, as serving.inference labels), log-loss (scores clipped to [eps, 1 - eps]) and the
expected calibration error (ECE: equal-width score bins, sum over bins of |mean label - mean score| weighted
by the bin's share).

Why one Poisson bootstrap for all five: ECE has no exact interval, and a single resampling scheme keeps the
intervals comparable. Each replicate reweights rows by Poisson(1) draws instead of resampling them, so the
rows are sorted by score once and every metric of a replicate is a handful of weighted bincounts, no re-sort;
a large window is first grouped into cells of equal (quantised) score and label, so a replicate costs
O(cells), not O(rows) (see QUANTA and benchmarks/bench_quality.py).
Intervals are percentile intervals of the replicates that are defined (a replicate that lost a class has no
AUC and is left out of that metric's interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METRICS = ("auc", "precision", "recall", "log_loss", "ece")
EPS = 1e-7
# Replicates of more rows than this run on cells of scores quantised to 1/QUANTA: the interval then treats scores
# within 1/QUANTA as tied (an AUC change far below its own standard error); point estimates stay exact.
QUANTA = 1 << 16


@dataclass(frozen=True)
class Estimate:
    value: float  # nan when undefined (e.g. AUC with one class)
    low: float
    high: float

    def to_dict(self) -> dict[str, float | None]:
        return {k: (None if math.isnan(v) else v) for k, v in (("value", self.value), ("low", self.low),
                                                                  ("high", self.high))}  # fmt: skip


@dataclass(frozen=True)
class Quality:
    rows: int
    positives: int
    threshold: float
    estimates: dict[str, Estimate]  # METRICS -> estimate

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "positives": self.positives, "threshold": self.threshold,
                "metrics": {k: e.to_dict() for k, e in self.estimates.items()}}  # fmt: skip


@dataclass(frozen=True)
class _Rows:
    """Rows (or cells of equal rows) sorted by score, with what every metric needs precomputed.

    A row's weight in `metrics` is how many times it counts: 1 for the point estimate, a Poisson draw in a
    replicate. A cell stands for `count` rows that share a quantised score, a label, a side of the threshold
    and an ECE bin; drawing Poisson(count) for the cell is exactly drawing Poisson(1) for each of its rows."""

    score: np.ndarray  # (mean) score, ascending
    label: np.ndarray  # 0.0 / 1.0
    predicted: np.ndarray  # score >= threshold
    loss: np.ndarray  # (mean) log-loss of the row(s)
    bin: np.ndarray  # ECE bin
    block: np.ndarray  # tie block: equal scores (cells: equal quantised scores) count half against each other
    count: np.ndarray
    bins: int

    def metrics(self, w: np.ndarray) -> np.ndarray:
        """[auc, precision, recall, log_loss, ece] under weights w (nan where undefined)."""
        wp = w * self.label
        wn = w - wp
        total, pos = w.sum(), wp.sum()
        neg = total - pos
        out = np.full(len(METRICS), np.nan)
        if total <= 0:
            return out
        if pos > 0 and neg > 0:
            blocks = int(self.block[-1]) + 1
            p_b = np.bincount(self.block, wp, blocks)
            n_b = np.bincount(self.block, wn, blocks)
            below = np.cumsum(n_b) - n_b
            out[0] = float((p_b * (below + 0.5 * n_b)).sum() / (pos * neg))
        true_pos = wp[self.predicted].sum()
        flagged = w[self.predicted].sum()
        out[1] = true_pos / flagged if flagged > 0 else np.nan
        out[2] = true_pos / pos if pos > 0 else np.nan
        out[3] = float((w * self.loss).sum() / total)
        weight_b = np.bincount(self.bin, w * self.score, self.bins)
        label_b = np.bincount(self.bin, wp, self.bins)
        out[4] = float(np.abs(label_b - weight_b).sum() / total)
        return out


def _rows(label: np.ndarray, score: np.ndarray, threshold: float, bins: int) -> _Rows:
    order = np.argsort(score, kind="stable")
    s, y = score[order], label[order].astype(np.float64)
    p = np.clip(s, EPS, 1 - EPS)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    block = np.concatenate(([0], np.cumsum(s[1:] != s[:-1])))
    ece_bin = np.minimum((s * bins).astype(np.int64), bins - 1)
    return _Rows(s, y, s >= threshold, loss, ece_bin, block, np.ones(len(s)), bins)


def _cells(rows: _Rows) -> _Rows:
    """Rows grouped by (quantised score, threshold side, ECE bin, label): at most ~2 * QUANTA cells."""
    quantum = np.minimum((rows.score * QUANTA).astype(np.int64), QUANTA - 1)
    key = ((quantum * 2 + rows.predicted) * rows.bins + rows.bin) * 2 + rows.label.astype(np.int64)
    unique, index, count = np.unique(key, return_inverse=True, return_counts=True)

    def mean(v: np.ndarray) -> np.ndarray:
        means: np.ndarray = np.bincount(index, v, len(unique)) / count
        return means

    quanta = unique // (4 * rows.bins)
    block = np.concatenate(([0], np.cumsum(quanta[1:] != quanta[:-1])))
    return _Rows(mean(rows.score), (unique % 2).astype(np.float64), ((unique // (2 * rows.bins)) % 2).astype(bool),
                 mean(rows.loss), (unique // 2) % rows.bins, block, count.astype(np.float64), rows.bins)  # fmt: skip


def quality(
    label: np.ndarray,
    score: np.ndarray,
    threshold: float,
    *,
    replicates: int = 200,
    level: float = 0.95,
    bins: int = 10,
    seed: int = 0,
) -> Quality:
    """Point estimates and `level` percentile intervals from `replicates` Poisson-bootstrap replicates.

    Scores must be finite and in [0, 1] and labels 0/1; the caller quarantines anything else with a reason.
    """
    label, score = np.asarray(label), np.asarray(score, dtype=np.float64)
    if label.shape != score.shape or label.ndim != 1:
        raise ValueError(f"label and score must be 1-d of one length, got {label.shape} and {score.shape}")
    if not np.isfinite(score).all() or (score < 0).any() or (score > 1).any():
        raise ValueError("scores must be finite probabilities in [0, 1]")
    if not np.isin(label, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not 0 < level < 1 or replicates < 0 or bins < 1:
        raise ValueError(f"need 0 < level < 1, replicates >= 0, bins >= 1; got {level}, {replicates}, {bins}")
    if len(score) == 0:
        nan = Estimate(math.nan, math.nan, math.nan)
        return Quality(0, 0, threshold, dict.fromkeys(METRICS, nan))
    rows = _rows(label, score, threshold, bins)
    point = rows.metrics(rows.count)
    cells = _cells(rows) if len(score) > QUANTA else rows
    rng = np.random.default_rng(seed)
    draws = np.array([cells.metrics(rng.poisson(cells.count).astype(np.float64)) for _ in range(replicates)])
    estimates = {}
    for i, name in enumerate(METRICS):
        defined = draws[:, i][~np.isnan(draws[:, i])] if replicates else np.empty(0)
        if math.isnan(point[i]) or len(defined) == 0:
            low = high = math.nan
        else:
            low, high = (float(q) for q in np.quantile(defined, [(1 - level) / 2, (1 + level) / 2]))
        estimates[name] = Estimate(float(point[i]), low, high)
    return Quality(len(score), int(label.sum()), threshold, estimates)
