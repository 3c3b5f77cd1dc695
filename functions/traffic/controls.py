"""The operator's transitions (pure): abort, pause, resume, manual promote, retry. Each names who asked and
why; the service commits the decision with its audit record like any other.

- abort: running | held | paused | verifying -> aborted, all traffic to the champion;
- pause: running -> paused, weights frozen; alarms and harm still roll it back (machine.evaluate);
- resume: paused | held -> running, the current step's bake starts again and the time spent stopped (plus
  any extension asked for) is added to the maximum duration;
- promote: running | held | paused | verifying -> promoted, all traffic to the challenger, skipping the
  remaining steps (and any post-promotion analysis);
- retry: rolled_back | aborted -> a new rollout of the same config (a new rollout id), from its first step.
"""

from __future__ import annotations

import datetime as dt

from functions.traffic import machine, strategies
from functions.traffic.machine import TransitionError
from functions.traffic.model import Decision, RolloutState


def _by(actor: str, reason: str) -> str:
    if not actor.strip() or not reason.strip():
        raise TransitionError("an operator's action needs who (--by) and why (--reason)")
    return f"{reason} (by {actor})"


def _require(state: RolloutState, allowed: set[str], verb: str) -> None:
    if state.status not in allowed:
        raise TransitionError(
            f"cannot {verb} rollout {state.rollout_id}: it is {state.status} (only when {' or '.join(sorted(allowed))})"
        )


def abort(state: RolloutState, reason: str, now: dt.datetime, actor: str = "operator") -> tuple[RolloutState, Decision]:
    """All traffic back to the champion."""
    _require(state, {"running", "held", "paused", "verifying"}, "abort")
    split = strategies.split(state.config, 0.0)
    _by(actor, reason)
    decision = Decision("abort", f"aborted by {actor}: {reason}", split, actor=actor)
    return machine.apply(state, decision, now), decision


def pause(state: RolloutState, reason: str, now: dt.datetime, actor: str) -> tuple[RolloutState, Decision]:
    _require(state, {"running"}, "pause")
    decision = Decision("pause", f"paused: {_by(actor, reason)}", state.weights, actor=actor)
    return machine.apply(state, decision, now), decision


def resume(
    state: RolloutState, reason: str, now: dt.datetime, actor: str, extend_minutes: float = 0.0
) -> tuple[RolloutState, Decision]:
    _require(state, {"paused", "held"}, "resume")
    if extend_minutes < 0:
        raise TransitionError(f"--extend-minutes must be >= 0, got {extend_minutes}")
    stopped = 0.0 if state.paused_at is None else max((now - state.paused_at).total_seconds() / 60.0, 0.0)
    decision = Decision(
        "resume", f"resumed from {state.status} ({state.reason}): {_by(actor, reason)}", state.weights, actor=actor,
        statistics={"stopped_minutes": round(stopped, 2), "extended_minutes": extend_minutes},
    )  # fmt: skip
    new = machine.apply(state, decision, now)
    # The step's bake and counts restart: the operator looked, and what happened while stopped is not a bake.
    new = new.model_copy(update={
        "status": "running", "paused_at": None, "step_started_at": now, "step_challenger_requests": 0.0,
        "step_champion_requests": 0.0, "extra_minutes": state.extra_minutes + stopped + extend_minutes,
    })  # fmt: skip
    return new, decision


def promote(state: RolloutState, reason: str, now: dt.datetime, actor: str) -> tuple[RolloutState, Decision]:
    _require(state, {"running", "held", "paused", "verifying"}, "promote")  # verifying: ends the analysis
    decision = Decision(
        "promote", f"promoted by operator, skipping the remaining steps: {_by(actor, reason)}",
        strategies.split(state.config, 1.0), {"skipped_from_step": state.step}, actor=actor,
    )  # fmt: skip
    return machine.apply(state, decision, now), decision


def retry(state: RolloutState, rollout_id: str, now: dt.datetime) -> RolloutState:
    """A fresh rollout of the same config; the finished one stays in the audit trail under its own id."""
    _require(state, {"rolled_back", "aborted"}, "retry")
    return machine.start(state.config, rollout_id, now)
