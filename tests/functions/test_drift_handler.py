"""The drift function on the embedded cloud: SageMaker captures in S3 -> reports, DynamoDB state, EventBridge."""

import dataclasses
import datetime as dt
import json
import os
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from functions.common.events import EventBridgePublisher, RecordingPublisher
from functions.drift import captures, handler
from functions.drift.decision import DriftConfig
from functions.drift.state import DynamoBreachStore
from functions.drift.storage import S3ObjectStore
from functions.drift.target import TargetError, champion_variant, metadata_location
from jobs.datagen import Shift, generate
from jobs.embedded_cloud import EmbeddedCloud
from schemas.contract import load_contract
from schemas.naming import ENV_STACK, Names, capture_hour_prefix
from schemas.profile import ProfileBuilder

NAMES = Names("tidewater", "test")
ENDPOINT = NAMES.endpoint("fraud")
CONTRACT = load_contract("transactions")
DAY = dt.date(2026, 11, 1)
SHIFT = Shift(covariate={"amount": 0.5}, categories={"channel": {"online": 5.0}})


def _score(table: pa.Table) -> np.ndarray:
    """The 'model': a deterministic score, so outputs drift when amounts do."""
    return np.minimum(1.0, table["amount"].to_numpy() / 500.0)


def _setup(cloud: EmbeddedCloud) -> tuple[str, Any]:
    s3, ddb = cloud.client("s3"), cloud.client("dynamodb")
    for zone in ("captures", "reports", "datasets"):
        s3.create_bucket(Bucket=NAMES.bucket(zone))
    ddb.create_table(
        TableName=NAMES.drift_state_table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "endpoint", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "endpoint", "AttributeType": "S"}],
    )
    reference = generate(20_000, DAY, seed=1)
    profile = (
        ProfileBuilder(CONTRACT, outputs={captures.OUTPUT: "numerical"})
        .update(reference, outputs=pa.table({captures.OUTPUT: _score(reference)}))
        .finalize()
    )
    s3.put_object(Bucket=NAMES.bucket("datasets"), Key="transactions/v-test/profile.json", Body=profile.to_json())
    events, sqs = cloud.client("events"), cloud.client("sqs")
    events.create_event_bus(Name=NAMES.event_bus)
    queue = sqs.create_queue(QueueName="drift-alarms")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="drift",
        EventBusName=NAMES.event_bus,
        EventPattern=json.dumps({"source": ["tidewater"], "detail-type": ["DriftDetected"]}),
    )
    events.put_targets(Rule="drift", EventBusName=NAMES.event_bus, Targets=[{"Id": "q", "Arn": arn}])
    return f"s3://{NAMES.bucket('datasets')}/transactions/v-test/profile.json", queue


def _upload_hour(cloud: EmbeddedCloud, hour: int, seed: int, shift: Shift | None, content_type: str) -> None:
    table = generate(3000, DAY, seed=seed, shift=shift)
    rows, scores = table.to_pylist(), _score(table)
    when = dt.datetime(DAY.year, DAY.month, DAY.day, hour, 5, tzinfo=dt.UTC)
    records = [
        captures.sagemaker_record(
            rows[i : i + 10],
            scores[i : i + 10].tolist(),
            CONTRACT.features,
            content_type=content_type,
            encode_base64=hour % 2 == 0,  # type: ignore[arg-type]
            inference_time=when,
            inference_id=f"{hour}-{i}",
        )
        for i in range(0, len(rows), 10)
    ]
    body = captures.jsonl(records) + b'{"captureData": "truncated\n'
    key = capture_hour_prefix(ENDPOINT, "AllTraffic", when) + f"{hour:02d}-capture.jsonl"
    cloud.client("s3").put_object(Bucket=NAMES.bucket("captures"), Key=key, Body=body)


def _deps(cloud: EmbeddedCloud, publisher: Any = None) -> handler.Deps:
    return handler.Deps(
        names=NAMES,
        store=S3ObjectStore(cloud.client("s3")),
        breach_store=DynamoBreachStore(cloud.client("dynamodb"), NAMES.drift_state_table),
        publisher=publisher or EventBridgePublisher(cloud.client("events"), NAMES.event_bus),
        config=DriftConfig(sustained_windows=2),
        sagemaker=cloud.client("sagemaker"),
        default_endpoint=ENDPOINT,
    )


