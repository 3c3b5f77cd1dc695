"""Real serving for the rehearsal: each live variant's model runs as a predictor process on loopback
(`python -m serving`, the serving image's entry point) and every request is scored over HTTP.

moto's invoke_endpoint returns canned bodies, so the `Router` plays SageMaker's runtime in front of the
predictors: it picks a variant per request by the endpoint's current weights (as the traffic function set
them on the endpoint), posts the rows to the predictor's `/invocations`, writes SageMaker data-capture records
of the bytes exchanged (the drift function's input), and publishes each simulated minute's AWS/SageMaker
metrics from what the predictors measured themselves (their /metrics: requests, 5XX, latency).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from functions.drift.captures import jsonl
from functions.traffic.adapters.cloudwatch import NAMESPACE
from schemas.naming import SHADOW_ROOT, capture_hour_prefix
from serving.process import Client, Counts, PredictorProcess, Reply

JSON = "application/json"
CLIENT_THREADS = 4  # concurrent connections of the router: the load balancer's fan-out
TORCH_THREADS = 1  # intra-op threads per predictor (serving's default, pinned here for every variant alike)


@dataclass(frozen=True)
class Launch:
    """One variant as the rehearsal runs it."""

    variant: str
    model_url: str  # the model folder training wrote (its model.tar.gz is what the predictor loads)
    error_rate: float  # the fault drill: that share of requests answers 500 (TIDE_INJECT_ERROR_RATE)
    shadow_to: str | None = None  # variant to mirror to
    shadow_fraction: float = 0.0


@dataclass
class Fleet:
    """The predictor processes of one endpoint, by variant."""

    s3: Any
    workdir: Path
    endpoint: str
    model_name: str
    captures_bucket: str
    servers: dict[str, PredictorProcess] = field(default_factory=dict)
    launches: dict[str, Launch] = field(default_factory=dict)
    totals: dict[str, Counts] = field(default_factory=dict)  # what stopped predictors had measured

    def run(self, launches: Sequence[Launch]) -> None:
        """Make exactly these variants live, (re)starting the ones whose launch changed, in parallel."""
        wanted = {launch.variant: launch for launch in launches}
        for variant in [v for v in self.servers if self.launches.get(v) != wanted.get(v)]:
            self.stop(variant)
        started: list[PredictorProcess] = []
        for launch in launches:
            if launch.variant in self.servers:
                continue
            # Every predictor runs the same number of torch threads, so their latencies compare like for like.
            args = ["--inject-error-rate", str(launch.error_rate), "--torch-threads", str(TORCH_THREADS)]
            if launch.shadow_to is not None:
                target = self.servers.get(launch.shadow_to) or next(
                    p for p in started if p.variant == launch.shadow_to
                )  # fmt: skip
                log = f"s3://{self.captures_bucket}/{SHADOW_ROOT}"
                args += ["--shadow-url", f"http://127.0.0.1:{target.port}"]
                args += ["--shadow-fraction", str(launch.shadow_fraction), "--shadow-log", log,
                         "--shadow-variant", launch.shadow_to]  # fmt: skip
            process = PredictorProcess(
                self._model_dir(launch), self.model_name, self.endpoint, launch.variant, tuple(args),
                log_path=self.workdir / f"serving-{launch.variant}.log",
            ).spawn()  # fmt: skip
            if launch.shadow_to is not None:
                process.wait_ready()  # the mirror target must answer before traffic starts
            started.append(process)
        for process in started:
            self.servers[process.variant] = process.wait_ready()
            self.launches[process.variant] = wanted[process.variant]

    def _model_dir(self, launch: Launch) -> Path:
        """Download model.tar.gz as SageMaker does into /opt/ml/model (the predictor unpacks it)."""
        folder = self.workdir / "models" / launch.variant
        archive = folder / "model.tar.gz"
        if not archive.exists():
            bucket, _, key = launch.model_url.removeprefix("s3://").partition("/")
            folder.mkdir(parents=True, exist_ok=True)
            body = self.s3.get_object(Bucket=bucket, Key=f"{key.rstrip('/')}/model.tar.gz")["Body"].read()
            archive.write_bytes(body)
        return folder

    def counts(self, variant: str) -> Counts:
        return self.servers[variant].counts()

    def stop(self, variant: str) -> None:
        process = self.servers.pop(variant)
        final = process.counts()
        earlier = self.totals.get(variant)
        self.totals[variant] = final if earlier is None else earlier + final
        process.stop()  # a graceful stop: the predictor drains its shadow mirror and flushes the pairs
        self.launches.pop(variant, None)

    def close(self) -> None:
        for variant in list(self.servers):
            self.stop(variant)


class Router:
    """SageMaker's runtime in front of the fleet: weighted routing, data capture, per-minute metrics."""

    def __init__(self, fleet: Fleet, rng: np.random.Generator) -> None:
        self.fleet, self.rng = fleet, rng
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(CLIENT_THREADS, thread_name_prefix="router")
        self._last: dict[str, Counts] = {}
        self.served_ids: list[str] = []  # the last serve()'s inference id per record

    def _client(self, variant: str) -> Client:
        clients: dict[tuple[str, int], Client] = self._local.__dict__.setdefault("clients", {})
        port = self.fleet.servers[variant].port
        if (variant, port) not in clients:
            clients[(variant, port)] = Client(port)
        return clients[(variant, port)]

    def _post(self, variant: str, body: bytes, request_id: str) -> Reply:
        return self._client(variant).post("/invocations", body, JSON, **{"x-request-id": request_id})

    def choose(self, weights: dict[str, float], n: int) -> list[str]:
        variants = [v for v, w in weights.items() if w > 0]
        p = np.array([weights[v] for v in variants], dtype=np.float64)
        return [variants[i] for i in self.rng.choice(len(variants), size=n, p=p / p.sum())]

    def serve(
        self, records: list[dict[str, Any]], times: list[dt.datetime], weights: dict[str, float],
        rows_per_request: int, capture: bool = True,
    ) -> dict[str, int]:  # fmt: skip
        """Score records in requests of `rows_per_request` rows; each request is captured at its first row's
        time (the simulated clock of a replayed day). Returns requests sent per variant."""
        starts = range(0, len(records), rows_per_request)
        chosen = self.choose(weights, len(starts))
        bodies = [json.dumps(records[s : s + rows_per_request]).encode() for s in starts]
        ids = [uuid.uuid4().hex for _ in starts]
        replies = list(self._pool.map(self._post, chosen, bodies, ids))
        if capture:
            self._capture(chosen, bodies, replies, [times[s] for s in starts], ids)
        # Row i of a request is "<request id>#<i>": the key delayed labels are joined on (functions/quality).
        self.served_ids = [f"{ids[k]}#{i}" for k, s in enumerate(starts)
                           for i in range(min(rows_per_request, len(records) - s))]  # fmt: skip
        sent: dict[str, int] = defaultdict(int)
        for variant in chosen:
            sent[variant] += 1
        return dict(sent)

    def _capture(
        self, variants: list[str], bodies: list[bytes], replies: list[Reply], times: list[dt.datetime],
        ids: list[str],
    ) -> None:  # fmt: skip
        """One JSON Lines object per variant and UTC hour, as SageMaker data capture writes them (answered
        requests only: SageMaker captures no output for a failed invocation, and no input without it)."""
        by_file: dict[tuple[str, dt.datetime], list[dict[str, Any]]] = defaultdict(list)
        for variant, body, reply, at, request_id in zip(variants, bodies, replies, times, ids, strict=True):
            if reply.status != 200:
                continue
            by_file[(variant, at.replace(minute=0, second=0, microsecond=0))].append(
                capture_record(body, reply, at, request_id)
            )
        for (variant, hour), records in by_file.items():
            name = f"{variant}-{hour:%Y%m%d%H}-{uuid.uuid4().hex[:8]}.jsonl"
            key = capture_hour_prefix(self.fleet.endpoint, variant, hour) + name
            self.fleet.s3.put_object(Bucket=self.fleet.captures_bucket, Key=key, Body=jsonl(records))

    def minute(
        self, cloudwatch: Any, at: dt.datetime, records: list[dict[str, Any]], weights: dict[str, float]
    ) -> None:
        """One simulated minute: one request per record, then the minute's AWS/SageMaker datapoints per variant
        from the predictors' own counters (the difference since the previous minute)."""
        self.serve(records, [at] * len(records), weights, rows_per_request=1, capture=False)
        for variant in self.fleet.servers:
            now = self.fleet.counts(variant)
            delta = now - self._last.get(variant, Counts(0, 0, 0, 0))
            self._last[variant] = now
            if delta.requests <= 0:
                continue
            dims = [{"Name": "EndpointName", "Value": self.fleet.endpoint}, {"Name": "VariantName", "Value": variant}]
            values = {
                "Invocations": delta.requests,
                "Invocation5XXErrors": delta.errors_5xx,
                "ModelLatency": 1e6 * delta.latency_sum_s / max(delta.latency_count, 1.0),  # microseconds
            }
            cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=[
                {"MetricName": name, "Dimensions": dims, "Timestamp": at, "Value": value}
                for name, value in values.items()])  # fmt: skip

    def warm_up(self, variants: list[str], records: list[dict[str, Any]]) -> None:
        """Each variant's predictor answers every record once (single-row requests, not captured), before any
        weight moves: what a readiness warm-up does for a new revision, so that first requests' costs (lazy
        initialisation, cold caches) are not measured as the challenger's latency."""
        for variant in variants:
            self.serve(records, [dt.datetime.now(dt.UTC)] * len(records), {variant: 1.0}, 1, capture=False)

    def reset_minutes(self) -> None:
        """Start counting minutes afresh (a new rollout, or predictors restarted)."""
        self._last = {v: self.fleet.counts(v) for v in self.fleet.servers}

    def close(self) -> None:
        self._pool.shutdown()


def capture_record(request: bytes, reply: Reply, at: dt.datetime, inference_id: str) -> dict[str, Any]:
    """A SageMaker data-capture record of one exchange, JSON content types captured as text."""
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": JSON,
                "mode": "INPUT",
                "data": request.decode(),
                "encoding": "JSON",
            },
            "endpointOutput": {
                "observedContentType": reply.content_type,
                "mode": "OUTPUT",
                "data": reply.body.decode(),
                "encoding": "JSON",
            },
        },
        "eventMetadata": {
            "eventId": str(uuid.uuid4()),
            "inferenceId": inference_id,
            "inferenceTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "eventVersion": "0",
    }
