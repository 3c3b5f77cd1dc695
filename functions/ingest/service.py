"""One object -> one outcome. The ingest function's logic, with its S3 client and publisher injected.

Order of checks: the key (layout, dataset, format) before any read; then the object by the exact version
the event named (If-Match on the ETag when the bucket is unversioned), so a later overwrite never changes
what this event ingests; then size (hand-off: on the event's size, before the object is opened), then parse,
validate, split and stage batch by batch (functions.ingest.scan), decide, upload, commit, publish. AWS errors other
than "gone" propagate (the message is retried; transient ones recover, permanent ones reach the DLQ);
every problem with the file or key becomes an outcome.

Every outcome but a hand-off ends with a commit (functions.ingest.commit): the manifest of the files it
wrote, written last, then its events published from that manifest's outbox with ids per object version.
A failure anywhere before the commit leaves nothing readers see; the retry writes the same names again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from functions.common.aws_errors import error_code, is_gone
from functions.common.events import EventPublisher
from functions.ingest import commit
from functions.ingest.outcomes import Outcome, OutcomeWriter
from functions.ingest.policy import Policy
from functions.ingest.readers import Limits, Rejected, file_format
from functions.ingest.refs import ObjectRef
from functions.ingest.scan import Scanned, scan
from functions.ingest.staging import Staged
from functions.ingest.validation import Validator
from schemas.events import Event, FileQuarantined, LargeFileHandedOff, PartitionIngested
from schemas.naming import Names, NamingError, RawKey, parse_raw_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass
class _Attempt:
    """What one delivery has learnt about its object so far (for the outputs' names and the manifest)."""

    ref: ObjectRef
    writer: OutcomeWriter
    raw: RawKey | None = None
    validator: Validator | None = None
    last_modified: str | None = None
    sha256: str | None = None

    @property
    def dataset(self) -> str | None:
        return self.raw.dataset if self.raw else None


class _Gone(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(detail)


@dataclass
class IngestService:
    s3: S3Client
    publisher: EventPublisher
    names: Names
    validators: dict[str, Validator]
    limits: Limits = field(default_factory=Limits)
    policy: Policy = field(default_factory=Policy)
    # Over limits.max_object_bytes: the function hands the object to the batch job; the batch job itself,
    # which has nobody to hand it to, quarantines it as too large.
    oversize: Literal["hand_off", "quarantine"] = "hand_off"

    def ingest(self, ref: ObjectRef) -> Outcome:
        attempt = _Attempt(ref, OutcomeWriter(self.s3, self.names))
        try:
            attempt.raw = raw = parse_raw_key(ref.key)
        except NamingError as err:
            return self._reject(attempt, "bad_key", str(err))
        attempt.validator = validator = self.validators.get(raw.dataset)
        if validator is None:
            known = ", ".join(sorted(self.validators))
            return self._reject(attempt, "unknown_dataset", f"no contract for {raw.dataset!r}; known: {known}")
        if self.oversize == "hand_off" and ref.size is not None and ref.size > self.limits.max_object_bytes:
            return self._hand_off(attempt, raw.dataset, ref.size)  # by the notification's size: not even opened
        try:
            file_format(raw.filename)
            body = self._fetch(attempt, raw.dataset)
        except Rejected as err:
            return self._reject(attempt, err.reason, err.detail)
        except _Gone as gone:
            return self._gone(attempt, gone)
        if isinstance(body, Outcome):
            return body
        attempt.sha256 = hashlib.sha256(body).hexdigest()
        with tempfile.TemporaryDirectory(prefix="ingest-") as workdir:  # the staged outputs (batch by batch)
            try:
                scanned = scan(body, raw.filename, validator, self.limits, self.policy, raw.day, Path(workdir))
            except Rejected as err:
                if err.reason == "decompression_limit" and self.oversize == "hand_off":
                    # Over what the function decodes, not necessarily a bomb: the batch job, with its larger
                    # limit, curates it or quarantines it as decompression_limit.
                    return self._hand_off(attempt, raw.dataset, len(body), "decoded_too_large_for_function")
                return self._reject(attempt, err.reason, err.detail)
            del body  # uploading needs only the staged files
            if scanned.staged is None:
                return self._reject(
                    attempt,
                    scanned.verdict.reason,
                    f"{len(scanned.result.summary.failed)} expectation(s) failed",
                    validation=scanned.doc,
                    rows_in=scanned.rows_in,
                    sample=scanned.sample,
                    parse_seconds=scanned.parse_seconds,
                    validation_seconds=scanned.validation_seconds,
                )
            return self._curate(attempt, scanned, scanned.staged)

    def _curate(self, attempt: _Attempt, scanned: Scanned, staged: Staged) -> Outcome:
        """Upload the staged good rows (all, or all but the few bad ones, which go to the quarantine)."""
        ref, raw, validator, writer = attempt.ref, attempt.raw, attempt.validator, attempt.writer
        assert raw is not None and validator is not None  # set before any table is read
        verdict, doc, rows_in = scanned.verdict, scanned.doc, scanned.rows_in
        curated = writer.curate(ref, raw.dataset, raw.filename, staged.curated)
        writer.validation_summary(ref, raw.dataset, raw.filename, {"source": ref.uri, **doc, "policy": verdict.reason})
        quarantine = None
        events: list[Event] = []
        if verdict.action == "split":
            folder = writer.quarantine_folder(ref, raw.dataset, raw.day, raw.filename)
            reason = self._reason(
                attempt,
                "bad_rows",
                f"{staged.rows_bad} row(s) failed",
                validation=doc,
                rows_in=rows_in,
                sample=scanned.sample,
            )
            quarantine = writer.quarantine(ref, folder, reason, copy_source=False, bad_rows=staged.bad_rows)
            events.append(
                FileQuarantined(dataset=raw.dataset, source=ref.uri, quarantine=quarantine, reason="bad_rows")
            )
        good = staged.rows_curated
        events.append(
            PartitionIngested(
                dataset=raw.dataset, contract=validator.contract.ref, source=ref.uri, curated=curated,
                rows_in=rows_in, rows_curated=good, rows_rejected=rows_in - good,
            )
        )  # fmt: skip
        outcome = Outcome(
            status="curated", source=ref.uri, dataset=raw.dataset, reason=verdict.reason, rows_in=rows_in,
            rows_curated=good, rows_rejected=rows_in - good, curated=curated, quarantine=quarantine,
            parse_seconds=scanned.parse_seconds, validation_seconds=scanned.validation_seconds,
        )  # fmt: skip
        return self._commit(attempt, outcome, events)

    def _commit(self, attempt: _Attempt, outcome: Outcome, events: list[Event]) -> Outcome:
        """The manifest of every file written, last; then the events it lists (the outbox), ids per version."""
        ref = attempt.ref
        stamped = [
            e.model_copy(update={"event_id": commit.event_id(ref.bucket, ref.key, ref.version_token, e.detail_type)})
            for e in events
        ]
        doc = commit.manifest(
            source={
                "bucket": ref.bucket, "key": ref.key, "version_id": ref.version_id, "etag": ref.etag,
                "last_modified": attempt.last_modified, "sha256": attempt.sha256,
            },
            dataset=attempt.dataset,
            outcome=outcome.as_dict(),
            files=attempt.writer.files,
            events=[{"detail_type": e.detail_type, "detail": e.detail()} for e in stamped],
            committed_at=dt.datetime.now(dt.UTC),
        )  # fmt: skip
        where = attempt.writer.commit(ref, attempt.dataset, attempt.validator is not None, doc)
        for event in stamped:
            self.publisher.publish(event)
        return dataclasses.replace(outcome, commit=where)

    def _fetch(self, attempt: _Attempt, dataset: str) -> bytes | Outcome:
        """The bytes of exactly the version the event named, or a hand-off outcome when it is too large."""
        ref = attempt.ref
        kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            kwargs["VersionId"] = ref.version_id
        elif ref.etag:
            kwargs["IfMatch"] = f'"{ref.etag}"'
        try:
            response = self.s3.get_object(**kwargs)
        except ClientError as err:
            if is_gone(err):
                overwritten = error_code(err) in ("PreconditionFailed", "412")
                raise _Gone(
                    "source_overwritten" if overwritten else "source_gone", f"{error_code(err)}: {ref.uri}"
                ) from None
            raise  # transient (botocore has already retried) or a deployment problem: the message is retried
        modified = response.get("LastModified")
        attempt.last_modified = modified.astimezone(dt.UTC).isoformat() if modified else None
        size = int(response["ContentLength"])
        if size > self.limits.max_object_bytes:
            response["Body"].close()
            if self.oversize == "quarantine":
                raise Rejected("too_large", f"{size} bytes is over this job's limit of {self.limits.max_object_bytes}")
            return self._hand_off(attempt, dataset, size)
        return response["Body"].read()

    def _hand_off(self, attempt: _Attempt, dataset: str, size: int, reason: str = "too_large_for_function") -> Outcome:
        """Too large to hold: the batch job (jobs.batch.handoff) gives it its outcome and commit."""
        ref = attempt.ref
        self.publisher.publish(
            LargeFileHandedOff(
                dataset=dataset, source=ref.uri, size_bytes=size, bucket=ref.bucket, key=ref.key,
                version_id=ref.version_id, etag=ref.etag,
            )
        )  # fmt: skip
        return Outcome(status="handed_off", source=ref.uri, dataset=dataset, reason=reason)

    def _reason(
        self, attempt: _Attempt, reason: str, detail: str, validation: dict[str, Any] | None = None,
        rows_in: int = 0, sample: list[dict[str, Any]] | None = None, with_contract: bool = True,
    ) -> dict[str, Any]:  # fmt: skip
        ref, validator = attempt.ref, attempt.validator if with_contract else None
        return {
            "source": ref.uri,
            "bucket": ref.bucket,
            "key": ref.key,
            "version_id": ref.version_id,
            "etag": ref.etag,
            "dataset": attempt.dataset,
            "contract": validator.contract.ref if validator else None,
            "reason": reason,
            "detail": detail,
            "failed_expectations": (validation or {}).get("failed_expectations", []),
            "rows_in": rows_in,
            "sample_rows": sample or [],
            "max_bad_row_share": self.policy.max_bad_row_share,
            "decided_at": dt.datetime.now(dt.UTC).isoformat(),
        }

    def _folder(self, attempt: _Attempt) -> str:
        raw = attempt.raw
        return attempt.writer.quarantine_folder(
            attempt.ref, attempt.dataset, raw.day if raw else None, raw.filename if raw else ""
        )

    def _reject(
        self, attempt: _Attempt, reason: str, detail: str, validation: dict[str, Any] | None = None,
        rows_in: int = 0, sample: list[dict[str, Any]] | None = None, parse_seconds: float = 0.0,
        validation_seconds: float = 0.0,
    ) -> Outcome:  # fmt: skip
        """Copy the whole file to quarantine with its reason; the raw object stays where it is."""
        ref = attempt.ref
        doc = self._reason(attempt, reason, detail, validation, rows_in, sample)
        try:
            where = attempt.writer.quarantine(ref, self._folder(attempt), doc, copy_source=True)
        except ClientError as err:
            if not is_gone(err):
                raise
            return self._gone(attempt, _Gone("source_gone", f"{error_code(err)} while quarantining: {ref.uri}"))
        outcome = Outcome(
            status="quarantined", source=ref.uri, dataset=attempt.dataset, reason=reason, rows_in=rows_in,
            rows_rejected=rows_in, quarantine=where, parse_seconds=parse_seconds, validation_seconds=validation_seconds,
        )  # fmt: skip
        event = FileQuarantined(dataset=attempt.dataset, source=ref.uri, quarantine=where, reason=reason)
        return self._commit(attempt, outcome, [event])

    def _gone(self, attempt: _Attempt, gone: _Gone) -> Outcome:
        """Nothing left to read: record why in the quarantine (no copy) so the event is accounted for."""
        ref = attempt.ref
        attempt.writer.files.clear()  # a copy that failed half-way is not part of this outcome
        doc = self._reason(attempt, gone.reason, gone.detail, with_contract=False)
        where = attempt.writer.quarantine(ref, self._folder(attempt), doc, copy_source=False)
        outcome = Outcome(status="gone", source=ref.uri, dataset=attempt.dataset, reason=gone.reason, quarantine=where)
        event = FileQuarantined(dataset=attempt.dataset, source=ref.uri, quarantine=where, reason=gone.reason)
        return self._commit(attempt, outcome, [event])