def test_two_drifting_hours_raise_one_alarm_with_reports(cloud: EmbeddedCloud) -> None:
    baseline, queue = _setup(cloud)
    _upload_hour(cloud, 9, seed=2, shift=None, content_type="csv")
    _upload_hour(cloud, 10, seed=3, shift=SHIFT, content_type="json")
    _upload_hour(cloud, 11, seed=4, shift=SHIFT, content_type="csv")
    deps = _deps(cloud)
    outcomes = [
        handler.handle(
            {"endpoint": ENDPOINT, "baseline": baseline, "hours": 1, "window_end": f"2026-11-01T{h:02d}:00:00+00:00"},
            deps,
        )
        for h in (10, 11, 12)
    ]
    assert [o.result.verdict for o in outcomes] == ["no_drift", "drift", "drift"]
    assert [o.alarm for o in outcomes] == [False, False, True]
    assert outcomes[0].decoded.malformed == {"not JSON": 1} and outcomes[0].decoded.rows == 3000
    drifted = set(outcomes[2].result.drifted)
    assert {"amount", "channel", captures.OUTPUT} <= drifted
    messages = cloud.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    event = json.loads(messages[0]["Body"])
    assert event["detail-type"] == "DriftDetected" and set(event["detail"]["drifted_features"]) == drifted
    assert event["detail"]["evidence"]["consecutive_windows"] == 2
    s3 = cloud.client("s3")
    bucket, _, key = outcomes[2].report_html.removeprefix("s3://").partition("/")
    page = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert (
        page.count("<svg") == len(drifted)
        and "<script" not in page
        and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    report = json.loads(s3.get_object(Bucket=bucket, Key=key.replace(".html", ".json"))["Body"].read())
    assert report["verdict"] == "drift" and report["captures"]["malformed"] == {"not JSON": 1}
    state = cloud.client("dynamodb").get_item(TableName=NAMES.drift_state_table, Key={"endpoint": {"S": ENDPOINT}})
    assert state["Item"]["consecutive"]["N"] == "2"


def test_an_empty_window_is_insufficient_data(cloud: EmbeddedCloud) -> None:
    baseline, _ = _setup(cloud)
    publisher = RecordingPublisher()
    outcome = handler.handle(
        {"endpoint": ENDPOINT, "baseline": baseline, "window_end": "2026-11-01T05:00:00+00:00"}, _deps(cloud, publisher)
    )
    assert outcome.result.verdict == "insufficient_data" and not outcome.alarm and publisher.events == []


@dataclasses.dataclass
class _Context:
    function_name: str = "tidewater-test-drift"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tidewater-test-drift"
    aws_request_id: str = "req-1"


def test_lambda_handler_emits_emf_metrics(
    cloud: EmbeddedCloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline, _ = _setup(cloud)
    _upload_hour(cloud, 10, seed=3, shift=SHIFT, content_type="csv")
    monkeypatch.setenv(ENV_STACK, "test")
    monkeypatch.setenv("DRIFT_SUSTAINED_WINDOWS", "1")
    handler._deps.cache_clear()
    try:
        event = {
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "detail": {"endpoint": ENDPOINT, "baseline": baseline, "window_end": "2026-11-01T11:00:00+00:00"},
        }
        result = handler.lambda_handler(event, _Context())  # type: ignore[arg-type]
    finally:
        handler._deps.cache_clear()
    assert result["verdict"] == "drift" and result["alarm"] is True
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for b in blobs for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"DriftedFeatures", "DatasetDrift", "MalformedCaptureLines", "DriftEffect", "FeatureDrift"} <= names
    amount = [b for b in blobs if b.get("Feature") == "amount" and "FeatureDrift" in b]
    assert amount and amount[0]["FeatureDrift"] == [1.0] and amount[0]["Endpoint"] == ENDPOINT


def test_config_from_env() -> None:
    config = handler.config_from_env({"DRIFT_ALPHA": "0.01", "DRIFT_MIN_SAMPLES": "1000"})
    assert (config.alpha, config.min_samples, config.js_floor) == (0.01, 1000, DriftConfig().js_floor)


def test_variant_filter_reads_only_that_variants_hours(cloud: EmbeddedCloud) -> None:
    baseline, _ = _setup(cloud)
    _upload_hour(cloud, 9, seed=2, shift=None, content_type="csv")
    table = generate(3000, DAY, seed=5, shift=SHIFT)
    when = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC)
    records = [
        captures.sagemaker_record(table.to_pylist()[i : i + 100], [0.5] * 100, CONTRACT.features, inference_time=when)
        for i in range(0, 3000, 100)
    ]
    key = capture_hour_prefix(ENDPOINT, "Challenger", when) + "c.jsonl"
    cloud.client("s3").put_object(Bucket=NAMES.bucket("captures"), Key=key, Body=captures.jsonl(records))
    deps = _deps(cloud, RecordingPublisher())
    detail = {"endpoint": ENDPOINT, "baseline": baseline, "window_end": "2026-11-01T10:00:00+00:00"}
    only = handler.handle({**detail, "variant": "AllTraffic"}, deps)
    both = handler.handle({**detail, "window_end": "2026-11-01T10:00:01+00:00"}, deps)
    assert (only.decoded.rows, only.result.verdict) == (3000, "no_drift")
    assert both.decoded.rows == 6000 and "amount" in both.result.drifted


