"""Request bodies -> validated feature columns, predictions -> response bodies. Standard library + numpy.

Content types: `application/json` (a record, a list of records, or `{"instances": [...]}`; a record is an
object keyed by feature name or a list in the model's feature order), `text/csv` (with or without a header
row; without one, cells are in the model's feature order) and JSON Lines (`application/jsonlines`, one
record per line). Every problem is a `RequestError` naming the row and field; nothing invalid reaches the
model.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.spec import FLOAT_TYPES, INTEGER_TYPES, FeatureSpec

JSON = "application/json"
CSV = "text/csv"
JSONL = "application/jsonlines"
JSONL_ALIASES = frozenset({JSONL, "application/jsonl", "application/x-jsonlines", "application/x-ndjson"})
ACCEPTED = (JSON, CSV, JSONL)


class RequestError(ValueError):
    """A client error: `status` is the HTTP status to answer with, `field` the offending field (if any)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        self.status, self.message, self.field = status, message, field
        super().__init__(message)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 6 * 1024 * 1024  # SageMaker real-time endpoints accept at most 6 MB per request
    max_rows: int = 10_000


@dataclass(frozen=True)
class Batch:
    columns: dict[str, Any]  # categorical: list of values (None = missing); numerical: float64 array (NaN)
    rows: int


