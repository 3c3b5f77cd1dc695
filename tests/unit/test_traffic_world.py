"""A simulated endpoint for driving the real `Rollouts.tick` (in-memory store, the real CloudWatch adapter):
GetMetricData serves each datapoint only once it has arrived, and traffic follows the weights actually
applied on the endpoint, not the ones the state asks for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.common.events import RecordingPublisher
from functions.traffic.adapters.cloudwatch import NAMESPACE, CloudWatchMetrics
from functions.traffic.adapters.store import MemoryStateStore
from functions.traffic.config import load_config
from functions.traffic.ports import BackendBusy, normalise
from functions.traffic.service import Rollouts
from schemas.events import Event

T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
EP = "ep"


_DEFAULT_STAT = {"Invocations": "Sum", "Invocation5XXErrors": "Sum", "ModelLatency": "Average"}


@dataclass
class LateCloudWatch:
    """GetMetricData / DescribeAlarms over datapoints that each arrive at their own time. A datapoint is
    (variant, metric, statistic); an expression query reads the points put under its text (variant "*")."""

    clock: Callable[[], dt.datetime]
    points: list[tuple[dt.datetime, str, str, str, dt.datetime, float]] = field(default_factory=list)
    alarms: dict[str, str] = field(default_factory=dict)

    def put(
        self, variant: str, minute: dt.datetime, metric: str, value: float, arrives: dt.datetime, stat: str = ""
    ) -> None:
        self.points.append((arrives, variant, metric, stat or _DEFAULT_STAT.get(metric, "Sum"), minute, value))

    def get_metric_data(
        self, MetricDataQueries: list[dict[str, Any]], StartTime: dt.datetime, EndTime: dt.datetime, ScanBy: str,
        NextToken: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        now = self.clock()
        results = []
        for q in MetricDataQueries:
            if "Expression" in q:
                variant, name, stat = "*", q["Expression"], "Sum"
            else:
                metric = q["MetricStat"]["Metric"]
                assert metric["Namespace"] == NAMESPACE
                dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                assert dims["EndpointName"] == EP
                variant, name, stat = dims["VariantName"], metric["MetricName"], q["MetricStat"]["Stat"]
            rows = sorted(
                (ts, v) for arrives, var, m, st, ts, v in self.points
                if arrives <= now and var == variant and m == name and st == stat and StartTime <= ts < EndTime
            )  # fmt: skip
            results.append({"Id": q["Id"], "Timestamps": [t for t, _ in rows], "Values": [v for _, v in rows]})
        return {"MetricDataResults": results}

    def describe_alarms(self, AlarmNames: list[str]) -> dict[str, Any]:
        return {"MetricAlarms": [{"AlarmName": n, "StateValue": self.alarms.get(n, "OK")} for n in AlarmNames]}


@dataclass
class FlakyEndpoint:
    """The endpoint's weights; `fail(call_no)` decides which set_weights calls raise (BackendBusy)."""

    weights_now: dict[str, float] = field(default_factory=lambda: {"blue": 1.0, "green": 0.0})
    fail: Callable[[int], bool] = lambda _: False
    calls: int = 0
    before_read: Callable[[], None] | None = None

    def weights(self, endpoint: str) -> dict[str, float]:
        hook, self.before_read = self.before_read, None
        if hook is not None:
            hook()
        return dict(self.weights_now)

    def set_weights(self, endpoint: str, weights: dict[str, float]) -> dict[str, float]:
        self.calls += 1
        if self.fail(self.calls):
            raise BackendBusy(f"{endpoint} is Updating")
        self.weights_now = normalise(weights)
        return dict(self.weights_now)


class CheckingPublisher(RecordingPublisher):
    """Records, with each event, the weights the endpoint carried when it was published."""

    def __init__(self, endpoint: FlakyEndpoint) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.seen_weights: list[dict[str, float]] = []

    def publish(self, event: Event) -> None:
        self.seen_weights.append(dict(self.endpoint.weights_now))
        super().publish(event)


