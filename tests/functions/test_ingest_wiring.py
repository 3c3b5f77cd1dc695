"""The ingest function wired as in production on the embedded cloud: S3 notification -> SQS -> handler,
and the handler's events -> EventBridge bus -> a rule's SQS target."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.common.events import EventBridgePublisher
from jobs.datagen import bad_file, generate, to_bytes
from schemas.naming import EVENT_SOURCE
from tests.functions.ingest_support import DAY, NAMES, Ingest, ingest_fixture  # noqa: F401  (fixture)


def _queue(ingest: Ingest, name: str) -> tuple[Any, str, str]:
    sqs = ingest.cloud.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, url, arn


def _lambda_sqs_event(messages: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    """What the SQS event source mapping hands the function for received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def test_s3_notification_through_sqs_to_events_on_the_bus(ingest: Ingest, monkeypatch: pytest.MonkeyPatch) -> None:
    sqs, url, arn = _queue(ingest, NAMES.ingest_queue)
    ingest.s3.put_bucket_notification_configuration(
        Bucket=NAMES.bucket("raw"),
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw/"}]}},
                }
            ]
        },
    )
    _, events_url, events_arn = _queue(ingest, "events-tap")
    bus = ingest.cloud.client("events")
    bus.put_rule(Name="tap", EventBusName=NAMES.event_bus, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    bus.put_targets(Rule="tap", EventBusName=NAMES.event_bus, Targets=[{"Id": "tap", "Arn": events_arn}])
    monkeypatch.setattr(ingest.handler.service, "publisher", EventBridgePublisher(bus, NAMES.event_bus))

    good = ingest.put("wired.csv", to_bytes(generate(120, DAY, seed=31), "csv"))
    suffix, data = bad_file("missing_column", DAY, seed=32)
    ingest.put(f"wired-bad{suffix}", data)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]

    response = ingest.invoke(_lambda_sqs_event(messages, arn))

    assert response["batchItemFailures"] == []
    published = sqs.receive_message(QueueUrl=events_url, MaxNumberOfMessages=10)["Messages"]
    kinds = sorted((json.loads(m["Body"])["detail-type"], json.loads(m["Body"])["detail"]["source"]) for m in published)
    assert [k for k, _ in kinds] == ["FileQuarantined", "PartitionIngested"]
    # moto's notifications carry no versionId (S3's do), so this also runs the unversioned If-Match path.
    assert ("PartitionIngested", f"s3://{good.bucket}/{good.key}") in kinds
