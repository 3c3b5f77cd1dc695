"""Which objects an invocation is about.

Three deliveries reach the function: S3 notifications inside SQS messages (the production path), S3
notifications invoking it directly, and EventBridge "Object Created" events (directly or inside SQS).
All become ObjectRefs; the identity of an object for idempotency is bucket, key and version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationDetail


class MessageError(ValueError):
    """A message that is no object-created notification: a wiring problem, left to the dead-letter queue."""


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    version_id: str | None  # None when the bucket is not versioned
    etag: str  # without quotes; identifies the content when there is no version
    size: int | None = None

    @property
    def version_token(self) -> str:
        """What names this object's outputs: its version, else its ETag (retries overwrite, never duplicate)."""
        return self.version_id or f"etag-{self.etag}"

    @property
    def uri(self) -> str:
        suffix = f"?versionId={quote(self.version_id, safe='')}" if self.version_id else ""
        return f"s3://{self.bucket}/{self.key}{suffix}"


def _etag(value: str) -> str:
    return value.strip('"')


def from_s3_notification(payload: Mapping[str, Any]) -> list[ObjectRef]:
    refs = []
    for record in S3Event(dict(payload)).records:
        if not record.event_name.startswith("ObjectCreated:"):
            continue  # deletions and restores are not ingested
        obj = record.s3.get_object
        refs.append(
            ObjectRef(
                bucket=record.s3.bucket.name,
                key=unquote_plus(obj.key),  # S3 URL-encodes keys in notifications
                version_id=obj.version_id or None,
                etag=_etag(obj.etag),
                size=obj.size,
            )
        )
    return refs


def from_eventbridge(payload: Mapping[str, Any]) -> list[ObjectRef]:
    event = EventBridgeEvent(dict(payload))
    if event.source != "aws.s3" or event.detail_type != "Object Created":
        raise MessageError(f"EventBridge event {event.source}/{event.detail_type} is not an S3 Object Created event")
    detail = S3EventBridgeNotificationDetail(event.detail)
    obj = detail.object
    return [
        ObjectRef(
            bucket=detail.bucket.name,
            key=obj.key,  # Powertools decodes it
            version_id=obj.raw_event.get("version-id") or None,
            etag=_etag(obj.etag),
            size=obj.size,
        )
    ]


def from_message(payload: Mapping[str, Any]) -> list[ObjectRef]:
    """Any of the accepted shapes (an SQS body once decoded, or a direct invocation's event)."""
    if payload.get("Event") == "s3:TestEvent":
        return []  # S3 sends one when a notification is configured; nothing to ingest
    if "Records" in payload:
        records = payload["Records"]
        if records and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:s3" for r in records):
            return from_s3_notification(payload)
    if "detail-type" in payload:
        return from_eventbridge(payload)
    raise MessageError(f"not an S3 notification or EventBridge event (keys: {sorted(payload)[:8]})")


def from_sqs_body(body: str) -> list[ObjectRef]:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as err:
        raise MessageError(f"SQS body is not JSON: {err}") from None
    if not isinstance(payload, Mapping):
        raise MessageError(f"SQS body is a JSON {type(payload).__name__}, not an object")
    return from_message(payload)


def is_sqs_batch(event: Mapping[str, Any]) -> bool:
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        return False
    return all(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
