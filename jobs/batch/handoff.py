"""Curate the raw objects the ingest function handed off as too large for it (`LargeFileHandedOff`).

The job runs the function's own IngestService with this job's limits (a pod's memory, not a Lambda's), so a
large file ends exactly as the function would have decided for a small one: curated, partly quarantined, or
quarantined with a reason. An object over even this job's limit is quarantined as `too_large`. Outputs are
named from the object's version, so curating a file twice overwrites rather than duplicates.

The events arrive on the hand-off queue (EventBridge rule -> SQS). A message is deleted only once its
object's outcome is written; a failure leaves it to come back after the visibility timeout and, after the
queue's maximum receives, to be parked in the dead-letter queue. Nothing is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from functions.ingest.outcomes import Outcome
from functions.ingest.refs import MessageError, ObjectRef
from jobs.batch.inputs import DEFAULT_MAX_OBJECT_BYTES
from schemas.naming import Names


def ref_from_message(body: str) -> ObjectRef:
    """The object a hand-off message names (an EventBridge envelope of LargeFileHandedOff)."""
    try:
        envelope = json.loads(body)
    except json.JSONDecodeError as err:
        raise MessageError(f"hand-off message is not JSON: {err}") from None
    if not isinstance(envelope, dict) or envelope.get("detail-type") != "LargeFileHandedOff":
        kind = envelope.get("detail-type") if isinstance(envelope, dict) else type(envelope).__name__
        raise MessageError(f"not a LargeFileHandedOff event: {kind!r}")
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        raise MessageError("LargeFileHandedOff event has no detail object")
    fields = {name: detail.get(name) for name in ("bucket", "key", "version_id", "etag")}
    if not all(isinstance(v, str) and v for v in (fields["bucket"], fields["key"])):
        raise MessageError("LargeFileHandedOff event names no bucket and key")
    if not all(v is None or isinstance(v, str) for v in (fields["version_id"], fields["etag"])):
        raise MessageError("LargeFileHandedOff version_id and etag must be strings")
    size = detail.get("size_bytes")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise MessageError(f"LargeFileHandedOff size_bytes must be a byte count, got {size!r}")
    return ObjectRef(
        bucket=str(fields["bucket"]), key=str(fields["key"]), version_id=fields["version_id"] or None,
        etag=fields["etag"] or "", size=size,
    )  # fmt: skip


@dataclass
class DrainReport:
    outcomes: list[Outcome] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)  # left on the queue: retried, then its DLQ

    def as_dict(self) -> dict[str, Any]:
        return {"outcomes": [o.as_dict() for o in self.outcomes], "failed": self.failed}


def drain(
    sqs: Any,
    queue_url: str,
    ingest: Callable[[ObjectRef], Outcome],
    *,
    max_messages: int | None = None,
    wait_seconds: int = 1,
    echo: Callable[[str], None] = lambda _: None,
) -> DrainReport:
    """Curate every handed-off object on the queue until it is empty (or `max_messages` were received)."""
    report = DrainReport()
    received, seen = 0, set()
    while max_messages is None or received < max_messages:
        batch = min(10, max_messages - received) if max_messages is not None else 10
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=batch, WaitTimeSeconds=wait_seconds).get(
            "Messages", []
        )
        if not messages:
            break
        received += len(messages)
        repeated = False
        for message in messages:
            if message["MessageId"] in seen:  # back after its visibility timeout: a retry is the next run's
                repeated = True
                continue
            seen.add(message["MessageId"])
            try:
                outcome = ingest(ref_from_message(message["Body"]))
            except Exception as err:  # noqa: BLE001 - any failure leaves the message for a retry, then the DLQ
                report.failed.append({"message_id": message["MessageId"], "error": f"{type(err).__name__}: {err}"})
                echo(f"  left on the queue for a retry: {message['MessageId']}: {err}")
                continue
            report.outcomes.append(outcome)
            echo(f"  {outcome.source}: {outcome.status} ({outcome.reason or 'ok'})")
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if repeated:
            break
    return report


def handoff_service(names: Names, client: Callable[[str], Any], max_bytes: int = DEFAULT_MAX_OBJECT_BYTES) -> Any:
    """The ingest function's service with this job's limits; `client(service)` makes a boto3 client.
    `max_bytes` bounds both the object and its decompressed content (what this job holds in memory)."""
    from functions.common.events import EventBridgePublisher
    from functions.ingest.readers import Limits
    from functions.ingest.service import IngestService
    from functions.ingest.validation import load_validators

    return IngestService(
        s3=client("s3"),
        publisher=EventBridgePublisher(client("events"), names.event_bus),
        names=names,
        validators=load_validators(),
        limits=Limits(max_object_bytes=max_bytes, max_decoded_bytes=max_bytes),
        oversize="quarantine",
    )
