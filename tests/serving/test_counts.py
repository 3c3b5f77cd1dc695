"""The predictor's counters as the rehearsal reads them from /metrics: differences, sums and quantiles."""

from __future__ import annotations

import math

from serving.metrics import ServingMetrics
from serving.process import Counts, parse_counts


def _counts(latencies_s: list[float], codes: list[int]) -> Counts:
    metrics = ServingMetrics("e", "v")
    for seconds, code in zip(latencies_s, codes, strict=True):
        metrics.observe(code, seconds)
    return parse_counts(metrics.exposition()[0].decode())


def test_counts_parse_subtract_add_and_give_histogram_quantiles() -> None:
    first = _counts([0.0008] * 98 + [0.02, 0.02], [200] * 99 + [500])
    assert (first.requests, first.errors_5xx, first.latency_count) == (100, 1, 100)
    assert 0.0005 < first.latency_quantile(0.5) <= 0.001  # inside the bucket that holds the median
    assert 0.01 < first.latency_quantile(0.99) <= 0.025
    later = _counts([0.0008] * 98 + [0.02, 0.02] + [0.3] * 50, [200] * 99 + [500] + [200] * 50)
    delta = later - first  # the same counters read twice: only what happened in between
    assert (delta.requests, delta.errors_5xx, delta.latency_count) == (50, 0, 50)
    assert 0.25 < delta.latency_quantile(0.5) <= 0.5
    total = first + first
    assert (total.requests, total.latency_count) == (200, 200) and dict(total.buckets)[math.inf] == 200
    assert math.isnan(Counts(0, 0, 0, 0).latency_quantile(0.99))
