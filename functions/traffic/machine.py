"""The rollout state machine: running -> (advance | reweight)* -> promoted | rolled_back | held | aborted.

`evaluate` folds the settled metric minutes into the judge's evidence, then checks, in order: alarms (rollback
at once), harm on any guardrail over every datapoint that has arrived (rollback), a sample-ratio mismatch
(hold), maximum duration (rollback or hold), and finally the strategy's own rule. A held or paused rollout is
still watched: alarms and harm roll it back; nothing else moves it. Pure: plain data in, (new state, decision)
out; the service persists and applies it. Operator transitions live in controls.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

from functions.traffic import strategies
from functions.traffic.config import Guardrail, RolloutConfig
from functions.traffic.judge import (
    GuardrailResult,
    InvalidMetrics,
    MeanEvidence,
    RateEvidence,
    reference_harm_log_evidence,
)
from functions.traffic.model import Decision, Interval, Observation, RolloutState, ShadowReport, VariantStats


class TransitionError(ValueError):
    """The requested transition is not allowed from the rollout's current status."""


def start(config: RolloutConfig, rollout_id: str, now: dt.datetime) -> RolloutState:
    weights = strategies.initial_weights(config)
    return RolloutState(
        endpoint=config.endpoint, rollout_id=rollout_id, config=config, weights=weights,
        started_at=now, step_started_at=now, observed_until=now.replace(second=0, microsecond=0),
    )  # fmt: skip


def next_minute(t: dt.datetime) -> dt.datetime:
    """The first whole minute starting at or after t."""
    floor = t.replace(second=0, microsecond=0)
    return floor if floor == t else floor + dt.timedelta(minutes=1)


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


def _check(name: str, stats: VariantStats) -> None:
    """The built-in fields of one variant's minute must be possible numbers (business values may be anything
    finite: a margin or a refund can be negative)."""
    n, x, latency = stats.invocations, stats.errors, stats.latency
    if not (math.isfinite(n) and math.isfinite(x)) or n < 0 or x < 0 or x > n:
        raise InvalidMetrics(f"{name}: counts must satisfy 0 <= 5XX <= requests, got {x} of {n}")
    if latency is not None and not (math.isfinite(latency) and latency >= 0):
        raise InvalidMetrics(f"{name}: latency must be finite and >= 0, got {latency}")


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


def _per_minute(config: RolloutConfig) -> list[Guardrail]:
    """The guardrails judged on per-minute metrics (the shadow ones read the challenger's shadow pairs)."""
    return [g for g in config.judge.guardrails if g.kind != "shadow"]


def shadow_guardrail(g: Guardrail, report: ShadowReport | None) -> GuardrailResult:
    """A shadow guardrail on the challenger's mirrored pairs: their mean |score difference| from the champion's
    answer, a failed mirrored call counting as the largest difference (1), against the absolute margin. The
    pairs were logged before the rollout (the shadow phase), so this is a check of what they show, not a
    sequential test: nothing accrues while the rollout runs."""
    if report is None:
        return GuardrailResult(g.name, "no_data", {"pairs": 0, "margin": g.margin})
    compared = report.pairs + report.challenger_errors
    difference = (report.mean_score_difference * report.pairs + report.challenger_errors) / max(compared, 1)
    stats = {"pairs": report.pairs, "challenger_errors": report.challenger_errors,
             "label_agreement": report.label_agreement, "score_difference": difference, "margin": g.margin}  # fmt: skip
    if compared < g.min_pairs:
        return GuardrailResult(g.name, "no_data", stats)
    return GuardrailResult(g.name, "non_inferior" if difference <= g.margin else "harm", stats)


def _judge(
    state: RolloutState, evidence: dict[str, dict[str, Any]], shadow: ShadowReport | None = None
) -> list[GuardrailResult]:
    c = state.config
    results = []
    # Bonferroni over the guardrails for harm: a false rollback on any of them stays below alpha. (Promotion
    # needs every guardrail non-inferior, an intersection-union test that needs no correction.)
    harm_alpha = c.judge.alpha / max(len(c.judge.guardrails), 1)
    for g in c.judge.guardrails:
        if g.kind == "shadow":
            results.append(shadow_guardrail(g, shadow))
            continue
        raw = evidence.get(g.name) or _empty(g)
        if g.kind == "rate":
            ev = RateEvidence(**{**raw, "theta": tuple(raw["theta"]), "loglik": tuple(raw["loglik"])})
            result = ev.judge(g.name, g.margin, c.judge.alpha, g.min_events, harm_alpha)
            if not g.lower_is_better:  # the arms were swapped when folding (see _fold): name them right
                st = result.statistics
                swapped = {k.replace("champion", "\0").replace("challenger", "champion").replace("\0", "challenger"): v
                           for k, v in st.items()}  # fmt: skip
                result = GuardrailResult(result.name, result.verdict, {**swapped, "ratio": "champion/challenger"})
            results.append(result)
        else:
            mean = MeanEvidence(**raw)
            results.append(
                mean.judge(g.name, g.margin, c.judge.alpha, g.min_intervals, g.lower_is_better, harm_alpha=harm_alpha)
            )
    return results


