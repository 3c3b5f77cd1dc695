"""The Functions component's SQS wiring: queues with their DLQs, raw objects -> the ingest queue, and bus rules
that send some platform event types to a queue a job consumes (one rule per queue: its queue policy admits
exactly that rule). Every resource here is a child of the Functions component (`parent`), named after it.
"""

from __future__ import annotations

import json
from typing import Final, NamedTuple

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.config import StackConfig
from schemas.events import rule_pattern
from schemas.naming import RAW_PREFIX, Names

DLQ_RETENTION_SECONDS: Final = 14 * 24 * 3600  # SQS maximum: time to inspect and redrive
HANDOFF_VISIBILITY_SECONDS: Final = 900  # one large file's curation; a message reappears only if the job died


class IngestQueue(NamedTuple):
    dlq: aws.sqs.Queue
    queue: aws.sqs.Queue
    raw_notification: aws.s3.BucketNotification


class EventQueue(NamedTuple):
    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue
    rule: aws.cloudwatch.EventRule


def queue(
    name: str,
    label: str,
    queue_name: str,
    *,
    parent: pulumi.Resource,
    dlq: aws.sqs.Queue | None = None,
    max_receive_count: int = 5,
    visibility_timeout: int = 30,
) -> aws.sqs.Queue:
    """An SSE queue `<name>-<label>`; with `dlq`, redriven there after `max_receive_count` receives."""
    redrive = (
        dlq.arn.apply(lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive_count}))
        if dlq is not None
        else None
    )
    return aws.sqs.Queue(
        f"{name}-{label}",
        name=queue_name,
        sqs_managed_sse_enabled=True,
        visibility_timeout_seconds=visibility_timeout,
        message_retention_seconds=DLQ_RETENTION_SECONDS if dlq is None else 4 * 24 * 3600,
        redrive_policy=redrive,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def ingest_queue(
    name: str, names: Names, cfg: StackConfig, raw: aws.s3.Bucket, *, parent: pulumi.Resource
) -> IngestQueue:
    """raw -> queue (DLQ after `ingest_max_receive_count` receives) for ingest's event source mapping."""
    dlq = queue(name, "ingest-dlq", names.ingest_dlq, parent=parent)
    ingest = queue(
        name,
        "ingest-queue",
        names.ingest_queue,
        parent=parent,
        dlq=dlq,
        max_receive_count=cfg.ingest_max_receive_count,
        # AWS guidance for SQS event sources: visibility timeout >= 6 x the function timeout.
        visibility_timeout=6 * cfg.ingest_timeout_seconds,
    )
    ingest_queue_policy = aws.sqs.QueuePolicy(
        f"{name}-ingest-queue-policy",
        queue_url=ingest.url,
        policy=pulumi.Output.all(ingest.arn, raw.arn).apply(
            lambda v: json.dumps(policies.service_send_to_queue(v[0], "s3.amazonaws.com", v[1]))
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    raw_notification = aws.s3.BucketNotification(
        f"{name}-raw-notification",
        bucket=raw.id,
        # Every object under raw/, whatever its suffix (S3's suffix filters are case-sensitive, and an object
        # they skipped would never get an outcome); the function quarantines what it cannot read.
        queues=[
            {
                "id": "raw",
                "queue_arn": ingest.arn,
                "events": ["s3:ObjectCreated:*"],
                "filter_prefix": RAW_PREFIX,
            }
        ],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[ingest_queue_policy]),
    )
    return IngestQueue(dlq, ingest, raw_notification)


def event_queue(
    name: str,
    bus: aws.cloudwatch.EventBus,
    rule: str,
    detail_types: tuple[str, ...],
    label: str,
    queue_name: str,
    dlq_name: str,
    *,
    parent: pulumi.Resource,
    visibility_timeout: int = 30,
) -> EventQueue:
    """A bus rule for some platform event types -> an SQS queue (with its DLQ) that a job consumes."""
    child = pulumi.ResourceOptions(parent=parent)
    dlq = queue(name, f"{label}-dlq", dlq_name, parent=parent)
    target_queue = queue(
        name,
        f"{label}-queue",
        queue_name,
        parent=parent,
        dlq=dlq,
        max_receive_count=3,
        visibility_timeout=visibility_timeout,
    )
    event_rule = aws.cloudwatch.EventRule(
        f"{name}-{rule}",
        event_bus_name=bus.name,
        description=f"{', '.join(detail_types)} -> {label} queue",
        event_pattern=json.dumps(rule_pattern(detail_types)),
        opts=child,
    )
    for policy_label, target in ((label, target_queue), (f"{label}-dlq", dlq)):
        aws.sqs.QueuePolicy(
            f"{name}-{policy_label}-policy",
            queue_url=target.url,
            policy=pulumi.Output.all(target.arn, event_rule.arn).apply(
                lambda v: json.dumps(policies.service_send_to_queue(v[0], "events.amazonaws.com", v[1]))
            ),
            opts=child,
        )
    aws.cloudwatch.EventTarget(
        f"{name}-{rule}-target",
        rule=event_rule.name,
        event_bus_name=bus.name,
        arn=target_queue.arn,
        retry_policy={"maximum_retry_attempts": 10, "maximum_event_age_in_seconds": 24 * 3600},
        dead_letter_config={"arn": dlq.arn},
        opts=child,
    )
    return EventQueue(target_queue, dlq, event_rule)
