"""The rehearsal's stages, run in order by `tide local`. Each stage prints what it did."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jobs import datagen
from jobs.embedded_cloud import EmbeddedCloud
from jobs.rehearsal.provision import LocalLake, provision_lake
from schemas.naming import Names, raw_key

Echo = Callable[[str], None]


@dataclass
class RehearsalResult:
    workdir: Path
    raw_objects: list[tuple[str, int]] = field(default_factory=list)


def run(workdir: Path, echo: Echo, rows_per_day: int = 20_000, seed: int = 7) -> RehearsalResult:
    workdir.mkdir(parents=True, exist_ok=True)
    names = Names("tidewater", "local")
    result = RehearsalResult(workdir=workdir)
    with EmbeddedCloud() as cloud:
        echo(f"[1/3] embedded cloud up at {cloud.endpoint_url}")
        s3 = cloud.client("s3")
        lake = provision_lake(names, s3, cloud.client("kms"))
        echo(f"      lake: {len(lake.buckets)} buckets, SSE-KMS key {lake.kms_key_id[:8]}…")
        day = dt.date(2026, 11, 1)
        upload_day(lake, s3, day, rows_per_day, seed)
        echo(f"[2/3] generated and uploaded {rows_per_day} transactions for {day}")
        listing = s3.list_objects_v2(Bucket=lake.buckets["raw"], Prefix="raw/")
        result.raw_objects = [(o["Key"], o["Size"]) for o in listing.get("Contents", [])]
        echo(f"[3/3] raw zone s3://{lake.buckets['raw']}:")
        for key, size in result.raw_objects:
            echo(f"      {key}  {size:,} bytes")
    return result


def upload_day(lake: LocalLake, s3: object, day: dt.date, rows: int, seed: int) -> str:
    table = datagen.generate(rows, day, seed)
    key = raw_key("transactions", day, f"transactions-{day:%Y%m%d}.csv.gz")
    s3.put_object(  # type: ignore[attr-defined]
        Bucket=lake.buckets["raw"], Key=key, Body=datagen.to_bytes(table, "csv", compress=True)
    )
    return key
