"""The quality function through its Lambda entry point on the embedded cloud, as the stack runs it: the schedule's
payload (an empty detail), a Lambda context, the function's environment (infra/components/functions.py) and the
clients the handler creates itself. A rule on the stack's bus sends ModelQualityDegraded to a queue, so what the
function published is read back from the bus's side, not from a recording fake."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from functions.drift.storage import S3ObjectStore
from functions.quality import handler
from jobs.embedded_cloud import EmbeddedCloud
from schemas.naming import DRIFT_STATE_TABLE_KEYS, EVENT_SOURCE, ZONES, reports_prefix
from tests.functions.ingest_support import FakeContext
from tests.quality_support import (
    ENDPOINT,
    MODEL,
    NAMES,
    labels_table,
    write_baseline,
    write_captures,
    write_curated_labels,
)

VERSION = "v1"
THRESHOLD = 0.5
# What the stack's EventBridge Scheduler schedule sends (its target input): the function picks the rest.
SCHEDULED = {"detail": {}}


def serve(body: bytes) -> bytes:
    """A stand-in predictor: each instance carries the score it is to get (`s`)."""
    rows = json.loads(body)["instances"]
    answers = [{"score": r["s"], "label": int(r["s"] >= THRESHOLD), "model_version": VERSION} for r in rows]
    return json.dumps({"predictions": answers}).encode()


def scored(n: int, seed: int, separation: float) -> tuple[list[dict[str, Any]], np.ndarray]:
    """n rows at a 20% positive rate whose scores separate the classes by `separation` (0: not at all)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + separation * (y - 0.5) * 2 - 1.4)))
    return [{"s": float(v)} for v in s], y


@pytest.fixture
def deployed(cloud: EmbeddedCloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stack's buckets, state table and bus, a queue behind a ModelQualityDegraded rule, and the function's
    environment as the stack sets it. Yields the queue's URL."""
    s3, events, sqs = cloud.client("s3"), cloud.client("events"), cloud.client("sqs")
    for zone in ZONES:
        s3.create_bucket(Bucket=NAMES.bucket(zone))
    (key,) = DRIFT_STATE_TABLE_KEYS
    cloud.client("dynamodb").create_table(
        TableName=NAMES.drift_state_table, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    events.create_event_bus(Name=NAMES.event_bus)
    queue = sqs.create_queue(QueueName="quality-alarms")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [EVENT_SOURCE], "detail-type": ["ModelQualityDegraded"]}
    events.put_rule(Name="quality", EventBusName=NAMES.event_bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="quality", EventBusName=NAMES.event_bus, Targets=[{"Id": "q", "Arn": arn}])
    env = {"TIDE_PROJECT": NAMES.project, "TIDE_STACK": NAMES.stack, "TIDE_ENDPOINT": ENDPOINT, "TIDE_MODEL": MODEL,
           "TIDE_STATE_TABLE": NAMES.drift_state_table, "TIDE_EVENT_BUS": NAMES.event_bus,
           # a test-sized window (600 predictions) and one degraded window to alarm
           "QUALITY_MIN_LABELLED": "300", "QUALITY_REPLICATES": "50", "QUALITY_SUSTAINED_WINDOWS": "1"}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handler._deps.cache_clear()  # the handler builds its clients from this environment
    yield queue
    handler._deps.cache_clear()


def serve_the_judged_day(cloud: EmbeddedCloud, separation: float) -> dt.datetime:
    """Predictions during the day the scheduled run judges (the 24 hours that ended 48 hours ago), labelled a day
    and a half later; the model's validation baseline separates the classes well. Returns the window's end."""
    store = S3ObjectStore(cloud.client("s3"))
    end = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=48)).replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(hours=24)
    rows, y = scored(3000, 99, 2.0)
    write_baseline(store, VERSION, y, np.array([r["s"] for r in rows]), THRESHOLD)
    rows, y = scored(600, 7, separation)
    # 200 requests of 3 rows from start + 1 h, 5 s apart: inside the window even if the hour turns meanwhile.
    keys = write_captures(store, rows, [f"t{i}" for i in range(600)], start + dt.timedelta(hours=1), serve, batch=3)
    write_curated_labels(store, labels_table(keys, y.tolist(), start + dt.timedelta(hours=36)))
    return end


def received(cloud: EmbeddedCloud, queue: str) -> list[dict[str, Any]]:
    messages = cloud.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def report_keys(cloud: EmbeddedCloud) -> list[str]:
    listed = cloud.client("s3").list_objects_v2(Bucket=NAMES.bucket("reports"))
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_a_degraded_day_publishes_model_quality_degraded_on_the_bus(cloud: EmbeddedCloud, deployed: str) -> None:
    end = serve_the_judged_day(cloud, separation=0.0)  # scores no longer tell fraud apart: a concept shift

    result = handler.lambda_handler(SCHEDULED, FakeContext())  # type: ignore[arg-type]

    assert result["verdicts"] == {VERSION: "degraded"} and result["alarms"] == [VERSION]
    (event,) = received(cloud, deployed)
    assert (event["source"], event["detail-type"]) == (EVENT_SOURCE, "ModelQualityDegraded")
    detail = event["detail"]
    assert (detail["endpoint"], detail["model_version"]) == (ENDPOINT, VERSION)
    assert dt.datetime.fromisoformat(detail["window_end"]) == end and "auc" in detail["degraded_metrics"]
    assert detail["labelled"] == 600 and detail["coverage"] == 1.0
    # The report lands where the README says: reports bucket, quality/<endpoint>/yyyy/mm/dd/hh/ (the window's end).
    folder = f"{reports_prefix('quality', ENDPOINT)}{end:%Y/%m/%d/%H}/"
    assert report_keys(cloud) == [folder + "report.html", folder + "report.json"]
    assert detail["report"] == result["report"] == f"s3://{NAMES.bucket('reports')}/{folder}report.json"
    s3 = cloud.client("s3")
    report = json.loads(s3.get_object(Bucket=NAMES.bucket("reports"), Key=folder + "report.json")["Body"].read())
    assert report["versions"][0]["verdict"] == "degraded" and report["html"] == result["report_html"]
    page = s3.get_object(Bucket=NAMES.bucket("reports"), Key=folder + "report.html")
    assert page["ContentType"].startswith("text/html") and b"Model version v1" in page["Body"].read()
    state = cloud.client("dynamodb").get_item(
        TableName=NAMES.drift_state_table, Key={"endpoint": {"S": f"quality#{ENDPOINT}#{VERSION}"}}
    )
    assert state["Item"]["consecutive"]["N"] == "1"


def test_a_healthy_day_publishes_nothing_and_still_reports(cloud: EmbeddedCloud, deployed: str) -> None:
    end = serve_the_judged_day(cloud, separation=2.0)  # as good as on the validation split

    result = handler.lambda_handler(SCHEDULED, FakeContext())  # type: ignore[arg-type]

    assert result["verdicts"] == {VERSION: "ok"} and result["alarms"] == []
    assert received(cloud, deployed) == []
    folder = f"{reports_prefix('quality', ENDPOINT)}{end:%Y/%m/%d/%H}/"
    assert report_keys(cloud) == [folder + "report.html", folder + "report.json"]
