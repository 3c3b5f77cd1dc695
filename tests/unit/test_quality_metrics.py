"""Quality metrics and their intervals: agree with the training metrics, cover the truth, stay defined on
degenerate input; the decision compares interval with interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.quality.decision import QualityConfig, decide
from functions.quality.metrics import QUANTA, Estimate, Quality, quality
from jobs.train.metrics import log_loss, roc_auc


def _sample(n: int, seed: int, separation: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(np.int8)
    return y, 1 / (1 + np.exp(-(rng.normal(0, 1, n) + separation * y - 2.5)))


def test_point_estimates_equal_the_training_metrics_and_hand_counts() -> None:
    y, s = _sample(5000, 1)
    s = np.round(s, 2)  # ties
    q = quality(y, s, 0.3, replicates=20)
    flagged = s >= 0.3
    assert q.estimates["auc"].value == pytest.approx(roc_auc(y, s), abs=1e-12)
    assert q.estimates["log_loss"].value == pytest.approx(log_loss(y, s), abs=1e-12)
    assert q.estimates["precision"].value == pytest.approx(y[flagged].mean())
    assert q.estimates["recall"].value == pytest.approx(flagged[y == 1].mean())
    bins = np.minimum((s * 10).astype(int), 9)
    ece = sum(abs(y[bins == b].sum() - s[bins == b].sum()) for b in range(10)) / len(s)
    assert q.estimates["ece"].value == pytest.approx(ece)


def test_intervals_cover_the_population_auc_at_about_their_level() -> None:
    truth = roc_auc(*_sample(400_000, 0))
    covered = sum(
        (e := quality(*_sample(2000, seed), 0.3, replicates=100, seed=seed).estimates["auc"]).low <= truth <= e.high
        for seed in range(1, 41)
    )
    assert covered >= 33  # 95% nominal: 38 of 40 expected; far fewer means the intervals are too narrow


def test_large_windows_resample_cells_with_the_same_answer() -> None:
    y, s = _sample(QUANTA + 30_000, 3)
    big = quality(y, s, 0.3, replicates=60, seed=1)
    half = len(s) // 2  # below the cell threshold: resampled row by row
    small = quality(y[:half], s[:half], 0.3, replicates=60, seed=1)
    for name, e in big.estimates.items():
        width, small_width = e.high - e.low, small.estimates[name].high - small.estimates[name].low
        assert e.low <= e.value <= e.high
        # twice the rows: intervals about 1/sqrt(2) as wide
        assert 0.45 < width / small_width < 1.0, (name, width, small_width)


def test_one_class_leaves_auc_undefined_not_wrong() -> None:
    q = quality(np.zeros(50, dtype=int), np.linspace(0, 1, 50), 0.5, replicates=20)
    assert math.isnan(q.estimates["auc"].value) and math.isnan(q.estimates["recall"].value)
    assert q.estimates["log_loss"].value > 0
    empty = quality(np.zeros(0, dtype=int), np.zeros(0), 0.5)
    assert empty.rows == 0 and all(math.isnan(e.value) for e in empty.estimates.values())


@pytest.mark.parametrize(
    "label,score,problem",
    [([0, 1], [0.1, float("nan")], "finite"), ([0, 1], [0.1, 1.5], "finite"), ([0, 2], [0.1, 0.2], "0 or 1"),
     ([0], [0.1, 0.2], "one length")],
)  # fmt: skip
def test_bad_input_is_refused_by_name(label: list[int], score: list[float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        quality(np.array(label), np.array(score), 0.5)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=1, max_size=200),
    st.floats(0, 1),
)
def test_every_defined_metric_and_interval_is_in_range(rows: list[tuple[int, float]], threshold: float) -> None:
    y, s = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    q = quality(y, s, threshold, replicates=20)
    for name, e in q.estimates.items():
        for v in (e.value, e.low, e.high):
            assert math.isnan(v) or (0 <= v <= (1 if name != "log_loss" else 17)), (name, e)


def _quality(auc: tuple[float, float, float], rows: int = 5000, positives: int = 500) -> Quality:
    wide = Estimate(0.5, 0.0, 1.0)
    estimates = {"auc": Estimate(*auc), "precision": wide, "recall": wide, "log_loss": Estimate(0.3, 0.2, 0.4),
                 "ece": Estimate(0.02, 0.0, 0.05)}  # fmt: skip
    return Quality(rows, positives, 0.5, estimates)


@pytest.mark.parametrize(
    "window,baseline,verdict",
    [
        ((0.70, 0.68, 0.72), (0.85, 0.83, 0.87), "degraded"),  # clear drop, both intervals tight
        ((0.80, 0.78, 0.82), (0.85, 0.83, 0.87), "ok"),  # a drop within the tolerance
        ((0.70, 0.68, 0.72), (0.85, 0.70, 0.95), "ok"),  # the baseline cannot tell (tiny validation split)
        ((0.70, 0.55, 0.85), (0.85, 0.83, 0.87), "ok"),  # the window cannot tell
    ],
)
def test_decision_compares_interval_with_interval(
    window: tuple[float, float, float], baseline: tuple[float, float, float], verdict: str
) -> None:
    result = decide("v1", 5000, _quality(window), _quality(baseline), QualityConfig())
    assert result.verdict == verdict, result.reasons


def test_too_few_labels_or_one_class_is_insufficient_not_ok() -> None:
    config = QualityConfig(min_labelled=1000, min_per_class=20)
    assert decide("v1", 9000, _quality((0.5, 0.4, 0.6), rows=999), _quality((0.9, 0.89, 0.91)), config).verdict == (
        "insufficient_labels"
    )
    few = decide("v1", 9000, _quality((0.5, 0.4, 0.6), positives=19), _quality((0.9, 0.89, 0.91)), config)
    assert few.verdict == "insufficient_labels" and "19 positive" in few.reasons[0]
    assert decide("v1", 9000, _quality((0.5, 0.4, 0.6)), None, config).verdict == "insufficient_labels"
