"""Where a file ends: curated Parquet (+ validation summary) or the quarantine (+ reason.json).

Every name is derived from the source object's version, so a retried or duplicated delivery overwrites
what an earlier attempt wrote instead of adding to it. The writer remembers every file it wrote; `commit`
writes the manifest listing them last (functions.ingest.commit), which is what makes them visible to
readers. Raw objects are only ever read and copied. Every key stays under S3's 1,024-byte limit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from functions.ingest.commit import Zone, commit_key
from functions.ingest.refs import ObjectRef
from schemas.naming import Names, curated_prefix, quarantine_prefix, unrouted_quarantine_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef

Status = Literal["curated", "quarantined", "handed_off", "gone"]
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")
SAMPLE_ROWS = 5
MAX_KEY_BYTES = 1024  # S3's limit
_FOLDER_BYTES = 700  # of a quarantine folder; the rest is left for the file names inside it
_COPY_NAME_BYTES = 200


@dataclass(frozen=True)
class Outcome:
    """What happened to one object: also the idempotency record's stored result (plain JSON)."""

    status: Status
    source: str
    dataset: str | None
    reason: str
    rows_in: int = 0
    rows_curated: int = 0
    rows_rejected: int = 0
    curated: list[str] = field(default_factory=list)
    quarantine: str | None = None
    parse_seconds: float = 0.0
    validation_seconds: float = 0.0
    commit: str | None = None  # the manifest that made the outcome visible (None: handed off, no outcome yet)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stem(filename: str) -> str:
    return _shorten(_UNSAFE.sub("_", filename.split(".", 1)[0]), _COPY_NAME_BYTES) or "file"


def _token(ref: ObjectRef) -> str:
    return _UNSAFE.sub("_", ref.version_token)


def _shorten(text: str, limit: int) -> str:
    """`text` if it fits in `limit` UTF-8 bytes, else its start plus a digest of the whole (still unique)."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    digest = hashlib.sha256(raw).hexdigest()[:16]
    head = raw[: limit - len(digest) - 1].decode("utf-8", errors="ignore")
    return f"{head}~{digest}"


def json_rows(table: pa.Table, limit: int = SAMPLE_ROWS) -> list[dict[str, Any]]:
    """A few rows as JSON-safe dicts (timestamps and other non-JSON values as strings)."""
    rows: list[dict[str, Any]] = json.loads(json.dumps(table.slice(0, limit).to_pylist(), default=str))
    return rows


class OutcomeWriter:
    def __init__(self, s3: S3Client, names: Names) -> None:
        self.s3 = s3
        self.curated_bucket = names.bucket("curated")
        self.quarantine_bucket = names.bucket("quarantine")
        self.files: list[tuple[Zone, str]] = []  # (zone, key) of everything written, for the manifest

    # --- curated ------------------------------------------------------------------------------------------

    def curate(self, ref: ObjectRef, dataset: str, filename: str, parts: list[tuple[dt.date, Path]]) -> list[str]:
        """The staged Parquet file of each event date (hive partition), uploaded as <stem>.<version>.parquet;
        returns their URIs."""
        name = f"{_stem(filename)}.{_token(ref)}.parquet"
        written = []
        for day, path in parts:
            key = f"{curated_prefix(dataset, day)}{name}"
            self._put(self.curated_bucket, key, path, "application/vnd.apache.parquet")
            written.append(f"s3://{self.curated_bucket}/{key}")
        return written

    def validation_summary(self, ref: ObjectRef, dataset: str, filename: str, summary: dict[str, Any]) -> str:
        # Under a "_" folder: Parquet dataset readers (pyarrow, Dask) skip it when they read the partitions.
        key = f"{curated_prefix(dataset)}_validation/{_stem(filename)}.{_token(ref)}.json"
        self._put(self.curated_bucket, key, _json_bytes(summary), "application/json")
        return f"s3://{self.curated_bucket}/{key}"

    # --- quarantine ---------------------------------------------------------------------------------------

    def quarantine_folder(self, ref: ObjectRef, dataset: str | None, day: dt.date | None, filename: str) -> str:
        base = (
            unrouted_quarantine_prefix(ref.key)
            if dataset is None or day is None
            else (quarantine_prefix(dataset, day) + filename)
        )
        return f"{_shorten(base, _FOLDER_BYTES)}.{_token(ref)}/"

    def quarantine(
        self,
        ref: ObjectRef,
        folder: str,
        reason: dict[str, Any],
        copy_source: bool,
        bad_rows: Path | None = None,
    ) -> str:
        """Copy the raw object (when it still exists) and write reason.json; returns the folder's URI."""
        if copy_source:
            copy: CopySourceTypeDef = {"Bucket": ref.bucket, "Key": ref.key}
            if ref.version_id:
                copy["VersionId"] = ref.version_id
            name = _shorten(ref.key.rsplit("/", 1)[-1], _COPY_NAME_BYTES)
            # The managed copy: a single CopyObject up to its threshold, multipart beyond (CopyObject stops at
            # 5 GB, and the batch job quarantines objects larger than that as too large).
            self.s3.copy(copy, self.quarantine_bucket, f"{folder}{name}")
            self.files.append(("quarantine", f"{folder}{name}"))
        if bad_rows is not None:
            self._put(
                self.quarantine_bucket,
                f"{folder}rows.parquet",
                bad_rows,
                "application/vnd.apache.parquet",
            )
        self._put(self.quarantine_bucket, f"{folder}reason.json", _json_bytes(reason), "application/json")
        return f"s3://{self.quarantine_bucket}/{folder}"

    # --- the commit ---------------------------------------------------------------------------------------

    def commit(self, ref: ObjectRef, dataset: str | None, routed: bool, doc: dict[str, Any]) -> str:
        """Write the manifest last: the outcome becomes visible. `routed`: the dataset has a contract, so
        the manifest goes next to its curated data (else to the quarantine bucket)."""
        key = commit_key(dataset if routed else None, ref.bucket, ref.key, _token(ref))
        bucket = self.curated_bucket if routed else self.quarantine_bucket
        self.s3.put_object(Bucket=bucket, Key=key, Body=_json_bytes(doc), ContentType="application/json")
        return f"s3://{bucket}/{key}"

    def _put(self, bucket: str, key: str, body: bytes | Path, content_type: str) -> None:
        """One PutObject; a local file is streamed from disk (a single put holds up to 5 GB)."""
        if isinstance(body, Path):
            with body.open("rb") as stream:
                self.s3.put_object(Bucket=bucket, Key=key, Body=stream, ContentType=content_type)
        else:
            self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        self.files.append(("curated" if bucket == self.curated_bucket else "quarantine", key))


def _json_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, default=str, sort_keys=True).encode()
