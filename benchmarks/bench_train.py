"""Training throughput on CPU: samples/s of the DDP loop with 1 and 2 processes (gloo), same data, one run.

Samples/s counts every rank's batch (per-rank batch x ranks x steps / loop seconds); the loop time excludes
process start-up, data loading and validation, which the wall column includes.
Run: python -m benchmarks train
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import psutil

from jobs.batch.build import build_dataset
from jobs.batch.cluster import ClusterSpec, dask_client
from jobs.batch.inputs import BuildParams
from jobs.launch.base import JobSpec
from jobs.launch.local import LocalTorchrun
from jobs.train.config import TrainConfig
from tests.jobs.helpers import write_curated

ROWS_PER_DAY = int(os.environ.get("BENCH_ROWS", "50000"))
STEPS, BATCH = int(os.environ.get("BENCH_STEPS", "300")), 512


def main() -> None:
    print(f"machine: {psutil.cpu_count()} cores; torch CPU, gloo; {STEPS} steps, per-rank batch {BATCH}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_curated(root / "curated", rows=ROWS_PER_DAY)
        with dask_client(ClusterSpec(n_workers=1, processes=False)) as client:
            dataset = build_dataset(f"file://{root}/curated", f"file://{root}/datasets",
                                    BuildParams(rows_per_shard=ROWS_PER_DAY // 2), client)  # fmt: skip
        print(f"dataset: {dataset.manifest['rows']['train']:,} train rows in "
              f"{sum(s['split'] == 'train' for s in dataset.manifest['shards'])} shards")  # fmt: skip
        print("| processes | loop s | samples/s (all ranks) | wall s | val AUC |")
        print("|---:|---:|---:|---:|---:|")
        for procs in (1, 2):
            config = TrainConfig(manifest_url=dataset.url, output_url=f"file://{root}/out-{procs}", steps=STEPS,
                                 batch_size=BATCH, checkpoint_every=STEPS, cache_dir=str(root / "cache"))  # fmt: skip
            began = time.perf_counter()
            LocalTorchrun().launch(config, JobSpec(name=f"bench-{procs}", procs_per_node=procs, max_restarts=0))
            wall = time.perf_counter() - began
            meta = json.loads(Path(config.model_url.removeprefix("file://"), "metadata.json").read_text())
            t = meta["throughput"]
            print(f"| {procs} | {t['seconds']:.1f} | {t['samples_per_s']:,.0f} | {wall:.1f} | "
                  f"{meta['metrics']['auc']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
