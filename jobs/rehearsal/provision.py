"""Create, on the embedded cloud, the resources the Pulumi program declares for functions and jobs.

Names come from schemas.naming, the same module the Pulumi program uses, so the rehearsal cannot drift from
the stack. Settings mirror the components' defaults where they change behaviour the code meets: versioned,
SSE-KMS buckets with public access blocked; raw notifications filtered by prefix into the ingest queue with
its dead-letter queue; the tables with the keys the functions use; the bus and its rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from schemas.naming import (
    DRIFT_STATE_TABLE_KEYS,
    EVENT_SOURCE,
    RAW_PREFIX,
    ROLLOUT_TABLE_KEYS,
    Names,
    Zone,
)

# A dummy execution role: moto checks only the ARN's form.
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/tidewater-local-sagemaker"


@dataclass(frozen=True)
class LocalLake:
    names: Names
    kms_key_id: str
    buckets: dict[Zone, str]


@dataclass(frozen=True)
class LocalPlatform:
    lake: LocalLake
    ingest_queue_url: str
    ingest_queue_arn: str
    ingest_dlq_url: str
    handoff_queue_url: str  # LargeFileHandedOff events, for `tide curate-handoffs`
    events_tap_url: str  # every platform event, so the rehearsal can show what was published


def provision_lake(names: Names, s3: Any, kms: Any) -> LocalLake:
    key_id = kms.create_key(Description=f"{names.prefix} data lake")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=names.kms_alias, TargetKeyId=key_id)
    for bucket in names.buckets().values():
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    return LocalLake(names=names, kms_key_id=key_id, buckets=names.buckets())


def _queue(sqs: Any, name: str, attributes: dict[str, str] | None = None) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _table(db: Any, name: str, hash_key: str, range_key: str | None = None) -> None:
    keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    attributes = [{"AttributeName": hash_key, "AttributeType": "S"}]
    if range_key:
        keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": range_key, "AttributeType": "S"})
    db.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST")


def provision_platform(names: Names, client: Any, max_receive_count: int = 3) -> LocalPlatform:
    """Everything the functions and jobs use; `client(service)` makes a boto3 client for the embedded cloud."""
    s3, sqs, events, db = client("s3"), client("sqs"), client("events"), client("dynamodb")
    lake = provision_lake(names, s3, client("kms"))
    dlq_url, dlq_arn = _queue(sqs, names.ingest_dlq)
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    queue_url, queue_arn = _queue(sqs, names.ingest_queue, {"RedrivePolicy": redrive, "VisibilityTimeout": "60"})
    s3.put_bucket_notification_configuration(
        Bucket=lake.buckets["raw"],
        NotificationConfiguration={
            # Every object under raw/ (no suffix filter: S3's are case-sensitive); the function decides each.
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": RAW_PREFIX}]}},
                }
            ]
        },
    )
    _table(db, names.idempotency_table, "id")  # Powertools idempotency's key
    _table(db, names.rollout_table, *ROLLOUT_TABLE_KEYS)
    _table(db, names.drift_state_table, *DRIFT_STATE_TABLE_KEYS)
    events.create_event_bus(Name=names.event_bus)
    _, handoff_dlq_arn = _queue(sqs, names.handoff_dlq)
    handoff_redrive = json.dumps({"deadLetterTargetArn": handoff_dlq_arn, "maxReceiveCount": max_receive_count})
    handoff_url, handoff_arn = _queue(sqs, names.handoff_queue, {"RedrivePolicy": handoff_redrive})
    events.put_rule(Name="large-file-handoff", EventBusName=names.event_bus, EventPattern=json.dumps(
        {"source": [EVENT_SOURCE], "detail-type": ["LargeFileHandedOff"]}))  # fmt: skip
    events.put_targets(
        Rule="large-file-handoff", EventBusName=names.event_bus, Targets=[{"Id": "handoff", "Arn": handoff_arn}]
    )
    tap_url, tap_arn = _queue(sqs, f"{names.prefix}-events-tap")
    events.put_rule(Name="all-platform-events", EventBusName=names.event_bus, EventPattern=json.dumps(
        {"source": [EVENT_SOURCE]}))  # fmt: skip
    events.put_targets(
        Rule="all-platform-events", EventBusName=names.event_bus, Targets=[{"Id": "tap", "Arn": tap_arn}]
    )
    return LocalPlatform(lake, queue_url, queue_arn, dlq_url, handoff_url, tap_url)
