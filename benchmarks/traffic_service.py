"""Rollouts driven through the real service (`Rollouts.tick`, the CloudWatch adapter, the in-memory store),
over a simulated endpoint whose traffic follows the weights actually applied and a GetMetricData that serves
each datapoint only once it has arrived: every datapoint 2 minutes after its minute ends, 2% of them 2-5
minutes later still. Used by bench_traffic.py (its "through the service" tables)."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.common.events import RecordingPublisher
from functions.traffic.adapters.cloudwatch import CloudWatchMetrics
from functions.traffic.adapters.store import MemoryStateStore
from functions.traffic.config import load_config
from functions.traffic.ports import BackendBusy, BackendError, normalise
from functions.traffic.service import Rollouts

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
EP = "ep"
LAG, LATE_SHARE, EXTRA_LATE = 2, 0.02, (2, 5)
_FIELDS = {"Invocations": 0, "Invocation5XXErrors": 1, "ModelLatency": 2}

# The README's example config (canary 5/25/50/100, 10-minute bakes, 500 requests a step, default guardrails).
README_CONFIG: dict[str, Any] = {
    "endpoint": EP, "champion": "blue", "challenger": "green",
    "strategy": {"kind": "canary", "steps": [0.05, 0.25, 0.5, 1.0], "bake_minutes": 10, "min_requests": 500},
    "max_duration_minutes": 360, "on_timeout": "rollback",
}  # fmt: skip


class _CloudWatch:
    """series[(variant, field)][minute] = (value, arrives); reads only the asked minutes that have arrived."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.series: dict[tuple[str, int], dict[dt.datetime, tuple[float, dt.datetime]]] = {}

    def get_metric_data(self, MetricDataQueries: list[dict[str, Any]], StartTime: dt.datetime,
                        EndTime: dt.datetime, **_: Any) -> dict[str, Any]:  # fmt: skip
        now = self.clock()
        minutes = []
        t = StartTime
        while t < EndTime:
            minutes.append(t)
            t += MINUTE
        out = []
        for q in MetricDataQueries:
            metric = q["MetricStat"]["Metric"]
            variant = next(d["Value"] for d in metric["Dimensions"] if d["Name"] == "VariantName")
            series = self.series.get((variant, _FIELDS[metric["MetricName"]]), {})
            rows = [(m, series[m][0]) for m in minutes if m in series and series[m][1] <= now]
            out.append({"Id": q["Id"], "Timestamps": [m for m, _ in rows], "Values": [v for _, v in rows]})
        return {"MetricDataResults": out}

    def describe_alarms(self, **_: Any) -> dict[str, Any]:
        return {"MetricAlarms": []}


@dataclass
class _Endpoint:
    rng: np.random.Generator
    fail_share: float = 0.0
    weights_now: dict[str, float] = field(default_factory=lambda: {"blue": 1.0, "green": 0.0})

    def weights(self, endpoint: str) -> dict[str, float]:
        return dict(self.weights_now)

    def set_weights(self, endpoint: str, weights: dict[str, float]) -> dict[str, float]:
        if self.rng.random() < self.fail_share:
            raise BackendBusy("injected: endpoint update failed")
        self.weights_now = normalise(weights)
        return dict(self.weights_now)


@dataclass
class Run:
    outcome: str  # promoted | rolled_back | held | running
    reason: str
    minutes: int
    challenger_requests: float
    step_at_end: int
    converged: bool  # the endpoint carries the committed state's weights after the last tick


def run_one(
    seed: int, rpm: int, p_a: float, p_b: float, *, latency: tuple[float, float] = (20_000.0, 20_000.0),
    sigma: float = 0.05, per_request_latency: bool = False, fail_share: float = 0.0,
    config: dict[str, Any] | None = None, max_minutes: int = 400,
) -> Run:  # fmt: skip
    """One rollout: serve a minute split by the applied weights, tick, until terminal (and converged)."""
    rng = np.random.default_rng(seed)
    now = [T0]
    clock = lambda: now[0]  # noqa: E731
    cw = _CloudWatch(clock)
    endpoint = _Endpoint(rng, fail_share)
    rollouts = Rollouts(MemoryStateStore(), endpoint, CloudWatchMetrics(cw), RecordingPublisher(), clock=clock)
    with contextlib.suppress(BackendError):  # committed; the first tick applies the weights
        rollouts.start(load_config(config or README_CONFIG), "r")
    served = 0.0
    p = {"blue": p_a, "green": p_b}
    mean_latency = {"blue": latency[0], "green": latency[1]}
    for minute in range(max_minutes):
        ts = T0 + minute * MINUTE
        n_b = int(rng.binomial(rpm, endpoint.weights_now.get("green", 0.0)))
        for variant, n in (("blue", rpm - n_b), ("green", n_b)):
            if n == 0:
                continue
            if per_request_latency:  # the per-minute average of n lognormal request latencies
                mu = np.log(mean_latency[variant]) - sigma**2 / 2
                avg = float(rng.lognormal(mu, sigma, n).mean())
            else:
                avg = mean_latency[variant] * float(rng.lognormal(0.0, sigma))
            values = (float(n), float(rng.binomial(n, p[variant])), avg)
            for k, value in enumerate(values):
                extra = int(rng.integers(EXTRA_LATE[0], EXTRA_LATE[1] + 1)) if rng.random() < LATE_SHARE else 0
                cw.series.setdefault((variant, k), {})[ts] = (value, ts + (1 + LAG + extra) * MINUTE)
        served += n_b
        now[0] = ts + MINUTE
        with contextlib.suppress(BackendError):  # committed or not, the next tick converges
            rollouts.tick(EP)
        state = rollouts.store.load(EP)
        assert state is not None
        if state.status == "held" or (state.terminal and not state.pending):
            break
    state = rollouts.store.load(EP)
    assert state is not None
    outcome = state.status if state.status != "paused" else "running"
    converged = all(abs(endpoint.weights_now.get(v, 0.0) - w) < 1e-3 for v, w in state.weights.items())
    return Run(outcome, state.reason, minute + 1, served, state.step, converged and not state.pending)
