"""Every strategy on the embedded cloud, each interrupted by a restart of the function half-way: the state
reloaded from DynamoDB equals the state before, and the rollout ends as it should."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from functions.traffic.config import load_config
from functions.traffic.shadow import Answer, S3ShadowLog, ShadowMirror
from functions.traffic.wiring import aws_rollouts
from schemas.naming import SHADOW_ROOT
from tests.functions.test_traffic import (
    BUSINESS_NAMESPACE,
    ENDPOINT,
    HEALTHY,
    NAMES,
    T0,
    World,
    rollout_config,
    world,  # noqa: F401  (fixture)
)

BUSINESS = {"business_metrics": {"conv": {"namespace": BUSINESS_NAMESPACE, "metric_name": "Conversions"}}}
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str, dict[str, float] | None]] = {
    "blue_green": ({"kind": "blue_green", "bake_minutes": 6, "min_requests": 1000}, {}, "promote", None),
    "canary": ({"kind": "canary", "steps": [0.2, 0.5, 1.0], "bake_minutes": 2, "min_requests": 200}, {}, "promote",
               None),
    "linear": ({"kind": "linear", "increment": 0.5, "bake_minutes": 2, "min_requests": 200}, {}, "promote", None),
    "ab": ({"kind": "ab", "split": 0.5, "horizon_minutes": 10, "min_requests": 2000, "reward_metric": "conv"},
           BUSINESS, "promote", {"blue": 0.05, "green": 0.08}),
    "bandit": ({"kind": "bandit", "reward_metric": "conv", "horizon_minutes": 12, "floor": 0.05}, BUSINESS,
               "promote", {"blue": 0.05, "green": 0.08}),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_strategy_survives_a_restart_and_finishes(world: World, name: str) -> None:  # noqa: F811
    strategy, extra, outcome, conversions = CASES[name]
    first = world.rollouts()
    first.start(load_config(rollout_config(strategy, **extra)), rollout_id=f"r-{name}")
    assert world.drive(first, HEALTHY, 3, conversions=conversions) == "running"
    before = first.store.load(ENDPOINT)
    second = world.rollouts()  # the function restarted: a new instance with nothing in memory
    assert second.store.load(ENDPOINT) == before
    assert world.drive(second, HEALTHY, 60, conversions=conversions) == outcome
    final, audit = second.status(ENDPOINT)
    assert final is not None and final.decisions == len(audit) and world.weights()["green"] == 1.0


def test_bandit_converges_to_the_better_variant(world: World) -> None:  # noqa: F811
    strategy = {"kind": "bandit", "reward_metric": "conv", "horizon_minutes": 10_000, "floor": 0.05}
    rollouts = world.rollouts()
    rollouts.start(load_config(rollout_config(strategy, **BUSINESS)), rollout_id="b")
    # the champion is the better one here: the bandit must move traffic away from the challenger
    world.drive(rollouts, HEALTHY, 12, rpm=1000, conversions={"blue": 0.10, "green": 0.06})
    assert world.weights()["blue"] >= 0.9
    assert world.weights()["green"] >= 0.04  # the exploration floor keeps the loser observed


def test_shadow_compares_answers_and_survives_a_restart(world: World) -> None:  # noqa: F811
    s3 = world.cloud.client("s3")
    bucket = NAMES.bucket("captures")
    s3.create_bucket(Bucket=bucket)
    log = S3ShadowLog(s3, bucket, SHADOW_ROOT)  # as the serving-side mirror writes them
    answers = {"blue": Answer("fraud", 0.91), "green": Answer("fraud", 0.89)}
    mirror = ShadowMirror(
        ENDPOINT, "blue", "green", fraction=0.5,
        invoke=lambda variant, body: f"{answers[variant].label},{answers[variant].score}".encode(),
        parse=lambda raw: Answer(raw.decode().split(",")[0], float(raw.decode().split(",")[1])),
        record=log.record, clock=lambda: T0 + dt.timedelta(minutes=1),
    )  # fmt: skip
    replies = {mirror(f"req-{i}", b"{}") for i in range(400)}
    assert replies == {b"fraud,0.91"}  # only the champion's answer is ever returned
    assert 150 < log.flush() < 250  # about half were mirrored
    first = world.rollouts()
    first.shadow = log
    config = load_config(rollout_config({"kind": "shadow", "fraction": 0.5, "min_pairs": 300}))
    first.start(config, rollout_id="s")
    assert world.drive(first, HEALTHY, 2) == "running"  # too few pairs yet
    before = first.store.load(ENDPOINT)
    for i in range(400, 800):
        mirror(f"req-{i}", b"{}")
    log.flush()
    second = world.rollouts()
    # A new instance reads the pairs back from S3, where the deployed function's wiring looks for them.
    second.shadow = aws_rollouts(NAMES).shadow
    assert second.store.load(ENDPOINT) == before
    assert world.drive(second, HEALTHY, 2) == "promote"
    _, audit = second.status(ENDPOINT)
    assert audit[-1]["statistics"]["label_agreement"] == 1.0
    assert audit[-1]["statistics"]["mean_score_difference"] == pytest.approx(0.02)


QUALITY = {"name": "quality", "kind": "shadow", "metric": "score_difference", "margin": 0.05, "min_pairs": 100}
ERRORS = {"name": "error_rate", "kind": "rate", "metric": "errors", "margin": 1.0}


def _shadow_phase(world: World, scores: dict[str, float]) -> S3ShadowLog:  # noqa: F811
    """Pairs the champion's mirror logged before the canary: one challenger's per variant of `scores`."""
    s3 = world.cloud.client("s3")
    bucket = NAMES.bucket("captures")
    s3.create_bucket(Bucket=bucket)
    log = S3ShadowLog(s3, bucket, SHADOW_ROOT)
    for challenger, score in scores.items():
        answers = {"blue": Answer("fraud", 0.90), challenger: Answer("fraud", score)}
        mirror = ShadowMirror(
            ENDPOINT, "blue", challenger, fraction=1.0,
            invoke=lambda variant, body, answers=answers: f"{answers[variant].score}".encode(),
            parse=lambda raw: Answer("fraud", float(raw)), record=log.record,
            clock=lambda: T0 - dt.timedelta(minutes=30),
        )  # fmt: skip
        for i in range(200):
            mirror(f"{challenger}-{i}", b"{}")
    log.flush()
    return log


@pytest.mark.parametrize(("green_score", "outcome"), [(0.88, "promote"), (0.60, "rollback")])
def test_canary_quality_guardrail_reads_its_challengers_shadow_pairs(
    world: World,  # noqa: F811
    green_score: float,
    outcome: str,
) -> None:
    """A canary with a shadow guardrail: green's own pairs from its shadow phase decide (another challenger's
    pairs on the same endpoint, far off, are not read); within the margin it promotes, beyond it rolls back."""
    log = _shadow_phase(world, {"green": green_score, "teal": 0.10})
    rollouts = world.rollouts()
    rollouts.shadow = log
    config = load_config(rollout_config(CANARY_STEPS, judge={"guardrails": [ERRORS, QUALITY]}))
    rollouts.start(config, rollout_id="q")
    assert world.drive(rollouts, HEALTHY, 60) == outcome
    _, audit = rollouts.status(ENDPOINT)
    quality = audit[-1]["statistics"]["guardrails"]["quality"]
    assert quality["pairs"] == 200 and quality["score_difference"] == pytest.approx(abs(0.90 - green_score))
    if outcome == "rollback":
        assert "quality" in audit[-1]["reason"] and len(audit) <= 2  # at the first tick: no traffic judged needed


def test_a_shadow_guardrail_without_a_pair_reader_is_refused_at_start(world: World) -> None:  # noqa: F811
    from functions.traffic.config import ConfigError

    config = load_config(rollout_config(CANARY_STEPS, judge={"guardrails": [ERRORS, QUALITY]}))
    with pytest.raises(ConfigError, match="shadow guardrail needs the shadow pairs' reader"):
        world.rollouts().start(config, rollout_id="q")
    assert world.rollouts().store.load(ENDPOINT) is None


CANARY_STEPS = {"kind": "canary", "steps": [0.2, 0.5, 1.0], "bake_minutes": 2, "min_requests": 200}
