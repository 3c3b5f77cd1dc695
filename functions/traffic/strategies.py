"""What each strategy does once the common checks (alarms, harm, timeout) have passed. Pure functions."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import Any

import numpy as np

from functions.traffic.config import AB, Bandit, BlueGreen, Canary, Linear, RolloutConfig, Shadow
from functions.traffic.judge import GuardrailResult
from functions.traffic.model import Decision, Observation, RolloutState


def split(config: RolloutConfig, challenger_share: float) -> dict[str, float]:
    share = min(max(challenger_share, 0.0), 1.0)
    return {config.champion: round(1.0 - share, 6), config.challenger: round(share, 6)}


def initial_weights(config: RolloutConfig) -> dict[str, float]:
    s = config.strategy
    if isinstance(s, BlueGreen):
        return split(config, 1.0)
    if isinstance(s, Canary | Linear):
        return split(config, s.weights()[0])
    if isinstance(s, Shadow):
        return split(config, 0.0)  # the challenger only sees mirrored copies
    if isinstance(s, AB):
        return split(config, s.split)
    return split(config, 0.5)  # bandit: no evidence yet, P(best) = 1/2 each


def _minutes(a: dt.datetime, b: dt.datetime) -> float:
    return (b - a).total_seconds() / 60.0


def decide(state: RolloutState, results: list[GuardrailResult], obs: Observation, now: dt.datetime) -> Decision:
    s = state.config.strategy
    if isinstance(s, Canary | Linear):
        if state.weights.get(state.config.challenger, 0.0) >= 1.0:
            return _final_bake(state, s.final_bake_minutes, now)
        return _stepped(state, s.weights(), s.bake_minutes, s.min_requests, results, now, s.final_bake_minutes)
    if isinstance(s, BlueGreen):
        return _blue_green(state, s, now)
    if isinstance(s, Shadow):
        return _shadow(state, s, obs)
    if isinstance(s, AB):
        return _ab(state, s, now)
    return _bandit(state, s, now)


def _stepped(
    state: RolloutState,
    steps: list[float],
    bake: int,
    min_requests: int,
    results: list[GuardrailResult],
    now: dt.datetime,
    final_bake: int = 0,
) -> Decision:
    c = state.config
    waited = _minutes(state.step_started_at, now)
    if waited < bake:
        return Decision("wait", f"step {state.step} baking: {waited:.0f}/{bake} min", state.weights)
    if state.step_challenger_requests < min_requests:
        return Decision(
            "wait", f"too little traffic: {state.step_challenger_requests:.0f}/{min_requests} challenger requests",
            state.weights,
        )  # fmt: skip
    pending = [r.name for r in results if r.verdict != "non_inferior"]
    if pending:
        return Decision("wait", f"non-inferiority not yet shown for {', '.join(pending)}", state.weights)
    nxt = state.step + 1
    if nxt >= len(steps) or steps[nxt] >= 1.0:  # the move to 100% is the promotion, or its final bake
        if final_bake > 0:
            reason = f"every guardrail non-inferior at step {state.step}; baking at 100% for {final_bake} min"
            return Decision("advance", reason, split(c, 1.0))
        return Decision("promote", f"every guardrail non-inferior at step {state.step}", split(c, 1.0))
    return Decision("advance", f"every guardrail non-inferior at step {state.step}", split(c, steps[nxt]))


def _final_bake(state: RolloutState, minutes: int, now: dt.datetime) -> Decision:
    # At 100% the champion serves nothing, so there is nothing to compare: the alarms (checked before this)
    # are the guard, as in SageMaker's final bake.
    waited = _minutes(state.step_started_at, now)
    if waited < minutes:
        return Decision("wait", f"baking at 100%: {waited:.0f}/{minutes} min", state.weights)
    return Decision("promote", f"{minutes} min at 100% without alarm", state.weights)


def _blue_green(state: RolloutState, s: BlueGreen, now: dt.datetime) -> Decision:
    # The champion has no traffic after the switch, so there is nothing to compare: alarms decide (checked
    # before this), and the bake and a minimum of challenger traffic must pass before the blue fleet goes.
    waited = _minutes(state.step_started_at, now)
    served = state.totals.get(state.config.challenger, {}).get("requests", 0.0)
    if waited < s.bake_minutes or served < s.min_requests:
        return Decision("wait", f"baking: {waited:.0f}/{s.bake_minutes} min, {served:.0f} requests", state.weights)
    return Decision("promote", "bake passed without alarm", state.weights)


def _shadow(state: RolloutState, s: Shadow, obs: Observation) -> Decision:
    c = state.config
    report = obs.shadow
    if report is None or report.pairs < s.min_pairs:
        have = 0 if report is None else report.pairs
        return Decision("wait", f"too few mirrored pairs: {have}/{s.min_pairs}", state.weights)
    stats: dict[str, Any] = {
        "pairs": report.pairs, "label_agreement": report.label_agreement,
        "mean_score_difference": report.mean_score_difference, "challenger_errors": report.challenger_errors,
    }  # fmt: skip
    # A failed shadow call counts as a disagreement: a challenger that cannot answer must not be promoted.
    answered = report.pairs / (report.pairs + report.challenger_errors)
    stats["answered"] = answered
    if report.label_agreement * answered >= s.min_agreement and report.mean_score_difference <= s.max_score_difference:
        return Decision("promote", "shadow answers agree with the champion's", split(c, 1.0), stats)
    return Decision("rollback", "shadow answers disagree with the champion's", split(c, 0.0), stats)


def _counts(state: RolloutState, variant: str) -> tuple[float, float]:
    t = state.totals.get(variant, {})
    return t.get("requests", 0.0), t.get("reward", 0.0)


def srm_p_value(n_champion: float, n_challenger: float, share: float) -> float:
    """Chi-square (1 df) test that the observed split matches the configured one."""
    total = n_champion + n_challenger
    if total <= 0:
        return 1.0
    e_b, e_a = total * share, total * (1 - share)
    stat = (n_challenger - e_b) ** 2 / e_b + (n_champion - e_a) ** 2 / e_a
    return math.erfc(math.sqrt(stat / 2.0))


def two_proportion_p_value(n_a: float, x_a: float, n_b: float, x_b: float) -> float:
    """One-sided p-value of 'B converts better than A' (pooled z-test, fixed horizon)."""
    if n_a <= 0 or n_b <= 0:
        return 1.0
    pooled = (x_a + x_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 1.0
    z = (x_b / n_b - x_a / n_a) / se
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _ab(state: RolloutState, s: AB, now: dt.datetime) -> Decision:
    c = state.config
    n_a, x_a = _counts(state, c.champion)
    n_b, x_b = _counts(state, c.challenger)
    srm = srm_p_value(n_a, n_b, s.split)
    stats: dict[str, Any] = {"champion_requests": n_a, "challenger_requests": n_b, "srm_p_value": srm}
    if srm < s.srm_alpha:
        return Decision(
            "hold", f"sample ratio mismatch (p={srm:.2g}): the split is not {s.split}", state.weights, stats
        )
    if _minutes(state.started_at, now) < s.horizon_minutes or min(n_a, n_b) < s.min_requests:
        return Decision("wait", "A/B horizon not reached", state.weights, stats)
    p = two_proportion_p_value(n_a, x_a, n_b, x_b)
    stats.update(champion_reward_rate=x_a / n_a, challenger_reward_rate=x_b / n_b, p_value=p)
    if p < c.judge.alpha:
        return Decision("promote", "challenger's reward rate is significantly higher", split(c, 1.0), stats)
    return Decision("rollback", "challenger not significantly better at the horizon", split(c, 0.0), stats)


def probability_best(successes: np.ndarray, trials: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """P(each arm has the highest rate) under independent Beta(1 + s, 1 + f) posteriors, by Monte Carlo."""
    rng = np.random.default_rng(seed)
    a = 1.0 + successes
    b = 1.0 + np.maximum(trials - successes, 0.0)
    samples = rng.beta(a[..., None], b[..., None], size=(*a.shape, draws))
    best = samples.argmax(axis=-2)
    k = a.shape[-1]
    return np.stack([(best == i).mean(axis=-1) for i in range(k)], axis=-1)


def bandit_weights(p_best: np.ndarray, floor: float) -> np.ndarray:
    """Thompson weights with an exploration floor: floor + (1 - k·floor)·P(best); sums to 1."""
    k = p_best.shape[-1]
    return np.asarray(floor + (1.0 - k * floor) * p_best)


def _bandit(state: RolloutState, s: Bandit, now: dt.datetime) -> Decision:
    c = state.config
    arms = [c.champion, c.challenger]
    trials = np.array([_counts(state, v)[0] for v in arms])
    wins = np.array([_counts(state, v)[1] for v in arms])
    # Seeded by rollout and decision number: a replay after a restart gives the same weights.
    seed = int.from_bytes(hashlib.sha256(f"{state.rollout_id}:{state.decisions}".encode()).digest()[:8], "big")
    p_best = probability_best(wins, trials, s.draws, seed)
    weights = bandit_weights(p_best, s.floor)
    stats: dict[str, Any] = {
        "p_best": dict(zip(arms, p_best.round(4).tolist(), strict=True)),
        "requests": dict(zip(arms, trials.tolist(), strict=True)),
        "reward": dict(zip(arms, wins.tolist(), strict=True)),
    }
    if _minutes(state.started_at, now) >= s.horizon_minutes and p_best.max() >= s.p_best_to_win:
        if int(p_best.argmax()) == 1:
            return Decision("promote", "challenger is best with high probability", split(c, 1.0), stats)
        return Decision("rollback", "champion is best with high probability", split(c, 0.0), stats)
    new = {v: round(float(w), 4) for v, w in zip(arms, weights, strict=True)}
    if all(abs(new[v] - state.weights.get(v, 0.0)) < 0.01 for v in arms):
        return Decision("wait", "bandit weights unchanged", state.weights, stats)
    return Decision("reweight", "Thompson sampling update", new, stats)
