"""Files too large for the ingest function: handed off on the bus, queued, curated by the batch job.

On the embedded cloud with the rehearsal's provisioning (the stack's queues, rule and bus by name): the
function's service hands a file off, moto's EventBridge delivers the event to the hand-off queue, and
`drain` curates exactly that object version. Nothing is dropped: a file over even the job's limit is
quarantined with a reason, and a message the job cannot act on stays on the queue for its DLQ.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.common.events import EventBridgePublisher
from functions.ingest.readers import Limits
from functions.ingest.refs import MessageError, ObjectRef
from functions.ingest.service import IngestService
from functions.ingest.validation import load_validators
from jobs import datagen
from jobs.batch.handoff import drain, handoff_service, ref_from_message
from jobs.embedded_cloud import EmbeddedCloud
from jobs.rehearsal.provision import LocalPlatform, provision_platform
from schemas.naming import Names, raw_key

NAMES = Names("tidewater", "handoff")
DAY = dt.date(2026, 11, 2)


@pytest.fixture
def platform(cloud: EmbeddedCloud) -> LocalPlatform:
    return provision_platform(NAMES, cloud.client)


def _function(cloud: EmbeddedCloud, max_object_bytes: int) -> IngestService:
    """The ingest function's service as deployed, with a small hand-off size."""
    return IngestService(
        s3=cloud.client("s3"), publisher=EventBridgePublisher(cloud.client("events"), NAMES.event_bus), names=NAMES,
        validators=load_validators(["transactions"]), limits=Limits(max_object_bytes=max_object_bytes),
    )  # fmt: skip


def _put(cloud: EmbeddedCloud, platform: LocalPlatform, name: str, data: bytes) -> ObjectRef:
    key = raw_key("transactions", DAY, name)
    put = cloud.client("s3").put_object(Bucket=platform.lake.buckets["raw"], Key=key, Body=data)
    return ObjectRef(platform.lake.buckets["raw"], key, put.get("VersionId"), put["ETag"].strip('"'))


def _keys(cloud: EmbeddedCloud, bucket: str) -> list[str]:
    return [o["Key"] for o in cloud.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_handed_off_file_is_curated_by_the_batch_job(cloud: EmbeddedCloud, platform: LocalPlatform) -> None:
    table = datagen.generate(2000, DAY, seed=3)
    big = _put(cloud, platform, "export.csv", datagen.to_bytes(table, "csv"))
    handed = _function(cloud, max_object_bytes=50_000).ingest(big)
    assert handed.status == "handed_off" and _keys(cloud, platform.lake.buckets["curated"]) == []

    report = drain(cloud.client("sqs"), platform.handoff_queue_url, handoff_service(NAMES, cloud.client).ingest,
                   wait_seconds=0)  # fmt: skip
    assert report.failed == []
    [outcome] = report.outcomes
    assert (outcome.status, outcome.rows_curated, outcome.source) == ("curated", 2000, big.uri)
    curated = _keys(cloud, platform.lake.buckets["curated"])
    assert any(k.endswith(".parquet") for k in curated) and any("_validation" in k for k in curated)
    attributes = cloud.client("sqs").get_queue_attributes(
        QueueUrl=platform.handoff_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"  # done: deleted


def test_over_the_jobs_own_limit_is_quarantined_with_a_reason(cloud: EmbeddedCloud, platform: LocalPlatform) -> None:
    data = datagen.to_bytes(datagen.generate(500, DAY, seed=4), "csv")
    huge = _put(cloud, platform, "huge.csv", data)
    assert _function(cloud, max_object_bytes=1_000).ingest(huge).status == "handed_off"

    job = handoff_service(NAMES, cloud.client, max_bytes=10_000)
    [outcome] = drain(cloud.client("sqs"), platform.handoff_queue_url, job.ingest, wait_seconds=0).outcomes
    assert (outcome.status, outcome.reason) == ("quarantined", "too_large")
    quarantine = platform.lake.buckets["quarantine"]
    reasons = [k for k in _keys(cloud, quarantine) if k.endswith("reason.json")]
    doc = json.loads(cloud.client("s3").get_object(Bucket=quarantine, Key=reasons[0])["Body"].read())
    assert doc["reason"] == "too_large" and "over this job's limit" in doc["detail"]
    assert any(k.endswith("/huge.csv") for k in _keys(cloud, quarantine))  # the file itself, copied


def test_a_message_the_job_cannot_act_on_stays_for_the_dlq(cloud: EmbeddedCloud, platform: LocalPlatform) -> None:
    sqs = cloud.client("sqs")
    sqs.send_message(QueueUrl=platform.handoff_queue_url, MessageBody=json.dumps({"detail-type": "Other"}))
    report = drain(sqs, platform.handoff_queue_url, handoff_service(NAMES, cloud.client).ingest, wait_seconds=0)
    assert report.outcomes == [] and "not a LargeFileHandedOff" in report.failed[0]["error"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=platform.handoff_queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_the_event_names_the_exact_version() -> None:
    body = json.dumps({"detail-type": "LargeFileHandedOff", "detail": {
        "dataset": "transactions", "source": "s3://b/k?versionId=v1", "size_bytes": 9, "bucket": "b", "key": "k",
        "version_id": "v1", "etag": "e"}})  # fmt: skip
    assert ref_from_message(body) == ObjectRef("b", "k", "v1", "e", 9)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=10))  # fmt: skip
def test_any_other_message_is_a_message_error(payload: Any) -> None:
    near_miss = {"bucket": payload, "key": "k", "version_id": payload, "etag": payload, "size_bytes": payload}
    bodies = [json.dumps(payload), "{"] + [
        json.dumps({"detail-type": "LargeFileHandedOff", "detail": detail}) for detail in (payload, near_miss)
    ]
    for body in bodies:
        try:
            ref = ref_from_message(body)
        except MessageError:
            continue
        assert ref.bucket and ref.key  # only a detail naming both is accepted
