"""Captured inference traffic: SageMaker data-capture JSON Lines and KServe logger CloudEvents, read and written.

SageMaker writes one JSON object per request under <captures prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/:
    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "...", "encoding": "CSV" | "JSON" | "BASE64"},
                     "endpointOutput": {... "mode": "OUTPUT" ...}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...", "inferenceTime": "2026-11-01T10:00:00Z"},
     "eventVersion": "0"}
A payload is CSV (rows of the contract's features in contract order, no header; outputs one value per row)
or JSON ({"instances": [...]}, one object keyed by feature name, or a list of rows; outputs a number, a
list, or {"predictions": [...]}); BASE64 wraps either, the content type says which.
The KServe payload logger posts CloudEvents (type org.kubeflow.serving.inference.request / .response, the
same `id` for both); its sink stores them as structured-mode JSON lines with the v1 ({"instances"},
{"predictions"}) or v2 ({"inputs"}, {"outputs"}) body in `data` (or base64 in `data_base64`).
A line that cannot be decoded is counted under a reason and skipped; it is never fatal.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.contract import Feature
from schemas.profile import MODEL_OUTPUT

OUTPUT = MODEL_OUTPUT  # name of a model's single unnamed output
IDENTITY_FIELDS = frozenset({"model_version"})  # per-row response fields that identify, not measure
KSERVE_REQUEST = "org.kubeflow.serving.inference.request"
KSERVE_RESPONSE = "org.kubeflow.serving.inference.response"


class Malformed(ValueError):
    """One capture line cannot be decoded; the message is the reason it is counted under."""


@dataclass
class DecodedCaptures:
    """Columns of the decoded window plus an account of what was skipped and why."""

    features: dict[str, list[Any]]
    outputs: dict[str, list[Any]] = field(default_factory=dict)
    records: int = 0  # capture lines decoded
    malformed: Counter[str] = field(default_factory=Counter)  # reason -> lines skipped
    inference_ids: int = 0

    @property
    def rows(self) -> int:
        return len(next(iter(self.features.values()), []))

    def add_rows(self, rows: list[dict[str, Any]], outputs: list[dict[str, Any]] | None) -> None:
        for row in rows:
            for name, column in self.features.items():
                column.append(row.get(name))
        if outputs is not None and len(outputs) == len(rows):
            for out in outputs:
                for name, value in out.items():
                    self.outputs.setdefault(name, [None] * (self.rows - len(rows))).append(value)
            for column in self.outputs.values():
                column.extend([None] * (self.rows - len(column)))
        else:
            if outputs is not None:
                self.malformed["output rows differ from input rows (outputs dropped)"] += 1
            for column in self.outputs.values():
                column.extend([None] * len(rows))


def payload(part: Any, what: str) -> tuple[str, str]:
    """("csv" | "json", decoded text) of a capture's endpointInput/endpointOutput."""
    if not isinstance(part, dict):
        raise Malformed(f"{what} missing")
    data, encoding = part.get("data"), str(part.get("encoding", "")).upper()
    content_type = str(part.get("observedContentType", "")).split(";")[0].strip().lower()
    if not isinstance(data, str):
        raise Malformed(f"{what}.data missing")
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Malformed(f"{what}: bad base64") from None
    elif encoding not in ("CSV", "JSON"):
        raise Malformed(f"{what}: unknown encoding {encoding or '<none>'}")
    if encoding == "JSON" or (encoding == "BASE64" and "json" in content_type):
        return "json", data
    return "csv", data


def _csv_rows(text: str, features: Sequence[Feature]) -> list[dict[str, Any]]:
    rows = []
    for cells in csv.reader(io.StringIO(text)):
        if not cells:
            continue
        if len(cells) != len(features):
            raise Malformed(f"CSV row has {len(cells)} fields, expected {len(features)}")
        rows.append({f.name: _cell(c, f) for c, f in zip(cells, features, strict=True)})
    return rows


def _cell(text: str, feature: Feature) -> Any:
    text = text.strip()
    if text == "":
        return None
    if feature.kind == "categorical":
        return text
    try:
        return float(text)
    except ValueError:
        raise Malformed(f"non-numeric value for {feature.name}") from None


def _json_rows(body: Any, features: Sequence[Feature]) -> list[dict[str, Any]]:
    if isinstance(body, dict) and "instances" in body:
        body = body["instances"]
    items = body if isinstance(body, list) and body and isinstance(body[0], dict | list) else [body]
    rows = []
    for item in items:
        if isinstance(item, dict):
            unknown = set(item) - {f.name for f in features}
            if unknown:
                raise Malformed("JSON row has unknown fields")
            rows.append({f.name: _json_value(item.get(f.name), f) for f in features})
        elif isinstance(item, list) and len(item) == len(features):
            rows.append({f.name: _json_value(v, f) for v, f in zip(item, features, strict=True)})
        else:
            raise Malformed("JSON row is neither an object nor a list of the features")
    return rows