def judge(state: RolloutState, shadow: ShadowReport | None = None) -> list[GuardrailResult]:
    """The verdicts on the settled evidence (the only evidence a promotion may rest on) and, for shadow
    guardrails, on the challenger's shadow pairs."""
    return _judge(state, state.evidence, shadow)


def _arms(state: RolloutState, interval: Interval) -> tuple[VariantStats, VariantStats]:
    c = state.config
    a = interval.variants.get(c.champion, VariantStats())
    b = interval.variants.get(c.challenger, VariantStats())
    _check(c.champion, a)
    _check(c.challenger, b)
    return a, b


# A settled minute that visibly lacks a datapoint (a count without its companion) is waited for this much
# longer before it is folded with the datapoint read as 0: a champion's request count arriving after its 5XX
# count must not make the minute impossible (more errors than requests) or look like harm.
LATE_GRACE_MINUTES = 10


def _incomplete(stats: VariantStats) -> bool:
    m = stats.missing
    if "invocations" in m:
        return not {"errors", "latency"} <= m  # another built-in arrived, the request count has not
    return stats.invocations > 0 and bool({"errors", "latency"} & m)


def observe(state: RolloutState, obs: Observation) -> RolloutState:
    """The state with the settled minutes folded in (see fold_settled); idempotent."""
    return fold_settled(state, obs)[0]


def fold_settled(state: RolloutState, obs: Observation) -> tuple[RolloutState, list[str]]:
    """Fold the settled minutes not yet seen (observed_until <= start < obs.settled) into evidence, totals and
    the step's counts, each minute once. A minute with impossible numbers is left out whole and named in the
    returned problems (the caller holds the rollout), so it is never half-counted and never re-read."""
    c = state.config
    evidence = {g.name: state.evidence.get(g.name) or _empty(g) for g in _per_minute(c)}
    totals = {v: dict(t) for v, t in state.totals.items()}
    step_b, step_a = state.step_challenger_requests, state.step_champion_requests
    step_errors = state.step_challenger_errors
    counted_from = None if state.applied_at is None else next_minute(max(state.applied_at, state.step_started_at))
    reward = getattr(c.strategy, "reward_metric", None)
    problems: list[str] = []
    settled = obs.settled
    give_up = settled - dt.timedelta(minutes=LATE_GRACE_MINUTES)
    for interval in sorted(obs.intervals, key=lambda i: i.start):
        if interval.start < state.observed_until or interval.start >= settled:
            continue
        if interval.start >= give_up and any(_incomplete(s) for s in interval.variants.values()):
            settled = interval.start  # wait for the rest of this minute; later minutes wait behind it
            break
        try:
            a, b = _arms(state, interval)
            folded = {g.name: _fold(g, evidence[g.name], a, b) for g in _per_minute(c)}
        except InvalidMetrics as err:
            problems.append(f"minute {interval.start:%Y-%m-%d %H:%M}: {err}")
            continue
        evidence = folded
        for name, stats in ((c.champion, a), (c.challenger, b)):
            t = totals.setdefault(name, {"requests": 0.0, "reward": 0.0})
            t["requests"] += stats.invocations
            if reward is not None:
                t["reward"] += stats.extra.get(reward, 0.0)
        if counted_from is not None and interval.start >= counted_from:
            step_a += a.invocations
            step_b += b.invocations
            step_errors += b.errors
    update = {
        "evidence": evidence, "totals": totals, "step_challenger_requests": step_b, "step_champion_requests": step_a,
        "step_challenger_errors": step_errors,
        "observed_until": max(state.observed_until, settled),
    }  # fmt: skip
    return state.model_copy(update=update), problems


