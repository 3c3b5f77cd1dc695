"""The ingest function end to end on the embedded cloud: real HTTP to moto for S3, DynamoDB (idempotency)
and reads of the curated output through s3fs, with the handler called on real event shapes."""

from __future__ import annotations

import datetime as dt
import io
import threading
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from functions.ingest.readers import Limits
from functions.ingest.refs import ObjectRef
from jobs.datagen import BAD_FILE_KINDS, BadFileKind, bad_file, generate, inject_bad_rows, to_bytes
from schemas.events import FileQuarantined, LargeFileHandedOff, PartitionIngested
from tests.functions.ingest_support import DAY, NAMES, Ingest, fixture, ingest_fixture  # noqa: F401  (fixture)

TABLE = generate(300, DAY, seed=11)


def _failures(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def _events(ingest: Ingest, kind: type) -> list[Any]:
    return [e for e in ingest.events.events if isinstance(e, kind)]


@pytest.mark.parametrize("fmt,gz", [("csv", False), ("csv", True), ("jsonl", False), ("parquet", False)])
def test_valid_file_becomes_curated_parquet_partitioned_by_event_date(ingest: Ingest, fmt: str, gz: bool) -> None:
    two_days = pa.concat_tables([TABLE, generate(100, DAY + dt.timedelta(days=1), seed=12)])
    put = ingest.put(f"batch-1.{fmt}" + (".gz" if gz else ""), to_bytes(two_days, fmt, gz))  # type: ignore[arg-type]

    response = ingest.invoke(ingest.sqs_event(put))

    assert _failures(response) == []
    [commit] = ingest.commits()
    assert commit["source"]["version_id"] == put.version_id and commit["status"] == "curated"
    assert ingest.keys("curated") == [
        f"transactions/_validation/batch-1.{put.version_id}.json",
        f"transactions/event_date=2026-11-02/batch-1.{put.version_id}.parquet",
        f"transactions/event_date=2026-11-03/batch-1.{put.version_id}.parquet",
    ]
    curated = ingest.curated_frame()
    assert len(curated) == 400
    assert sorted(curated["transaction_id"]) == sorted(two_days["transaction_id"].to_pylist())
    [event] = _events(ingest, PartitionIngested)
    assert (event.rows_in, event.rows_curated, event.rows_rejected) == (400, 400, 0)
    assert event.contract == "transactions/v1" and event.source.endswith(f"?versionId={put.version_id}")
    assert ingest.keys("quarantine") == []
    assert ingest.keys("raw") == [put.key]  # raw is never deleted


EXPECTED_REASON: dict[BadFileKind, str] = {
    "empty": "empty_file",
    "header_only": "no_rows",
    "wrong_delimiter": "wrong_delimiter",
    "bad_encoding": "bad_encoding",
    "truncated_gzip": "corrupt_gzip",
    "corrupt_parquet": "corrupt_parquet",
    "missing_column": "schema_mismatch",
    "extra_column": "schema_mismatch",
    "wrong_type": "wrong_type",
    "decompression_bomb": "decompression_limit",
    "not_tabular": "unparseable",
}


@pytest.mark.parametrize("kind", BAD_FILE_KINDS)
def test_every_bad_file_is_quarantined_with_a_specific_reason(
    ingest: Ingest, kind: BadFileKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest.handler.service, "limits", Limits(max_decoded_bytes=8 << 20))
    if kind == "decompression_bomb":  # the function hands it off (below); the batch job has no one to hand it to
        monkeypatch.setattr(ingest.handler.service, "oversize", "quarantine")
    suffix, data = bad_file(kind, DAY, seed=3, bomb_mib=16)
    put = ingest.put(f"bad{suffix}", data)

    response = ingest.invoke(ingest.sqs_event(put))

    assert _failures(response) == []  # bad data is an outcome, never a retry
    [event] = _events(ingest, FileQuarantined)
    assert event.reason == EXPECTED_REASON[kind]
    reason = ingest.reason(event.quarantine)
    assert reason["reason"] == EXPECTED_REASON[kind] and reason["detail"]
    assert reason["contract"] == "transactions/v1" and reason["version_id"] == put.version_id
    folder = event.quarantine.removeprefix(f"s3://{NAMES.bucket('quarantine')}/")
    assert folder.startswith("transactions/2026/11/02/")
    copied = ingest.s3.get_object(Bucket=NAMES.bucket("quarantine"), Key=f"{folder}bad{suffix}")["Body"].read()
    assert copied == data
    assert ingest.keys("curated") == []
    assert ingest.keys("raw") == [put.key]


def test_a_gzip_decoding_past_the_functions_limit_is_handed_off_and_the_batch_job_curates_it(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding past the function's limit says the file is big, not that it is bad: the batch job (its own,
    larger limit) gives the outcome, so a legitimate large gzip is curated rather than quarantined."""
    from jobs.batch.handoff import handoff_service

    data = to_bytes(TABLE, "csv", True)
    monkeypatch.setattr(ingest.handler.service, "limits", Limits(max_decoded_bytes=len(data)))  # < its CSV text
    put = ingest.put("big.csv.gz", data)

    assert _failures(ingest.invoke(ingest.sqs_event(put))) == []

    [handed] = _events(ingest, LargeFileHandedOff)
    assert (handed.key, handed.version_id, handed.size_bytes) == (put.key, put.version_id, len(data))
    assert _events(ingest, FileQuarantined) == [] and ingest.keys("quarantine") == []
    assert ingest.keys("curated") == []  # nothing written by the function for it
    batch = handoff_service(NAMES, ingest.cloud.client)
    batch.publisher = ingest.events
    outcome = batch.ingest(ObjectRef(put.bucket, put.key, put.version_id, put.etag, len(data)))
    assert (outcome.status, outcome.rows_curated) == ("curated", len(TABLE))
    assert len(ingest.curated_frame()) == len(TABLE)


def test_few_bad_rows_curate_the_rest_and_quarantine_those_rows(ingest: Ingest) -> None:
    kinds = ("null_required", "out_of_range", "unknown_category", "bad_hour")
    table, injected = inject_bad_rows(generate(1_000, DAY, seed=13), 8, seed=14, kinds=kinds)
    put = ingest.put("partly.parquet", to_bytes(table, "parquet"))

    assert _failures(ingest.invoke(ingest.sqs_event(put))) == []

    [ingested] = _events(ingest, PartitionIngested)
    assert (ingested.rows_in, ingested.rows_curated, ingested.rows_rejected) == (1_000, 992, 8)
    [quarantined] = _events(ingest, FileQuarantined)
    assert quarantined.reason == "bad_rows"
    folder = quarantined.quarantine.removeprefix(f"s3://{NAMES.bucket('quarantine')}/")
    rows = pq.read_table(
        io.BytesIO(ingest.s3.get_object(Bucket=NAMES.bucket("quarantine"), Key=f"{folder}rows.parquet")["Body"].read())
    )
    assert sorted(rows["_source_row"].to_pylist()) == sorted(injected)
    reason = ingest.reason(quarantined.quarantine)
    failed = {(f["expectation"], f["column"]): f["unexpected_count"] for f in reason["failed_expectations"]}
    assert failed[("expect_column_values_to_be_in_set", "channel")] == 2
    assert len(reason["sample_rows"]) == 5
    curated_ids = set(ingest.curated_frame()["transaction_id"])
    bad_ids = {table["transaction_id"][i].as_py() for i in injected}
    assert len(curated_ids) == 992 and not curated_ids & bad_ids


def test_too_many_bad_rows_reject_the_whole_file(ingest: Ingest) -> None:
    table, _ = inject_bad_rows(generate(200, DAY, seed=15), 40, seed=16)  # 20% > 5%
    put = ingest.put("mostly-bad.csv", to_bytes(table, "csv"))

    assert _failures(ingest.invoke(ingest.sqs_event(put))) == []

    [event] = _events(ingest, FileQuarantined)
    reason = ingest.reason(event.quarantine)
    assert reason["reason"] == "too_many_bad_rows" and reason["rows_in"] == 200
    assert {f["column"] for f in reason["failed_expectations"]} >= {"amount", "channel", "hour", "transaction_id"}
    assert all(f["unexpected_count"] for f in reason["failed_expectations"])
    assert ingest.keys("curated") == []


@pytest.mark.parametrize(
    "key,reason,folder",
    [
        ("raw/payments/2026/11/02/a.csv", "unknown_dataset", "payments/2026/11/02/a.csv."),
        ("uploads/a.csv", "bad_key", "_unrouted/uploads/a.csv."),
        ("raw/transactions/2026/11/02/a.xlsx", "unsupported_format", "transactions/2026/11/02/a.xlsx."),
    ],
)
def test_keys_that_cannot_be_routed_are_quarantined(ingest: Ingest, key: str, reason: str, folder: str) -> None:
    put = ingest.put("", to_bytes(TABLE, "csv"), key=key)

    assert _failures(ingest.invoke(ingest.sqs_event(put))) == []

    [event] = _events(ingest, FileQuarantined)
    assert event.reason == reason
    assert event.quarantine == f"s3://{NAMES.bucket('quarantine')}/{folder}{put.version_id}/"
    assert ingest.reason(event.quarantine)["reason"] == reason


def test_deleted_version_is_accounted_for_without_retry(ingest: Ingest) -> None:
    put = ingest.put("gone.csv", to_bytes(TABLE, "csv"))
    ingest.s3.delete_object(Bucket=put.bucket, Key=put.key, VersionId=put.version_id)

    response = ingest.invoke(ingest.sqs_event(put))

    assert _failures(response) == []
    [event] = _events(ingest, FileQuarantined)
    assert event.reason == "source_gone"
    assert ingest.reason(event.quarantine)["detail"].startswith("NoSuchVersion")


def test_overwritten_object_ingests_the_version_the_event_named(ingest: Ingest) -> None:
    first = ingest.put("same.csv", to_bytes(TABLE, "csv"))
    ingest.put("same.csv", b"overwritten before the event was processed")

    assert _failures(ingest.invoke(ingest.sqs_event(first))) == []

    [event] = _events(ingest, PartitionIngested)
    assert event.rows_curated == 300 and first.version_id in event.curated[0]


def test_overwrite_in_an_unversioned_bucket_is_detected(ingest: Ingest) -> None:
    ingest.s3.create_bucket(Bucket="producer-drop")
    key = "raw/transactions/2026/11/02/same.csv"
    response = ingest.s3.put_object(Bucket="producer-drop", Key=key, Body=to_bytes(TABLE, "csv"))
    first = ObjectRef("producer-drop", key, None, response["ETag"].strip('"'))
    ingest.s3.put_object(Bucket="producer-drop", Key=key, Body=b"newer content")

    outcome = ingest.handler.ingest_object(ref=first)

    assert (outcome["status"], outcome["reason"]) == ("gone", "source_overwritten")


def test_large_file_is_handed_to_the_batch_job_before_it_is_read(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest.handler.service, "limits", Limits(max_object_bytes=10_000))
    calls: list[str] = []
    events = ingest.handler.service.s3.meta.events
    events.register("before-call.s3", lambda model, **_: calls.append(model.name), unique_id="count-calls")
    data = to_bytes(TABLE, "csv")
    put = ingest.put("big.csv", data)
    try:
        assert _failures(ingest.invoke(ingest.sqs_event(put))) == []
    finally:
        events.unregister("before-call.s3", unique_id="count-calls")

    [event] = ingest.events.events
    assert isinstance(event, LargeFileHandedOff) and event.size_bytes == len(data)
    assert calls == []  # decided on the notification's size: the object was not even opened
    assert ingest.keys("curated") == [] and ingest.keys("quarantine") == []


def test_without_a_size_in_the_event_the_objects_own_length_decides(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest.handler.service, "limits", Limits(max_object_bytes=10_000))
    put = ingest.put("big.csv", to_bytes(TABLE, "csv"))

    outcome = ingest.handler.service.ingest(ObjectRef(put.bucket, put.key, put.version_id, put.etag, size=None))

    assert (outcome.status, outcome.commit) == ("handed_off", None)
    [event] = ingest.events.events
    assert isinstance(event, LargeFileHandedOff) and event.size_bytes == put.size


def test_direct_s3_and_eventbridge_invocations(ingest: Ingest) -> None:
    s3_put = ingest.put("direct.csv", to_bytes(TABLE, "csv"))
    eb_put = ingest.put("bridged.jsonl", to_bytes(TABLE.slice(0, 50), "jsonl"))

    direct = ingest.invoke({"Records": [ingest.s3_record(s3_put)]})
    bridged = ingest.invoke(ingest.eventbridge_event(eb_put))

    assert [o["rows_curated"] for o in direct["outcomes"] + bridged["outcomes"]] == [300, 50]


def test_duplicate_deliveries_have_one_effect(ingest: Ingest) -> None:
    put = ingest.put("dup.csv", to_bytes(TABLE, "csv"))
    event = ingest.sqs_event(put)

    first = ingest.invoke(event)
    again = ingest.invoke(event)
    via_eventbridge = ingest.invoke(ingest.eventbridge_event(put))  # same object, another channel

    assert _failures(first) == _failures(again) == []
    assert via_eventbridge["outcomes"][0]["rows_curated"] == 300
    assert len(ingest.events.events) == 1
    assert len([k for k in ingest.keys("curated") if k.endswith(".parquet")]) == 1


class _BlockingS3:
    """Holds get_object until released: a first delivery still in flight when a duplicate arrives."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.entered, self.release = inner, threading.Event(), threading.Event()

    def get_object(self, **kwargs: Any) -> Any:
        self.entered.set()
        assert self.release.wait(30)
        return self.inner.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_concurrent_duplicate_is_retried_not_repeated(ingest: Ingest, monkeypatch: pytest.MonkeyPatch) -> None:
    put = ingest.put("race.csv", to_bytes(TABLE, "csv"))
    ref = ObjectRef(put.bucket, put.key, put.version_id, put.etag, put.size)
    blocking = _BlockingS3(ingest.handler.service.s3)
    monkeypatch.setattr(ingest.handler.service, "s3", blocking)
    results: list[dict[str, Any]] = []
    first = threading.Thread(target=lambda: results.append(ingest.handler.ingest_object(ref=ref)))
    first.start()
    assert blocking.entered.wait(30)

    event = ingest.sqs_event(put)
    duplicate = ingest.invoke(event)  # another instance receives the same object meanwhile

    blocking.release.set()
    first.join(30)
    assert _failures(duplicate) == [event["Records"][0]["messageId"]]  # in progress: SQS redelivers later
    assert results[0]["status"] == "curated"
    assert _failures(ingest.invoke(event)) == []  # the redelivery returns the stored outcome
    assert len(ingest.events.events) == 1


class _ThrottledFor:
    """S3 that keeps throttling one key (after botocore's own retries would have given up)."""

    def __init__(self, inner: Any, key: str) -> None:
        self.inner, self.key = inner, key

    def get_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"] == self.key:
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                 "ResponseMetadata": {"HTTPStatusCode": 503}},
                "GetObject",
            )  # fmt: skip
        return self.inner.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_transient_error_mid_batch_fails_only_that_record(ingest: Ingest, monkeypatch: pytest.MonkeyPatch) -> None:
    puts = [ingest.put(f"part-{i}.csv", to_bytes(generate(50, DAY, seed=20 + i), "csv")) for i in range(3)]
    event = ingest.sqs_event(*puts)
    real_s3 = ingest.handler.service.s3
    monkeypatch.setattr(ingest.handler.service, "s3", _ThrottledFor(real_s3, puts[1].key))

    response = ingest.invoke(event)

    assert _failures(response) == [event["Records"][1]["messageId"]]
    assert len(_events(ingest, PartitionIngested)) == 2
    monkeypatch.setattr(ingest.handler.service, "s3", real_s3)  # the throttling passes; SQS redelivers
    assert _failures(ingest.invoke({"Records": [event["Records"][1]]})) == []
    assert len(_events(ingest, PartitionIngested)) == 3


def test_messages_that_are_not_notifications(ingest: Ingest) -> None:
    test_event = fixture("sqs_s3_test_event.json")
    assert _failures(ingest.invoke(test_event)) == []  # S3's configuration test message: nothing to do
    junk = fixture("sqs_s3_test_event.json")
    junk["Records"][0]["body"] = '{"hello": "world"}'
    assert _failures(ingest.invoke(junk)) == [junk["Records"][0]["messageId"]]  # wiring error: to the DLQ
    assert ingest.events.events == []