def media_type(header: str | None, default: str = JSON) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`; JSON Lines aliases -> application/jsonlines."""
    value = (header or "").split(";", 1)[0].strip().lower() or default
    return JSONL if value in JSONL_ALIASES else value


def decode(body: bytes | str, content_type: str | None, features: Sequence[FeatureSpec], limits: Limits) -> Batch:
    kind = media_type(content_type)
    if kind not in ACCEPTED:
        raise RequestError(415, f"unsupported content type {kind!r}; use one of {', '.join(ACCEPTED)}")
    raw = body.encode() if isinstance(body, str) else bytes(body)
    if len(raw) > limits.max_bytes:
        raise RequestError(413, f"request body is {len(raw)} bytes, over the limit of {limits.max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestError(400, f"request body is not UTF-8 (byte {err.start})") from None
    if not text.strip():
        raise RequestError(400, "empty request body")
    if kind == CSV:
        records = _csv_records(text, features)
    elif kind == JSONL:
        records = [_json(line, f"line {i + 1}") for i, line in enumerate(text.splitlines()) if line.strip()]
    else:
        records = _json_records(_json(text, "body"))
    if not records:
        raise RequestError(400, "the request holds no rows")
    if len(records) > limits.max_rows:
        raise RequestError(413, f"request holds {len(records)} rows, over the limit of {limits.max_rows}")
    return columns_from_records(records, features)


def _json(text: str, where: str) -> Any:
    try:
        # NaN/Infinity parse as floats, so the feature check names the field they were sent for.
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(
            400, f"{where}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None


def _json_records(body: Any) -> list[Any]:
    if isinstance(body, dict) and "instances" in body:
        body = body["instances"]
        if not isinstance(body, list):
            raise RequestError(400, "instances: expected a list of records", "instances")
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list):
        return body
    raise RequestError(400, f"expected a record or a list of records, got {type(body).__name__}")


def _csv_records(text: str, features: Sequence[FeatureSpec]) -> list[Any]:
    try:
        lines = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as err:  # e.g. a bare carriage return inside a field
        raise RequestError(400, f"CSV cannot be parsed: {err}") from None
    names = [f.name for f in features]
    header = [cell.strip() for cell in lines[0]] if lines else []
    if lines and any(cell in names for cell in header) and all(not _numeric(cell) for cell in header):
        unknown = [cell for cell in header if cell not in names]
        if unknown:
            raise RequestError(400, f"header: unknown column {unknown[0]!r}", unknown[0])
        missing = [n for n in names if n not in header]
        if missing:
            raise RequestError(400, f"header: missing feature {missing[0]!r}", missing[0])
        return [
            _csv_row(dict(zip(header, row, strict=False)), row, len(header), i + 2) for i, row in enumerate(lines[1:])
        ]
    return [_csv_row(dict(zip(names, row, strict=False)), row, len(names), i + 1) for i, row in enumerate(lines)]


def _csv_row(record: dict[str, str], cells: list[str], width: int, line: int) -> dict[str, Any]:
    if len(cells) != width:
        raise RequestError(400, f"line {line}: {len(cells)} fields, expected {width}")
    return {name: _CsvCell(value) for name, value in record.items()}


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _CsvCell:
    """A CSV cell: text to be read as the feature's type (JSON values arrive typed already)."""

    text: str


def columns_from_records(records: Sequence[Any], features: Sequence[FeatureSpec]) -> Batch:
    """Validate records (objects keyed by feature, or lists in feature order) into columns.

    Keys are checked row by row, then values a feature at a time: a fast exact-type pass per column, and
    only when it fails the per-value check that names the first bad row.
    """
    names = [f.name for f in features]
    known = frozenset(names)
    rows: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        if isinstance(record, list):
            if len(record) != len(features):
                raise RequestError(400, f"row {i}: {len(record)} values, expected {len(features)} in feature order")
            record = dict(zip(names, record, strict=True))
        elif not isinstance(record, dict):
            raise RequestError(400, f"row {i}: expected an object or a list, got {type(record).__name__}")
        elif record.keys() != known:
            unknown = [k for k in record if k not in known]
            if unknown:
                raise RequestError(400, f"row {i}: unknown field {unknown[0]!r}", str(unknown[0]))
            missing = next(n for n in names if n not in record)
            raise RequestError(400, f"row {i}: missing feature {missing!r}", missing)
        rows.append(record)
    columns: dict[str, Any] = {}
    for feature in features:
        column = [row[feature.name] for row in rows]
        if not _fast_ok(column, feature):
            column = [_value(v, feature, i) for i, v in enumerate(column)]
        if feature.kind == "numerical":
            columns[feature.name] = np.array([math.nan if v is None else v for v in column], dtype=np.float64)
        else:
            columns[feature.name] = column
    return Batch(columns, len(rows))


def _fast_ok(column: list[Any], feature: FeatureSpec) -> bool:
    """True when every value already has the feature's exact JSON type (the common case), finite if a number."""
    allowed: tuple[type, ...]
    if feature.type == "string":
        allowed = (str,)
    elif feature.type == "bool":
        allowed = (bool,)
    elif feature.type in INTEGER_TYPES:
        allowed = (int,)
    else:
        allowed = (int, float)
    if feature.nullable:
        allowed = (*allowed, type(None))
    if not all(type(v) in allowed for v in column):
        return False
    if float in allowed:
        return all(v is None or math.isfinite(v) for v in column)
    return True


def _value(value: Any, feature: FeatureSpec, row: int) -> Any:
    if isinstance(value, _CsvCell):
        value = _from_text(value.text.strip(), feature, row)
    if value is None:
        if not feature.nullable:
            raise RequestError(400, f"row {row}: {feature.name}: required, got null", feature.name)
        return None
    kind = feature.type
    ok = (
        (kind == "string" and isinstance(value, str))
        or (kind == "bool" and isinstance(value, bool))
        or (kind in INTEGER_TYPES and isinstance(value, int) and not isinstance(value, bool))
        or (kind in FLOAT_TYPES and isinstance(value, int | float) and not isinstance(value, bool))
    )
    if not ok:
        raise RequestError(400, f"row {row}: {feature.name}: expected {kind}, got {_show(value)}", feature.name)
    if isinstance(value, float) and not math.isfinite(value):
        raise RequestError(400, f"row {row}: {feature.name}: expected a finite number, got {value}", feature.name)
    return value


def _from_text(text: str, feature: FeatureSpec, row: int) -> Any:
    if text == "":
        return None
    kind = feature.type
    try:
        if kind in INTEGER_TYPES:
            return int(text)
        if kind in FLOAT_TYPES:
            return float(text)
    except ValueError:
        raise RequestError(
            400, f"row {row}: {feature.name}: expected {kind}, got {text[:40]!r}", feature.name
        ) from None
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise RequestError(400, f"row {row}: {feature.name}: expected bool, got {text[:40]!r}", feature.name)
    return text


def _show(value: Any) -> str:
    shown = json.dumps(value) if not isinstance(value, _CsvCell) else value.text
    return f"{type(value).__name__} {shown[:40]}"


@dataclass(frozen=True)
class Predictions:
    scores: list[float]
    labels: list[int]
    version: str

    def records(self) -> list[dict[str, Any]]:
        return [
            {"score": s, "label": lab, "model_version": self.version}
            for s, lab in zip(self.scores, self.labels, strict=True)
        ]


def encode(predictions: Predictions, accept: str | None) -> tuple[bytes, str]:
    """The response body and its content type; JSON unless the client accepts CSV or JSON Lines."""
    kind = media_type(accept if accept and accept != "*/*" else None)
    if kind == JSON:
        return json.dumps({"predictions": predictions.records()}).encode(), JSON
    if kind == JSONL:
        return "".join(json.dumps(r) + "\n" for r in predictions.records()).encode(), JSONL
    if kind == CSV:
        lines = (
            f"{s!r},{lab},{predictions.version}\n"
            for s, lab in zip(predictions.scores, predictions.labels, strict=True)
        )
        return "".join(lines).encode(), CSV
    raise RequestError(406, f"cannot answer in {kind!r}; accept one of {', '.join(ACCEPTED)}")
