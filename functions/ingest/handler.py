"""Lambda entry point. Heavy work happens once, at import (cold start): boto3 clients, contracts, the
stored great-expectations suites (their JSON form: GE itself is not imported) and a warm-up validation;
each record then only reads, validates, writes and commits.

SQS batches (S3 notifications or EventBridge events inside) report per-record failures, so only a record
that hit a transient error is retried; direct S3 and EventBridge invocations are accepted too. Each object
is processed once per bucket/key/version (Powertools idempotency, DynamoDB).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.events import EventBridgePublisher
from functions.common.powertools import observability
from functions.ingest import refs, telemetry
from functions.ingest.service import IngestService
from functions.ingest.settings import IDEMPOTENCY_TTL_SECONDS, Settings
from functions.ingest.validation import load_validators

settings = Settings.from_env()
logger, tracer, metrics = observability("ingest")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)  # report, not raise
service = IngestService(
    s3=boto3.client("s3"),
    publisher=EventBridgePublisher(boto3.client("events"), settings.names.event_bus),
    names=settings.names,
    validators=load_validators(),
    limits=settings.limits,
    policy=settings.policy,
)
# The object's identity only (not size or event time), so S3 and EventBridge deliveries of it agree.
idempotency = IdempotencyConfig(
    event_key_jmespath="[bucket, key, version_id, etag]", expires_after_seconds=IDEMPOTENCY_TTL_SECONDS
)
persistence = DynamoDBPersistenceLayer(
    table_name=settings.names.idempotency_table, boto3_client=boto3.client("dynamodb")
)


@idempotent_function(data_keyword_argument="ref", config=idempotency, persistence_store=persistence)  # type: ignore[untyped-decorator]
@tracer.capture_method
def ingest_object(ref: refs.ObjectRef) -> dict[str, Any]:
    outcome = service.ingest(ref)
    telemetry.record(metrics, outcome)
    logger.info("object ingested", extra=outcome.as_dict())
    return outcome.as_dict()


def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
    logger.set_correlation_id(record.message_id)
    return [ingest_object(ref=ref) for ref in refs.from_sqs_body(record.body)]


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, object]:
    idempotency.register_lambda_context(context)
    if refs.is_sqs_batch(event):
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    logger.set_correlation_id(event.get("id") or context.aws_request_id)
    return {"outcomes": [ingest_object(ref=ref) for ref in refs.from_message(event)]}
