"""Per-partition steps of the dataset build: hash tagging, deduplication, the split and shard writing.

Pure pandas/pyarrow functions that Dask maps over partitions; each is deterministic in its input rows,
whatever order the shuffle delivers them in.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.batch.storage import filesystem, join, write_atomic
from schemas.contract import Contract
from schemas.profile import ProfileBuilder

BUCKET = "_bucket"
VALIDATION = "_validation"
_SPLIT_RESOLUTION = 1_000_000


def id_hash(ids: pd.Series) -> np.ndarray:
    """A 64-bit hash of each id, stable across processes and runs (pandas' SipHash with its fixed key)."""
    return pd.util.hash_array(ids.astype(object).to_numpy())  # type: ignore[no-any-return]


def is_validation(hashes: np.ndarray, fraction: float) -> np.ndarray:
    """The split is a function of the id alone: an id is in validation in every build, whatever its partition."""
    # High bits decide the split, low bits the bucket, so the two stay independent.
    return ((hashes >> np.uint64(24)) % np.uint64(_SPLIT_RESOLUTION)) < np.uint64(int(fraction * _SPLIT_RESOLUTION))


def tag(df: pd.DataFrame, id_column: str, n_buckets: int, fraction: float) -> pd.DataFrame:
    hashes = id_hash(df[id_column])
    return df.assign(
        **{BUCKET: (hashes % np.uint64(n_buckets)).astype(np.int64), VALIDATION: is_validation(hashes, fraction)}
    )


def deduplicate(df: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """One row per id: the newest by event time; exact ties are broken by the other columns, so the
    survivor never depends on arrival order. Rows come back sorted by id."""
    id_col = contract.id_column
    if id_col is None:
        raise ValueError(f"{contract.ref} has no id column to deduplicate on")
    order = [id_col.name] + [c for c in contract.column_names if c != id_col.name]
    ts = contract.timestamp_column
    if ts is not None:
        order.remove(ts.name)
        order.insert(1, ts.name)
    ordered = df.sort_values(order, kind="stable", na_position="first")
    return ordered.drop_duplicates(subset=[id_col.name], keep="last").reset_index(drop=True)


def write_partition(
    df: pd.DataFrame,
    index: int,
    out_url: str,
    storage_options: dict[str, Any] | None,
    contract: Contract,
    rows_per_shard: int,
) -> tuple[dict[str, Any], ProfileBuilder]:
    """Deduplicate one shuffled partition, split it and write its shards. Returns what the manifest needs
    and this partition's drift-baseline builder (of the train split: the baseline is what the model saw)."""
    unique = deduplicate(df, contract)
    builder = ProfileBuilder(contract)
    fs, root = filesystem(out_url, storage_options)
    schema = contract.arrow_schema()
    shards = []
    for split, rows in (("train", unique[~unique[VALIDATION]]), ("validation", unique[unique[VALIDATION]])):
        rows = rows[contract.column_names]
        if split == "train" and len(rows):
            builder.update(pa.Table.from_pandas(rows, schema=schema, preserve_index=False))
        for number, start in enumerate(range(0, len(rows), rows_per_shard)):
            table = pa.Table.from_pandas(rows.iloc[start : start + rows_per_shard], schema=schema, preserve_index=False)
            sink = io.BytesIO()
            pq.write_table(table, sink, compression="zstd")
            data = sink.getvalue()
            key = f"{split}/part-{index:05d}-{number:03d}.parquet"
            fs.makedirs(join(root, split), exist_ok=True)  # needed on file://, a no-op on object stores
            fs.pipe_file(join(root, key), data)
            shards.append(
                {"key": key, "split": split, "rows": table.num_rows, "bytes": len(data),
                 "sha256": hashlib.sha256(data).hexdigest()}
            )  # fmt: skip
    return {"input_rows": len(df), "duplicates_dropped": len(df) - len(unique), "shards": shards}, builder


def merge_profiles(left: ProfileBuilder, right: ProfileBuilder) -> ProfileBuilder:
    return left.merge(right)


def write_profile(builder: ProfileBuilder, url: str, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    profile = builder.finalize()
    fs, path = filesystem(url, storage_options)
    write_atomic(fs, path, profile.to_json().encode())
    return {"rows": profile.rows}


def conform(df: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Keep the contract's columns in its order; a missing column is a clear error, not a silent NaN."""
    missing = [c for c in contract.column_names if c not in df.columns]
    if missing:
        raise ValueError(f"curated data lacks column(s) {missing} of contract {contract.ref}")
    return df[contract.column_names]
