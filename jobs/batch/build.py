"""Curated partitions -> a versioned training dataset, in one Dask pass.

read curated Parquet -> tag rows with a hash of the id (bucket + train/validation) -> shuffle by bucket
(every copy of an id meets in one partition; distributed's p2p shuffle spills to disk, so memory stays
bounded) -> per partition: deduplicate, split, write shards -> manifest written last.

The manifest is the completion marker and the memo: if it exists for the version the inputs determine, the
build returns it without computing anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from jobs.batch import shards
from jobs.batch.inputs import BuildParams, InputObject, dataset_version, list_inputs
from jobs.batch.storage import filesystem, join, read_json, unstrip, write_json
from schemas.contract import Contract, load_contract
from schemas.naming import dataset_version_prefix

MANIFEST = "manifest.json"
PROFILE = "profile.json"  # the drift baseline (schemas.profile), next to the manifest
MANIFEST_FORMAT = 1
Echo = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    manifest: dict[str, Any]
    url: str  # of the manifest
    reused: bool  # True when an existing manifest was returned without recomputing

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def build_dataset(
    curated_url: str,
    datasets_url: str,
    params: BuildParams,
    client: Any,
    storage_options: dict[str, Any] | None = None,
    progress: bool = False,
    echo: Echo = lambda _: None,
) -> BuildResult:
    """Build (or find) the dataset version of the curated data under `curated_url` in `datasets_url`."""
    contract = load_contract(params.dataset, params.contract_version)
    in_fs, in_root = filesystem(curated_url, storage_options)
    inputs = list_inputs(in_fs, in_root, params.dataset)
    version = dataset_version(contract.ref, params, inputs)
    out_url = join(datasets_url, dataset_version_prefix(params.dataset, version))
    out_fs, out_root = filesystem(out_url, storage_options)
    manifest_path = f"{out_root}/{MANIFEST}"
    if out_fs.exists(manifest_path):
        echo(f"dataset {params.dataset} version {version} exists: {unstrip(out_fs, manifest_path)}")
        return BuildResult(read_json(out_fs, manifest_path), unstrip(out_fs, manifest_path), reused=True)

    echo(f"building {params.dataset} version {version} from {len(inputs)} curated object(s)")
    total_rows = _row_count(in_fs, inputs)
    n_buckets = max(1, math.ceil(total_rows / min(params.rows_per_shard, params.partition_rows)))
    parts, profile = _graph(inputs, contract, params, n_buckets, out_url, storage_options)
    futures = client.compute([*parts, profile])
    if progress:
        from distributed import progress as show_progress

        show_progress(futures)  # type: ignore[no-untyped-call]
    *results, profiled = client.gather(futures)

    manifest = _manifest(contract, params, version, inputs, results)
    manifest["profile"] = {"key": PROFILE, "rows": profiled["rows"]}
    write_json(out_fs, manifest_path, manifest)
    echo(f"wrote {len(manifest['shards'])} shard(s), {manifest['rows']} -> {unstrip(out_fs, manifest_path)}")
    return BuildResult(manifest, unstrip(out_fs, manifest_path), reused=False)


def _row_count(fs: Any, inputs: list[InputObject]) -> int:
    """From the Parquet footers only (a few KB per object), to size the shuffle."""
    import pyarrow.parquet as pq

    total = 0
    for item in inputs:
        with fs.open(item.url, "rb") as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total


def _graph(
    inputs: list[InputObject],
    contract: Contract,
    params: BuildParams,
    n_buckets: int,
    out_url: str,
    storage_options: dict[str, Any] | None,
) -> tuple[list[Any], Any]:
    """Delayed shard infos, one per shuffled partition, and the delayed profile written from their builders
    merged pairwise in a tree (so no single task holds every partition's builder)."""
    import operator

    import dask.dataframe as dd
    from dask.delayed import delayed

    id_column = contract.id_column
    if id_column is None:
        raise ValueError(f"{contract.ref} has no id column; a training dataset needs one to deduplicate")
    # One input partition per row group, so a large curated file never lands whole on one worker
    # (split_row_groups="infer" kept a 500k-row file as one partition here).
    frame = dd.read_parquet(
        [i.url for i in inputs], storage_options=storage_options, dtype_backend="pyarrow", split_row_groups=True
    )
    frame = frame.map_partitions(shards.conform, contract)
    frame = frame.map_partitions(shards.tag, id_column.name, n_buckets, params.validation_fraction)
    frame = frame.shuffle(on=shards.BUCKET, npartitions=n_buckets)
    write = delayed(shards.write_partition, pure=True)
    written = [
        write(part, index, out_url, storage_options, contract, params.rows_per_shard)
        for index, part in enumerate(frame.to_delayed())
    ]
    infos = [delayed(operator.getitem)(w, 0) for w in written]
    builders = [delayed(operator.getitem)(w, 1) for w in written]
    merge = delayed(shards.merge_profiles, pure=True)
    while len(builders) > 1:
        paired = [merge(a, b) for a, b in zip(builders[::2], builders[1::2], strict=False)]
        builders = paired + (builders[-1:] if len(builders) % 2 else [])
    profile = delayed(shards.write_profile)(builders[0], join(out_url, PROFILE), storage_options)
    return infos, profile


def _manifest(
    contract: Contract, params: BuildParams, version: str, inputs: list[InputObject], results: list[dict[str, Any]]
) -> dict[str, Any]:
    shard_list = sorted((s for r in results for s in r["shards"]), key=lambda s: s["key"])
    content = hashlib.sha256("".join(f"{s['key']}:{s['sha256']}\n" for s in shard_list).encode()).hexdigest()
    rows = {
        "input": sum(r["input_rows"] for r in results),
        "duplicates_dropped": sum(r["duplicates_dropped"] for r in results),
        "train": sum(s["rows"] for s in shard_list if s["split"] == "train"),
        "validation": sum(s["rows"] for s in shard_list if s["split"] == "validation"),
    }
    return {
        "format": MANIFEST_FORMAT,
        "dataset": params.dataset,
        "version": version,
        "contract": contract.ref,
        "params": asdict(params),
        "inputs": [{"url": i.url, **i.identity()} for i in inputs],
        "shards": shard_list,
        "rows": rows,
        "content_hash": content,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
