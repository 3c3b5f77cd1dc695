import datetime as dt
import json

import pytest

from functions.common.events import EventBridgePublisher
from jobs.embedded_cloud import EmbeddedCloud
from schemas.events import EVENT_TYPES, DriftDetected, FileQuarantined, parse_event


def test_every_event_round_trips_through_its_detail() -> None:
    event = FileQuarantined(dataset="transactions", source="s3://b/k", quarantine="s3://q/k", reason="empty file")
    assert event.detail_type == "FileQuarantined" and "detail_type" not in event.detail()
    assert parse_event(event.detail_type, json.loads(json.dumps(event.detail()))) == event
    assert set(EVENT_TYPES) >= {"PartitionIngested", "DriftDetected", "RolloutPromoted", "RolloutRolledBack"}


def test_unknown_detail_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown detail-type"):
        parse_event("Nope", {})


def test_eventbridge_publisher_delivers_to_a_queue_through_a_rule(cloud: EmbeddedCloud) -> None:
    events, sqs = cloud.client("events"), cloud.client("sqs")
    events.create_event_bus(Name="bus")
    queue_url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="drift", EventBusName="bus", EventPattern=json.dumps({"detail-type": ["DriftDetected"]}))
    events.put_targets(Rule="drift", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
    now = dt.datetime(2026, 11, 4, tzinfo=dt.UTC)
    drift = DriftDetected(
        endpoint="e", dataset="transactions", window_start=now, window_end=now,
        drifted_features=["amount"], report="s3://r/x.json", evidence={},
    )  # fmt: skip
    EventBridgePublisher(events, "bus").publish(drift)
    body = json.loads(sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"][0]["Body"])
    assert body["detail-type"] == "DriftDetected" and body["detail"]["drifted_features"] == ["amount"]
