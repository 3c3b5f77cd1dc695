"""Captured predictions as joinable rows: (join key, prediction time, score, model version).

Read from the same captures the drift check reads (functions/drift/captures.py describes both formats):
- SageMaker data capture: the key is eventMetadata.inferenceId (the InferenceId the caller sent), the time
  eventMetadata.inferenceTime, the scores endpointOutput's rows;
- KServe payload logger: the key is the response CloudEvent's id, the time its `time` attribute.
A request of n > 1 rows gives keys "<id>#0" .. "<id>#<n-1>" (the labels contract says so). Tidewater's
predictor answers {"score", "label", "model_version"} per row; a bare number is a score whose model version
is then the variant's ("variant:<name>", from the capture's path). Nothing is dropped silently: a record or
row that cannot be used is counted under its reason.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from functions.drift.captures import (
    KSERVE_RESPONSE,
    Malformed,
    cloud_event,
    cloud_event_body,
    json_lines,
    json_output_values,
    payload,
)

SCHEMA = pa.schema([("key", pa.string()), ("time", pa.timestamp("us", tz="UTC")), ("score", pa.float64()),
                    ("version", pa.string())])  # fmt: skip


@dataclass
class CapturedPredictions:
    keys: list[str] = field(default_factory=list)
    times: list[dt.datetime] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    records: int = 0  # capture records (requests) that gave rows
    malformed: Counter[str] = field(default_factory=Counter)  # reason -> records or rows skipped

    def add(self, key: str, when: dt.datetime, rows: list[tuple[float, str | None]], fallback_version: str) -> None:
        self.records += 1
        for i, (score, version) in enumerate(rows):
            self.keys.append(key if len(rows) == 1 else f"{key}#{i}")
            self.times.append(when)
            self.scores.append(score)
            self.versions.append(version or fallback_version)

    def table(self) -> pa.Table:
        return pa.table([self.keys, self.times, self.scores, self.versions], schema=SCHEMA)


def _score_rows(kind: str, text: str, malformed: Counter[str]) -> list[tuple[float, str | None]]:
    """(score, model version or None) per output row; a row without a usable score is counted and left out."""
    if kind == "csv":
        values: list[Any] = [line.split(",")[0].strip() for line in text.splitlines() if line.strip()]
        values = [_float(v) for v in values]
    else:
        values = json_output_values(text)
    rows: list[tuple[float, str | None]] = []
    for value in values:
        score, version = (value.get("score"), value.get("model_version")) if isinstance(value, dict) else (value, None)
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0.0 <= score <= 1.0:
            malformed["row: score is not a probability in [0, 1]"] += 1  # NaN fails the range test too
            continue
        rows.append((float(score), str(version) if version is not None else None))
    return rows


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _time(text: Any, fallback: dt.datetime) -> dt.datetime:
    if not isinstance(text, str):
        return fallback
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed("unreadable inference time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def decode_sagemaker(
    lines: Iterable[bytes | str], variant: str, hour: dt.datetime, into: CapturedPredictions
) -> CapturedPredictions:
    for record in json_lines(lines, into.malformed):
        try:
            if not isinstance(record, dict) or not isinstance(record.get("captureData"), dict):
                raise Malformed("no captureData")
            found = record.get("eventMetadata")
            metadata: dict[str, Any] = found if isinstance(found, dict) else {}
            key = metadata.get("inferenceId")
            if not isinstance(key, str) or not key:
                raise Malformed("no inferenceId (cannot be joined with labels)")
            when = _time(metadata.get("inferenceTime"), hour)
            kind, text = payload(record["captureData"].get("endpointOutput"), "endpointOutput")
            rows = _score_rows(kind, text, into.malformed)
        except Malformed as err:
            into.malformed[str(err)] += 1
            continue
        into.add(key, when, rows, f"variant:{variant}")
    return into


def decode_kserve(
    lines: Iterable[bytes | str], variant: str, hour: dt.datetime, into: CapturedPredictions
) -> CapturedPredictions:
    """The response CloudEvents of the logger's lines (requests carry no score and are skipped)."""
    for line in json_lines(lines, into.malformed):
        try:
            event = cloud_event(line)
            if event["type"] != KSERVE_RESPONSE:
                continue
            parsed = cloud_event_body(event)
            text = json.dumps(parsed)
            if isinstance(parsed, dict) and isinstance(parsed.get("outputs"), list) and parsed["outputs"]:
                first = parsed["outputs"][0]
                text = json.dumps(first.get("data") if isinstance(first, dict) else None)  # v2: one tensor
            rows = _score_rows("json", text, into.malformed)
            when = _time(event.get("time"), hour)
        except json.JSONDecodeError:
            into.malformed["not JSON"] += 1
            continue
        except Malformed as err:
            into.malformed[str(err)] += 1
            continue
        into.add(str(event["id"]), when, rows, f"variant:{variant}")
    return into
