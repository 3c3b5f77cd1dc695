"""Simulated serving for the rehearsal: score requests with a trained model, write what SageMaker would.

moto's invoke_endpoint returns canned bodies, so the rehearsal scores locally with the real model artifact
(model.pt from `tide train`) and writes, as the endpoint would: data-capture records in SageMaker's format
(the drift function's input) and per-variant CloudWatch metrics (the traffic function's input).
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from functions.drift.captures import jsonl, sagemaker_record
from functions.traffic.adapters.cloudwatch import NAMESPACE
from jobs.batch.storage import filesystem, join
from jobs.train.data import Encoder
from jobs.train.model import TabularNet
from schemas.contract import Contract
from schemas.naming import capture_hour_prefix


class Scorer:
    """A trained model loaded from its folder (`.../models/<model>/<version>/`)."""

    def __init__(self, model_url: str, contract: Contract) -> None:
        fs, path = filesystem(join(model_url, "model.pt"))
        saved = torch.load(io.BytesIO(fs.cat_file(path)), weights_only=True)
        architecture = dict(saved["architecture"])
        architecture["hidden"] = tuple(architecture["hidden"])
        self.net = TabularNet(**architecture)
        self.net.load_state_dict(saved["state_dict"])
        self.net.eval()
        self.encoder = Encoder(contract)
        self.model_url = model_url

    def score(self, table: pa.Table) -> np.ndarray:
        encoded = self.encoder.encode(table)
        with torch.no_grad():
            logits = self.net(torch.from_numpy(encoded.categorical), torch.from_numpy(encoded.numerical))
        scores: np.ndarray = torch.sigmoid(logits).numpy().astype(np.float64)
        return scores


def write_captures(
    s3: Any, bucket: str, endpoint: str, variant: str, table: pa.Table, scores: np.ndarray, contract: Contract,
    rows_per_request: int = 10,
) -> int:  # fmt: skip
    """One JSON Lines object per UTC hour, one capture record per request of `rows_per_request` rows."""
    ts_column = contract.timestamp_column.name if contract.timestamp_column else None
    if ts_column is None:
        raise ValueError(f"{contract.ref} has no timestamp column to place captures in time")
    features = contract.features
    rows = table.select([f.name for f in features]).to_pylist()
    times = table.column(ts_column).to_pylist()
    by_hour: dict[dt.datetime, list[dict[str, Any]]] = {}
    for start in range(0, len(rows), rows_per_request):
        at: dt.datetime = times[start]
        record = sagemaker_record(
            rows[start : start + rows_per_request], scores[start : start + rows_per_request].tolist(), features,
            inference_time=at, inference_id=uuid.uuid4().hex,
        )  # fmt: skip
        by_hour.setdefault(at.replace(minute=0, second=0, microsecond=0), []).append(record)
    for hour, records in by_hour.items():
        key = f"{capture_hour_prefix(endpoint, variant, hour)}{variant}-{hour:%Y%m%d%H}-{uuid.uuid4().hex[:8]}.jsonl"
        s3.put_object(Bucket=bucket, Key=key, Body=jsonl(records))
    return len(by_hour)


def put_minute_metrics(
    cloudwatch: Any, endpoint: str, minute: dt.datetime, requests: dict[str, int], error_rates: dict[str, float],
    latency_us: dict[str, float], rng: np.random.Generator,
) -> None:  # fmt: skip
    """One minute of the AWS/SageMaker metrics per variant, with the exact dimensions SageMaker uses."""
    for variant, n in requests.items():
        if n <= 0:
            continue
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
        values = {
            "Invocations": float(n),
            "Invocation5XXErrors": float(rng.binomial(n, error_rates[variant])),
            "ModelLatency": latency_us[variant],
        }
        cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {"MetricName": name, "Dimensions": dims, "Timestamp": minute, "Value": value}
                for name, value in values.items()
            ],
        )
