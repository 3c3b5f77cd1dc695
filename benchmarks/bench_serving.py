"""Serving: the HTTP predictor against the same model in-process, at batch sizes 1, 32 and 512; artifact sizes.

One run, one trained model (the real path: Dask dataset build, torchrun training with TrainConfig's default
architecture), then for each batch size:
  - floor: the model's forward pass in-process (Predictor.scores on already decoded columns);
  - in-process: the whole inference path without HTTP (Predictor.handle: JSON body -> validated columns ->
    encoding -> forward -> JSON answer), what SageMaker's container runs per request;
  - HTTP: `python -m serving` on loopback (the serving image's entry point), POST /invocations over one
    keep-alive connection, sequential (latency) and with 4 connections (throughput).
Sizes: model.tar.gz as training writes it (weights + serving.json + code/), and the installed size of the
`serving` extra's dependency closure in this environment (torch is the CPU build here, as in the image).
Run: python -m benchmarks serving
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import numpy as np
import psutil
import torch

from jobs import datagen
from jobs.batch.build import build_dataset
from jobs.batch.cluster import ClusterSpec, dask_client
from jobs.batch.inputs import BuildParams
from jobs.launch.base import JobSpec
from jobs.launch.local import LocalTorchrun
from jobs.train.config import TrainConfig
from serving.inference import Predictor
from serving.package import unpack
from serving.process import Client, PredictorProcess
from tests.jobs.helpers import write_curated

BATCHES = (1, 32, 512)
REQUESTS = {1: 3000, 32: 1500, 512: 300}
CONNECTIONS = 4


def _train(root: Path) -> Path:
    write_curated(root / "curated", rows=4000)
    with dask_client(ClusterSpec(n_workers=1, processes=True)) as client:
        built = build_dataset(f"file://{root}/curated", f"file://{root}/datasets", BuildParams(), client)
    config = TrainConfig(manifest_url=built.url, output_url=f"file://{root}/artifacts", steps=100,
                         checkpoint_every=100, cache_dir=str(root / "cache"))  # fmt: skip
    LocalTorchrun(workdir=root).launch(config, JobSpec(name="bench-serving", procs_per_node=1, max_restarts=0))
    return Path(config.model_url.removeprefix("file://"))


def _quantiles(seconds: list[float]) -> tuple[float, float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean())


def _closure_mib(extra: str) -> tuple[float, int]:
    """Installed size of tidewater[extra]'s requirements, transitively, as this environment holds them."""
    seen: set[str] = set()
    pending = [r for r in metadata.requires("tidewater") or [] if f'extra == "{extra}"' in r]
    pending += [r for r in metadata.requires("tidewater") or [] if "extra ==" not in r]
    total = 0
    while pending:
        name = re.split(r"[\s\[<>=!~;(]", pending.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen or name == "tidewater":
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        total += sum((f.size or 0) for f in dist.files or [])
        pending += [r for r in dist.requires or [] if "extra ==" not in r]
    return total / 2**20, len(seen)


def _measure(n: int, call: Callable[[int], object]) -> list[float]:
    """n timed calls of call(i)."""
    out = []
    for i in range(n):
        began = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - began)
    return out


def _row(batch: int, label: str, samples: list[float], base: float | None) -> str:
    p50, p99, mean = _quantiles(samples)
    ratio = f"{mean / 1000 / base:.2f}x" if base else ""
    rate = 1000 / mean
    return f"| {batch} | {label} | {p50:.3f} | {p99:.3f} | {mean:.3f} | {rate:,.0f} | {rate * batch:,.0f} | {ratio} |"


