"""One quality check of one endpoint's window of prediction time: read the captured predictions and the
labels that have arrived, join them, measure each model version against its validation baseline, decide,
write the report, alarm.

Ports as in the drift check (ObjectStore, BreachStore, EventPublisher). Where things are read:
- predictions: the captures bucket, the window's hour partitions (functions.drift.check.capture_keys);
- labels: the curated bucket, `labels/event_date=<day>/` partitions (the ingest gate partitions by label
  time) from the window's first day up to the as-of day;
- baselines: the artifacts bucket, `models/<model>/<version>/` (metadata.json for the serving threshold,
  validation_predictions.parquet for the validation labels and scores), both written by training.
Order of writes: report.html, report.json (which names the page; the event names report.json), then the event,
then the breach state. A failure after the event leaves the
state as it was, so the re-run publishes again: at least once, never lost (the event names its window, so a
consumer can tell a repeat).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from functions.common.events import EventPublisher
from functions.drift.check import Window, capture_keys
from functions.drift.state import BreachStore, advance
from functions.drift.storage import ObjectStore
from functions.ingest import commit
from functions.quality import predictions as captured
from functions.quality.decision import QualityConfig, VersionResult, decide
from functions.quality.join import LABEL_COLUMNS, Joined, join
from functions.quality.metrics import Quality, quality
from functions.quality.report import render_html
from schemas.events import ModelQualityDegraded
from schemas.naming import (
    LABELS_DATASET,
    QUALITY_BASELINE_FILES,
    Names,
    captures_prefix,
    curated_prefix,
    model_prefix,
    quality_state_key,
    reports_prefix,
)
from schemas.profile import MODEL_OUTPUT

CaptureFormat = Literal["sagemaker", "kserve"]
_HOUR = re.compile(r"^(?P<variant>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/")
_DAY = re.compile(r"event_date=(\d{4}-\d{2}-\d{2})/")
_STATE = {"degraded": "drift", "ok": "no_drift"}  # the breach store counts in the drift check's verdicts


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    unit: Literal["Count", "None", "Percent"]
    version: str


@dataclass
class QualityOutcome:
    window: Window
    as_of: dt.datetime
    results: list[VersionResult]
    account: Counter[str]  # what was skipped or superseded, and why
    report_json: str
    report_html: str
    events: list[ModelQualityDegraded]
    metrics: list[Metric]

    @property
    def degraded(self) -> bool:
        return any(r.verdict == "degraded" for r in self.results)


def read_predictions(
    store: ObjectStore, bucket: str, window: Window, variant: str | None, fmt: CaptureFormat
) -> captured.CapturedPredictions:
    out = captured.CapturedPredictions()
    decode = captured.decode_sagemaker if fmt == "sagemaker" else captured.decode_kserve
    prefix = captures_prefix(window.endpoint)
    for key in capture_keys(store, bucket, window, variant):
        match = _HOUR.match(key[len(prefix) :])
        assert match is not None  # capture_keys keeps only hour-partitioned keys
        hour = dt.datetime(int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]), tzinfo=dt.UTC)
        decode(store.get(bucket, key).splitlines(), match["variant"], hour, out)
    return out


def read_labels(store: ObjectStore, bucket: str, first_day: dt.date, as_of: dt.datetime) -> pa.Table:
    """Committed curated label partitions from `first_day` to the as-of day (labels come after their
    predictions): only files a commit manifest of the ingest gate names, as every reader of the lake does, so
    a half-written ingest outcome is never read and a superseded version of a labels file no longer counts."""
    tables = []
    manifests = [json.loads(store.get(bucket, key)) for key in store.list(bucket, commit.commits_prefix(LABELS_DATASET))
                 if key.endswith(".json")]  # fmt: skip
    for key in commit.committed_curated_keys(manifests):
        day = _DAY.search(key)
        if day is None or not key.endswith(".parquet") or not key.startswith(curated_prefix(LABELS_DATASET)):
            continue
        if first_day <= dt.date.fromisoformat(day[1]) <= as_of.date():
            part = pq.read_table(io.BytesIO(store.get(bucket, key)))
            missing = [c for c in LABEL_COLUMNS if c not in part.column_names]
            if missing:  # the gate curates only contract-valid files: this one came from elsewhere
                raise ValueError(f"s3://{bucket}/{key} lacks column(s) {', '.join(missing)} (labels/v1 contract)")
            tables.append(part.select(list(LABEL_COLUMNS)))
    if not tables:
        return pa.table({"inference_id": pa.array([], pa.string()), "label": pa.array([], pa.int8()),
                         "label_time": pa.array([], pa.timestamp("us", tz="UTC"))})  # fmt: skip
    return pa.concat_tables(tables, promote_options="permissive")


def load_baseline(
    store: ObjectStore, bucket: str, model: str, version: str, config: QualityConfig
) -> tuple[Quality, float] | None:
    """The version's validation quality and serving threshold, or None when training stored none for it."""
    if version.startswith("variant:"):
        return None  # a bare score names no model version
    root = model_prefix(model, version)
    keys = set(store.list(bucket, root))
    metadata_key, predictions_key = (root + name for name in QUALITY_BASELINE_FILES)
    if metadata_key not in keys or predictions_key not in keys:
        return None
    metadata = json.loads(store.get(bucket, metadata_key))
    threshold = float(metadata["metrics"]["threshold"])
    table = pq.read_table(io.BytesIO(store.get(bucket, predictions_key)))
    label, score = table["label"].to_numpy(), table[MODEL_OUTPUT].to_numpy()
    return quality(label, score, threshold, replicates=config.replicates, level=config.level), threshold


