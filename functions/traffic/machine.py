"""The rollout state machine: running -> (advance | reweight)* -> promoted | rolled_back | held | aborted.

`evaluate` folds new metric intervals into the judge's evidence, then checks, in order: alarms (rollback at
once), harm on any guardrail (rollback), maximum duration (rollback or hold), and finally the strategy's own
rule. Pure: plain data in, (new state, decision) out; the service persists and applies it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from functions.traffic import strategies
from functions.traffic.config import Guardrail, RolloutConfig
from functions.traffic.judge import GuardrailResult, InvalidMetrics, MeanEvidence, RateEvidence
from functions.traffic.model import Decision, Interval, Observation, RolloutState, VariantStats


class TransitionError(ValueError):
    """The requested transition is not allowed from the rollout's current status."""


def start(config: RolloutConfig, rollout_id: str, now: dt.datetime) -> RolloutState:
    weights = strategies.initial_weights(config)
    return RolloutState(
        endpoint=config.endpoint, rollout_id=rollout_id, config=config, weights=weights,
        started_at=now, step_started_at=now, observed_until=now.replace(second=0, microsecond=0),
    )  # fmt: skip


def _metric(stats: VariantStats, metric: str, kind: str) -> tuple[float, float | None]:
    """(requests, value): value is an event count for rates, an average for means."""
    if metric == "errors":
        return stats.invocations, stats.errors
    if metric == "latency":
        return stats.invocations, stats.latency
    value = stats.extra.get(metric)
    if kind == "rate":
        return stats.invocations, value if value is not None else 0.0
    return stats.invocations, value


