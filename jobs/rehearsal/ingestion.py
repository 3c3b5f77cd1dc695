"""The rehearsal's ingest stage: each day's raw export lands in the raw zone and the real ingest function runs on
the queue's notifications (as its event source mapping hands them over); what is too large for the function goes
to the hand-off batch job (`tide curate-handoffs`). The lake's counts are checked: no raw file unaccounted for.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobs import datagen
from jobs.rehearsal.stages import DRIFT
from schemas.naming import raw_key

if TYPE_CHECKING:
    from jobs.rehearsal.stages import World


def ingest_days(
    world: World, days: list[dt.date], bad_file_day: int | None = None, plain_file_day: int | None = None,
    drifted: bool = False,
) -> None:  # fmt: skip
    """Upload each day's export (gzipped CSV; uncompressed on `plain_file_day`, too large for the function,
    so it is handed off to the batch job) and run the ingest function on the notifications."""
    s3 = world.cloud.client("s3")
    for i, day in enumerate(days):
        seed = world.settings.seed + day.toordinal()
        table = datagen.generate(world.settings.rows_per_day, day, seed, DRIFT if drifted else None)
        gzipped = i != plain_file_day
        key = raw_key("transactions", day, f"transactions-{day:%Y%m%d}.csv" + (".gz" if gzipped else ""))
        s3.put_object(Bucket=world.bucket("raw"), Key=key, Body=datagen.to_bytes(table, "csv", compress=gzipped))
        if i == bad_file_day:
            suffix, data = datagen.bad_file("missing_column", day, seed)
            s3.put_object(Bucket=world.bucket("raw"), Key=raw_key("transactions", day, f"late-export{suffix}"),
                          Body=data)  # fmt: skip
    drain_ingest_queue(world)
    curate_handoffs(world)
    counts = zone_counts(world)
    stage = "[5/7]" if drifted else "[2/7]"
    world.echo(f"{stage} ingested {len(days)} day(s) from {days[0]}; lake now holds: "
               + ", ".join(f"{n} {k}" for k, n in counts.items()))  # fmt: skip
    if counts["curated files"] + counts["quarantined files"] < counts["raw files"]:
        raise RuntimeError(f"raw files unaccounted for: {counts}")
    world.summary.files = counts


def curate_handoffs(world: World) -> None:
    """`tide curate-handoffs`: the batch job curates what the function handed off as too large for it."""
    from jobs.batch.handoff import drain, handoff_service

    service = handoff_service(world.names, world.cloud.client)
    report = drain(world.cloud.client("sqs"), world.platform.handoff_queue_url, service.ingest, wait_seconds=0)
    if report.failed:
        raise RuntimeError(f"hand-offs left for a retry: {report.failed}")
    for outcome in report.outcomes:
        world.echo(f"      handed off to the batch job (too large for the function): {outcome.source.split('/')[-1]}"
                   f" -> {outcome.status}, {outcome.rows_curated} rows")  # fmt: skip


def drain_ingest_queue(world: World) -> None:
    """The ingest function on every message of its queue, ten at a time, deleting what it reports done."""
    from functions.ingest import handler

    # What a deployed function gets from INGEST_MAX_OBJECT_BYTES, set here because the handler reads its
    # environment once, at import (its cold start), which may precede this run in the same process.
    handler.service.limits = dataclasses.replace(
        handler.service.limits, max_object_bytes=world.settings.function_max_object_bytes
    )
    sqs = world.cloud.client("sqs")
    for _ in range(100):
        messages = sqs.receive_message(QueueUrl=world.platform.ingest_queue_url, MaxNumberOfMessages=10,
                                       AttributeNames=["All"]).get("Messages", [])  # fmt: skip
        if not messages:
            return
        event = {"Records": [_lambda_record(m, world.platform.ingest_queue_arn) for m in messages]}
        response = handler.lambda_handler(event, _Context(world.names.function("ingest")))
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        if failed:
            raise RuntimeError(f"ingest reported failed records {sorted(failed)}: see functions.log")
        for m in messages:
            sqs.delete_message(QueueUrl=world.platform.ingest_queue_url, ReceiptHandle=m["ReceiptHandle"])
    raise RuntimeError("the ingest queue did not drain in 100 polls")


def zone_counts(world: World) -> dict[str, int]:
    """Files as the zones hold them: raw objects, validation summaries (curated), reason.json (quarantined)."""
    s3 = world.cloud.client("s3")

    def keys(zone: Any, prefix: str) -> list[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=world.bucket(zone), Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    return {
        "raw files": len(keys("raw", "raw/")),
        "curated files": len(keys("curated", "transactions/_validation/")),
        "quarantined files": sum(k.endswith("/reason.json") for k in keys("quarantine", "")),
        "curated partitions": sum(k.endswith(".parquet") for k in keys("curated", "transactions/event_date=")),
    }


@dataclass
class _Context:
    """The fields of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received SQS message in the shape the event source mapping hands the function."""
    return {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": message.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
    }  # fmt: skip
