"""The HTTP predictor as a real process on loopback: KServe v1/v2 shapes, SageMaker's /invocations, bad
requests answered without harming the worker, /metrics as the traffic function's Prometheus adapter reads it,
and the shadow mirror logging pairs where the traffic function reads them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from functions.traffic.adapters.prometheus import PromQueries
from functions.traffic.shadow import S3ShadowLog
from jobs import datagen
from jobs.embedded_cloud import EmbeddedCloud
from schemas.naming import SHADOW_ROOT, shadow_prefix
from serving.package import unpack
from serving.process import PredictorProcess
from serving.spec import ModelSpec
from tests.serving.conftest import TrainedModel

pytestmark = pytest.mark.slow
NAME = "fraud"


@pytest.fixture(scope="module")
def model_dir(trained_model: TrainedModel) -> Path:
    return trained_model.folder  # the folder training wrote: the server unpacks its model.tar.gz


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[PredictorProcess]:
    with PredictorProcess(model_dir, NAME, endpoint="tidewater-dev-fraud", variant="blue") as process:
        yield process


@pytest.fixture(scope="module")
def rows(trained_model: TrainedModel) -> list[dict[str, Any]]:
    spec = ModelSpec.from_json(unpack(trained_model.archive, trained_model.folder.parent / "spec-probe").joinpath(
        "serving.json").read_text())  # fmt: skip
    table = datagen.generate(8, dt.date(2026, 11, 3), seed=21)
    return [{f.name: r[f.name] for f in spec.features} for r in table.to_pylist()]


def test_kserve_v1_and_v2_protocols(server: PredictorProcess, rows: list[dict[str, Any]]) -> None:
    client = server.client()
    assert client.request("GET", f"/v1/models/{NAME}").status == 200
    assert json.loads(client.request("GET", f"/v2/models/{NAME}/ready").body) == {"name": NAME, "ready": True}
    metadata = json.loads(client.request("GET", f"/v2/models/{NAME}").body)
    names = [i["name"] for i in metadata["inputs"]]
    assert names == list(rows[0]) and {o["name"] for o in metadata["outputs"]} == {"score", "label"}

    v1 = client.post(f"/v1/models/{NAME}:predict", json.dumps({"instances": rows}).encode())
    assert v1.status == 200
    predictions = json.loads(v1.body)["predictions"]
    assert len(predictions) == len(rows) and set(predictions[0]) == {"score", "label", "model_version"}
    in_order = [[r[n] for n in names] for r in rows]  # v1 instances as lists in feature order
    assert json.loads(client.post(f"/v1/models/{NAME}:predict", json.dumps({"instances": in_order}).encode()).body) == {
        "predictions": predictions}  # fmt: skip

    by_feature = {"id": "req-1", "inputs": [
        {"name": n, "shape": [len(rows)], "datatype": metadata["inputs"][i]["datatype"], "data": [r[n] for r in rows]}
        for i, n in enumerate(names)]}  # fmt: skip
    v2 = client.post(f"/v2/models/{NAME}/infer", json.dumps(by_feature).encode())
    assert v2.status == 200
    answer = json.loads(v2.body)
    assert answer["id"] == "req-1" and answer["model_name"] == NAME
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["score"]["shape"] == [len(rows)] and outputs["score"]["datatype"] == "FP64"
    assert outputs["score"]["data"] == pytest.approx([p["score"] for p in predictions])
    assert outputs["label"]["data"] == [p["label"] for p in predictions]
    one_tensor = {"inputs": [{"name": "rows", "shape": [len(rows), len(names)], "datatype": "BYTES",
                              "data": [v for r in in_order for v in r]}]}  # fmt: skip
    v2_rows = json.loads(client.post(f"/v2/models/{NAME}/infer", json.dumps(one_tensor).encode()).body)
    assert v2_rows["outputs"][0]["data"] == pytest.approx(outputs["score"]["data"])

    sagemaker = client.post("/invocations", json.dumps(rows).encode(), accept="text/csv")
    assert sagemaker.status == 200 and sagemaker.content_type.startswith("text/csv")
    assert [float(line.split(",")[0]) for line in sagemaker.body.decode().splitlines()] == pytest.approx(
        [p["score"] for p in predictions])  # fmt: skip


def test_bad_requests_answer_4xx_naming_the_field_and_the_worker_keeps_serving(
    server: PredictorProcess, rows: list[dict[str, Any]]
) -> None:
    client = server.client()
    bad = {
        "unknown content type": (client.post("/invocations", b"\x93NUMPY", "application/x-npy"), 415, None),
        "missing feature": (
            client.post(
                f"/v1/models/{NAME}:predict",
                json.dumps({"instances": [{k: v for k, v in rows[0].items() if k != "hour"}]}).encode(),
            ),
            400,
            "hour",
        ),
        "wrong type": (client.post("/invocations", json.dumps({**rows[0], "amount": "x"}).encode()), 400, "amount"),
        "empty body": (client.post("/invocations", b""), 400, None),
        "over the limit": (client.post("/invocations", b"[" + b" " * (7 << 20) + b"]"), 413, None),
        "v2 wrong shape": (
            client.post(
                f"/v2/models/{NAME}/infer",
                json.dumps(
                    {"inputs": [{"name": "rows", "shape": [1, 3], "datatype": "BYTES", "data": [1, 2, 3]}]}
                ).encode(),
            ),
            400,
            "shape",
        ),
        "unknown model": (
            client.post("/v1/models/other:predict", json.dumps({"instances": rows}).encode()),
            404,
            "model",
        ),
    }
    for what, (reply, status, field) in bad.items():
        assert reply.status == status, (what, reply)
        error = json.loads(reply.body)
        assert error["error"], what
        assert error.get("field") == field, (what, error)
    assert client.post("/invocations", json.dumps(rows).encode()).status == 200  # still serving


def test_metrics_are_the_series_the_prometheus_adapter_queries(
    server: PredictorProcess, rows: list[dict[str, Any]]
) -> None:
    before = server.counts()
    client = server.client()
    for _ in range(3):
        assert client.post("/invocations", json.dumps(rows).encode()).status == 200
    assert client.post("/invocations", b"").status == 400
    after = server.counts()
    assert (after - before).requests == 4 and (after - before).errors_5xx == 0
    assert (after - before).latency_count == 4 and (after - before).latency_sum_s > 0
    text = client.request("GET", "/metrics").body.decode()
    names = {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    queries = PromQueries()
    for metric in ("tidewater_requests_total", "tidewater_request_seconds_sum", "tidewater_request_seconds_count",
                   "tidewater_request_seconds_bucket"):  # fmt: skip
        assert metric in names
        assert metric in queries.invocations + queries.errors + queries.latency or metric.endswith("_bucket")
    labelled = [
        s for fam in text_string_to_metric_families(text) for s in fam.samples if s.name == "tidewater_requests_total"
    ]
    assert {s.labels["variant"] for s in labelled} == {"blue"} and {s.labels["endpoint"] for s in labelled} == {
        "tidewater-dev-fraud"}  # fmt: skip
    assert {"200", "400"} <= {s.labels["code"] for s in labelled}


def test_shadow_mirror_logs_pairs_where_the_traffic_function_reads_them(
    cloud: EmbeddedCloud, model_dir: Path, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="captures")
    endpoint = "tidewater-dev-fraud"
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with (
        PredictorProcess(model_dir, NAME, endpoint, "green") as healthy,
        PredictorProcess(model_dir, NAME, endpoint, "broken", args=("--inject-error-rate", "1.0")) as broken,
    ):
        for challenger, requests in ((healthy, 6), (broken, 3)):
            shadow = ("--shadow-url", f"http://127.0.0.1:{challenger.port}", "--shadow-fraction", "1.0",
                      "--shadow-log", f"s3://captures/{SHADOW_ROOT}",
                      "--shadow-variant", challenger.variant)  # fmt: skip
            with PredictorProcess(
                model_dir, NAME, endpoint, "blue", args=shadow, log_path=tmp_path / "blue.log"
            ) as champion:
                client = champion.client()
                for i in range(requests):
                    reply = client.post(
                        "/invocations", json.dumps(rows[:2]).encode(), **{"x-request-id": f"{challenger.variant}-{i}"}
                    )
                    assert reply.status == 200  # the caller never sees the challenger's failure
            # stopping the champion drained the mirror and flushed its log
        assert broken.counts().errors_5xx == 3
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="captures", Prefix=shadow_prefix(endpoint)).get("Contents", [])]
    assert keys, "no shadow pairs were written"
    report = S3ShadowLog(s3, "captures", SHADOW_ROOT).report(endpoint, since)
    assert report is not None
    assert report.pairs == 12 and report.label_agreement == 1.0 and report.mean_score_difference == 0.0
    assert report.challenger_errors == 6  # 3 requests x 2 rows against the failing challenger
    # Each pair names its challenger: a canary's quality guardrail reads only its own challenger's pairs.
    green = S3ShadowLog(s3, "captures", SHADOW_ROOT).report(endpoint, since, challenger="green")
    broken_only = S3ShadowLog(s3, "captures", SHADOW_ROOT).report(endpoint, since, challenger="broken")
    assert green is not None and (green.pairs, green.challenger_errors) == (12, 0)
    assert broken_only is not None and (broken_only.pairs, broken_only.challenger_errors) == (0, 6)