def _plain(ev: RateEvidence | MeanEvidence) -> dict[str, Any]:
    """JSON-shaped evidence (lists, not tuples), so a state equals itself after a store round trip."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(ev).items()}


def _empty(g: Guardrail) -> dict[str, Any]:
    return _plain(RateEvidence.empty(g.margin) if g.kind == "rate" else MeanEvidence())


def _fold(g: Guardrail, raw: dict[str, Any], a: VariantStats, b: VariantStats) -> dict[str, Any]:
    n_a, v_a = _metric(a, g.metric, g.kind)
    n_b, v_b = _metric(b, g.metric, g.kind)
    if g.kind == "rate":
        ev = RateEvidence(**{**raw, "theta": tuple(raw["theta"]), "loglik": tuple(raw["loglik"])})
        x_a, x_b = float(v_a or 0.0), float(v_b or 0.0)
        # A higher-is-better rate (conversions) is tested as the champion's rate over the challenger's.
        ev = ev.add(n_a, x_a, n_b, x_b) if g.lower_is_better else ev.add(n_b, x_b, n_a, x_a)
        return _plain(ev)
    mev = MeanEvidence(**raw)
    if n_a > 0 and n_b > 0:
        mev = mev.add(v_a, v_b)
    return _plain(mev)


def judge(state: RolloutState) -> list[GuardrailResult]:
    c = state.config
    results = []
    for g in c.judge.guardrails:
        raw = state.evidence.get(g.name) or _empty(g)
        if g.kind == "rate":
            ev = RateEvidence(**{**raw, "theta": tuple(raw["theta"]), "loglik": tuple(raw["loglik"])})
            result = ev.judge(g.name, g.margin, c.judge.alpha, g.min_events)
            if not g.lower_is_better:  # the arms were swapped when folding (see _fold): name them right
                st = result.statistics
                swapped = {k.replace("champion", "\0").replace("challenger", "champion").replace("\0", "challenger"): v
                           for k, v in st.items()}  # fmt: skip
                result = GuardrailResult(result.name, result.verdict, {**swapped, "ratio": "champion/challenger"})
            results.append(result)
        else:
            results.append(
                MeanEvidence(**raw).judge(g.name, g.margin, c.judge.alpha, g.min_intervals, g.lower_is_better)
            )
    return results


def observe(state: RolloutState, obs: Observation) -> RolloutState:
    """Fold intervals not yet seen (start >= observed_until) into evidence and totals; idempotent."""
    c = state.config
    evidence = {g.name: state.evidence.get(g.name) or _empty(g) for g in c.judge.guardrails}
    totals = {v: dict(t) for v, t in state.totals.items()}
    step_requests = state.step_challenger_requests
    reward = getattr(c.strategy, "reward_metric", None)
    seen = state.observed_until
    for interval in sorted(obs.intervals, key=lambda i: i.start):
        if interval.start < state.observed_until or interval.start >= obs.until:
            continue
        a = interval.variants.get(c.champion, VariantStats())
        b = interval.variants.get(c.challenger, VariantStats())
        for g in c.judge.guardrails:
            evidence[g.name] = _fold(g, evidence[g.name], a, b)
        for name, stats in ((c.champion, a), (c.challenger, b)):
            t = totals.setdefault(name, {"requests": 0.0, "reward": 0.0})
            t["requests"] += stats.invocations
            if reward is not None:
                t["reward"] += stats.extra.get(reward, 0.0)
        step_requests += b.invocations
        seen = max(seen, interval.start)
    until = max(state.observed_until, obs.until, seen)
    return state.model_copy(
        update={"evidence": evidence, "totals": totals, "step_challenger_requests": step_requests,
                "observed_until": until}
    )  # fmt: skip


def _summary(results: list[GuardrailResult]) -> dict[str, Any]:
    return {r.name: {"verdict": r.verdict, **r.statistics} for r in results}


def evaluate(state: RolloutState, obs: Observation, now: dt.datetime) -> tuple[RolloutState, Decision]:
    if state.status != "running":
        return state, Decision("wait", f"rollout is {state.status}", state.weights)
    c = state.config
    try:
        state = observe(state, obs)
    except InvalidMetrics as err:
        # Impossible numbers mean the metrics pipeline is broken: stop moving traffic and tell a human,
        # rather than judge on them or fail every minute without a trace in the audit trail.
        decision = Decision("hold", f"metrics inconsistent: {err}", state.weights)
        return apply(state, decision, now), decision
    results = judge(state)
    stats: dict[str, Any] = {"guardrails": _summary(results)}
    firing = sorted(set(obs.alarms_firing) & set(c.alarms))
    harmed = [r.name for r in results if r.verdict == "harm"]
    if firing:
        decision = Decision("rollback", f"alarm in ALARM: {', '.join(firing)}", strategies.split(c, 0.0), stats)
    elif harmed:
        decision = Decision(
            "rollback", f"challenger significantly worse on {', '.join(harmed)}", strategies.split(c, 0.0), stats
        )
    elif (now - state.started_at).total_seconds() / 60 >= c.max_duration_minutes:
        reason = f"maximum duration of {c.max_duration_minutes} min reached"
        if c.on_timeout == "rollback":
            decision = Decision("rollback", reason, strategies.split(c, 0.0), stats)
        else:
            decision = Decision("hold", reason, state.weights, stats)
    else:
        d = strategies.decide(state, results, obs, now)
        decision = dataclasses.replace(d, statistics={**stats, **d.statistics})
    return apply(state, decision, now), decision


def apply(state: RolloutState, decision: Decision, now: dt.datetime) -> RolloutState:
    """The state after a decision (the version is the store's business)."""
    update: dict[str, Any] = {"weights": decision.weights, "decisions": state.decisions + 1, "reason": decision.reason}
    if decision.action in ("advance", "reweight"):
        update.update(step=state.step + 1, step_started_at=now, step_challenger_requests=0.0)
    elif decision.action == "promote":
        update.update(status="promoted")
    elif decision.action == "rollback":
        update.update(status="rolled_back")
    elif decision.action == "hold":
        update.update(status="held")
    elif decision.action == "abort":
        update.update(status="aborted")
    return state.model_copy(update=update)


def abort(state: RolloutState, reason: str, now: dt.datetime) -> tuple[RolloutState, Decision]:
    """Operator abort: all traffic back to the champion. Allowed while running or held."""
    if state.terminal:
        raise TransitionError(f"rollout {state.rollout_id} is already {state.status}")
    decision = Decision("abort", f"aborted by operator: {reason}", strategies.split(state.config, 0.0))
    return apply(state, decision, now), decision


__all__ = ["Interval", "TransitionError", "abort", "apply", "evaluate", "judge", "observe", "start"]
