"""One drift check of one endpoint's window: read captures, profile them, compare, decide, report, alarm.

Everything external comes in through ports (ObjectStore, BreachStore, EventPublisher); the result carries
the metrics for the caller to emit (the handler uses Powertools Metrics -> EMF). The baseline profile says
which features there are and their kinds (and their order, for CSV payloads): no contract is loaded, so a
profile of any table works.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from functions.common.events import EventPublisher
from functions.drift import captures, report
from functions.drift.decision import DriftConfig, DriftResult, compare
from functions.drift.state import BreachState, BreachStore, record
from functions.drift.storage import ObjectStore
from schemas.contract import Feature
from schemas.events import DriftDetected
from schemas.naming import Names, capture_hour_prefix, captures_prefix, reports_prefix
from schemas.profile import Profile, ProfileBuilder

CaptureFormat = Literal["sagemaker", "kserve"]
_HOUR_PATH = re.compile(r"^(?P<variant>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/[^/]+$")


@dataclass(frozen=True)
class Window:
    endpoint: str
    start: dt.datetime  # inclusive, UTC
    end: dt.datetime  # exclusive, UTC

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware (UTC)")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end} is not after its start {self.start}")

    @classmethod
    def hours_before(cls, endpoint: str, end: dt.datetime, hours: int) -> Window:
        end = end.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        return cls(endpoint, end - dt.timedelta(hours=hours), end)


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    unit: Literal["Count", "None", "Percent"]
    feature: str | None = None  # per-feature metrics carry a Feature dimension


@dataclass
class CheckOutcome:
    result: DriftResult
    decoded: captures.DecodedCaptures
    report_json: str  # s3-style address of each report
    report_html: str
    state: BreachState
    alarm: bool
    event: DriftDetected | None
    metrics: list[Metric]
    window: Window


def capture_keys(store: ObjectStore, bucket: str, window: Window, variant: str | None = None) -> list[str]:
    """Capture objects of the window's hours (by their hour partition). With a variant named, only its hour
    prefixes are listed; otherwise the endpoint's whole prefix is (every variant, filtered by hour)."""
    prefix = captures_prefix(window.endpoint)
    if variant is not None:
        hours = int((window.end - window.start).total_seconds() // 3600) + 1
        candidates = [
            k
            for h in range(hours)
            for k in store.list(
                bucket, capture_hour_prefix(window.endpoint, variant, window.start + dt.timedelta(hours=h))
            )
        ]
    else:
        candidates = store.list(bucket, prefix)
    keys = []
    for key in candidates:
        match = _HOUR_PATH.match(key[len(prefix) :])
        if not match or (variant is not None and match["variant"] != variant):
            continue
        hour = dt.datetime(int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]), tzinfo=dt.UTC)
        if window.start <= hour < window.end:
            keys.append(key)
    return sorted(keys)


def read_window(
    store: ObjectStore, bucket: str, keys: Sequence[str], features: Sequence[Feature], fmt: CaptureFormat = "sagemaker"
) -> captures.DecodedCaptures:
    decoded = captures.DecodedCaptures({f.name: [] for f in features})
    decode = captures.decode_sagemaker if fmt == "sagemaker" else captures.decode_kserve
    for key in keys:
        decode(store.get(bucket, key).splitlines(), features, into=decoded)
    return decoded


def profile_features(baseline: Profile) -> list[Feature]:
    """The features a window is decoded into, from the baseline alone (CSV payloads follow this order)."""
    return [Feature(name, kind, None, True) for name, kind in baseline.kinds.items()]


def profile_window(decoded: captures.DecodedCaptures, baseline: Profile) -> Profile:
    """The window profiled with the baseline's bucket scheme (outputs only those the baseline also has)."""
    outputs = {n: p.kind for n, p in baseline.outputs.items() if n in decoded.outputs}
    builder = ProfileBuilder(
        baseline.contract,
        {n: p.kind for n, p in baseline.features.items()},
        outputs=outputs,
        relative_accuracy=baseline.relative_accuracy,
    )
    builder.update_columns(decoded.features, outputs={n: decoded.outputs[n] for n in outputs} if outputs else None)
    return builder.finalize()


