"""Event shapes -> ObjectRefs, on the real-shape fixtures under tests/functions/events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.ingest.refs import MessageError, ObjectRef, from_message, from_sqs_body, is_sqs_batch

EVENTS = Path(__file__).parents[1] / "functions" / "events"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return doc


def test_sqs_wrapped_s3_notification() -> None:
    event = _load("sqs_s3_put.json")
    assert is_sqs_batch(event)
    [ref] = from_sqs_body(event["Records"][0]["body"])
    assert ref == ObjectRef(
        "tidewater-dev-raw",
        "raw/transactions/2026/11/02/batch-001.csv",
        "096fKKXTRTtl3on89fVO.nfljtsv6qko",
        "d41d8cd98f00b204e9800998ecf8427e",
        1024,
    )
    assert ref.uri.endswith("batch-001.csv?versionId=096fKKXTRTtl3on89fVO.nfljtsv6qko")


def test_direct_s3_event_decodes_the_key_and_skips_deletions() -> None:
    event = _load("s3_put.json")
    record = event["Records"][0]
    record["s3"]["object"]["key"] = "raw/transactions/2026/11/02/my+file%C3%A9.csv"
    deletion = json.loads(json.dumps(record))
    deletion["eventName"] = "ObjectRemoved:Delete"
    event["Records"].append(deletion)
    assert not is_sqs_batch(event)
    [ref] = from_message(event)
    assert ref.key == "raw/transactions/2026/11/02/my fileé.csv"


def test_eventbridge_object_created() -> None:
    [ref] = from_message(_load("eventbridge_object_created.json"))
    assert (ref.bucket, ref.version_id, ref.size) == ("tidewater-dev-raw", "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", 1024)


def test_unversioned_object_is_identified_by_its_etag() -> None:
    event = _load("s3_put.json")
    event["Records"][0]["s3"]["object"].pop("versionId")
    [ref] = from_message(event)
    assert ref.version_id is None and ref.version_token == "etag-d41d8cd98f00b204e9800998ecf8427e"
    assert "versionId" not in ref.uri


def test_s3_test_event_has_nothing_to_ingest() -> None:
    assert from_sqs_body(_load("sqs_s3_test_event.json")["Records"][0]["body"]) == []


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", '{"hello": "world"}', '{"detail-type": "Object Deleted", "source": "aws.s3", "detail": {}}'],
)
def test_other_messages_are_message_errors(body: str) -> None:
    with pytest.raises(MessageError):
        from_sqs_body(body)


def test_eventbridge_event_delivered_through_sqs() -> None:
    [ref] = from_sqs_body(json.dumps(_load("eventbridge_object_created.json")))
    assert ref.key == "raw/transactions/2026/11/02/batch-001.csv"
