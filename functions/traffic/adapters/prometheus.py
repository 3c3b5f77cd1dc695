"""Prometheus as the metrics source (the `kubernetes` target), over an injected range-query function.

`query_range(promql, start, end, step_seconds)` returns the `data.result` matrix of Prometheus' HTTP API:
[{"metric": {label: value}, "values": [[unix_ts, "value"], ...]}]. `firing_alerts()` returns the names of
alerts firing now (Alertmanager / the ALERTS series). Queries are templates with $endpoint; each must
return one series per variant, labelled by `variant_label`, sampled per minute.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Template
from typing import Any

from functions.traffic.adapters.cloudwatch import assemble
from functions.traffic.config import BusinessMetric
from functions.traffic.model import Interval

QueryRange = Callable[[str, dt.datetime, dt.datetime, int], list[dict[str, Any]]]


@dataclass(frozen=True)
class PromQueries:
    invocations: str = 'sum by (variant) (increase(tidewater_requests_total{endpoint="$endpoint"}[1m]))'
    errors: str = 'sum by (variant) (increase(tidewater_requests_total{endpoint="$endpoint",code=~"5.."}[1m]))'
    latency: str = (
        'sum by (variant) (rate(tidewater_request_seconds_sum{endpoint="$endpoint"}[1m]))'
        ' / sum by (variant) (rate(tidewater_request_seconds_count{endpoint="$endpoint"}[1m]))'
    )
    # A guardrail on latency_p99 reads this (added beside the series above; the serving side exports the
    # request-duration histogram tidewater_request_seconds_bucket).
    latency_p99: str = (
        "histogram_quantile(0.99, sum by (variant, le) "
        '(rate(tidewater_request_seconds_bucket{endpoint="$endpoint"}[1m])))'
    )  # fmt: skip
    variant_label: str = "variant"


class PrometheusMetrics:
    def __init__(
        self, query_range: QueryRange, firing_alerts: Callable[[], list[str]], queries: PromQueries | None = None,
        variant_names: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:  # fmt: skip
        """variant_names(endpoint): series label value -> variant name (on KServe: revision -> prev/latest)."""
        self._query = query_range
        self._alerts = firing_alerts
        self._q = queries or PromQueries()
        self._names = variant_names

    def intervals(
        self, endpoint: str, variants: list[str], start: dt.datetime, end: dt.datetime,
        business: dict[str, BusinessMetric],
    ) -> list[Interval]:  # fmt: skip
        if end <= start:
            return []
        fields = {"invocations": self._q.invocations, "errors": self._q.errors, "latency": self._q.latency}
        # A business metric on Prometheus is named by its metric_name: the per-minute increase per variant.
        for name, b in business.items():
            if b.builtin == "latency_p99":
                fields[name] = self._q.latency_p99
            elif b.promql is not None:  # a user's query: $endpoint in it, one series per variant
                fields[name] = b.promql
            elif b.metric_name:
                fields[name] = f'sum by (variant) (increase({b.metric_name}{{endpoint="$endpoint"}}[1m]))'
            else:
                raise ValueError(f"business metric {name!r} has no promql and no metric_name to read on Prometheus")
        values: dict[tuple[str, str], dict[dt.datetime, float]] = defaultdict(dict)
        aliases = dict(self._names(endpoint)) if self._names is not None else {}
        for field, template in fields.items():
            promql = Template(template).substitute(endpoint=endpoint)
            for series in self._query(promql, start, end, 60):
                label = series.get("metric", {}).get(self._q.variant_label)
                variant = aliases.get(label, label)
                if variant not in variants:
                    continue
                for ts, raw in series.get("values", []):
                    minute = dt.datetime.fromtimestamp(float(ts), dt.UTC).replace(second=0, microsecond=0)
                    value = float(raw)
                    if start <= minute < end and value == value:  # NaN (0/0 latency) means no data
                        values[(variant, field)][minute] = value
        return assemble(values, variants, list(fields))

    def alarms_firing(self, names: list[str]) -> list[str]:
        return sorted(set(self._alerts()) & set(names))


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or refused a query (after retries); the message names the URL."""


class PrometheusAPI:
    """Prometheus' HTTP API over an injected urllib opener: `query_range` (GET /api/v1/query_range, the matrix
    PrometheusMetrics reads) and `firing_alerts` (GET /api/v1/alerts: names of the alerts in state firing, which
    a rollout config's `alarms` list). Connection errors and 5xx are retried `attempts` times."""

    def __init__(self, url: str, opener: urllib.request.OpenerDirector, timeout_s: float = 10.0,
                 attempts: int = 3) -> None:  # fmt: skip
        self._url = url.rstrip("/")
        self._open = opener
        self._timeout = timeout_s
        self._attempts = attempts

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        url = f"{self._url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        problem = ""
        for _ in range(self._attempts):
            try:
                with self._open.open(url, timeout=self._timeout) as response:
                    doc = json.loads(response.read())
                break
            except urllib.error.HTTPError as err:
                body = err.read().decode(errors="replace")
                problem = f"HTTP {err.code}: {body[:300]}"
                if err.code < 500:
                    raise PrometheusError(f"Prometheus at {self._url} refused {path}: {problem}") from None
            except (urllib.error.URLError, OSError, ValueError) as err:  # unreachable, timeout, not JSON
                problem = str(getattr(err, "reason", err))
        else:
            raise PrometheusError(f"cannot query Prometheus at {self._url}{path}: {problem}")
        if not isinstance(doc, dict) or doc.get("status") != "success":
            error = doc.get("error", doc) if isinstance(doc, dict) else doc
            raise PrometheusError(f"Prometheus at {self._url} answered {path} with {str(error)[:300]}")
        data = doc.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"Prometheus at {self._url} answered {path} without a data object")
        return data

    def _list(self, data: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
        items = data.get(key)
        if items is None:
            return []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise PrometheusError(f"Prometheus at {self._url} answered {path} with a malformed {key!r}")
        return items

    def query_range(self, promql: str, start: dt.datetime, end: dt.datetime, step: int) -> list[dict[str, Any]]:
        params = {"query": promql, "start": f"{start.timestamp():.0f}", "end": f"{end.timestamp():.0f}",
                  "step": str(step)}  # fmt: skip
        path = "/api/v1/query_range"
        return self._list(self._get(path, params), "result", path)

    def firing_alerts(self) -> list[str]:
        path = "/api/v1/alerts"
        names = set()
        for alert in self._list(self._get(path), "alerts", path):
            labels = alert.get("labels")
            if alert.get("state") == "firing" and isinstance(labels, dict) and "alertname" in labels:
                names.add(str(labels["alertname"]))
        return sorted(names)
