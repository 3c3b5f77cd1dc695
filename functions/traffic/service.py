"""The rollout service: one tick of one endpoint's rollout, and the operator's start / status / abort.

Order of a tick: load state -> publish events left in the outbox by a crashed tick -> make the endpoint
match the stored weights (repairs a crash between commit and apply) -> read metrics for the minutes not
yet seen -> evaluate -> commit conditionally, the decision's event in the state's outbox (the loser of a
race stops here, having changed nothing) -> apply the new weights -> publish the outbox and clear it.
Events are therefore published at least once: a consumer that must not act twice dedupes on
(rollout_id, detail-type, step).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.common.events import EventPublisher
from functions.traffic import machine
from functions.traffic.config import RolloutConfig
from functions.traffic.model import Decision, Observation, RolloutState
from functions.traffic.ports import ConcurrentUpdate, EndpointBackend, MetricsSource, ShadowSource, StateStore
from schemas.events import RolloutEvent, RolloutPromoted, RolloutRolledBack, RolloutStepAdvanced, parse_event


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _same(a: dict[str, float], b: dict[str, float], tol: float = 1e-3) -> bool:
    return all(abs(a.get(k, 0.0) - b.get(k, 0.0)) <= tol for k in set(a) | set(b))


def event_for(state: RolloutState, decision: Decision) -> RolloutEvent | None:
    c = state.config
    common: dict[str, Any] = {
        "endpoint": state.endpoint, "rollout_id": state.rollout_id, "strategy": c.strategy.kind,
        "champion": c.champion, "challenger": c.challenger, "weights": decision.weights,
        "reason": decision.reason, "statistics": decision.statistics,
    }  # fmt: skip
    if decision.action in ("advance", "reweight"):
        return RolloutStepAdvanced(step=state.step, **common)
    if decision.action == "promote":
        return RolloutPromoted(**common)
    if decision.action in ("rollback", "abort"):
        return RolloutRolledBack(**common)
    return None


@dataclass
class Rollouts:
    store: StateStore
    backend: EndpointBackend
    metrics: MetricsSource
    publisher: EventPublisher
    shadow: ShadowSource | None = None
    clock: Callable[[], dt.datetime] = _utcnow

    def start(self, config: RolloutConfig, rollout_id: str | None = None) -> RolloutState:
        now = self.clock()
        state = self.store.create(machine.start(config, rollout_id or uuid.uuid4().hex[:12], now))
        self.backend.set_weights(state.endpoint, state.weights)
        return state

    def _with_event(self, state: RolloutState, decision: Decision) -> RolloutState:
        event = event_for(state, decision)
        if event is None:
            return state
        entry = {"detail_type": event.detail_type, "detail": event.detail()}
        return state.model_copy(update={"outbox": [*state.outbox, entry]})

    def _flush(self, state: RolloutState) -> RolloutState:
        """Publish the outbox, then clear it; if another tick moved the state meanwhile, it publishes again."""
        if not state.outbox:
            return state
        for entry in state.outbox:
            self.publisher.publish(parse_event(entry["detail_type"], entry["detail"]))
        try:
            return self.store.commit(state, state.model_copy(update={"outbox": []}), None, self.clock())
        except ConcurrentUpdate:
            return state

    def tick(self, endpoint: str) -> Decision | None:
        """Evaluate the endpoint's rollout once; None when there is no running rollout.

        Raises ConcurrentUpdate when another invocation moved the rollout first (nothing was applied)."""
        state = self.store.load(endpoint)
        if state is not None and state.outbox:
            state = self._flush(state)
        if state is None or state.status != "running":
            return None
        c = state.config
        if not _same(self.backend.weights(endpoint), state.weights):
            self.backend.set_weights(endpoint, state.weights)
        now = self.clock()
        until = (now - dt.timedelta(minutes=c.metrics_lag_minutes)).replace(second=0, microsecond=0)
        variants = [c.champion, c.challenger]
        obs = Observation(
            until=until,
            intervals=self.metrics.intervals(endpoint, variants, state.observed_until, until, c.business_metrics),
            alarms_firing=self.metrics.alarms_firing(c.alarms) if c.alarms else [],
            # Only a shadow rollout is judged on mirrored pairs; the others never read them.
            shadow=self.shadow.report(endpoint, state.started_at)
            if self.shadow is not None and c.strategy.kind == "shadow"
            else None,
        )
        new, decision = machine.evaluate(state, obs, now)
        committed = self.store.commit(state, self._with_event(new, decision), decision, now)
        if decision.changes_traffic:
            self.backend.set_weights(endpoint, decision.weights)
        self._flush(committed)
        return decision

    def abort(self, endpoint: str, reason: str) -> RolloutState:
        state = self.store.load(endpoint)
        if state is None:
            raise machine.TransitionError(f"no rollout on {endpoint}")
        now = self.clock()
        new, decision = machine.abort(state, reason, now)
        committed = self.store.commit(state, self._with_event(new, decision), decision, now)
        self.backend.set_weights(endpoint, decision.weights)
        return self._flush(committed)

    def status(self, endpoint: str) -> tuple[RolloutState | None, list[dict[str, Any]]]:
        state = self.store.load(endpoint)
        return state, ([] if state is None else self.store.audit(endpoint, state.rollout_id))


def tick_all(rollouts: Rollouts, endpoints: list[str] | None = None) -> dict[str, str]:
    """Tick every running rollout (or the named endpoints): endpoint -> action taken, or why none."""
    from functions.traffic.ports import BackendError, ConcurrentUpdate

    outcome: dict[str, str] = {}
    for endpoint in endpoints if endpoints is not None else rollouts.store.active():
        try:
            decision = rollouts.tick(endpoint)
        except ConcurrentUpdate:
            outcome[endpoint] = "skipped: another invocation moved it first"
            continue
        except BackendError as err:
            # The decision (if any) is committed; the next tick re-applies the stored weights. One endpoint's
            # platform trouble must not stop the others' rollouts.
            outcome[endpoint] = f"backend error: {err}"
            continue
        outcome[endpoint] = "no running rollout" if decision is None else decision.action
    return outcome
