"""The predictor's Prometheus series, named as the traffic function's Prometheus adapter queries them
(functions/traffic/adapters/prometheus.py PromQueries): requests by status code and a latency histogram,
each labelled with the endpoint and the variant this process serves."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

REQUESTS = "tidewater_requests"  # exposed as tidewater_requests_total
LATENCY = "tidewater_request_seconds"  # _bucket/_sum/_count
ROWS = "tidewater_rows"
# Single-row requests take about a millisecond; batches of thousands of rows, tens of milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServingMetrics:
    def __init__(self, endpoint: str, variant: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = {"endpoint": endpoint, "variant": variant}
        self._requests = Counter(REQUESTS, "Prediction requests by HTTP status code.", [*labels, "code"],
                                 registry=self.registry)  # fmt: skip
        self._latency = Histogram(LATENCY, "Prediction request latency in seconds (decode, predict, encode).",
                                  list(labels), buckets=LATENCY_BUCKETS, registry=self.registry)  # fmt: skip
        self._rows = Counter(ROWS, "Rows scored.", list(labels), registry=self.registry)
        self._labels = labels

    def observe(self, code: int, seconds: float, rows: int = 0) -> None:
        self._requests.labels(**self._labels, code=str(code)).inc()
        self._latency.labels(**self._labels).observe(seconds)
        if rows:
            self._rows.labels(**self._labels).inc(rows)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