def harm_check(state: RolloutState, obs: Observation) -> tuple[list[GuardrailResult], int]:
    """Verdicts on the settled evidence plus every provisional minute that has arrived, and how many such
    minutes were used. A minute still missing a datapoint a guardrail needs is left out of that guardrail
    (a late count is not a zero: an absent champion 5XX count would make the challenger look worse)."""
    c = state.config
    evidence = dict(state.evidence)
    used: set[dt.datetime] = set()
    for interval in obs.intervals:
        if interval.start < state.observed_until or interval.start >= obs.until:  # folded already, or too new
            continue
        try:
            a, b = _arms(state, interval)
        except InvalidMetrics:
            continue  # judged (and held on) once settled; until then it says nothing about harm
        for g in _per_minute(c):
            needed = {"invocations", g.metric}
            if needed & (a.missing | b.missing):
                continue
            try:
                evidence[g.name] = _fold(g, evidence.get(g.name) or _empty(g), a, b)
            except InvalidMetrics:
                continue
            used.add(interval.start)
    return _judge(state, evidence, obs.shadow), len(used)


def _summary(results: list[GuardrailResult]) -> dict[str, Any]:
    return {r.name: {"verdict": r.verdict, **r.statistics} for r in results}


SRM_PRIOR_STRENGTH = 20.0  # Beta prior on the challenger's share, centred on its weight, worth 20 requests


def srm_log_e(n_champion: float, n_challenger: float, share: float, strength: float = SRM_PRIOR_STRENGTH) -> float:
    """Log e-value against "each request goes to the challenger with probability `share`": the Beta-binomial
    marginal likelihood over the binomial one. A non-negative martingale under that null, so it may be looked
    at every minute (a chi-square test looked at every minute is not: it holds healthy rollouts)."""
    a, b = strength * share, strength * (1 - share)
    x, y = n_challenger, n_champion

    def log_beta(p: float, q: float) -> float:
        return math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)

    return log_beta(x + a, y + b) - log_beta(a, b) - x * math.log(share) - y * math.log1p(-share)


def sample_ratio_mismatch(state: RolloutState) -> str | None:
    """Why the step's observed split cannot come from the weights applied, or None. Runs for every strategy
    that splits traffic by weight (not shadow: mirrored requests are not routed by weight)."""
    c = state.config
    if c.strategy.kind == "shadow":
        return None
    n_a, n_b = state.step_champion_requests, state.step_challenger_requests
    total = n_a + n_b
    share = state.weights.get(c.challenger, 0.0)
    if total <= 0:
        return None
    if share <= 0.0 or share >= 1.0:
        stray = n_b if share <= 0.0 else n_a
        if stray >= max(10.0, 0.01 * total):  # a variant with weight 0 must serve (almost) nothing
            return f"sample ratio mismatch: {stray:.0f} of {total:.0f} requests went to a variant with weight 0"
        return None
    log_e = srm_log_e(n_a, n_b, share)
    if log_e >= math.log(1 / c.judge.srm_alpha):
        return (
            f"sample ratio mismatch (e-value {math.exp(min(log_e, 700)):.3g} >= 1/srm_alpha): challenger served "
            f"{n_b / total:.1%} of the step's {total:.0f} requests at weight {share:.1%}"
        )
    return None


def deadline_minutes(state: RolloutState) -> float:
    return state.config.max_duration_minutes + state.extra_minutes


def evaluate(state: RolloutState, obs: Observation, now: dt.datetime) -> tuple[RolloutState, Decision]:
    if not state.live:
        return state, Decision("wait", f"rollout is {state.status}", state.weights)
    c = state.config
    state, problems = fold_settled(state, obs)
    results = judge(state, obs.shadow)
    arrived, provisional = harm_check(state, obs)
    stats: dict[str, Any] = {"guardrails": _summary(results), "settled_until": obs.settled.isoformat()}
    if provisional:
        stats["provisional_minutes"] = provisional
    firing = sorted(set(obs.alarms_firing) & set(c.alarms))
    harmed = [r.name for r in arrived if r.verdict == "harm"]
    srm = sample_ratio_mismatch(state) if state.status == "running" else None
    if firing:
        decision = Decision("rollback", f"alarm in ALARM: {', '.join(firing)}", strategies.split(c, 0.0), stats)
    elif harmed:
        stats["guardrails"] = _summary(arrived)  # the evidence the rollback rests on
        reason = f"challenger significantly worse on {', '.join(harmed)}"
        decision = Decision("rollback", reason, strategies.split(c, 0.0), stats)
    elif problems:
        # Impossible numbers mean the metrics pipeline is broken: stop moving traffic and tell a human,
        # rather than judge on them or fail every minute without a trace in the audit trail.
        reason = f"metrics inconsistent: {'; '.join(problems)}"
        decision = Decision("hold" if state.status == "running" else "wait", reason, state.weights, stats)
    elif state.status == "verifying":
        decision = _verify(state, now, stats)
    elif state.status != "running":
        decision = Decision("wait", f"rollout is {state.status}: {state.reason}", state.weights, stats)
    elif srm is not None:
        decision = Decision("hold", srm, state.weights, stats)
    elif (now - state.started_at).total_seconds() / 60 >= deadline_minutes(state):
        reason = f"maximum duration of {deadline_minutes(state):g} min reached"
        if c.on_timeout == "rollback":
            decision = Decision("rollback", reason, strategies.split(c, 0.0), stats)
        else:
            decision = Decision("hold", reason, state.weights, stats)
    else:
        d = strategies.decide(state, results, obs, now)
        decision = dataclasses.replace(d, statistics={**stats, **d.statistics})
    return apply(state, decision, now), decision


