"""How much traffic the judge needs: the estimate `status` shows and the plan `start` checks.

The rate test is conditional on the events (5XX) of both arms, so its evidence grows per event, not per
request: at challenger share w and true rate ratio θ, each event is the challenger's with probability
q(θ) = θw / (θw + 1 - w). `events_needed` continues the current evidence with simulated events (the judge's
own rate_loglik / rate_log_evidence) and takes the median number at which it crosses log(1/α). Events
become requests through the base error rate, requests become minutes through the rate of traffic: on a
quiet endpoint with a 0.1% error rate that is what makes a rollout long, and `status` says so.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.traffic.config import Guardrail, RolloutConfig
from functions.traffic.judge import FloatArray, rate_grid, rate_log_evidence, rate_loglik
from functions.traffic.model import Interval, RolloutState

MAX_EVENTS = 1e6
LOOKBACK_MINUTES = 60  # the traffic `start` plans on


def events_needed(
    loglik: FloatArray, theta: FloatArray, margin: float, alpha: float, share: float, ratio: float, harm: bool,
    paths: int = 400, seed: int = 0,
) -> float:  # fmt: skip
    """Median number of further events until the harm (or non-inferiority) e-value reaches 1/alpha, when the
    challenger's true rate ratio is `ratio`; inf if most paths never get there (e.g. non-inferiority with the
    true ratio beyond the margin). Simulated on the judge's own evidence functions: the e-value crosses its
    threshold on a favourable fluctuation well before the expected drift would take it there, so a drift-only
    estimate is about twice too long."""
    if not 0 < share < 1:
        return math.inf
    rng = np.random.default_rng(seed)
    q = ratio * share / (ratio * share + 1 - share)
    threshold = math.log(1 / alpha)
    ll = np.broadcast_to(loglik, (paths, len(theta))).copy()
    crossed = np.full(paths, math.inf)
    n = 0.0
    while n < MAX_EVENTS:
        log_harm, log_safe = rate_log_evidence(ll, theta, margin)
        hit = (log_harm if harm else log_safe) >= threshold
        crossed[hit & np.isinf(crossed)] = n
        median = float(np.sort(crossed)[(paths - 1) // 2])  # the lower median: inf until half have crossed
        if math.isfinite(median):
            return median
        block = max(1.0, math.floor(0.05 * n))
        x_b = rng.binomial(int(block), q, paths).astype(np.float64)
        # `block` events split between the arms, at exposures in the ratio of the weights.
        ll += rate_loglik(theta, 1 - share, block - x_b, share, x_b)
        n += block
    return math.inf


@dataclass(frozen=True)
class Traffic:
    requests_per_minute: float
    error_rate: float  # the champion's events per request (5XX for the errors guardrail)


def _minutes(events: float, traffic: Traffic, share: float) -> tuple[float, float, float]:
    """(requests, challenger requests, minutes) to collect `events` events at this traffic and share."""
    if math.isinf(events):
        return math.inf, math.inf, math.inf
    if events == 0:
        return 0.0, 0.0, 0.0
    if traffic.error_rate <= 0 or traffic.requests_per_minute <= 0:
        return math.inf, math.inf, math.inf
    requests = events / traffic.error_rate
    return requests, requests * share, requests / traffic.requests_per_minute


def _rate_guardrails(config: RolloutConfig) -> list[Guardrail]:
    return [g for g in config.judge.guardrails if g.kind == "rate" and g.metric == "errors"]


def observed_traffic(state: RolloutState) -> Traffic | None:
    """Requests per minute and the champion's 5XX rate over the settled minutes so far."""
    minutes = (state.observed_until - state.started_at.replace(second=0, microsecond=0)).total_seconds() / 60
    requests = sum(t.get("requests", 0.0) for t in state.totals.values())
    if minutes <= 0 or requests <= 0:
        return None
    rate = 0.0
    for g in _rate_guardrails(state.config):
        ev = state.evidence.get(g.name) or {}
        if ev.get("n_champion"):
            rate = ev["x_champion"] / ev["n_champion"]
    return Traffic(requests / minutes, rate)


def _round(x: float) -> float | None:
    return None if math.isinf(x) else round(x, 1)


def status_estimate(state: RolloutState, now: dt.datetime) -> dict[str, Any]:
    """What the judge still needs to promote the current step, at the traffic seen so far, and what happens
    at the maximum duration if it does not get it."""
    c = state.config
    left = c.max_duration_minutes + state.extra_minutes - (now - state.started_at).total_seconds() / 60
    out: dict[str, Any] = {"minutes_left": round(left, 1), "on_timeout": c.on_timeout, "guardrails": {}}
    traffic = observed_traffic(state)
    share = state.weights.get(c.challenger, 0.0)
    if traffic is None:
        out["traffic"] = None
        return out
    out["traffic"] = {"requests_per_minute": round(traffic.requests_per_minute, 1), "error_rate": traffic.error_rate}
    min_requests = getattr(c.strategy, "min_requests", 0)
    more = max(min_requests - state.step_challenger_requests, 0.0)
    per_min = traffic.requests_per_minute * share
    out["step_requests"] = {"more_challenger_requests": more,
                            "minutes": _round(more / per_min if per_min > 0 else math.inf)}  # fmt: skip
    for g in _rate_guardrails(c):
        raw = state.evidence.get(g.name)
        if raw is None:
            continue
        theta = np.asarray(raw["theta"])
        events = events_needed(np.asarray(raw["loglik"]), theta, g.margin, c.judge.alpha, share, 1.0, harm=False)
        events = max(events, g.min_events - raw["compared_events"])
        requests, challenger, minutes = _minutes(events, traffic, share)
        out["guardrails"][g.name] = {
            "more_events": _round(events), "more_requests": _round(requests),
            "more_challenger_requests": _round(challenger), "minutes": _round(minutes),
        }  # fmt: skip
    needed = [v["minutes"] for v in out["guardrails"].values()] + [out["step_requests"]["minutes"]]
    out["minutes_needed"] = None if any(m is None for m in needed) else max(needed, default=0.0)
    return out