def main() -> None:
    torch.set_num_threads(1)  # as the predictor runs (serving.main --torch-threads 1): the same work per request
    print(
        f"machine: {psutil.cpu_count()} cores; torch CPU, 1 intra-op thread; {CONNECTIONS} connections for throughput"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = _train(root)
        archive = (folder / "model.tar.gz").read_bytes()
        predictor = Predictor.load(unpack(archive, root / "unpacked"))
        names = [f.name for f in predictor.spec.features]
        table = datagen.generate(4096, dt.date(2026, 11, 3), seed=5)
        rows = [{n: r[n] for n in names} for r in table.to_pylist()]
        bodies = {b: [json.dumps(rows[i : i + b]).encode() for i in range(0, 4096 - b + 1, b)] for b in BATCHES}
        lines = []
        with PredictorProcess(folder, "fraud", "bench", "a", log_path=root / "server.log") as server:
            for b in BATCHES:
                n, body = REQUESTS[b], bodies[b]
                decoded = [predictor.decode(x, "application/json") for x in body]
                floor = _measure(n, lambda i, d=decoded: predictor.scores(d[i % len(d)]))
                inproc = _measure(n, lambda i, x=body: predictor.handle(x[i % len(x)], "application/json", None))
                client = server.client()
                for x in body[:50]:  # warm the connection and the server
                    client.post("/invocations", x)
                http = _measure(n, lambda i, c=client, x=body: c.post("/invocations", x[i % len(x)]))
                rps = _throughput(server.port, body, n)
                base = statistics.fmean(inproc)
                lines += [
                    _row(b, "forward pass (floor)", floor, None),
                    _row(b, "in-process (whole path)", inproc, None),
                    _row(b, "HTTP, 1 connection", http, base),
                    f"| {b} | HTTP, {CONNECTIONS} connections | | | | {rps:,.0f} | {rps * b:,.0f} | |",
                ]
        print("| batch | path | p50 ms | p99 ms | mean ms | requests/s | rows/s | HTTP / in-process (mean) |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|")
        print("\n".join(lines))
        # What the rehearsal's latency guardrail would compare: cold at 95/5 (the retraining rollouts), warmed at
        # 95/5, and warmed at equal shares (the compressed challenger's canary).
        for every, warm_up in ((20, 0), (20, 500), (2, 500)):
            print(_canary_split(folder, bodies[1], root, every, warm_up))
        closure, packages = _closure_mib("serving")
        weights_kib = (folder / "model.pt").stat().st_size / 1024
        print(f"model.tar.gz: {len(archive) / 1024:.1f} KiB (model.pt {weights_kib:.1f} KiB + serving.json + code/); "
              f"serving extra's closure: {closure:,.1f} MiB in {packages} packages")  # fmt: skip


def _canary_split(folder: Path, bodies: list[bytes], root: Path, every: int = 20, warm_up: int = 0) -> str:
    """Two predictors of the same model on this machine, sent single-row requests of which every `every`-th goes
    to the challenger (20: a canary's first 95/5 split; 2: equal shares), after `warm_up` requests to each: the
    mean latency each measures itself (its /metrics), i.e. what the rehearsal's latency guardrail compares."""
    with (
        PredictorProcess(folder, "fraud", "bench", "champion", log_path=root / "champion.log") as champion,
        PredictorProcess(folder, "fraud", "bench", "challenger", log_path=root / "challenger.log") as challenger,
    ):
        local = threading.local()

        def post(target: PredictorProcess, i: int) -> int:
            clients: dict[int, Client] = local.__dict__.setdefault("clients", {})
            client = clients.setdefault(target.port, Client(target.port))
            return client.post("/invocations", bodies[i % len(bodies)]).status

        with ThreadPoolExecutor(CONNECTIONS) as pool:
            for target in (champion, challenger) if warm_up else ():
                list(pool.map(lambda i, t=target: post(t, i), range(warm_up)))
            before = champion.counts(), challenger.counts()
            list(pool.map(lambda i: post(challenger if i % every == 0 else champion, i), range(6000)))
        a, b = champion.counts() - before[0], challenger.counts() - before[1]
    mean_a, mean_b = 1000 * a.latency_sum_s / a.latency_count, 1000 * b.latency_sum_s / b.latency_count
    split = f"{100 - 100 // every}/{100 // every}"
    warm = f", both warmed by {warm_up} requests" if warm_up else ", both cold"
    return (f"canary split {split} over {CONNECTIONS} connections, same model, two processes{warm}: champion mean "
            f"{mean_a:.3f} ms ({a.requests:.0f} requests), challenger mean {mean_b:.3f} ms ({b.requests:.0f} "
            f"requests): {mean_b / mean_a:.2f}x")  # fmt: skip


def _throughput(port: int, bodies: list[bytes], n: int) -> float:
    local = threading.local()

    def post(i: int) -> int:
        client: Client = local.__dict__.setdefault("client", Client(port))
        return client.post("/invocations", bodies[i % len(bodies)]).status

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        began = time.perf_counter()
        statuses = list(pool.map(post, range(n)))
        elapsed = time.perf_counter() - began
    if set(statuses) != {200}:
        raise RuntimeError(f"non-200 answers under load: {sorted(set(statuses))}")
    return n / elapsed


if __name__ == "__main__":
    main()
