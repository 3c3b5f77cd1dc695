"""CloudWatch as the metrics source: AWS/SageMaker per-variant metrics and alarm states."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from string import Template
from typing import Any

from functions.traffic.config import BusinessMetric
from functions.traffic.model import Interval, VariantStats

NAMESPACE = "AWS/SageMaker"
# (field, metric, statistic): counts are Sums; latency is an Average (percentiles are not needed by the judge).
_BUILTIN = (("invocations", "Invocations", "Sum"), ("errors", "Invocation5XXErrors", "Sum"),
            ("latency", "ModelLatency", "Average"))  # fmt: skip
PERIOD = 60


def metric_queries(
    endpoint: str, variants: list[str], business: dict[str, BusinessMetric]
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """GetMetricData queries (one per variant x metric) and id -> (variant, field)."""
    queries: list[dict[str, Any]] = []
    ids: dict[str, tuple[str, str]] = {}
    specs: list[tuple[str, str, str, str, str | None]] = [(f, NAMESPACE, m, s, None) for f, m, s in _BUILTIN]
    for name, b in sorted(business.items()):
        if b.builtin == "latency_p99":  # ModelLatency's extended statistic
            specs.append((name, NAMESPACE, "ModelLatency", "p99", None))
        else:
            specs.append((name, b.namespace, b.metric_name, b.statistic, b.expression))
    for i, variant in enumerate(variants):
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
        for j, (field, namespace, metric, stat, expression) in enumerate(specs):
            qid = f"m{i}_{j}"
            ids[qid] = (variant, field)
            if expression is not None:  # metric math / Metrics Insights, one per variant
                text = Template(expression).substitute(endpoint=endpoint, variant=variant)
                queries.append({"Id": qid, "Expression": text, "Period": PERIOD, "ReturnData": True})
                continue
            queries.append({
                "Id": qid,
                "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims},
                               "Period": PERIOD, "Stat": stat},
                "ReturnData": True,
            })  # fmt: skip
    return queries, ids


def assemble(
    values: dict[tuple[str, str], dict[dt.datetime, float]], variants: list[str], fields: list[str] | None = None
) -> list[Interval]:
    """Per-minute Intervals from (variant, field) -> {timestamp: value}. A count without a datapoint reads
    0 and an average None, and each of the asked `fields` without one is named in VariantStats.missing:
    the datapoint may only be late, and the machine must know it was not a zero."""
    asked = fields or sorted({f for _, f in values})
    minutes = sorted({ts for series in values.values() for ts in series})
    out = []
    for ts in minutes:
        stats = {}
        for v in variants:
            extra = {
                f: s[ts]
                for (vv, f), s in values.items()
                if vv == v and f not in ("invocations", "errors", "latency") and ts in s
            }
            stats[v] = VariantStats(
                invocations=values.get((v, "invocations"), {}).get(ts, 0.0),
                errors=values.get((v, "errors"), {}).get(ts, 0.0),
                latency=values.get((v, "latency"), {}).get(ts),
                extra=extra,
                missing=frozenset(f for f in asked if ts not in values.get((v, f), {})),
            )
        out.append(Interval(ts, stats))
    return out


class CloudWatchMetrics:
    def __init__(self, client: Any) -> None:
        self._cw = client

    def intervals(
        self, endpoint: str, variants: list[str], start: dt.datetime, end: dt.datetime,
        business: dict[str, BusinessMetric],
    ) -> list[Interval]:  # fmt: skip
        if end <= start:
            return []
        queries, ids = metric_queries(endpoint, variants, business)
        values: dict[tuple[str, str], dict[dt.datetime, float]] = defaultdict(dict)
        for chunk in range(0, len(queries), 500):  # GetMetricData takes at most 500 queries
            kwargs: dict[str, Any] = {
                "MetricDataQueries": queries[chunk : chunk + 500], "StartTime": start, "EndTime": end,
                "ScanBy": "TimestampAscending",
            }  # fmt: skip
            while True:
                page = self._cw.get_metric_data(**kwargs)
                for result in page["MetricDataResults"]:
                    series = values[ids[result["Id"]]]
                    for ts, value in zip(result["Timestamps"], result["Values"], strict=True):
                        minute = ts.astimezone(dt.UTC).replace(second=0, microsecond=0)
                        if start <= minute < end:
                            series[minute] = float(value)
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return assemble(values, variants, sorted({f for _, f in ids.values()}))

    def alarms_firing(self, names: list[str]) -> list[str]:
        firing: list[str] = []
        for chunk in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
            # The state is checked here rather than with StateValue=ALARM: moto ignores that filter when
            # AlarmNames is given, and checking it ourselves costs nothing.
            kwargs: dict[str, Any] = {"AlarmNames": names[chunk : chunk + 100]}
            while True:
                page = self._cw.describe_alarms(**kwargs)
                alarms = page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
                firing.extend(a["AlarmName"] for a in alarms if a.get("StateValue") == "ALARM")
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return sorted(set(firing) & set(names))
