"""The original model vs its `tide compress` versions, served side by side through the HTTP predictor.

Run: python -m benchmarks compress   (BENCH_ROWS rows per day, default 50000; BENCH_HIDDEN, default "64,32":
the platform's default head)

One model is trained (the real path: Dask build, torchrun, default TrainConfig but `hidden`), compressed
(int8, distilled), and each version's model.tar.gz is unpacked and served by `python -m serving`
(serving.process.PredictorProcess, the predictor every endpoint runs) on loopback, one at a time. Per version:
artifact size (model.tar.gz, model.pt), KServe v1 latency p50/p99 measured by the client at batch 1 (400
sequential requests) and batch 512 (60), requests/s at batch 1 with 4 client threads for 5 s (both cores busy:
server and clients share them), and validation AUC from the version's metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from jobs import datagen
from jobs.batch.build import build_dataset
from jobs.batch.cluster import ClusterSpec, dask_client
from jobs.batch.inputs import BuildParams
from jobs.compress import compress
from jobs.launch.base import JobSpec
from jobs.launch.local import LocalTorchrun
from jobs.train.config import TrainConfig
from serving.package import unpack
from serving.process import PredictorProcess
from tests.jobs.helpers import write_curated

ROWS_PER_DAY = int(os.environ.get("BENCH_ROWS", "50000"))
HIDDEN = tuple(int(w) for w in os.environ.get("BENCH_HIDDEN", "64,32").split(","))


def _latencies(port: int, body: bytes, n: int) -> np.ndarray:
    from serving.process import Client

    client, out = Client(port), []
    for _ in range(n):
        began = time.perf_counter()
        reply = client.post("/v1/models/fraud:predict", body)
        out.append(time.perf_counter() - began)
        assert reply.status == 200, reply.body[:200]
    client.close()
    return np.array(out) * 1000


def _throughput(port: int, body: bytes, threads: int = 4, seconds: float = 5.0) -> float:
    from serving.process import Client

    done = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        client = Client(port)
        while time.perf_counter() < stop:
            client.post("/v1/models/fraud:predict", body)
            done[i] += 1
        client.close()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_curated(root / "curated", rows=ROWS_PER_DAY)
        with dask_client(ClusterSpec(n_workers=1, processes=False)) as client:
            dataset = build_dataset(f"file://{root}/curated", f"file://{root}/datasets",
                                    BuildParams(rows_per_shard=ROWS_PER_DAY // 2), client)  # fmt: skip
        config = TrainConfig(manifest_url=dataset.url, output_url=f"file://{root}/artifacts", hidden=HIDDEN,
                             checkpoint_every=300, cache_dir=str(root / "cache"))  # fmt: skip
        LocalTorchrun().launch(config, JobSpec(name="bench-compress", procs_per_node=1, max_restarts=0))
        parent = Path(config.model_url.removeprefix("file://"))
        began = time.perf_counter()
        versions = compress(config.model_url, ("int8", "distilled"), root / "work")
        print(f"train rows {dataset.manifest['rows']['train']:,}, head {HIDDEN}; "
              f"compress (both) {time.perf_counter() - began:.1f} s")  # fmt: skip
        folders: dict[str, tuple[Path, dict[str, Any]]] = {
            "original": (parent, json.loads((parent / "metadata.json").read_text()))
        }
        for v in versions:
            folders[v.method] = (Path(v.model_url.removeprefix("file://")), v.metadata)
        spec_rows = datagen.generate(512, datagen.dt.date(2026, 11, 3), seed=5).to_pylist()
        features = [c.name for c in datagen.load_contract("transactions").columns if c.role == "feature"]
        rows = [{f: r[f] for f in features} for r in spec_rows]
        one, batch = json.dumps({"instances": rows[:1]}).encode(), json.dumps({"instances": rows}).encode()
        print("| version | model.tar.gz KiB | model.pt KiB | p50 ms b=1 | p99 ms b=1 | p50 ms b=512 | "
              "p99 ms b=512 | req/s b=1 | val AUC |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, (folder, metadata) in folders.items():
            served = unpack((folder / "model.tar.gz").read_bytes(), root / "served" / name)
            with PredictorProcess(served, "fraud", "bench", name, log_path=root / f"{name}.log") as proc:
                _latencies(proc.port, batch, 10)  # warm-up
                b1, b512 = _latencies(proc.port, one, 400), _latencies(proc.port, batch, 60)
                rps = _throughput(proc.port, one)
            print(f"| {name} | {(folder / 'model.tar.gz').stat().st_size / 1024:.1f} | "
                  f"{(folder / 'model.pt').stat().st_size / 1024:.1f} | {np.percentile(b1, 50):.2f} | "
                  f"{np.percentile(b1, 99):.2f} | {np.percentile(b512, 50):.1f} | {np.percentile(b512, 99):.1f} | "
                  f"{rps:.0f} | {metadata['metrics']['auc']:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
