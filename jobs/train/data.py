"""Each rank's slice of the dataset: which shards it reads, the local cache, and the feature encoding.

No torch here: arrays are numpy, so this is testable on its own and shared by training and evaluation.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.batch.storage import filesystem, join
from schemas.contract import Contract
from serving.encoding import FeatureEncoder
from serving.spec import spec_from_contract


class DataError(RuntimeError):
    """A shard is missing, corrupt, or the manifest has nothing for this rank."""


@dataclass(frozen=True)
class Assignment:
    shards: list[dict[str, Any]]
    row_stride: int  # >1 when there are fewer shards than ranks: every rank reads all, keeps every n-th row
    row_offset: int


def assign(shards: list[dict[str, Any]], split: str, rank: int, world: int) -> Assignment:
    """Shard i goes to rank i mod world; with fewer shards than ranks, rows are striped instead."""
    chosen = sorted((s for s in shards if s["split"] == split), key=lambda s: str(s["key"]))
    if not chosen:
        raise DataError(f"the manifest lists no {split} shards")
    if len(chosen) >= world:
        return Assignment(chosen[rank::world], 1, 0)
    return Assignment(chosen, world, rank)


def fetch(manifest_url: str, shard: dict[str, Any], cache_dir: Path, storage_options: dict[str, Any] | None) -> Path:
    """The shard's local copy, downloaded once and checked against the manifest's SHA-256."""
    local = cache_dir / str(shard["key"])
    if local.exists() and _sha256(local) == shard["sha256"]:
        return local
    fs, root = filesystem(manifest_url.rsplit("/", 1)[0], storage_options)
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.{os.getpid()}")
    fs.get_file(join(root, str(shard["key"])), str(tmp))
    if _sha256(tmp) != shard["sha256"]:
        tmp.unlink()
        raise DataError(f"shard {shard['key']} does not match the manifest's SHA-256; the dataset is corrupt")
    tmp.replace(local)  # atomic on one filesystem: a reader never sees a partial cache file
    return local


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def load(paths: list[Path], assignment: Assignment) -> pa.Table:
    table = pa.concat_tables([pq.read_table(p) for p in paths])
    if assignment.row_stride > 1:
        table = table.take(np.arange(assignment.row_offset, table.num_rows, assignment.row_stride))
    return table


@dataclass(frozen=True)
class Encoded:
    categorical: np.ndarray  # int64 [n, n_categorical]
    numerical: np.ndarray  # float32 [n, n_numerical + n_missing_indicators], before standardisation
    label: np.ndarray  # float32 [n]
    ids: np.ndarray  # object [n]


class Encoder:
    """Contract features -> model inputs through serving's FeatureEncoder (the one encoding both use), plus the
    label and ids training needs."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.spec = spec_from_contract(contract, model="", version="", threshold=0.5)
        self.features = FeatureEncoder(self.spec.features)
        if contract.label_column is None or contract.id_column is None:
            raise DataError(f"{contract.ref} needs a label and an id column to train on")

    @property
    def cardinalities(self) -> list[int]:
        return self.features.cardinalities

    @property
    def numerical_width(self) -> int:
        return self.features.numerical_width

    def encode(self, table: pa.Table) -> Encoded:
        columns: dict[str, Any] = {}
        for feature in self.spec.features:
            column = table.column(feature.name)
            if feature.kind == "numerical":
                columns[feature.name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
            else:
                columns[feature.name] = column.to_pylist()
        cats, nums = self.features.encode(columns, table.num_rows)
        label = table.column(self.contract.label_column.name).to_numpy(zero_copy_only=False)  # type: ignore[union-attr]
        ids = table.column(self.contract.id_column.name).to_numpy(zero_copy_only=False)  # type: ignore[union-attr]
        return Encoded(cats, nums, label.astype(np.float32), ids)


def moments(numerical: np.ndarray) -> np.ndarray:
    """[count, sum, sum of squares] per column: summed across ranks to standardise with global statistics."""
    n = np.full(numerical.shape[1], numerical.shape[0], dtype=np.float64)
    x = numerical.astype(np.float64)
    return np.stack([n, x.sum(axis=0), (x * x).sum(axis=0)])


def standardiser(total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count, first, second = total
    mean = first / np.maximum(count, 1)
    std = np.sqrt(np.maximum(second / np.maximum(count, 1) - mean * mean, 0.0))
    return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)
