"""Progress of each retraining, one JSON object per model version under retraining/<model>/ in the artifacts bucket.

The record is what lets a later run carry on: a launched job's id and model URL (to deploy once the model is
there), then the endpoint and variants (to start the rollout). Each state change is one PUT of the whole record,
so a reader sees the previous state or the next one, never half of a step.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.naming import retraining_record_key, retraining_root

# launched -> deployed -> rollout_started | awaiting_approval; launched -> failed (the training job failed)
State = Literal["launched", "deployed", "rollout_started", "awaiting_approval", "failed"]
FINAL_STATES: frozenset[str] = frozenset({"rollout_started", "awaiting_approval", "failed"})


class RecordError(RuntimeError):
    """A progress record cannot be read (not JSON, or not a record): the message names its key."""


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    version: str
    model_url: str
    manifest_url: str
    backend: str
    job_name: str
    job_id: str
    state: State
    events: list[str] = []  # id of the event that asked for this version (later asks are duplicates: logged)
    trigger: str = "DriftDetected"  # its detail-type (schemas.events.RETRAINING_TRIGGERS)
    endpoint: str | None = None
    champion: str | None = None
    challenger: str | None = None
    rollout_id: str | None = None
    reason: str = ""

    def moved(self, **changes: Any) -> Record:
        return self.model_validate({**self.model_dump(), **changes})


class RecordStore:
    """Records in S3 through an injected boto3 S3 client."""

    def __init__(self, s3: Any, bucket: str, model: str) -> None:
        self.s3, self.bucket, self.model = s3, bucket, model

    def get(self, version: str) -> Record | None:
        key = retraining_record_key(self.model, version)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return self._parse(key, body)

    def put(self, record: Record) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=retraining_record_key(record.model, record.version),
            Body=record.model_dump_json(indent=1).encode(),
            ContentType="application/json",
        )

    def unfinished(self) -> list[Record]:
        """Records a run still has to move on (launched or deployed), oldest key first."""
        keys: list[str] = []
        listing = self.s3.get_paginator("list_objects_v2")
        pages = listing.paginate(Bucket=self.bucket, Prefix=retraining_root(self.model))
        for page in pages:
            keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json"))
        records = []
        for key in sorted(keys):
            record = self._parse(key, self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            if record.state not in FINAL_STATES:
                records.append(record)
        return records

    def _parse(self, key: str, body: bytes) -> Record:
        try:
            return Record.model_validate(json.loads(body))
        except (json.JSONDecodeError, ValidationError) as err:
            raise RecordError(f"s3://{self.bucket}/{key} is not a retraining record: {err}") from None
