"""Object storage port for the drift check: S3 adapter (client injected) and a local-directory fake."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class ObjectStore(Protocol):
    def list(self, bucket: str, prefix: str) -> list[str]: ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...


class S3ObjectStore:
    """boto3 S3 client injected; transient errors are retried by the client's retry configuration."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def list(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def get(self, bucket: str, key: str) -> bytes:
        body: bytes = self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


class LocalObjectStore:
    """Buckets as folders under `root` (local runs of `tide drift`, tests)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def list(self, bucket: str, prefix: str) -> list[str]:
        base = self.root / bucket
        if not base.is_dir():
            return []
        keys = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix))

    def get(self, bucket: str, key: str) -> bytes:
        return (self.root / bucket / key).read_bytes()

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        path = self.root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
