"""The inputs of a dataset build and the version they determine.

Inputs are the committed curated outputs only: the ingest function's commit manifests
(functions.ingest.commit) name them, so a half-written outcome is never read, a newer version of a
source object supersedes the older one's rows, and identical source bytes count once.

A version is the hash of what determines the output: the contract, the build parameters and every input
object's identity (S3 ETag and VersionId; an MD5 of the content on stores without ETags). Same inputs and
parameters -> same version, which is what makes the build memoizable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from fsspec import AbstractFileSystem

from functions.ingest.commit import COMMITS, committed_curated_keys
from jobs.batch.storage import StorageError, unstrip
from schemas.naming import curated_prefix

VERSION_LENGTH = 16
_CHUNK = 1 << 22


@dataclass(frozen=True)
class BuildParams:
    """What, besides the inputs, decides the dataset's content. Defaults live here only."""

    dataset: str = "transactions"
    contract_version: int = 1
    validation_fraction: float = 0.2
    rows_per_shard: int = 50_000  # upper bound of a shard's rows
    # Upper bound of one shuffled partition's rows: what a worker holds at once (~120 B/row in pandas for
    # `transactions`, times a few copies while sorting), so memory stays bounded whatever the dataset size.
    partition_rows: int = 100_000

    def __post_init__(self) -> None:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.rows_per_shard < 1 or self.partition_rows < 1:
            raise ValueError(f"rows_per_shard and partition_rows must be at least 1, got {self}")


@dataclass(frozen=True)
class InputObject:
    key: str  # relative to the curated root, e.g. transactions/event_date=2026-11-01/part-0.parquet
    url: str
    etag: str
    version_id: str | None
    size: int

    def identity(self) -> dict[str, Any]:
        return {"key": self.key, "etag": self.etag, "version_id": self.version_id, "size": self.size}


def list_inputs(fs: AbstractFileSystem, root: str, dataset: str) -> list[InputObject]:
    """Every committed curated Parquet object of `dataset` under `root` (hive partitions event_date=...)."""
    base = f"{root}/{curated_prefix(dataset)}".rstrip("/")
    manifests = [json.loads(body) for body in _commit_bodies(fs, f"{base}/{COMMITS}")]
    wanted = committed_curated_keys(manifests)
    found = fs.find(base, detail=True) if wanted else {}
    objects = []
    for key in wanted:
        path = f"{root}/{key}"
        info = found.get(path)
        if info is None:
            raise StorageError(f"{unstrip(fs, path)} is named by a commit manifest but does not exist")
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"') or _md5(fs, path)
        version = info.get("VersionId")
        objects.append(InputObject(key, unstrip(fs, path), etag, str(version) if version else None, int(info["size"])))
    if not objects:
        raise StorageError(
            f"no curated Parquet under {unstrip(fs, base)}/event_date=YYYY-MM-DD/ named by a commit manifest"
            " — run the ingest function first"
        )
    return objects


def _commit_bodies(fs: AbstractFileSystem, folder: str) -> list[bytes]:
    paths = sorted(p for p in fs.find(folder) if p.endswith(".json"))
    if not paths:
        return []
    bodies = fs.cat(paths)  # concurrent on object stores
    return [bodies[p] for p in paths]


def _md5(fs: AbstractFileSystem, path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_version(contract_ref: str, params: BuildParams, inputs: list[InputObject]) -> str:
    doc = {"contract": contract_ref, "params": asdict(params), "inputs": [i.identity() for i in inputs]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:VERSION_LENGTH]


# `tide curate-handoffs`: the largest object (and decompressed content) it holds in memory; larger is quarantined.
DEFAULT_MAX_OBJECT_BYTES = 2 << 30
