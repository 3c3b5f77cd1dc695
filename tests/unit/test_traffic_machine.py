"""The state machine and the strategies on plain data (no cloud)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.traffic import controls, machine
from functions.traffic.config import ConfigError, load_config
from functions.traffic.model import Interval, Observation, RolloutState, ShadowReport, VariantStats
from functions.traffic.strategies import bandit_weights, probability_best, srm_p_value, two_proportion_p_value

T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def config(strategy: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"endpoint": "ep", "champion": "blue", "challenger": "green", "strategy": strategy, **extra}


def run(
    raw: dict[str, Any],
    rate_b: float,
    minutes: int,
    rpm: int = 1000,
    seed: int = 0,
    reward: tuple[float, float] = (0, 0),
) -> tuple[RolloutState, list[str]]:
    """Drive a rollout minute by minute with simulated traffic split by the current weights."""
    cfg = load_config(raw)
    rng = np.random.default_rng(seed)
    state = machine.start(cfg, "r1", T0)
    actions = []
    for t in range(minutes):
        start = T0 + t * MIN
        n_b = int(rng.binomial(rpm, state.weights["green"]))
        n_a = rpm - n_b
        variants = {
            name: VariantStats(n, rng.binomial(n, rate), 100 + rng.normal(0, 3), {"conv": rng.binomial(n, conv)})
            for name, n, rate, conv in (("blue", n_a, 0.01, reward[0]), ("green", n_b, rate_b, reward[1]))
        }
        obs = Observation(until=start + MIN, intervals=[Interval(start, variants)])
        state, decision = machine.evaluate(state, obs, start + MIN)
        state = applied(state, start + MIN)
        actions.append(decision.action)
        if state.terminal:
            break
    return state, actions


def applied(state: RolloutState, now: dt.datetime) -> RolloutState:
    """What the service does after a commit: the endpoint confirmed to carry the weights."""
    return state if state.applied_at is not None else state.model_copy(update={"applied_at": now})


CANARY = {"kind": "canary", "steps": [0.1, 0.5, 1.0], "bake_minutes": 10, "min_requests": 300}


def test_healthy_canary_is_promoted_step_by_step() -> None:
    state, actions = run(config(CANARY), 0.01, 240)
    assert state.status == "promoted" and state.weights == {"blue": 0.0, "green": 1.0}
    assert actions.count("advance") == 1 and actions[-1] == "promote"


def test_failing_canary_is_rolled_back_quickly() -> None:
    state, actions = run(config(CANARY), 0.05, 240)
    assert state.status == "rolled_back" and state.weights == {"blue": 1.0, "green": 0.0}
    assert len(actions) < 15 and "significantly worse on error_rate" in state.reason


def test_linear_rollout_promotes_through_every_increment() -> None:
    state, actions = run(
        config({"kind": "linear", "increment": 0.25, "bake_minutes": 5, "min_requests": 100}), 0.01, 300
    )
    assert state.status == "promoted" and actions.count("advance") == 2  # 25 -> 50 -> 75 -> promote


def test_timeout_holds_or_rolls_back() -> None:
    base = config(CANARY, max_duration_minutes=5)
    assert run(base, 0.01, 20)[0].status == "rolled_back"
    held, _ = run({**base, "on_timeout": "hold"}, 0.01, 20)
    assert held.status == "held" and held.weights["green"] == 0.1
    # a held rollout no longer moves, whatever the metrics say
    again, decision = machine.evaluate(held, Observation(until=T0 + 30 * MIN), T0 + 30 * MIN)
    assert decision.action == "wait" and again.status == "held"


def test_too_little_traffic_waits_and_never_promotes() -> None:
    state, actions = run(config(CANARY, max_duration_minutes=10_000), 0.01, 120, rpm=2)
    assert state.status == "running" and set(actions) == {"wait"}


def test_alarm_rolls_back_at_once() -> None:
    cfg = load_config(config(CANARY, alarms=["green-5xx"]))
    state = machine.start(cfg, "r", T0)
    obs = Observation(until=T0 + MIN, alarms_firing=["green-5xx", "unrelated"])
    state, decision = machine.evaluate(state, obs, T0 + MIN)
    assert decision.action == "rollback" and "green-5xx" in decision.reason and state.status == "rolled_back"
    state2 = machine.start(cfg, "r", T0)
    _, d2 = machine.evaluate(state2, Observation(until=T0 + MIN, alarms_firing=["unrelated"]), T0 + MIN)
    assert d2.action == "wait"


def test_intervals_are_folded_once() -> None:
    cfg = load_config(config(CANARY))
    state = machine.start(cfg, "r", T0)
    iv = Interval(T0, {"blue": VariantStats(900, 9), "green": VariantStats(100, 1)})
    once = machine.observe(state, Observation(until=T0 + MIN, intervals=[iv]))
    twice = machine.observe(once, Observation(until=T0 + MIN, intervals=[iv]))
    assert once.evidence == twice.evidence and twice.totals["green"]["requests"] == 100


def test_abort_and_terminal_states() -> None:
    cfg = load_config(config(CANARY))
    state, decision = controls.abort(machine.start(cfg, "r", T0), "bad feeling", T0, "ops")
    assert state.status == "aborted" and decision.weights == {"blue": 1.0, "green": 0.0}
    assert decision.actor == "ops" and decision.reason == "aborted by ops: bad feeling"
    with pytest.raises(machine.TransitionError, match="it is aborted"):
        controls.abort(state, "again", T0)


def test_blue_green_flips_then_bakes() -> None:
    state, actions = run(config({"kind": "blue_green", "bake_minutes": 15, "min_requests": 1000}), 0.01, 60)
    assert state.status == "promoted" and len(actions) == 15


def test_shadow_promotes_on_agreement_and_rolls_back_on_disagreement() -> None:
    cfg = load_config(config({"kind": "shadow", "min_pairs": 100, "min_agreement": 0.9}))
    state = machine.start(cfg, "r", T0)
    assert state.weights == {"blue": 1.0, "green": 0.0}
    _, wait = machine.evaluate(state, Observation(until=T0 + MIN, shadow=ShadowReport(50, 1.0, 0.0)), T0 + MIN)
    assert wait.action == "wait"
    good, d = machine.evaluate(state, Observation(until=T0 + MIN, shadow=ShadowReport(200, 0.97, 0.01)), T0 + MIN)
    assert d.action == "promote" and good.weights["green"] == 1.0 and d.statistics["label_agreement"] == 0.97
    _, d = machine.evaluate(state, Observation(until=T0 + MIN, shadow=ShadowReport(200, 0.7, 0.01)), T0 + MIN)
    assert d.action == "rollback"
    failing = ShadowReport(200, 1.0, 0.0, challenger_errors=100)  # agrees when it answers, fails a third
    _, d = machine.evaluate(state, Observation(until=T0 + MIN, shadow=failing), T0 + MIN)
    assert d.action == "rollback" and d.statistics["answered"] < 0.7


AB = {"kind": "ab", "split": 0.5, "horizon_minutes": 60, "min_requests": 1000, "reward_metric": "conv"}
BUSINESS = {"business_metrics": {"conv": {"namespace": "shop", "metric_name": "Conversions"}}}


def test_ab_promotes_a_better_challenger_at_the_horizon() -> None:
    state, actions = run(config(AB, **BUSINESS), 0.01, 120, seed=1, reward=(0.05, 0.07))
    assert state.status == "promoted" and len(actions) == 60


def test_ab_keeps_the_champion_when_not_better() -> None:
    state, _ = run(config(AB, **BUSINESS), 0.01, 120, seed=1, reward=(0.05, 0.05))
    assert state.status == "rolled_back" and "not significantly better" in state.reason


def test_ab_sample_ratio_mismatch_holds() -> None:
    cfg = load_config(config(AB, **BUSINESS))
    state = machine.start(cfg, "r", T0)
    iv = Interval(T0, {"blue": VariantStats(6000, 60), "green": VariantStats(4000, 40)})
    state, d = machine.evaluate(state, Observation(until=T0 + MIN, intervals=[iv]), T0 + MIN)
    assert d.action == "hold" and "sample ratio mismatch" in d.reason and state.status == "held"


def test_bandit_converges_to_the_better_variant() -> None:
    raw = config({"kind": "bandit", "reward_metric": "conv", "horizon_minutes": 600, "floor": 0.05}, **BUSINESS)
    state, actions = run(raw, 0.01, 200, rpm=500, reward=(0.05, 0.08))
    assert state.weights["green"] >= 0.9 and "reweight" in actions


def test_bandit_helpers() -> None:
    p = probability_best(np.array([10.0, 90.0]), np.array([1000.0, 1000.0]), 2000, seed=1)
    assert p[1] > 0.99 and np.isclose(p.sum(), 1.0)
    w = bandit_weights(np.array([0.0, 1.0]), 0.05)
    assert np.allclose(w, [0.05, 0.95])


def test_fixed_horizon_statistics() -> None:
    assert srm_p_value(5000, 5000, 0.5) == 1.0
    assert srm_p_value(5200, 4800, 0.5) < 0.001
    assert two_proportion_p_value(10_000, 500, 10_000, 700) < 0.001
    assert two_proportion_p_value(10_000, 500, 10_000, 500) == 0.5


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"strategy\.canary\.steps: .*increase"):
        load_config(config({"kind": "canary", "steps": [0.5, 0.2, 1.0]}))
    with pytest.raises(ConfigError, match=r"strategy\.canary\.steps: .*last step"):
        load_config(config({"kind": "canary", "steps": [0.1, 0.5]}))
    with pytest.raises(ConfigError, match=r"strategy\.canary\.steps: .*use blue_green"):
        load_config(config({"kind": "canary", "steps": [1.0]}))
    with pytest.raises(ConfigError, match=r"strategy\.linear\.increment"):
        load_config(config({"kind": "linear", "increment": 1.0}))
    with pytest.raises(ConfigError, match=r"judge\.alpha"):
        load_config(config(CANARY, judge={"alpha": 2}))
    with pytest.raises(ConfigError, match="reward_metric 'conv' is not declared"):
        load_config(config({"kind": "bandit", "reward_metric": "conv"}))
    with pytest.raises(ConfigError, match="strategy"):
        load_config(config({"kind": "teleport"}))
    with pytest.raises(ConfigError, match="surprise: Extra inputs"):
        load_config(config(CANARY, surprise=1))


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["kind", "steps", "bake_minutes", "increment", "fraction", "split"]),
                       st.one_of(st.none(), st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=5),
                                 st.lists(st.floats(-1, 2), max_size=4))))  # fmt: skip
def test_arbitrary_strategy_config_is_accepted_or_refused_with_a_key(strategy: dict[str, Any]) -> None:
    try:
        cfg = load_config(config(strategy))
    except ConfigError as err:
        assert str(err).startswith("invalid rollout config: ") and ": " in str(err)[24:]
    else:
        assert machine.start(cfg, "r", T0).weights.keys() == {"blue", "green"}


def test_state_round_trips_through_json() -> None:
    state, _ = run(config(CANARY), 0.01, 30)
    again = RolloutState.model_validate_json(state.model_dump_json())
    assert again == state


def test_higher_is_better_rate_guardrail_flags_a_drop_in_conversions() -> None:
    raw = config(
        CANARY, **BUSINESS,
        judge={"guardrails": [{"name": "conversion", "kind": "rate", "metric": "conv", "lower_is_better": False,
                               "margin": 0.5}]},
    )  # fmt: skip
    state, _ = run(raw, 0.01, 60, reward=(0.10, 0.03))
    assert state.status == "rolled_back" and "conversion" in state.reason
    stats = machine.judge(state)[0].statistics
    assert stats["challenger_rate"] < stats["champion_rate"] and stats["ratio"] == "champion/challenger"
    healthy, _ = run(raw, 0.01, 240, reward=(0.10, 0.10))
    assert healthy.status == "promoted"


_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10_000))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_numbers, _numbers, st.one_of(st.none(), _numbers)), min_size=2, max_size=2))
def test_any_metrics_either_count_or_hold_the_rollout(rows: list[tuple[float, float, float | None]]) -> None:
    """Whatever CloudWatch returns, the machine never crashes: impossible numbers hold the rollout."""
    cfg = load_config(config(CANARY))
    state = machine.start(cfg, "r", T0)
    variants = {name: VariantStats(float(n), float(x), None if lat is None else float(lat))
                for name, (n, x, lat) in zip(("blue", "green"), rows, strict=True)}  # fmt: skip
    new, decision = machine.evaluate(state, Observation(T0 + MIN, [Interval(T0, variants)]), T0 + MIN)
    if decision.action == "hold":
        assert decision.reason.startswith("metrics inconsistent") and new.status == "held"
        assert f"minute {T0:%Y-%m-%d %H:%M}" in decision.reason  # the minute left out is named
        untouched = machine.observe(state, Observation(T0 + MIN))  # nothing of the bad minute was folded
        assert new.weights == state.weights and new.evidence == untouched.evidence and new.totals == {}
    else:
        assert decision.action in {"wait", "rollback"} and new.observed_until == T0 + MIN
