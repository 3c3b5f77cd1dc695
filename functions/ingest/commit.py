"""The commit of one object version's outcome, and how readers pick the committed outputs. Pure.

An outcome writes several objects (curated partitions, a validation summary, quarantined rows or a copy
of the file, reason.json). Readers must see all of them or none, so the last write is a manifest that
lists every file the outcome produced: `<dataset>/_commits/<source digest>/<version token>.json` in the
curated bucket (in the quarantine bucket for objects with no known dataset). Files that no manifest lists
(a failed attempt's) are invisible; a retry writes the same names again and then the manifest, so it
replaces the attempt instead of adding to it.

The manifest also holds the outcome's events (the outbox): they are published after the commit, each with
an id derived from the object version and the event's type, so a redelivery that publishes them again is
deduplicated by id downstream.

Dataset semantics, decided here for every reader (`jobs.batch.inputs`):
- a source key holds what its latest committed version holds: a new version supersedes the rows of the
  older ones (latest = the raw object's Last-Modified, then the commit time); a quarantined latest version
  means the key contributes no rows;
- identical bytes (same SHA-256 of the raw object) count once, whatever key or version carries them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any, Literal

from schemas.naming import curated_prefix

MANIFEST_FORMAT = 1
COMMITS = "_commits"
Zone = Literal["curated", "quarantine"]


def source_digest(bucket: str, key: str) -> str:
    """A fixed-length name for a source key (keys can be 1,024 bytes; commit keys must stay short)."""
    return hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:32]


def commits_prefix(dataset: str | None) -> str:
    return f"{curated_prefix(dataset)}{COMMITS}/" if dataset else f"{COMMITS}/"


def commit_key(dataset: str | None, bucket: str, key: str, version_token: str) -> str:
    return f"{commits_prefix(dataset)}{source_digest(bucket, key)}/{version_token}.json"


def event_id(bucket: str, key: str, version_token: str, detail_type: str) -> str:
    """One id per object version and event type: the same on every redelivery of the outcome."""
    return hashlib.sha256(f"{bucket}/{key}#{version_token}#{detail_type}".encode()).hexdigest()[:32]


def manifest(
    *,
    source: dict[str, Any],
    dataset: str | None,
    outcome: dict[str, Any],
    files: Iterable[tuple[Zone, str]],
    events: list[dict[str, Any]],
    committed_at: dt.datetime,
) -> dict[str, Any]:
    """`source`: bucket, key, version_id, etag, last_modified (ISO), sha256 of the raw bytes (or None)."""
    return {
        "format": MANIFEST_FORMAT,
        "source": source,
        "dataset": dataset,
        "status": outcome["status"],
        "outcome": outcome,
        "files": [{"zone": zone, "key": key} for zone, key in files],
        "events": events,
        "committed_at": committed_at.isoformat(),
    }


def _order(doc: dict[str, Any]) -> tuple[str, str]:
    return (str(doc["source"].get("last_modified") or ""), str(doc["committed_at"]))


def latest_per_source(manifests: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest committed version of each source object, in source-key order."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in manifests:
        if doc.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unknown commit manifest format {doc.get('format')!r}")
        source = (str(doc["source"]["bucket"]), str(doc["source"]["key"]))
        if source not in latest or _order(doc) > _order(latest[source]):
            latest[source] = doc
    return [latest[s] for s in sorted(latest)]


def committed_curated_keys(manifests: Iterable[dict[str, Any]]) -> list[str]:
    """Curated Parquet keys a dataset build reads: latest version per source, identical content once."""
    keys: list[str] = []
    seen_content: set[str] = set()
    for doc in latest_per_source(manifests):
        digest = doc["source"].get("sha256")
        if digest:
            if digest in seen_content:
                continue
            seen_content.add(digest)
        keys += [f["key"] for f in doc["files"] if f["zone"] == "curated" and f["key"].endswith(".parquet")]
    return sorted(keys)
