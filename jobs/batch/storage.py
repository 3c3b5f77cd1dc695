"""Object storage addressed by fsspec URL (s3://, file://, gs://, ...), shared by the batch and training jobs.

s3fs honours AWS_ENDPOINT_URL, so the same URL works on AWS, any S3-compatible store and the embedded cloud.
Writes that readers must never see half-done use `write_atomic`: object stores have no rename, so the
payload goes to a temporary key and is copied to its final key (a single PUT/COPY is atomic per object);
multi-object results are published by writing a small marker object last (see jobs.train.checkpoint).
"""

from __future__ import annotations

import json
import posixpath
import uuid
from typing import Any

import fsspec
from fsspec import AbstractFileSystem


class StorageError(RuntimeError):
    """A storage URL cannot be used (unknown scheme, missing object) — the message names the URL."""


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[AbstractFileSystem, str]:
    """The filesystem for `url` and the path inside it (no scheme), e.g. ("s3fs", "bucket/key")."""
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as err:
        raise StorageError(f"cannot open storage URL {url!r}: {err}") from err
    return fs, str(path).rstrip("/")


def join(url: str, *parts: str) -> str:
    """Join key parts onto a URL without touching its scheme ("s3://b/p" + "x" -> "s3://b/p/x")."""
    return posixpath.join(url.rstrip("/"), *(p.strip("/") for p in parts))


def unstrip(fs: AbstractFileSystem, path: str) -> str:
    """A full URL for a path the filesystem returned (listings drop the scheme)."""
    return str(fs.unstrip_protocol(path))


def write_atomic(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `data` so a reader sees either nothing or all of it (temp key, then copy)."""
    tmp = f"{posixpath.dirname(path)}/.tmp-{uuid.uuid4().hex}-{posixpath.basename(path)}"
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    fs.pipe_file(tmp, data)
    try:
        fs.copy(tmp, path)
    finally:
        fs.rm_file(tmp)


def write_json(fs: AbstractFileSystem, path: str, doc: Any) -> None:
    write_atomic(fs, path, json.dumps(doc, indent=2, sort_keys=True).encode())


def read_json(fs: AbstractFileSystem, path: str) -> Any:
    try:
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        raise StorageError(f"{unstrip(fs, path)} does not exist") from None
