"""Shared set-up for the ingest tests: the zone buckets, the idempotency table and real event shapes."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import pandas as pd
import pytest

from functions.common.events import RecordingPublisher
from jobs.batch.inputs import InputObject, list_inputs
from jobs.batch.storage import StorageError, filesystem
from jobs.embedded_cloud import EmbeddedCloud
from schemas.naming import Names, raw_key

EVENTS = Path(__file__).parent / "events"
NAMES = Names()
DAY = dt.date(2026, 11, 2)


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return doc


@dataclass
class FakeContext:
    function_name: str = NAMES.function("ingest")
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:123456789012:function:{NAMES.function('ingest')}"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Put:
    bucket: str
    key: str
    version_id: str | None
    etag: str
    size: int


@dataclass
class Ingest:
    cloud: EmbeddedCloud
    handler: ModuleType
    events: RecordingPublisher
    s3: Any

    def put(self, filename: str, data: bytes, dataset: str = "transactions", key: str | None = None) -> Put:
        key = key or raw_key(dataset, DAY, filename)
        response = self.s3.put_object(Bucket=NAMES.bucket("raw"), Key=key, Body=data)
        return Put(NAMES.bucket("raw"), key, response.get("VersionId"), response["ETag"].strip('"'), len(data))

    def s3_record(self, put: Put) -> dict[str, Any]:
        record: dict[str, Any] = copy.deepcopy(fixture("s3_put.json")["Records"][0])
        obj = record["s3"]["object"]
        record["s3"]["bucket"].update(name=put.bucket, arn=f"arn:aws:s3:::{put.bucket}")
        obj.update(key=quote_plus(put.key, safe="/"), size=put.size, eTag=put.etag)
        if put.version_id is None:
            obj.pop("versionId")
        else:
            obj["versionId"] = put.version_id
        return record

    def sqs_event(self, *puts: Put) -> dict[str, Any]:
        template = fixture("sqs_s3_put.json")["Records"][0]
        records = []
        for put in puts:
            message = copy.deepcopy(template)
            message["messageId"] = str(uuid.uuid4())
            message["body"] = json.dumps({"Records": [self.s3_record(put)]})
            records.append(message)
        return {"Records": records}

    def eventbridge_event(self, put: Put) -> dict[str, Any]:
        event = fixture("eventbridge_object_created.json")
        event["detail"]["bucket"]["name"] = put.bucket
        event["detail"]["object"].update(key=quote_plus(put.key, safe="/"), size=put.size, etag=put.etag)
        event["detail"]["object"]["version-id"] = put.version_id
        return event

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.handler.lambda_handler(event, FakeContext())
        return result

    def all_keys(self, zone: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=NAMES.bucket(zone))  # type: ignore[arg-type]
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def keys(self, zone: str) -> list[str]:
        """The outputs in a zone, without the commit manifests."""
        return [k for k in self.all_keys(zone) if "_commits/" not in k]

    def commits(self, zone: str = "curated") -> list[dict[str, Any]]:
        bucket = NAMES.bucket(zone)  # type: ignore[arg-type]
        keys = [k for k in self.all_keys(zone) if "_commits/" in k]
        return [json.loads(self.s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys]

    def committed_inputs(self) -> list[InputObject]:
        """What the dataset build reads: the committed curated objects (a fresh listing every time)."""
        options = {**self.cloud.storage_options, "skip_instance_cache": True}
        fs, root = filesystem(f"s3://{NAMES.bucket('curated')}", options)
        try:
            return list_inputs(fs, root, "transactions")
        except StorageError:
            return []

    def curated_frame(self) -> pd.DataFrame:
        """The committed curated rows read through s3fs, as the batch job reads them."""
        options = {**self.cloud.storage_options, "skip_instance_cache": True}
        urls = [i.url for i in self.committed_inputs()]
        if not urls:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(url, storage_options=options) for url in urls], ignore_index=True)

    def reason(self, quarantine_uri: str) -> dict[str, Any]:
        bucket, _, prefix = quarantine_uri.removeprefix("s3://").partition("/")
        body = self.s3.get_object(Bucket=bucket, Key=f"{prefix}reason.json")["Body"].read()
        doc: dict[str, Any] = json.loads(body)
        return doc


def provision(cloud: EmbeddedCloud, versioned: bool = True) -> None:
    s3 = cloud.client("s3")
    for zone in ("raw", "curated", "quarantine"):
        s3.create_bucket(Bucket=NAMES.bucket(zone))
    if versioned:
        s3.put_bucket_versioning(Bucket=NAMES.bucket("raw"), VersioningConfiguration={"Status": "Enabled"})
    cloud.client("dynamodb").create_table(
        TableName=NAMES.idempotency_table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    cloud.client("events").create_event_bus(Name=NAMES.event_bus)


@pytest.fixture(name="ingest")
def ingest_fixture(cloud: EmbeddedCloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ingest]:
    provision(cloud)
    from functions.ingest import handler  # imported once the embedded cloud is up: its clients point at it

    events = RecordingPublisher()
    monkeypatch.setattr(handler.service, "publisher", events)
    yield Ingest(cloud, handler, events, cloud.client("s3"))