def measure(
    joined: Joined,
    baselines: dict[str, tuple[Quality, float] | None],
    config: QualityConfig,
) -> list[VersionResult]:
    """One result per model version present in the window's predictions."""
    table = joined.table
    results = []
    for version in sorted(set(table["version"].to_pylist())):
        rows = table.filter(pc.equal(table["version"], version))
        labelled = rows.filter(pc.is_valid(rows["label"]))
        found = baselines.get(version)
        threshold = found[1] if found else 0.5
        window = quality(
            labelled["label"].to_numpy(), labelled["score"].to_numpy(), threshold,
            replicates=config.replicates, level=config.level,
        )  # fmt: skip
        results.append(decide(version, rows.num_rows, window, found[0] if found else None, config))
    return results


def run_check(
    *,
    store: ObjectStore,
    names: Names,
    model: str,
    window: Window,
    as_of: dt.datetime,
    breach_store: BreachStore,
    publisher: EventPublisher,
    config: QualityConfig | None = None,
    fmt: CaptureFormat = "sagemaker",
    variant: str | None = None,
) -> QualityOutcome:
    config = config or QualityConfig()
    decoded = read_predictions(store, names.bucket("captures"), window, variant, fmt)
    table = decoded.table()
    in_window = pc.and_(
        pc.greater_equal(table["time"], pa.scalar(window.start, table.schema.field("time").type)),
        pc.less(table["time"], pa.scalar(window.end, table.schema.field("time").type)),
    )
    account: Counter[str] = Counter(decoded.malformed)
    account["predictions outside the window (inference time)"] += table.num_rows - (pc.sum(in_window).as_py() or 0)
    labels = read_labels(store, names.bucket("curated"), window.start.date(), as_of)
    joined = join(table.filter(in_window), labels, as_of)
    account.update(joined.account)
    versions = sorted(set(joined.table["version"].to_pylist()))
    baselines = {v: load_baseline(store, names.bucket("artifacts"), model, v, config) for v in versions}
    results = measure(joined, baselines, config)

    bucket = names.bucket("reports")
    folder = f"{reports_prefix('quality', window.endpoint)}{window.end:%Y/%m/%d/%H}/"
    doc = {
        "window": {"endpoint": window.endpoint, "start": window.start.isoformat(), "end": window.end.isoformat()},
        "as_of": as_of.isoformat(),
        "model": model,
        "captures": {"records": decoded.records, "rows": len(decoded.keys)},
        "account": {k: v for k, v in sorted(account.items()) if v},
        "versions": [r.to_dict() for r in results],
    }
    page = f"s3://{bucket}/{folder}report.html"
    store.put(bucket, folder + "report.html", render_html(doc, config.level).encode(), "text/html; charset=utf-8")
    doc["html"] = page
    store.put(bucket, folder + "report.json", json.dumps(doc, indent=1).encode(), "application/json")
    report = f"s3://{bucket}/{folder}report.json"

    events = []
    for result in results:
        if result.verdict == "insufficient_labels":
            continue  # judged again once more labels have arrived
        state_key = quality_state_key(window.endpoint, result.version)
        before = breach_store.get(state_key)
        after = advance(before, _STATE[result.verdict], window.end.isoformat())  # type: ignore[arg-type]
        if after is before:
            continue  # this window (or a later one) was already counted
        if result.verdict == "degraded" and after.consecutive >= config.sustained_windows:
            event = _event(window, result, report, after.consecutive)
            publisher.publish(event)
            events.append(event)
        breach_store.put(state_key, after, before.version)
    return QualityOutcome(
        window, as_of, results, account, report, page, events,
        _metrics(results, {e.model_version for e in events}),
    )  # fmt: skip


def _event(window: Window, result: VersionResult, report: str, consecutive: int) -> ModelQualityDegraded:
    assert result.window is not None and result.baseline is not None  # a degraded verdict has both
    return ModelQualityDegraded(
        endpoint=window.endpoint,
        model_version=result.version,
        window_start=window.start,
        window_end=window.end,
        degraded_metrics=result.degraded,
        labelled=result.labelled,
        coverage=result.coverage,
        report=report,
        evidence={
            "consecutive_windows": consecutive,
            "reasons": result.reasons,
            "window": result.window.to_dict(),
            "baseline": result.baseline.to_dict(),
        },
    )


def _metrics(results: list[VersionResult], alarmed: set[str]) -> list[Metric]:
    out = []
    for r in results:
        out += [
            Metric("LabelledPredictions", r.labelled, "Count", r.version),
            Metric("LabelCoverage", 100 * r.coverage, "Percent", r.version),
            Metric("QualityDegraded", 1.0 if r.verdict == "degraded" else 0.0, "None", r.version),
            Metric("QualityAlarm", 1.0 if r.version in alarmed else 0.0, "None", r.version),
        ]
        if r.window is not None:
            out += [
                Metric(f"Quality_{name}", e.value, "None", r.version)
                for name, e in r.window.estimates.items()
                if not np.isnan(e.value)
            ]
    return out