def _json_value(value: Any, feature: Feature) -> Any:
    if value is None:
        return value
    if feature.kind == "categorical":
        if not isinstance(value, str | int | float | bool):
            raise Malformed(f"non-scalar value for {feature.name}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"non-numeric value for {feature.name}")
    return float(value)


def json_output_values(text: str) -> list[Any]:
    """One value per row of a JSON answer: a list, KServe v1's {"predictions": [...]}, or a single value."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        raise Malformed("output is not JSON") from None
    if isinstance(body, dict) and "predictions" in body:
        body = body["predictions"]
    return body if isinstance(body, list) else [body]


def _outputs(kind: str, text: str) -> list[dict[str, Any]]:
    if kind == "csv":
        return [{OUTPUT: _number(c[0])} for c in csv.reader(io.StringIO(text)) if c]
    values = json_output_values(text)
    # Tidewater's predictor answers {"score", "label", "model_version"} per row: the version names the model,
    # it is not an output to profile.
    rows = [{k: x for k, x in v.items() if k not in IDENTITY_FIELDS} if isinstance(v, dict) else {OUTPUT: v}
            for v in values]  # fmt: skip
    for row in rows:  # prediction drift is on numeric outputs (scores, probabilities, regressions)
        if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in row.values()):
            raise Malformed("non-numeric output")
    return rows


def _number(text: str) -> float | None:
    try:
        return float(text) if text.strip() else None
    except ValueError:
        raise Malformed("non-numeric output") from None


def json_lines(lines: Iterable[bytes | str], malformed: Counter[str]) -> Iterator[Any]:
    """The JSON value of each non-blank line (bytes read as UTF-8); a line that is not JSON is counted under
    "not JSON" and skipped. Every capture reader (this drift check, functions/quality) reads lines this way."""
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            malformed["not JSON"] += 1


def cloud_event(value: Any) -> dict[str, Any]:
    """A KServe logger line as a CloudEvent, or Malformed."""
    if not isinstance(value, dict) or "id" not in value or "type" not in value:
        raise Malformed("not a CloudEvent")
    return value


def cloud_event_body(event: dict[str, Any]) -> Any:
    """A CloudEvent's data: from `data_base64` when that is what it carries, parsed when it is JSON text."""
    body = event.get("data")
    if body is None and "data_base64" in event:
        try:
            body = base64.b64decode(event["data_base64"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Malformed("data_base64: bad base64") from None
    return json.loads(body) if isinstance(body, str | bytes) else body


def decode_sagemaker(
    lines: Iterable[bytes | str], features: Sequence[Feature], into: DecodedCaptures | None = None
) -> DecodedCaptures:
    """Decode SageMaker capture lines into feature (and output) columns."""
    out = into or DecodedCaptures({f.name: [] for f in features})
    for record in json_lines(lines, out.malformed):
        try:
            if not isinstance(record, dict) or not isinstance(record.get("captureData"), dict):
                raise Malformed("no captureData")
            capture = record["captureData"]
            kind, text = payload(capture.get("endpointInput"), "endpointInput")
            rows = _csv_rows(text, features) if kind == "csv" else _json_rows(json.loads(text), features)
            outputs = None
            if capture.get("endpointOutput") is not None:
                out_kind, out_text = payload(capture["endpointOutput"], "endpointOutput")
                outputs = _outputs(out_kind, out_text)
        except json.JSONDecodeError:
            out.malformed["not JSON"] += 1
            continue
        except Malformed as err:
            out.malformed[str(err)] += 1
            continue
        out.records += 1
        out.inference_ids += bool((record.get("eventMetadata") or {}).get("inferenceId"))
        out.add_rows(rows, outputs)
    return out


def decode_kserve(
    lines: Iterable[bytes | str], features: Sequence[Feature], into: DecodedCaptures | None = None
) -> DecodedCaptures:
    """Decode KServe logger CloudEvents (JSON lines), pairing requests and responses by id."""
    out = into or DecodedCaptures({f.name: [] for f in features})
    requests: dict[str, list[dict[str, Any]]] = {}
    responses: dict[str, list[dict[str, Any]]] = {}
    order: list[str] = []
    for line in json_lines(lines, out.malformed):
        try:
            event = cloud_event(line)
            body = cloud_event_body(event)
            if event["type"] == KSERVE_REQUEST:
                requests[str(event["id"])] = _kserve_rows(body, features)
                order.append(str(event["id"]))
            elif event["type"] == KSERVE_RESPONSE:
                responses[str(event["id"])] = _kserve_outputs(body)
            else:
                raise Malformed(f"unknown CloudEvent type {event['type']}")
        except json.JSONDecodeError:
            out.malformed["not JSON"] += 1
        except Malformed as err:
            out.malformed[str(err)] += 1
    for event_id in order:
        out.records += 1
        out.inference_ids += 1
        out.add_rows(requests[event_id], responses.get(event_id))
    return out


def _kserve_rows(body: Any, features: Sequence[Feature]) -> list[dict[str, Any]]:
    if isinstance(body, dict) and "inputs" in body:  # v2 (open inference protocol): one tensor of rows
        tensors = body["inputs"]
        if not isinstance(tensors, list) or len(tensors) != 1 or not isinstance(tensors[0], dict):
            raise Malformed("v2 request must carry one input tensor")
        data, shape = tensors[0].get("data"), tensors[0].get("shape")
        if not isinstance(data, list) or not isinstance(shape, list) or len(shape) != 2 or shape[1] != len(features):
            raise Malformed("v2 input tensor shape does not match the features")
        if len(data) != shape[0] * shape[1]:
            raise Malformed("v2 input tensor data does not match its shape")
        width = shape[1]
        return _json_rows([data[i : i + width] for i in range(0, len(data), width)], features)
    if isinstance(body, dict) and "instances" in body:
        return _json_rows(body, features)
    raise Malformed("request body has neither instances nor inputs")


def _kserve_outputs(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and "outputs" in body and isinstance(body["outputs"], list) and body["outputs"]:
        data = body["outputs"][0].get("data") if isinstance(body["outputs"][0], dict) else None
        if not isinstance(data, list):
            raise Malformed("v2 output tensor has no data")
        return _outputs("json", json.dumps(data))
    if isinstance(body, dict) and "predictions" in body:
        return _outputs("json", json.dumps(body))
    raise Malformed("response body has neither predictions nor outputs")


# --- writing (tests, the local rehearsal, the benchmark) ------------------------------------------------------


def sagemaker_record(
    rows: Sequence[Mapping[str, Any]],
    outputs: Sequence[float],
    features: Sequence[Feature],
    *,
    content_type: Literal["csv", "json"] = "csv",
    encode_base64: bool = False,
    inference_time: dt.datetime | None = None,
    inference_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One capture record exactly as SageMaker data capture writes it."""
    if content_type == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow(["" if row.get(f.name) is None else row[f.name] for f in features])
        data_in, mime_in = buffer.getvalue(), "text/csv"
        data_out, mime_out = "\n".join(repr(float(o)) for o in outputs), "text/csv; charset=utf-8"
    else:
        data_in = json.dumps({"instances": [{f.name: row.get(f.name) for f in features} for row in rows]})
        mime_in = "application/json"
        data_out, mime_out = json.dumps({"predictions": [float(o) for o in outputs]}), "application/json"

    def part(data: str, mime: str, mode: str) -> dict[str, str]:
        if encode_base64:
            return {
                "observedContentType": mime,
                "mode": mode,
                "data": base64.b64encode(data.encode()).decode(),
                "encoding": "BASE64",
            }
        return {"observedContentType": mime, "mode": mode, "data": data, "encoding": content_type.upper()}

    when = inference_time or dt.datetime.now(dt.UTC)
    metadata = {"eventId": event_id or str(uuid.uuid4()), "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if inference_id:
        metadata["inferenceId"] = inference_id
    return {
        "captureData": {
            "endpointInput": part(data_in, mime_in, "INPUT"),
            "endpointOutput": part(data_out, mime_out, "OUTPUT"),
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }


def kserve_events(
    event_id: str,
    rows: Sequence[Mapping[str, Any]],
    outputs: Sequence[float],
    features: Sequence[Feature],
    *,
    source: str = "http://localhost/model",
) -> list[dict[str, Any]]:
    """The request and response CloudEvents KServe's logger emits for one v1 call."""
    body = {"instances": [[row.get(f.name) for f in features] for row in rows]}
    common = {"specversion": "1.0", "id": event_id, "source": source, "datacontenttype": "application/json"}
    return [
        {**common, "type": KSERVE_REQUEST, "data": body},
        {**common, "type": KSERVE_RESPONSE, "data": {"predictions": [float(o) for o in outputs]}},
    ]


def jsonl(records: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)
