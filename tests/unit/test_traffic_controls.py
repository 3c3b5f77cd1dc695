"""Operator controls, the low-traffic estimate and plan, the final bake at 100%, capacity that follows the
weights, and guardrails beyond 5XX and mean latency, through `Rollouts` and the real CloudWatch adapter
(tests/unit/test_traffic_world)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.traffic.config import ConfigError
from functions.traffic.judge import rate_grid
from functions.traffic.machine import TransitionError
from functions.traffic.planning import PlanError, estimate_lines, events_needed, status_estimate
from schemas.events import RolloutPromoted, RolloutRolledBack, RolloutStepAdvanced
from tests.unit.test_traffic_service import CANARY, CHAMPION_ONLY, HEALTHY, _converged
from tests.unit.test_traffic_world import EP, World


def test_operator_controls_through_the_service() -> None:
    world = World()
    world.start(CANARY)
    world.drive(2, 1000, HEALTHY)
    state = world.rollouts.pause(EP, "checking a dashboard", "bo")
    assert state.status == "paused"
    world.drive(10, 1000, HEALTHY)
    assert world.store.load(EP).status == "paused" and world.endpoint.weights_now["green"] == pytest.approx(0.2)  # type: ignore[union-attr]
    with pytest.raises(TransitionError, match="it is paused"):
        world.rollouts.pause(EP, "twice", "bo")
    state = world.rollouts.resume(EP, "looks fine", "bo")
    assert state.status == "running" and state.extra_minutes >= 10
    state = world.rollouts.promote(EP, "hotfix", "carol")
    assert state.status == "promoted" and world.endpoint.weights_now == {"blue": 0.0, "green": 1.0}
    audit = world.store.audit(EP, "r1")
    assert audit[-1]["actor"] == "carol" and "hotfix (by carol)" in audit[-1]["reason"]
    assert isinstance(world.publisher.events[-1], RolloutPromoted)
    with pytest.raises(TransitionError, match="cannot retry"):
        world.rollouts.retry(EP, "again", "bo")
    _converged(world)


# Low traffic: the estimate in `status` and the plan at `start`.
def _warm(world: World, minutes: int, rpm: int, rate: float) -> None:
    for _ in range(minutes):
        world.serve(rpm, {"blue": rate, "green": rate})


def test_a_quiet_endpoint_is_refused_at_start_with_the_estimate() -> None:
    world = World()
    _warm(world, 70, 100, 0.001)  # (at 200 req/min the judge now needs ~330 min: within the 360)
    with pytest.raises(PlanError, match=r"100 req/min and a 0\.1\d% error rate the judge needs ~\d+ min"):
        world.start(CANARY, judge={"min_detectable_ratio": 2.0})
    assert world.store.load(EP) is None and world.endpoint.calls == 0  # nothing written, nothing applied
    busy = World()
    _warm(busy, 70, 2000, 0.01)
    busy.start(CANARY, judge={"min_detectable_ratio": 2.0})
    assert busy.store.load(EP) is not None
    silent = World()
    with pytest.raises(PlanError, match="no traffic"):
        silent.start(CANARY, judge={"min_detectable_ratio": 2.0})


def test_status_says_how_much_more_traffic_the_judge_needs_and_what_the_timeout_will_do() -> None:
    world = World()
    world.start(CANARY, max_duration_minutes=120)
    world.drive(30, 200, {"blue": 0.002, "green": 0.002})
    state = world.store.load(EP)
    assert state is not None and state.status == "running"
    estimate = status_estimate(state, world.now)
    g = estimate["guardrails"]["error_rate"]
    assert g["more_events"] > 20 and g["more_requests"] > g["more_events"] * 100
    assert estimate["minutes_needed"] > estimate["minutes_left"]
    lines = "\n".join(estimate_lines(estimate))
    assert "more compared errors" in lines and "the rollout will roll back" in lines, lines


def test_the_estimate_is_of_the_right_size() -> None:
    """The judge's expected events at 500 req/min and 1% errors, as minutes, against the median minute at
    which 30 simulated healthy rollouts leave their first step (settled minutes only)."""
    ones = {"blue": 0.01, "green": 0.01}
    theta = rate_grid(1.0)
    events = events_needed(np.zeros_like(theta), theta, 1.0, 0.05, 0.2, 1.0, harm=False)
    predicted = events / (500 * 0.01)
    taken = []
    for seed in range(30):
        world = World(seed=seed)
        world.start({**CANARY, "bake_minutes": 1, "min_requests": 1})
        for _ in range(200):
            world.serve(500, ones)
            world.rollouts.tick(EP)
            if world.store.load(EP).step > 0:  # type: ignore[union-attr]
                break
        taken.append(world.minute - 3)  # the last 3 minutes had not settled
    assert predicted / 1.5 <= float(np.median(taken)) <= predicted * 1.5, (predicted, sorted(taken))


def test_capacity_following_weights_is_refused_on_a_backend_without_instance_counts() -> None:
    world = World()
    with pytest.raises(ConfigError, match="follow_weights needs a backend with instance counts"):
        world.start(CANARY, capacity="follow_weights")
    assert world.store.load(EP) is None


def test_a_final_bake_at_100_percent_precedes_the_promotion_and_its_alarm_rolls_back() -> None:
    world = World()
    world.start({**CANARY, "final_bake_minutes": 15}, alarms=["green-5xx"])
    for _ in range(120):
        world.serve(2000, HEALTHY)
        world.rollouts.tick(EP)
        if world.endpoint.weights_now["green"] == 1.0:
            break
    state = world.store.load(EP)
    assert state is not None and state.status == "running" and "baking at 100%" in state.reason
    assert world.drive(10, 2000, HEALTHY) == "running"  # still baking, all traffic on the challenger
    world.cw.alarms["green-5xx"] = "ALARM"
    assert world.drive(1, 2000, HEALTHY) == "rollback" and world.endpoint.weights_now == CHAMPION_ONLY
    calm = World()
    calm.start({**CANARY, "final_bake_minutes": 15})
    assert calm.drive(200, 2000, HEALTHY) == "promote"
    kinds = [type(e) for e in calm.publisher.events]
    assert kinds == [RolloutStepAdvanced, RolloutStepAdvanced, RolloutPromoted]
    audit = calm.store.audit(EP, "r1")
    at_full = next(r["at"] for r in audit if r["weights"]["green"] == 1.0)
    assert audit[-1]["action"] == "promote" and audit[-1]["at"] >= at_full
    assert (dt.datetime.fromisoformat(audit[-1]["at"]) - dt.datetime.fromisoformat(at_full)).total_seconds() >= 15 * 60


# Guardrails beyond 5XX and mean latency: p99 (CloudWatch's extended statistic) and any named query.
def test_a_p99_latency_guardrail_rolls_back_a_challenger_with_a_slow_tail() -> None:
    world = World()
    p99 = {"name": "p99", "kind": "mean", "metric": "latency_p99", "margin": 0.2}
    world.start(CANARY, judge={"guardrails": [p99]})
    slow_tail = {"blue": 80_000.0, "green": 120_000.0}  # same mean latency, the challenger's p99 is 1.5x
    assert world.drive(60, 1000, HEALTHY, p99=slow_tail) == "rollback"
    state = world.store.load(EP)
    assert state is not None and "significantly worse on p99" in state.reason
    healthy = World()
    healthy.start(CANARY, judge={"guardrails": [p99]})
    same = {"blue": 80_000.0, "green": 80_000.0}
    assert healthy.drive(200, 1000, HEALTHY, p99=same) == "promote"


def test_a_guardrail_on_a_named_metric_math_query() -> None:
    """A business metric given as a CloudWatch expression ($endpoint, $variant substituted per variant),
    judged as a higher-is-better rate (e.g. conversions), rolls back a challenger that converts half as often."""
    expression = "SUM(SEARCH('{tidewater/shop,EndpointName,VariantName} Paid $endpoint $variant', 'Sum', 60))"
    rates = {"blue": 0.10, "green": 0.05}

    def paid(variant: str, n: int) -> tuple[str, float]:
        return expression.replace("$endpoint", EP).replace("$variant", variant), float(round(n * rates[variant]))

    world = World()
    world.start(
        CANARY, business_metrics={"paid": {"expression": expression}},
        judge={"guardrails": [{"name": "paid", "kind": "rate", "metric": "paid", "lower_is_better": False,
                               "margin": 0.2}]},
    )  # fmt: skip
    assert world.drive(60, 1000, HEALTHY, expression=paid) == "rollback"
    state = world.store.load(EP)
    assert state is not None and "significantly worse on paid" in state.reason


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=20), st.text(max_size=40))
def test_any_actor_and_reason_are_recorded_verbatim_or_refused_with_a_clear_error(actor: str, reason: str) -> None:
    world = World()
    world.start(CANARY)
    if not actor.strip() or not reason.strip():
        with pytest.raises(TransitionError, match="needs who"):
            world.rollouts.pause(EP, reason, actor)
        assert world.store.load(EP).status == "running"  # type: ignore[union-attr]
        return
    state = world.rollouts.pause(EP, reason, actor)
    assert state.status == "paused"
    record = world.store.audit(EP, "r1")[-1]
    assert record["actor"] == actor and record["reason"] == f"paused: {reason} (by {actor})"


def test_post_promotion_analysis_rolls_back_harm_after_the_promotion_and_completes_otherwise() -> None:
    world = World()
    world.start(CANARY, post_promotion_minutes=30)
    assert world.drive(200, 2000, HEALTHY) == "promote"
    state = world.store.load(EP)
    assert state is not None and state.status == "verifying" and world.endpoint.weights_now["green"] == 1.0
    assert isinstance(world.publisher.events[-1], RolloutPromoted)
    assert world.drive(5, 2000, {"blue": 0.02, "green": 0.2}) == "rollback"  # 10x the old champion's rate
    state = world.store.load(EP)
    assert state is not None and state.status == "rolled_back" and "after promotion" in state.reason
    assert world.endpoint.weights_now == CHAMPION_ONLY
    assert isinstance(world.publisher.events[-1], RolloutRolledBack)
    calm = World()
    calm.start(CANARY, post_promotion_minutes=30)
    assert calm.drive(200, 2000, HEALTHY) == "promote"
    for _ in range(40):
        calm.serve(2000, HEALTHY)
        calm.rollouts.tick(EP)
    state = calm.store.load(EP)
    assert state is not None and state.status == "promoted" and calm.endpoint.weights_now["green"] == 1.0
    assert [r["action"] for r in calm.store.audit(EP, "r1")][-1] == "complete"
    assert [type(e) for e in calm.publisher.events][-1] is RolloutPromoted  # one promotion event, no other
