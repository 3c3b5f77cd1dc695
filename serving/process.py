"""A predictor as a real process on loopback, and a keep-alive HTTP client for it: what the rehearsal, the
tests and the benchmark use to talk to `python -m serving` exactly as a load balancer would."""

from __future__ import annotations

import http.client
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from prometheus_client.parser import text_string_to_metric_families

from serving.metrics import LATENCY, REQUESTS

READY_PATH = "/v2/health/ready"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


class Client:
    """One keep-alive connection to a predictor."""

    def __init__(self, port: int, timeout_s: float = 30.0) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        self._conn.request(method, path, body=body, headers=dict(headers or {}))
        response = self._conn.getresponse()
        return Reply(response.status, response.getheader("content-type", ""), response.read())

    def post(self, path: str, body: bytes, content_type: str = "application/json", **headers: str) -> Reply:
        return self.request("POST", path, body, {"Content-Type": content_type, **headers})

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class Counts:
    """Cumulative counters of one predictor, from its /metrics (buckets: upper bound -> cumulative count)."""

    requests: float
    errors_5xx: float
    latency_sum_s: float
    latency_count: float
    buckets: tuple[tuple[float, float], ...] = ()

    def __sub__(self, earlier: Counts) -> Counts:
        before = dict(earlier.buckets)
        return Counts(
            self.requests - earlier.requests,
            self.errors_5xx - earlier.errors_5xx,
            self.latency_sum_s - earlier.latency_sum_s,
            self.latency_count - earlier.latency_count,
            tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets),
        )

    def __add__(self, other: Counts) -> Counts:
        """Two predictors' (or two lives of one predictor's) counters together."""
        theirs = dict(other.buckets)
        mine = dict(self.buckets)
        return Counts(
            self.requests + other.requests,
            self.errors_5xx + other.errors_5xx,
            self.latency_sum_s + other.latency_sum_s,
            self.latency_count + other.latency_count,
            tuple((le, mine.get(le, 0.0) + theirs.get(le, 0.0)) for le in sorted(mine.keys() | theirs.keys())),
        )

    def latency_quantile(self, q: float) -> float:
        """Prometheus' histogram_quantile: linear within the bucket holding the q-th request (seconds)."""
        if not self.buckets or self.buckets[-1][1] <= 0:
            return math.nan
        rank, lower, below = q * self.buckets[-1][1], 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(le):
                    return lower  # beyond the last finite bound: its lower edge, as Prometheus does
                inside = cumulative - below
                return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = le, cumulative
        return lower


def parse_counts(exposition: str) -> Counts:
    requests = errors = latency_sum = latency_count = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == f"{REQUESTS}_total":
                requests += sample.value
                errors += sample.value if sample.labels.get("code", "").startswith("5") else 0.0
            elif sample.name == f"{LATENCY}_sum":
                latency_sum += sample.value
            elif sample.name == f"{LATENCY}_count":
                latency_count += sample.value
            elif sample.name == f"{LATENCY}_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return Counts(requests, errors, latency_sum, latency_count, tuple(sorted(buckets.items())))


@dataclass
class PredictorProcess:
    """`python -m serving` on 127.0.0.1:<free port>, started on enter, ready when /v2/health/ready answers."""

    model_dir: Path
    model_name: str
    endpoint: str
    variant: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> PredictorProcess:
        """Start the process; `wait_ready` waits for it (spawn several, then wait, to start them in parallel)."""
        self.port = self.port or free_port()
        command = [
            sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", str(self.port),
            "--model-dir", str(self.model_dir), "--model-name", self.model_name,
            "--endpoint", self.endpoint, "--variant", self.variant, *self.args,
        ]  # fmt: skip
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self._proc = subprocess.Popen(command, env={**os.environ, **self.env}, stdout=log, stderr=log)
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> PredictorProcess:
        if self._proc is None:
            raise RuntimeError(f"predictor {self.variant} was not spawned")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise RuntimeError(f"predictor {self.variant} exited with {self._proc.returncode} before ready{where}")
            try:
                client = Client(self.port, timeout_s=2.0)
                if client.request("GET", READY_PATH).status == 200:
                    client.close()
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"predictor {self.variant} was not ready within {timeout_s} s")

    def start(self, timeout_s: float = 60.0) -> PredictorProcess:
        return self.spawn().wait_ready(timeout_s)

    def client(self) -> Client:
        return Client(self.port)

    def counts(self) -> Counts:
        client = Client(self.port)
        try:
            return parse_counts(client.request("GET", "/metrics").body.decode())
        finally:
            client.close()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> PredictorProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