@dataclass
class World:
    seed: int = 0
    now: dt.datetime = T0
    minute: int = 0
    served: dict[str, float] = field(default_factory=lambda: {"blue": 0.0, "green": 0.0})
    served_minutes: dict[dt.datetime, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.cw = LateCloudWatch(self.clock)
        self.endpoint = FlakyEndpoint()
        self.store = MemoryStateStore()
        self.publisher = CheckingPublisher(self.endpoint)
        self.rollouts = Rollouts(
            self.store, self.endpoint, CloudWatchMetrics(self.cw), self.publisher, clock=self.clock
        )

    def clock(self) -> dt.datetime:
        return self.now

    def start(self, strategy: dict[str, Any], rollout_id: str = "r1", **extra: Any) -> None:
        raw = {"endpoint": EP, "champion": "blue", "challenger": "green", "strategy": strategy, **extra}
        self.rollouts.start(load_config(raw), rollout_id)

    def serve(
        self, rpm: int, error_rates: dict[str, float], *, latency: dict[str, float] | None = None,
        lateness: Callable[[str, str], int] = lambda variant, metric: 0, challenger_share: float = 1.0,
        p99: dict[str, float] | None = None, expression: Callable[[str, int], tuple[str, float]] | None = None,
    ) -> None:  # fmt: skip
        """One minute of traffic split by the endpoint's applied weights (the challenger gets `challenger_share`
        of its weight's share); each datapoint arrives `lateness(variant, metric)` minutes after the minute
        ends. Then the clock moves to the end of the minute."""
        ts = T0 + self.minute * MIN
        share = self.endpoint.weights_now.get("green", 0.0) * challenger_share
        n_b = int(self.rng.binomial(rpm, share))
        counts = {"blue": rpm - n_b, "green": n_b}
        latency = latency or {"blue": 20_000.0, "green": 20_000.0}
        for variant, n in counts.items():
            if n == 0:
                continue
            values = {"Invocations": float(n), "Invocation5XXErrors": float(self.rng.binomial(n, error_rates[variant])),
                      "ModelLatency": latency[variant] * float(self.rng.lognormal(0, 0.05))}  # fmt: skip
            for metric, value in values.items():
                self.cw.put(variant, ts, metric, value, ts + MIN + lateness(variant, metric) * MIN)
            if p99 is not None:  # ModelLatency's extended statistic
                self.cw.put(variant, ts, "ModelLatency", p99[variant], ts + MIN, stat="p99")
            if expression is not None:  # a user's metric-math query: (its text for this variant, its value)
                text, value = expression(variant, n)
                self.cw.put("*", ts, text, value, ts + MIN)
            self.served[variant] += n
        self.served_minutes[ts] = dict(counts)
        self.minute += 1
        self.now = T0 + self.minute * MIN

    def drive(self, minutes: int, rpm: int, error_rates: dict[str, float], **serve: Any) -> str:
        """Serve and tick minute by minute until a terminal decision; the last action (or 'running')."""
        for _ in range(minutes):
            self.serve(rpm, error_rates, **serve)
            decision = self.rollouts.tick(EP)
            if decision is not None and decision.action in ("promote", "rollback", "hold"):
                return decision.action
        return "running"


def test_the_simulated_cloudwatch_serves_a_datapoint_only_once_it_has_arrived() -> None:
    world = World()
    world.serve(100, {"blue": 0.0, "green": 0.0}, lateness=lambda variant, metric: 2 if metric == "Invocations" else 0)
    metrics = CloudWatchMetrics(world.cw)
    early = metrics.intervals(EP, ["blue", "green"], T0, T0 + 5 * MIN, {})
    assert early[0].variants["blue"].missing == frozenset({"invocations"}) and early[0].variants["blue"].errors == 0
    world.now = T0 + 3 * MIN
    late = metrics.intervals(EP, ["blue", "green"], T0, T0 + 5 * MIN, {})
    assert late[0].variants["blue"].invocations == 100 and late[0].variants["blue"].missing == frozenset()
