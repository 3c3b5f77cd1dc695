"""functions/traffic end to end on the embedded cloud: a SageMaker endpoint with two variants in moto,
per-variant metrics put into moto's CloudWatch with exact dimensions, state in DynamoDB, events on
EventBridge. moto never evaluates alarms, so alarms are driven with set_alarm_state."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from functions.common.events import RecordingPublisher
from functions.traffic.adapters.cloudwatch import NAMESPACE, CloudWatchMetrics
from functions.traffic.adapters.sagemaker import SageMakerBackend
from functions.traffic.adapters.store import DynamoDBStateStore
from functions.traffic.config import load_config
from functions.traffic.model import Interval, RolloutState
from functions.traffic.ports import ConcurrentUpdate, RolloutExists
from functions.traffic.service import Rollouts, tick_all
from jobs.embedded_cloud import EmbeddedCloud
from schemas.events import RolloutPromoted, RolloutRolledBack, RolloutStepAdvanced
from schemas.naming import ROLLOUT_TABLE_KEYS, Names, variant_alarm

NAMES = Names("tidewater", "dev")
ENDPOINT = NAMES.endpoint("fraud")
# Real time minus a few hours: CloudWatch accepts back-dated datapoints, and the test owns the clock.
T0 = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=6)
MIN = dt.timedelta(minutes=1)
BUSINESS_NAMESPACE = "tidewater/fraud"


def create_endpoint(sm: Any, name: str = ENDPOINT) -> None:
    sm.create_model(
        ModelName=f"{name}-m", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm", PrimaryContainer={"Image": "img"}
    )
    variants = [
        {"VariantName": v, "ModelName": f"{name}-m", "InitialInstanceCount": n, "InstanceType": "ml.m5.large",
         "InitialVariantWeight": w}
        for v, n, w in (("blue", 2, 1.0), ("green", 1, 0.0))
    ]  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName=f"{name}-c", ProductionVariants=variants)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")


def create_table(db: Any, name: str = NAMES.rollout_table) -> None:
    pk, sk = ROLLOUT_TABLE_KEYS
    db.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"}, {"AttributeName": sk, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass
class Clock:
    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class World:
    cloud: EmbeddedCloud
    clock: Clock
    publisher: RecordingPublisher
    minute: int = 0
    served: dict[str, float] = field(default_factory=dict)

    def rollouts(self) -> Rollouts:
        """A fresh service over the same cloud, as a new function instance would build it."""
        return Rollouts(
            store=DynamoDBStateStore(self.cloud.client("dynamodb"), NAMES.rollout_table),
            backend=SageMakerBackend(self.cloud.client("sagemaker")),
            metrics=CloudWatchMetrics(self.cloud.client("cloudwatch")),
            publisher=self.publisher,
            clock=self.clock,
        )

    def weights(self) -> dict[str, float]:
        return SageMakerBackend(self.cloud.client("sagemaker")).weights(ENDPOINT)

    def serve_minute(
        self, rpm: int, error_rates: dict[str, float], conversions: dict[str, float] | None = None
    ) -> None:
        """Put one minute of per-variant metrics, split by the endpoint's current weights (exact counts)."""
        cw = self.cloud.client("cloudwatch")
        ts = T0 + self.minute * MIN
        for variant, weight in self.weights().items():
            n = round(rpm * weight)
            if n == 0:
                continue
            dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]
            data = [
                {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": ts, "Value": n},
                {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": ts,
                 "Value": round(n * error_rates[variant])},
                {"MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": ts,
                 "Value": 20_000.0 + (self.minute % 3) * 500},
            ]  # fmt: skip
            cw.put_metric_data(Namespace=NAMESPACE, MetricData=data)
            if conversions is not None:
                conv = {"MetricName": "Conversions", "Dimensions": dims, "Timestamp": ts,
                        "Value": round(n * conversions[variant])}  # fmt: skip
                cw.put_metric_data(Namespace=BUSINESS_NAMESPACE, MetricData=[conv])
            self.served[variant] = self.served.get(variant, 0.0) + n
        self.minute += 1
        self.clock.now = T0 + (self.minute + 2) * MIN  # the default metrics lag is 2 minutes

    def drive(
        self, rollouts: Rollouts, error_rates: dict[str, float], minutes: int, rpm: int = 2000,
        conversions: dict[str, float] | None = None,
    ) -> str | None:  # fmt: skip
        for _ in range(minutes):
            self.serve_minute(rpm, error_rates, conversions)
            decision = rollouts.tick(ENDPOINT)
            if decision is None:
                return None
            if decision.action in ("promote", "rollback", "hold"):
                return decision.action
        return "running"


@pytest.fixture
def world(cloud: EmbeddedCloud) -> Iterator[World]:
    create_endpoint(cloud.client("sagemaker"))
    create_table(cloud.client("dynamodb"))
    yield World(cloud, Clock(), RecordingPublisher())


def rollout_config(strategy: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"endpoint": ENDPOINT, "champion": "blue", "challenger": "green", "strategy": strategy, **extra}


CANARY = {"kind": "canary", "steps": [0.2, 0.5, 1.0], "bake_minutes": 2, "min_requests": 200}
LINEAR = {"kind": "linear", "increment": 0.25, "bake_minutes": 2, "min_requests": 200}
HEALTHY = {"blue": 0.05, "green": 0.05}
FAILING = {"blue": 0.05, "green": 0.20}


@pytest.mark.parametrize("strategy", [CANARY, LINEAR], ids=["canary", "linear"])
def test_healthy_challenger_is_promoted(world: World, strategy: dict[str, Any]) -> None:
    rollouts = world.rollouts()
    state = rollouts.start(load_config(rollout_config(strategy)), rollout_id="r1")
    assert world.weights() == pytest.approx({"blue": 1 - state.weights["green"], "green": state.weights["green"]})
    assert world.drive(rollouts, HEALTHY, 60) == "promote"
    assert world.weights() == {"blue": 0.0, "green": 1.0}
    sm = world.cloud.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
    assert {v["VariantName"]: v["CurrentInstanceCount"] for v in sm} == {"blue": 2, "green": 1}  # counts kept
    kinds = [type(e) for e in world.publisher.events]
    steps = len(load_config(rollout_config(strategy)).strategy.weights()) - 2  # type: ignore[union-attr]
    assert kinds == [RolloutStepAdvanced] * steps + [RolloutPromoted]
    final, audit = rollouts.status(ENDPOINT)
    assert final is not None and final.status == "promoted"
    assert len(audit) == final.decisions and audit[-1]["action"] == "promote"
    assert audit[-1]["statistics"]["guardrails"]["error_rate"]["verdict"] == "non_inferior"
    assert all(r["statistics"]["guardrails"] for r in audit)  # every decision carries its statistics


@pytest.mark.parametrize("strategy", [CANARY, LINEAR], ids=["canary", "linear"])
def test_failing_challenger_is_rolled_back(world: World, strategy: dict[str, Any]) -> None:
    rollouts = world.rollouts()
    rollouts.start(load_config(rollout_config(strategy)), rollout_id="r1")
    assert world.drive(rollouts, FAILING, 60) == "rollback"
    assert world.weights() == {"blue": 1.0, "green": 0.0}
    event = world.publisher.events[-1]
    assert isinstance(event, RolloutRolledBack) and "error_rate" in event.reason
    assert event.statistics["guardrails"]["error_rate"]["verdict"] == "harm"
    assert world.served["green"] < 1500  # caught before the challenger saw much traffic


def test_alarm_in_alarm_rolls_back_at_once(world: World) -> None:
    cw = world.cloud.client("cloudwatch")
    alarm = variant_alarm(ENDPOINT, "green", "5xx-rate")
    cw.put_metric_alarm(
        AlarmName=alarm, Namespace=NAMESPACE, MetricName="Invocation5XXErrors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "green"}],
    )  # fmt: skip
    rollouts = world.rollouts()
    rollouts.start(load_config(rollout_config(CANARY, alarms=[alarm])), rollout_id="r1")
    assert world.drive(rollouts, HEALTHY, 1) == "running", world.publisher.events
    cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
    assert world.drive(rollouts, HEALTHY, 1) == "rollback"
    assert world.weights()["green"] == 0.0 and alarm in world.publisher.events[-1].reason


def test_two_concurrent_ticks_cannot_both_advance(world: World) -> None:
    rollouts = world.rollouts()
    rollouts.start(load_config(rollout_config(CANARY)), rollout_id="r1")
    world.drive(rollouts, HEALTHY, 1)
    for _ in range(6):
        world.serve_minute(2000, HEALTHY)  # enough evidence that the next tick advances
    barrier = threading.Barrier(2)

    class Racing(CloudWatchMetrics):
        def intervals(self, *args: Any, **kwargs: Any) -> list[Interval]:
            got = super().intervals(*args, **kwargs)
            barrier.wait(timeout=20)  # both have loaded the same version before either commits
            return got

    results: list[str] = []

    def tick() -> None:
        service = world.rollouts()
        service.metrics = Racing(world.cloud.client("cloudwatch"))
        try:
            decision = service.tick(ENDPOINT)
            results.append(decision.action if decision else "none")
        except ConcurrentUpdate:
            results.append("lost")

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["advance", "lost"]
    state = rollouts.store.load(ENDPOINT)
    assert state is not None and state.step == 1 and world.weights()["green"] == 0.5
    assert [type(e) for e in world.publisher.events] == [RolloutStepAdvanced]


def test_abort_returns_traffic_and_a_second_rollout_can_start(world: World) -> None:
    rollouts = world.rollouts()
    config = load_config(rollout_config(CANARY))
    rollouts.start(config, rollout_id="r1")
    with pytest.raises(RolloutExists):
        rollouts.start(config, rollout_id="r2")
    state = rollouts.abort(ENDPOINT, "operator says no")
    assert state.status == "aborted" and world.weights() == {"blue": 1.0, "green": 0.0}
    assert isinstance(world.publisher.events[-1], RolloutRolledBack)
    assert rollouts.tick(ENDPOINT) is None  # nothing runs after an abort
    assert rollouts.start(config, rollout_id="r2").rollout_id == "r2"


def test_a_crash_between_commit_and_apply_is_repaired_on_the_next_tick(world: World) -> None:
    rollouts = world.rollouts()
    rollouts.start(load_config(rollout_config(CANARY)), rollout_id="r1")
    SageMakerBackend(world.cloud.client("sagemaker")).set_weights(ENDPOINT, {"blue": 1.0, "green": 0.0})
    world.drive(rollouts, HEALTHY, 1)
    assert world.weights()["green"] == pytest.approx(0.2)


def test_events_reach_the_bus_and_the_handler_ticks_every_running_rollout(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.traffic import handler

    events, sqs = world.cloud.client("events"), world.cloud.client("sqs")
    events.create_event_bus(Name=NAMES.event_bus)
    url = sqs.create_queue(QueueName="rollouts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="r", EventBusName=NAMES.event_bus, EventPattern=json.dumps({"source": ["tidewater"]}))
    events.put_targets(Rule="r", EventBusName=NAMES.event_bus, Targets=[{"Id": "q", "Arn": arn}])
    world.rollouts().start(load_config(rollout_config(CANARY, alarms=["a1"])), rollout_id="r1")
    world.cloud.client("cloudwatch").put_metric_alarm(
        AlarmName="a1", Namespace=NAMESPACE, MetricName="Invocation5XXErrors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    world.cloud.client("cloudwatch").set_alarm_state(AlarmName="a1", StateValue="ALARM", StateReason="t")
    handler.rollouts.cache_clear()
    monkeypatch.setenv("TIDE_STACK", "dev")
    scheduled = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
                 "time": T0.isoformat(), "region": "us-east-1", "resources": [], "detail": {}}  # fmt: skip
    try:
        out = handler.lambda_handler(scheduled, LambdaContextStub())
    finally:
        handler.rollouts.cache_clear()
    assert out == {ENDPOINT: "rollback"}
    body = json.loads(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"])
    assert body["detail-type"] == "RolloutRolledBack" and body["detail"]["rollout_id"] == "r1"
    assert tick_all(world.rollouts()) == {}  # nothing is running any more


class LambdaContextStub:
    function_name = "tidewater-dev-traffic"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tidewater-dev-traffic"
    aws_request_id = "req-1"


def test_state_survives_a_restart_mid_rollout(world: World) -> None:
    first = world.rollouts()
    first.start(load_config(rollout_config(CANARY)), rollout_id="r1")
    world.drive(first, HEALTHY, 4)
    before = first.store.load(ENDPOINT)
    assert before is not None and before.evidence
    second = world.rollouts()  # a new instance: nothing in memory
    after = second.store.load(ENDPOINT)
    assert after == before and isinstance(after, RolloutState)
    assert world.drive(second, HEALTHY, 60) == "promote"


def test_instance_counts_follow_the_weights_when_asked(world: World) -> None:
    """The fleet for all traffic is the endpoint config's largest initial count (blue's 2): each variant gets
    ceil(weight x 2) instances, at least 1."""
    sm = world.cloud.client("sagemaker")

    def counts() -> dict[str, int]:
        variants = sm.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
        return {v["VariantName"]: v["DesiredInstanceCount"] for v in variants}

    rollouts = world.rollouts()
    rollouts.start(load_config(rollout_config(CANARY, capacity="follow_weights")), rollout_id="r1")
    seen = [(world.weights()["green"], counts())]
    for _ in range(60):
        world.serve_minute(2000, HEALTHY)
        decision = rollouts.tick(ENDPOINT)
        if decision is not None and decision.changes_traffic:
            seen.append((world.weights()["green"], counts()))
        if decision is not None and decision.action == "promote":
            break
    assert seen == [(0.2, {"blue": 2, "green": 1}), (0.5, {"blue": 1, "green": 1}), (1.0, {"blue": 1, "green": 2})]
    state = rollouts.store.load(ENDPOINT)
    assert state is not None and state.status == "promoted" and not state.pending