def run_check(
    *,
    store: ObjectStore,
    names: Names,
    baseline: Profile,
    window: Window,
    breach_store: BreachStore,
    publisher: EventPublisher,
    config: DriftConfig | None = None,
    fmt: CaptureFormat = "sagemaker",
    variant: str | None = None,
) -> CheckOutcome:
    config = config or DriftConfig()
    keys = capture_keys(store, names.bucket("captures"), window, variant)
    decoded = read_window(store, names.bucket("captures"), keys, profile_features(baseline), fmt)
    current = profile_window(decoded, baseline)
    result = compare(baseline, current, config)

    window_info = {"endpoint": window.endpoint, "start": window.start.isoformat(), "end": window.end.isoformat()}
    capture_info: dict[str, Any] = {
        "objects": len(keys),
        "records": decoded.records,
        "rows": decoded.rows,
        "malformed": dict(decoded.malformed),
        "with_inference_id": decoded.inference_ids,
    }
    bucket = names.bucket("reports")
    base_key = f"{reports_prefix('drift', window.endpoint)}{window.end:%Y/%m/%d/%H}/"
    # The figures first: report.json lists them, so a reader that starts from report.json finds all of them.
    figures = report.figures(result, baseline, current)
    for key, svg in figures.values():
        store.put(bucket, base_key + key, svg.encode(), "image/svg+xml")
    store.put(
        bucket,
        base_key + "report.json",
        report.report_json(result, window_info, capture_info, {n: k for n, (k, _) in figures.items()}).encode(),
        "application/json",
    )
    title = f"Drift of {window.endpoint}, {window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
    store.put(
        bucket,
        base_key + "report.html",
        report.report_html(result, baseline, current, title).encode(),
        "text/html; charset=utf-8",
    )
    json_uri, html_uri = f"s3://{bucket}/{base_key}report.json", f"s3://{bucket}/{base_key}report.html"

    state, alarm = record(
        breach_store, window.endpoint, result.verdict, window.end.isoformat(), config.sustained_windows
    )
    event = None
    if alarm:
        event = DriftDetected(
            endpoint=window.endpoint,
            dataset=baseline.dataset,
            window_start=window.start,
            window_end=window.end,
            drifted_features=result.drifted,
            report=html_uri,
            evidence={
                "consecutive_windows": state.consecutive,
                "report_json": json_uri,
                "features": {
                    f.name: {"test": f.test, "qvalue": f.qvalue, "effect": f.effect, "reasons": f.reasons}
                    for f in result.features
                    if f.verdict == "drift"
                },
            },
        )
        publisher.publish(event)
    metrics = _metrics(result, decoded, alarm)
    return CheckOutcome(result, decoded, json_uri, html_uri, state, alarm, event, metrics, window)


def _metrics(result: DriftResult, decoded: captures.DecodedCaptures, alarm: bool) -> list[Metric]:
    out = [
        Metric("WindowRows", decoded.rows, "Count"),
        Metric("CaptureRecords", decoded.records, "Count"),
        Metric("MalformedCaptureLines", sum(decoded.malformed.values()), "Count"),
        Metric("DriftedFeatures", len(result.drifted), "Count"),
        Metric("DatasetDrift", 1.0 if result.verdict == "drift" else 0.0, "None"),
        Metric("DriftAlarm", 1.0 if alarm else 0.0, "None"),
    ]
    for f in result.features:
        if f.verdict == "insufficient_data":
            continue
        out += [
            Metric("DriftEffect", f.effect, "None", f.name),
            Metric("DriftQValue", f.qvalue, "None", f.name),
            Metric("MissingRate", 100 * f.missing_rate_current, "Percent", f.name),
            Metric("FeatureDrift", 1.0 if f.verdict == "drift" else 0.0, "None", f.name),
        ]
    return out