def _verify(state: RolloutState, now: dt.datetime, stats: dict[str, Any]) -> Decision:
    """Post-promotion analysis: the challenger alone against the old champion's 5XX rate over the rollout
    (add-one, times 1 + the error guardrail's margin), at alpha; complete once the window has passed."""
    c = state.config
    ev = next((state.evidence.get(g.name) for g in c.judge.guardrails if g.metric == "errors"), None) or {}
    margin = next((g.margin for g in c.judge.guardrails if g.metric == "errors"), 1.0)
    reference = (ev.get("x_champion", 0.0) + 1.0) / max(ev.get("n_champion", 0.0), 1.0) * (1.0 + margin)
    log_e = reference_harm_log_evidence(state.step_challenger_errors, state.step_challenger_requests, reference)
    stats = {**stats, "post_promotion": {
        "requests": state.step_challenger_requests, "errors": state.step_challenger_errors,
        "reference_rate": reference, "log_e_harm": log_e,
    }}  # fmt: skip
    if log_e >= math.log(1.0 / c.judge.alpha):
        rate = state.step_challenger_errors / state.step_challenger_requests
        reason = f"after promotion the challenger's 5XX rate {rate:.2%} is significantly above {reference:.2%}"
        return Decision("rollback", reason, strategies.split(c, 0.0), stats)
    waited = (now - state.step_started_at).total_seconds() / 60.0
    if waited >= c.post_promotion_minutes:
        return Decision("complete", f"{c.post_promotion_minutes} min after the promotion without harm", state.weights,
                        stats)  # fmt: skip
    return Decision("wait", f"post-promotion analysis: {waited:.0f}/{c.post_promotion_minutes} min", state.weights,
                    stats)  # fmt: skip


def apply(state: RolloutState, decision: Decision, now: dt.datetime) -> RolloutState:
    """The state after a decision (the version is the store's business)."""
    update: dict[str, Any] = {"weights": decision.weights, "decisions": state.decisions + 1}
    if not (decision.action == "wait" and state.status != "running"):
        update["reason"] = decision.reason  # a held or paused rollout keeps saying why it stopped
    if any(abs(decision.weights.get(v, 0.0) - w) > 1e-9 for v, w in state.weights.items()):
        update["applied_at"] = None  # to be confirmed on the endpoint by the service
    if decision.action in ("advance", "reweight"):
        update.update(step=state.step + 1, step_started_at=now, step_challenger_requests=0.0,
                      step_champion_requests=0.0, step_challenger_errors=0.0)  # fmt: skip
    elif decision.action == "promote" and state.config.post_promotion_minutes > 0 and decision.actor is None:
        # watched for the window from the next whole minute at 100%
        update.update(status="verifying", step_started_at=now, step_challenger_requests=0.0,
                      step_champion_requests=0.0, step_challenger_errors=0.0)  # fmt: skip
    elif decision.action in ("promote", "complete"):
        update.update(status="promoted")
    elif decision.action == "rollback":
        update.update(status="rolled_back")
    elif decision.action in ("hold", "pause"):
        update.update(status="held" if decision.action == "hold" else "paused", paused_at=now)
    elif decision.action == "abort":
        update.update(status="aborted")
    return state.model_copy(update=update)


__all__ = [
    "Interval",
    "TransitionError",
    "apply",
    "evaluate",
    "fold_settled",
    "harm_check",
    "judge",
    "observe",
    "start",
]
