"""The seven correctness items of issue 13, each through `Rollouts.tick` / the service and the real CloudWatch
adapter over a GetMetricData that serves datapoints only once they have arrived (tests/unit/test_traffic_world)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.traffic.ports import BackendError, ConcurrentUpdate, RolloutIdTaken
from functions.traffic.service import tick_all
from schemas.events import RolloutPromoted, RolloutRolledBack, RolloutStepAdvanced
from tests.unit.test_traffic_world import EP, World

CANARY = {"kind": "canary", "steps": [0.2, 0.5, 1.0], "bake_minutes": 3, "min_requests": 200}
HEALTHY = {"blue": 0.02, "green": 0.02}
FAILING = {"blue": 0.02, "green": 0.2}
CHAMPION_ONLY = {"blue": 1.0, "green": 0.0}


def _converged(world: World) -> None:
    state = world.store.load(EP)
    assert state is not None and not state.pending
    assert world.endpoint.weights_now == pytest.approx(state.weights)
    # every event went out only once the endpoint carried the weights it announces
    for event, seen in zip(world.publisher.events, world.publisher.seen_weights, strict=True):
        assert seen == pytest.approx(event.weights)  # type: ignore[attr-defined]


# 1. A tick that loses the race applies only the state it re-reads.
def test_a_tick_that_loses_to_an_abort_leaves_the_aborted_weights() -> None:
    world = World()
    world.start(CANARY)
    world.drive(2, 1000, HEALTHY)
    # Between this tick's load and its first look at the endpoint, an operator aborts (and applies it).
    world.endpoint.before_read = lambda: world.rollouts.abort(EP, "pager", "ops")
    world.serve(1000, HEALTHY)
    with contextlib.suppress(ConcurrentUpdate):
        world.rollouts.tick(EP)
    assert world.endpoint.weights_now == CHAMPION_ONLY
    assert tick_all(world.rollouts) == {}  # nothing left to repair, and nothing to run
    _converged(world)
    assert [type(e) for e in world.publisher.events] == [RolloutRolledBack]


def test_a_tick_that_loses_to_a_rollback_committed_during_its_evaluation_applies_the_rollback() -> None:
    world = World()
    world.start(CANARY, alarms=["green-5xx"])
    world.drive(2, 1000, HEALTHY)
    loser = World.__new__(World)  # a second invocation over the same cloud: same store, endpoint, metrics
    loser.__dict__.update(world.__dict__)
    original = world.cw.get_metric_data

    def racing(**kwargs: Any) -> dict[str, Any]:
        world.cw.get_metric_data = original  # type: ignore[method-assign]
        world.cw.alarms["green-5xx"] = "ALARM"
        assert world.rollouts.tick(EP).action == "rollback"  # type: ignore[union-attr]  # the winner
        world.cw.alarms["green-5xx"] = "OK"
        return original(**kwargs)

    world.cw.get_metric_data = racing  # type: ignore[method-assign]
    world.serve(1000, HEALTHY)
    with pytest.raises(ConcurrentUpdate):
        loser.rollouts.tick(EP)
    assert world.endpoint.weights_now == CHAMPION_ONLY
    _converged(world)


# 2. Every committed state converges, terminal ones included; events only once the weights are confirmed.
def test_a_rollback_whose_apply_fails_is_applied_by_the_next_tick_and_announced_only_then() -> None:
    world = World()
    world.start(CANARY, alarms=["green-5xx"])
    world.drive(2, 1000, HEALTHY)
    world.cw.alarms["green-5xx"] = "ALARM"
    world.endpoint.fail = lambda call: True
    world.serve(1000, HEALTHY)
    with pytest.raises(BackendError):
        world.rollouts.tick(EP)
    state = world.store.load(EP)
    assert state is not None and state.status == "rolled_back" and state.pending
    assert world.endpoint.weights_now["green"] == pytest.approx(0.2) and world.publisher.events == []
    assert world.store.active() == [EP]
    world.endpoint.fail = lambda call: False
    assert tick_all(world.rollouts) == {EP: "no running rollout"}
    assert world.endpoint.weights_now == CHAMPION_ONLY
    assert [type(e) for e in world.publisher.events] == [RolloutRolledBack]
    _converged(world)
    assert world.store.active() == []


def test_an_abort_whose_apply_fails_can_be_repeated() -> None:
    world = World()
    world.start(CANARY)
    world.endpoint.fail = lambda call: True
    with pytest.raises(BackendError):
        world.rollouts.abort(EP, "pager", "ops")
    assert world.publisher.events == []
    world.endpoint.fail = lambda call: False
    state = world.rollouts.abort(EP, "pager again", "ops")  # no TransitionError: it converges the abort
    assert state.status == "aborted" and world.endpoint.weights_now == CHAMPION_ONLY
    assert [type(e) for e in world.publisher.events] == [RolloutRolledBack]
    _converged(world)
    assert len(world.store.audit(EP, "r1")) == 1  # one abort decision, however often it was asked for


def _scenario(fail_at: int | None) -> World:
    """Start, advance, promote, with the fail_at-th endpoint update failing; then tick until converged."""
    world = World()
    world.endpoint.fail = lambda call: call == fail_at
    with contextlib.suppress(BackendError):
        world.start(CANARY)
    for _ in range(40):
        world.serve(2000, HEALTHY)
        with contextlib.suppress(BackendError):
            world.rollouts.tick(EP)
        state = world.store.load(EP)
        if state is not None and state.terminal and not state.pending:
            break
    return world


CALLS = _scenario(None).endpoint.calls


@pytest.mark.parametrize("fail_at", range(1, CALLS + 1))
def test_a_failed_endpoint_update_at_any_call_ends_converged(fail_at: int) -> None:
    world = _scenario(fail_at)
    state = world.store.load(EP)
    assert state is not None and state.status == "promoted"
    _converged(world)
    kinds = [type(e) for e in world.publisher.events]
    assert kinds == [RolloutStepAdvanced, RolloutPromoted]  # each once, in order, after its weights


class InjectedFault(ConnectionError):
    """A write that did not happen (network, throttling, a crash of the invocation at that point)."""


def _writes_scenario(fail_at: int | None) -> tuple[World, int]:
    """Start, advance, promote with the fail_at-th write of any kind failing (state create / commit, endpoint
    update, event publish); every tick after it runs normally."""
    world = World()
    writes = [0]

    def faulty(write: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            writes[0] += 1
            if writes[0] == fail_at:
                raise InjectedFault(f"write {fail_at} failed")
            return write(*args, **kwargs)

        return wrapped

    world.store.create = faulty(world.store.create)  # type: ignore[method-assign]
    world.store.commit = faulty(world.store.commit)  # type: ignore[method-assign]
    world.endpoint.set_weights = faulty(world.endpoint.set_weights)  # type: ignore[method-assign]
    world.publisher.publish = faulty(world.publisher.publish)  # type: ignore[method-assign]
    with contextlib.suppress(InjectedFault):
        world.start(CANARY)
    if world.store.load(EP) is None:  # the create itself failed: nothing was written, the operator retries
        world.start(CANARY)
    for _ in range(40):
        world.serve(2000, HEALTHY)
        with contextlib.suppress(InjectedFault):
            world.rollouts.tick(EP)
        state = world.store.load(EP)
        if state is not None and state.terminal and not state.pending:
            break
    return world, writes[0]


WRITES = _writes_scenario(None)[1]


@pytest.mark.parametrize("fail_at", range(1, WRITES + 1))
def test_a_failed_write_of_any_kind_at_any_point_ends_converged_with_every_event_out(fail_at: int) -> None:
    world, _ = _writes_scenario(fail_at)
    state = world.store.load(EP)
    assert state is not None and state.status == "promoted"
    _converged(world)  # endpoint == committed state; each event published only while its weights were applied
    kinds = [type(e) for e in world.publisher.events]
    deduped = [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] is not k]  # at least once: a repeat
    assert deduped == [RolloutStepAdvanced, RolloutPromoted]  # when the outbox clear was the failed write
    audit = world.store.audit(EP, "r1")
    assert [r["action"] for r in audit if r["action"] != "wait"] == ["advance", "promote"]


# 3. Late metrics: a sliding window re-reads recent minutes; harm acts on arrived data, promotion on settled.
def test_late_5xx_counts_are_read_when_they_arrive_and_roll_back() -> None:
    world = World()
    world.start(CANARY)
    late_errors = lambda variant, metric: 3 if metric == "Invocation5XXErrors" else 0  # noqa: E731
    assert world.drive(60, 1000, FAILING, lateness=late_errors) == "rollback"
    rollback = world.store.audit(EP, "r1")[-1]
    assert rollback["statistics"]["guardrails"]["error_rate"]["challenger_events"] > 0


def test_late_request_counts_do_not_hold_a_healthy_rollout() -> None:
    world = World()
    world.start(CANARY)
    late_requests = lambda variant, metric: 3 if metric == "Invocations" else 0  # noqa: E731
    assert world.drive(120, 1000, HEALTHY, lateness=late_requests) == "promote"


def test_harm_is_acted_on_before_the_minutes_settle() -> None:
    world = World()
    world.start(CANARY, settle_minutes=30)
    assert world.drive(20, 1000, {"blue": 0.01, "green": 0.5}) == "rollback"
    assert world.minute < 30  # no minute had settled: harm was seen on the datapoints that had arrived
    state = world.store.load(EP)
    assert state is not None and state.evidence["error_rate"]["n_challenger"] == 0  # nothing folded yet


def test_promotion_waits_for_settled_minutes() -> None:
    world = World()
    world.start({**CANARY, "steps": [0.5, 1.0]}, settle_minutes=6)
    assert world.drive(120, 2000, HEALTHY) == "promote"
    audit = world.store.audit(EP, "r1")
    first_settled = next(
        i for i, r in enumerate(audit) if r["statistics"]["guardrails"]["error_rate"]["challenger_requests"]
    )
    assert first_settled >= 6


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=6, max_size=6), st.integers(0, 10_000))
def test_no_minute_is_counted_twice_or_lost_however_late_it_arrives(delays: list[int], seed: int) -> None:
    metrics = ["Invocations", "Invocation5XXErrors", "ModelLatency"]

    def run(delays: list[int]) -> World:
        world = World(seed=seed)
        world.start({**CANARY, "bake_minutes": 500})
        lateness = lambda variant, metric: delays[metrics.index(metric) + 3 * (variant == "green")]  # noqa: E731
        for _ in range(15):
            world.serve(500, HEALTHY, lateness=lateness)
            world.rollouts.tick(EP)
        return world

    world = run(delays)
    state = world.store.load(EP)
    assert state is not None
    if state.status != "running":
        # A healthy challenger is rolled back by chance at most alpha of the time (the same traffic with no
        # lateness at all is rolled back too); lateness itself must never look like harm.
        on_time = run([0] * 6).store.load(EP)
        assert on_time is not None and on_time.status == state.status, "late data alone caused the rollback"
        return
    settled = [m for m in world.served_minutes if m < state.observed_until]
    for variant in ("blue", "green"):
        expected = sum(world.served_minutes[m][variant] for m in settled)
        assert state.totals.get(variant, {}).get("requests", 0.0) == expected


# 4. A held rollout stays watched.
def test_alarms_and_harm_still_roll_back_a_held_rollout() -> None:
    world = World()
    world.start({**CANARY, "min_requests": 10**9}, alarms=["green-5xx"], max_duration_minutes=5, on_timeout="hold")
    assert world.drive(20, 1000, HEALTHY) == "hold"
    held = world.endpoint.weights_now
    assert held["green"] == pytest.approx(0.2)
    world.cw.alarms["green-5xx"] = "ALARM"
    world.serve(1000, HEALTHY)
    decision = world.rollouts.tick(EP)
    assert decision is not None and decision.action == "rollback" and world.endpoint.weights_now == CHAMPION_ONLY
    world2 = World()
    world2.start({**CANARY, "min_requests": 10**9}, max_duration_minutes=5, on_timeout="hold")
    assert world2.drive(20, 1000, HEALTHY) == "hold"
    assert world2.drive(30, 1000, {"blue": 0.01, "green": 0.3}) == "rollback"
    assert world2.endpoint.weights_now == CHAMPION_ONLY


# 5. Negative latency holds with a reason.
def test_negative_latency_holds_the_rollout_with_the_reason() -> None:
    world = World()
    world.start(CANARY)
    assert world.drive(10, 1000, HEALTHY, latency={"blue": 20_000.0, "green": -5.0}) == "hold"
    state = world.store.load(EP)
    assert state is not None and state.status == "held" and "latency must be finite and >= 0" in state.reason


# 6. A used rollout id is refused at start.
def test_a_rollout_id_with_an_audit_trail_is_refused_at_start() -> None:
    world = World()
    world.start(CANARY)
    world.drive(2, 1000, HEALTHY)
    world.rollouts.abort(EP, "done", "ops")
    with pytest.raises(RolloutIdTaken, match="'r1' was already used"):
        world.start(CANARY, "r1")
    world.start(CANARY, "r2")  # a fresh id is fine


# 7. Sample-ratio mismatch for every strategy that splits traffic.
@pytest.mark.parametrize(
    "strategy",
    [CANARY, {"kind": "linear", "increment": 0.25, "bake_minutes": 3, "min_requests": 200},
     {"kind": "blue_green", "bake_minutes": 30}],
    ids=["canary", "linear", "blue_green"],
)  # fmt: skip
def test_a_challenger_getting_half_its_share_holds_with_the_reason(strategy: dict[str, Any]) -> None:
    world = World()
    world.start(strategy)
    assert world.drive(30, 1000, HEALTHY, challenger_share=0.5) == "hold"
    state = world.store.load(EP)
    assert state is not None and "sample ratio mismatch" in state.reason


def test_a_correct_split_never_trips_the_sample_ratio_check() -> None:
    world = World(seed=3)
    world.start(CANARY)
    assert world.drive(120, 1000, HEALTHY) == "promote"


def test_a_minute_missing_a_count_at_its_settle_time_is_waited_for_not_held() -> None:
    """The champion's request count arrives 6 minutes late, after its 5XX count and after the settle delay:
    read as 0 it would make the minute impossible (more errors than requests) and hold the rollout."""
    world = World()
    world.start(CANARY)
    lateness = lambda variant, metric: 6 if (variant, metric) == ("blue", "Invocations") else 0  # noqa: E731
    assert world.drive(120, 1000, HEALTHY, lateness=lateness) == "promote"
    state = world.store.load(EP)
    settled = [m for m in world.served_minutes if m < state.observed_until]  # type: ignore[union-attr]
    assert state.totals["blue"]["requests"] == sum(world.served_minutes[m]["blue"] for m in settled)  # type: ignore[union-attr]
