"""Shared set-up for the quality tests: captured predictions, curated labels and a model's validation baseline
written where the quality check reads them (any ObjectStore: a local folder or the embedded cloud's S3)."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from functions.drift.captures import jsonl
from functions.drift.storage import ObjectStore
from functions.ingest import commit
from schemas.naming import Names, capture_hour_prefix, curated_prefix, model_prefix
from schemas.profile import MODEL_OUTPUT

NAMES = Names()
ENDPOINT = "fraud-endpoint"
MODEL = "fraud"
VARIANT = "champion"

# Answers a JSON request body of rows with the predictor's response body ({"predictions": [{"score", ...}]}).
Serve = Callable[[bytes], bytes]


def capture(request: bytes, response: bytes, at: dt.datetime, inference_id: str) -> dict[str, Any]:
    """A SageMaker data-capture record of one exchange (JSON captured as text), as the rehearsal's router writes."""

    def part(data: bytes, mode: str) -> dict[str, str]:
        return {"observedContentType": "application/json", "mode": mode, "data": data.decode(), "encoding": "JSON"}

    metadata = {
        "eventId": f"e-{inference_id}",
        "inferenceId": inference_id,
        "inferenceTime": f"{at:%Y-%m-%dT%H:%M:%SZ}",
    }
    return {
        "captureData": {"endpointInput": part(request, "INPUT"), "endpointOutput": part(response, "OUTPUT")},
        "eventMetadata": metadata,
        "eventVersion": "0",
    }


def write_captures(
    store: ObjectStore, rows: Sequence[dict[str, Any]], ids: Sequence[str], start: dt.datetime, serve: Serve,
    batch: int = 1, spacing: dt.timedelta = dt.timedelta(seconds=5),
) -> list[str]:  # fmt: skip
    """Serve `rows` in requests of `batch` rows (one capture record each) and write the records into their hour
    partitions. Returns the join key of every row: the inference id, or "<id>#<i>" inside a batch."""
    by_hour: dict[dt.datetime, list[dict[str, Any]]] = {}
    keys = []
    for n, first in enumerate(range(0, len(rows), batch)):
        chunk = list(rows[first : first + batch])
        request = json.dumps({"instances": chunk}).encode()
        at = start + n * spacing
        inference_id = ids[first] if batch == 1 else f"req-{ids[first]}"
        by_hour.setdefault(at.replace(minute=0, second=0, microsecond=0), []).append(
            capture(request, serve(request), at, inference_id)
        )
        keys += [inference_id] if len(chunk) == 1 else [f"{inference_id}#{i}" for i in range(len(chunk))]
    for hour, records in by_hour.items():
        key = f"{capture_hour_prefix(ENDPOINT, VARIANT, hour)}capture-{hour:%H}.jsonl"
        store.put(NAMES.bucket("captures"), key, jsonl(records), "application/jsonl")
    return keys


def labels_table(keys: Sequence[str], labels: Sequence[int], at: dt.datetime, source: str = "chargeback") -> pa.Table:
    """Rows of the labels/v1 contract."""
    return pa.table({
        "inference_id": pa.array(list(keys), pa.string()),
        "label_time": pa.array([at] * len(keys), pa.timestamp("us", tz="UTC")),
        "source": pa.array([source] * len(keys), pa.string()),
        "label": pa.array(list(labels), pa.int8()),
    })  # fmt: skip


def write_curated_labels(store: ObjectStore, table: pa.Table, name: str = "part-0") -> None:
    """Labels as the ingest gate curates them: Parquet under labels/event_date=<label day>/, then the commit
    manifest naming it (written last, as the gate does)."""
    day = table["label_time"][0].as_py().date()
    sink = io.BytesIO()
    pq.write_table(table, sink)
    key = f"{curated_prefix('labels', day)}{name}.parquet"
    store.put(NAMES.bucket("curated"), key, sink.getvalue(), "")
    commit_labels(store, key)


def commit_labels(store: ObjectStore, key: str) -> None:
    """The ingest gate's commit manifest naming one curated labels file (readers see only committed files)."""
    source = f"raw/{key.removesuffix('.parquet')}.csv"
    doc = commit.manifest(
        source={"bucket": "raw", "key": source, "version_id": None, "etag": "", "last_modified": None, "sha256": None},
        dataset="labels", outcome={"status": "curated"}, files=[("curated", key)], events=[],
        committed_at=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    store.put(NAMES.bucket("curated"), commit.commit_key("labels", "raw", source, "v1"), json.dumps(doc).encode(), "")


def write_baseline(store: ObjectStore, version: str, label: np.ndarray, score: np.ndarray, threshold: float) -> None:
    """What training stores beside a model: metadata.json (metrics.threshold) and validation_predictions.parquet."""
    root = model_prefix(MODEL, version)
    bucket = NAMES.bucket("artifacts")
    store.put(bucket, root + "metadata.json", json.dumps({"metrics": {"threshold": threshold}}).encode(), "")
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": [str(i) for i in range(len(label))], "label": label, MODEL_OUTPUT: score}), sink)
    store.put(bucket, root + "validation_predictions.parquet", sink.getvalue(), "")


def copy_model_baseline(store: ObjectStore, folder: Any, version: str) -> None:
    """The files a trained model's folder holds that the check reads, copied to the artifacts bucket."""
    root = model_prefix(MODEL, version)
    for name in ("metadata.json", "validation_predictions.parquet"):
        store.put(NAMES.bucket("artifacts"), root + name, (folder / name).read_bytes(), "")
