"""Curated partitions written the way the ingest function writes them, for the jobs tests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from functions.ingest import commit
from jobs import datagen
from schemas.naming import curated_prefix

DAYS = (dt.date(2026, 11, 1), dt.date(2026, 11, 2))


def write_curated(root: Path, rows: int = 600, seed: int = 3, duplicates: int = 0) -> list[pa.Table]:
    """One Parquet object per day under root/<curated_prefix>; the first `duplicates` ids of day one are
    repeated on day two (a re-delivered file), with a later event time."""
    tables = []
    for offset, day in enumerate(DAYS):
        table = datagen.generate(rows, day, seed + offset)
        if offset == 1 and duplicates:
            repeated = tables[0].slice(0, duplicates)
            repeated = repeated.set_column(
                repeated.schema.get_field_index("event_time"),
                "event_time",
                pa.array([dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)] * duplicates, pa.timestamp("us", tz="UTC")),
            )
            table = pa.concat_tables([table, repeated.cast(table.schema)])
        folder = root / curated_prefix("transactions", day)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "part-0.parquet")
        commit_curated(
            root,
            f"raw/transactions/{day:%Y/%m/%d}/part-0.csv",
            [f"{curated_prefix('transactions', day)}part-0.parquet"],
        )
        tables.append(table)
    return tables


def commit_curated(root: Path, source_key: str, keys: list[str], dataset: str = "transactions") -> None:
    """The commit manifest the ingest function writes last, naming `keys` (relative to root) as its output."""
    doc = commit.manifest(
        source={"bucket": "raw", "key": source_key, "version_id": None, "etag": "", "last_modified": None,
                "sha256": None},
        dataset=dataset,
        outcome={"status": "curated"},
        files=[("curated", key) for key in keys],
        events=[],
        committed_at=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    path = root / commit.commit_key(dataset, "raw", source_key, "v1")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def upload_curated(s3: Any, bucket: str, root: Path) -> None:
    """Every file write_curated produced (partitions and their commit manifests) into a curated bucket."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.put_object(Bucket=bucket, Key=str(path.relative_to(root)), Body=path.read_bytes())