def recent_traffic(intervals: list[Interval], champion: str, challenger: str, minutes: float) -> Traffic | None:
    requests = sum(i.variants[v].invocations for i in intervals for v in (champion, challenger) if v in i.variants)
    errors = sum(i.variants[v].errors for i in intervals for v in (champion, challenger) if v in i.variants)
    if requests <= 0 or minutes <= 0:
        return None
    return Traffic(requests / minutes, errors / requests)


class PlanError(ValueError):
    """The endpoint's traffic cannot give the judge its evidence within the rollout's maximum duration."""


def plan(config: RolloutConfig, traffic: Traffic | None) -> dict[str, Any]:
    """Minutes a rollout needs at this traffic: to promote a challenger as good as the champion through
    every step, and to detect one `min_detectable_ratio` times worse at the first step. PlanError when
    either exceeds the maximum duration (only when the config states a min_detectable_ratio)."""
    ratio = config.judge.min_detectable_ratio
    if ratio is None:
        return {}
    if traffic is None:
        raise PlanError("no traffic on the endpoint in the lookback window: the judge would get no evidence")
    steps: list[float] = [1.0]
    weights = getattr(config.strategy, "weights", None)
    if callable(weights):
        steps = [w for w in weights() if w < 1.0] or [1.0]
    bake = float(getattr(config.strategy, "bake_minutes", 0))
    min_requests = float(getattr(config.strategy, "min_requests", 0))
    result: dict[str, Any] = {"requests_per_minute": traffic.requests_per_minute, "error_rate": traffic.error_rate}
    promote = 0.0
    detect = math.inf
    for g in _rate_guardrails(config):
        theta = rate_grid(g.margin)
        zero = np.zeros_like(theta)
        # Evidence carries over between steps; the first step's share is the slowest, so plan on it.
        share = steps[0]
        events = max(events_needed(zero, theta, g.margin, config.judge.alpha, share, 1.0, harm=False), g.min_events)
        promote = max(promote, _minutes(events, traffic, share)[2])
        harm = events_needed(zero, theta, g.margin, config.judge.alpha, share, ratio, harm=True)
        detect = min(detect, _minutes(harm, traffic, share)[2])
    per_step = [max(bake, min_requests / (traffic.requests_per_minute * w)) for w in steps if w < 1.0]
    total = max(promote, per_step[0] if per_step else 0.0) + sum(per_step[1:])
    result.update(minutes_to_promote=_round(total), minutes_to_detect=_round(detect))
    if total > config.max_duration_minutes or detect > config.max_duration_minutes:
        raise PlanError(
            f"at {traffic.requests_per_minute:.0f} req/min and a {traffic.error_rate:.2%} error rate the judge needs "
            f"{_fmt(total)} to promote a healthy challenger and {_fmt(detect)} to catch one "
            f"{ratio:g}x worse, more than max_duration_minutes={config.max_duration_minutes}: raise it, "
            "raise the first step's weight, widen the margin or raise min_detectable_ratio"
        )
    return result


def _fmt(minutes: float) -> str:
    return "forever (no events to judge on)" if math.isinf(minutes) else f"~{minutes:.0f} min"


def estimate_lines(estimate: dict[str, Any]) -> list[str]:
    """The estimate in words, for `tide rollout status`."""
    traffic = estimate.get("traffic")
    if traffic is None:
        return ["no settled traffic yet: nothing to estimate from"]
    lines = [f"traffic {traffic['requests_per_minute']:g} req/min, champion 5XX rate {traffic['error_rate']:.3%}"]
    step = estimate.get("step_requests", {})
    if step.get("more_challenger_requests"):
        lines.append(f"step needs {step['more_challenger_requests']:.0f} more challenger requests "
                     f"({_fmt(step['minutes'] if step['minutes'] is not None else math.inf)})")  # fmt: skip
    for name, g in estimate["guardrails"].items():
        if not g["more_events"]:
            lines.append(f"{name}: the judge has the evidence it needs")
            continue
        events = "no" if g["more_events"] is None else f"{g['more_events']:.0f}"
        requests = "unbounded" if g["more_requests"] is None else f"{g['more_requests']:.0f}"
        minutes = _fmt(math.inf if g["minutes"] is None else g["minutes"])
        lines.append(f"{name}: the judge needs ~{events} more compared errors = ~{requests} more requests "
                     f"({minutes} at this rate) to show non-inferiority")  # fmt: skip
    needed = estimate.get("minutes_needed")
    left = estimate["minutes_left"]
    if needed is None or needed > left:
        outcome = "roll back" if estimate["on_timeout"] == "rollback" else "be held"
        lines.append(f"the maximum duration ends in {left:g} min, before the judge can decide: the rollout will "
                     f"{outcome} then unless traffic rises (extend it with resume --extend-minutes)")  # fmt: skip
    return lines