def _deploy(cloud: EmbeddedCloud, baseline: str | None, weights: dict[str, float]) -> None:
    """A SageMaker endpoint whose variants serve models trained to s3://<artifacts>/models/fraud/<variant>/."""
    s3, sm = cloud.client("s3"), cloud.client("sagemaker")
    artifacts = NAMES.bucket("artifacts")
    s3.create_bucket(Bucket=artifacts)
    for variant in weights:
        prefix = f"models/fraud/{variant}/"
        s3.put_object(Bucket=artifacts, Key=f"{prefix}metadata.json", Body=json.dumps({"baseline_url": baseline}))
        sm.create_model(
            ModelName=f"fraud-{variant}".lower(),
            PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{artifacts}/{prefix}model.tar.gz"},
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
        )
    sm.create_endpoint_config(
        EndpointConfigName="cfg",
        ProductionVariants=[
            {"VariantName": v, "ModelName": f"fraud-{v}".lower(), "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1, "InitialVariantWeight": w}
            for v, w in weights.items()
        ],
    )  # fmt: skip
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="cfg")


def test_a_scheduled_tick_checks_the_champion_against_its_models_baseline(cloud: EmbeddedCloud) -> None:
    """The stack's schedule sends an empty detail: endpoint from the environment, the variant with the most
    traffic, the baseline named by that variant's model metadata."""
    baseline, _ = _setup(cloud)
    _deploy(cloud, baseline, {"AllTraffic": 0.9, "Challenger": 0.1})
    _upload_hour(cloud, 9, seed=2, shift=None, content_type="csv")
    key = capture_hour_prefix(ENDPOINT, "Challenger", dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)) + "c.jsonl"
    cloud.client("s3").put_object(Bucket=NAMES.bucket("captures"), Key=key, Body=b"not read\n")
    outcome = handler.handle({"window_end": "2026-11-01T10:00:00+00:00"}, _deps(cloud, RecordingPublisher()))
    assert outcome.window.endpoint == ENDPOINT and outcome.decoded.rows == 3000
    assert outcome.decoded.malformed == {"not JSON": 1}  # only the champion's file was read
    assert outcome.result.verdict == "no_drift"


def test_a_champion_without_a_baseline_is_a_clear_error(cloud: EmbeddedCloud) -> None:
    _setup(cloud)
    _deploy(cloud, None, {"AllTraffic": 1.0})
    with pytest.raises(TargetError, match="names no drift baseline"):
        handler.handle({}, _deps(cloud, RecordingPublisher()))
    with pytest.raises(TargetError, match="no variant 'Nope'"):
        handler.handle({"variant": "Nope"}, _deps(cloud, RecordingPublisher()))
    no_endpoint = dataclasses.replace(_deps(cloud, RecordingPublisher()), default_endpoint=None)
    with pytest.raises(TargetError, match="TIDE_ENDPOINT"):
        handler.handle({}, no_endpoint)


def test_champion_is_the_heaviest_variant_ties_by_name() -> None:
    def described(weights: dict[str, float]) -> dict[str, Any]:
        return {"ProductionVariants": [{"VariantName": v, "CurrentWeight": w} for v, w in weights.items()]}

    assert champion_variant(described({"b": 0.2, "a": 0.8})) == "a"
    assert champion_variant(described({"z": 0.5, "m": 0.5})) == "m"
    with pytest.raises(TargetError, match="no production variants"):
        champion_variant({"EndpointName": "e", "ProductionVariants": []})
    assert metadata_location("s3://b/models/m/v1/model.tar.gz") == ("b", "models/m/v1/metadata.json")
    with pytest.raises(TargetError, match="not in S3"):
        metadata_location("file:///tmp/model.tar.gz")


def test_handler_imports_no_heavy_libraries() -> None:
    """The artifact is built from the fn-drift extra: numpy, boto3, Powertools. No scipy, pandas or pyarrow."""
    import subprocess
    import sys

    code = (
        "import sys, functions.drift.handler; "
        "print(sorted(m for m in ('scipy', 'pandas', 'pyarrow', 'great_expectations') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert out.stdout.strip() == "[]"
