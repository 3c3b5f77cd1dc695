"""The rollout service: one tick of one endpoint's rollout, and the operator's start / status / controls.

Every committed state is converged the same way, terminal ones included (`_converge`): the state holds the
desired weights, the endpoint is read for the applied ones, and the weights are re-applied until they match;
only then are the state's events (its outbox) published and the state marked applied. After applying, the
state is re-read: if another invocation committed meanwhile, its state is converged instead, so the last
committed state is what the endpoint ends with, whichever invocation applies last.

Order of a tick: load -> converge the loaded state -> if live (running, held, paused): read the metrics from
the last settled minute to now -> evaluate -> commit conditionally, the decision's event in the state's outbox
(the loser of a race converges the state it re-reads and stops) -> converge the committed state. Events are
published at least once: a consumer that must not act twice dedupes on (rollout_id, detail-type, step).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.common.events import EventPublisher
from functions.traffic import controls, machine, planning
from functions.traffic.config import ConfigError, RolloutConfig, metric_sources
from functions.traffic.model import Decision, Observation, RolloutState, ShadowReport
from functions.traffic.ports import (
    BackendError,
    CapacityBackend,
    ConcurrentUpdate,
    EndpointBackend,
    MetricsSource,
    RolloutIdTaken,
    ShadowSource,
    StateStore,
)
from schemas.events import RolloutEvent, RolloutPromoted, RolloutRolledBack, RolloutStepAdvanced, parse_event

CONVERGE_ATTEMPTS = 5  # re-reads after an apply; more than this many commits racing one tick is not expected


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

    def start(self, config: RolloutConfig, rollout_id: str | None = None, reason: str = "") -> RolloutState:
        """Create the rollout and apply its first weights. An id used before on the endpoint is refused: its
        audit records exist, so every decision of the new rollout would collide with them."""
        rid = rollout_id or uuid.uuid4().hex[:12]
        if config.capacity == "follow_weights" and not isinstance(self.backend, CapacityBackend):
            raise ConfigError("capacity: follow_weights needs a backend with instance counts (SageMaker)")
        current = self.store.load(config.endpoint)
        if (current is not None and current.rollout_id == rid) or self.store.audit(config.endpoint, rid):
            raise RolloutIdTaken(f"rollout id {rid!r} was already used on {config.endpoint}; choose a new one")
        if self.shadow is None and any(g.kind == "shadow" for g in config.judge.guardrails):
            raise ConfigError("judge.guardrails: a shadow guardrail needs the shadow pairs' reader (shadow source)")
        if config.judge.min_detectable_ratio is not None:
            self.plan(config)  # PlanError: refused with the estimate before anything is written
        fresh = machine.start(config, rid, self.clock())
        if reason:
            fresh = fresh.model_copy(update={"reason": reason})
        return self._converge(self.store.create(fresh))

    def plan(self, config: RolloutConfig) -> dict[str, Any]:
        """The planning estimate on the last hour of settled traffic (see planning.plan)."""
        until = self.clock().replace(second=0, microsecond=0) - dt.timedelta(minutes=config.settle_minutes)
        since = until - dt.timedelta(minutes=planning.LOOKBACK_MINUTES)
        intervals = self.metrics.intervals(
            config.endpoint, [config.champion, config.challenger], since, until, config.business_metrics
        )
        traffic = planning.recent_traffic(intervals, config.champion, config.challenger, planning.LOOKBACK_MINUTES)
        return planning.plan(config, traffic)

    def _with_event(self, state: RolloutState, decision: Decision) -> RolloutState:
        event = event_for(state, decision)
        if event is None:
            return state
        entry = {"detail_type": event.detail_type, "detail": event.detail()}
        return state.model_copy(update={"outbox": [*state.outbox, entry]})

    def _converge(self, state: RolloutState, publish: bool = True) -> RolloutState:
        """Make the endpoint carry the latest committed state's weights, then publish its outbox and mark it
        applied (without `publish`: only the weights, leaving the events to the invocation that committed
        them, or to the next tick). Raises BackendError (nothing published; the next tick tries again)."""
        for _ in range(CONVERGE_ATTEMPTS):
            if not self._applied(state):
                if state.config.capacity == "follow_weights":
                    self.backend.set_weights(state.endpoint, state.weights, follow_capacity=True)
                else:  # (a backend written before capacity followed weights takes two arguments)
                    self.backend.set_weights(state.endpoint, state.weights)  # confirms by reading back
                latest = self.store.load(state.endpoint)
                if latest is not None and latest.version != state.version:
                    state = latest  # committed by another invocation while this one applied: theirs wins
                    continue
            if not state.pending or not publish:
                return state
            for entry in state.outbox:
                self.publisher.publish(parse_event(entry["detail_type"], entry["detail"]))
            now = self.clock()
            done = state.model_copy(update={"outbox": [], "applied_at": state.applied_at or now})
            try:
                return self.store.commit(state, done, None, now)
            except ConcurrentUpdate:
                latest = self.store.load(state.endpoint)
                if latest is None:
                    return state
                state = latest
        raise ConcurrentUpdate(f"{state.endpoint}: the rollout kept moving while its weights were applied")

    def _applied(self, state: RolloutState) -> bool:
        """Whether the endpoint carries the state's weights (and instance counts, when they follow)."""
        if not _same(self.backend.weights(state.endpoint), state.weights):
            return False
        if state.config.capacity != "follow_weights":
            return True
        if not isinstance(self.backend, CapacityBackend):
            raise BackendError(f"{state.endpoint}: this backend has no instance counts to follow the weights")
        return self.backend.capacity_matches(state.endpoint, state.weights)

    def _observe(self, state: RolloutState, now: dt.datetime) -> Observation:
        c = state.config
        until = now.replace(second=0, microsecond=0)  # the minute in progress is never read
        settled = until - dt.timedelta(minutes=c.settle_minutes)
        # The window starts at the first minute not yet settled: it re-reads every recent minute each tick
        # (late datapoints arrive), and the machine folds a minute into the evidence once, when settled.
        intervals = self.metrics.intervals(
            state.endpoint, [c.champion, c.challenger], state.observed_until, until, metric_sources(c)
        )
        return Observation(
            until=until,
            settled_until=max(settled, state.observed_until),
            intervals=intervals,
            alarms_firing=self.metrics.alarms_firing(c.alarms) if c.alarms else [],
            shadow=self._shadow_report(state),
        )

    def _shadow_report(self, state: RolloutState) -> ShadowReport | None:
        """A shadow rollout is judged on the pairs mirrored since it started; a rollout with a shadow guardrail
        on its challenger's pairs logged within the guardrail's lookback before the start (its shadow phase);
        the others never read them."""
        c = state.config
        if self.shadow is None:
            return None
        if c.strategy.kind == "shadow":
            return self.shadow.report(state.endpoint, state.started_at)
        lookback = max((g.lookback_minutes for g in c.judge.guardrails if g.kind == "shadow"), default=None)
        if lookback is None:
            return None
        since = state.started_at - dt.timedelta(minutes=lookback)
        return self.shadow.report(state.endpoint, since, challenger=c.challenger)

    def tick(self, endpoint: str) -> Decision | None:
        """Converge and evaluate the endpoint's rollout once; None when no rollout is live (running, held,
        paused) after converging.

        Raises ConcurrentUpdate when another invocation moved the rollout first (then only the state re-read
        was applied), BackendError when the endpoint did not take the committed weights (the next tick
        re-applies them)."""
        state = self.store.load(endpoint)
        if state is None:
            return None
        backend_error: BackendError | None = None
        try:
            state = self._converge(state)
        except BackendError as err:  # harm must still be looked for; the weights are retried below
            backend_error = err
        if not state.live:
            if backend_error is not None:
                raise backend_error
            return None
        now = self.clock()
        new, decision = machine.evaluate(state, self._observe(state, now), now)
        try:
            committed = self.store.commit(state, self._with_event(new, decision), decision, now)
        except ConcurrentUpdate:
            latest = self.store.load(endpoint)
            if latest is not None:  # the winner publishes its own events (or the next tick does)
                self._converge(latest, publish=False)
            raise
        self._converge(committed)
        return decision

    def _operate(
        self, endpoint: str, transition: Callable[[RolloutState, dt.datetime], tuple[RolloutState, Decision]]
    ) -> RolloutState:
        """Commit an operator's transition (re-read and re-checked if a tick moved the rollout meanwhile),
        then converge it."""
        for _ in range(CONVERGE_ATTEMPTS):
            state = self.store.load(endpoint)
            if state is None:
                raise machine.TransitionError(f"no rollout on {endpoint}")
            now = self.clock()
            new, decision = transition(state, now)
            try:
                committed = self.store.commit(state, self._with_event(new, decision), decision, now)
            except ConcurrentUpdate:
                continue
            return self._converge(committed)
        raise ConcurrentUpdate(f"{endpoint}: the rollout kept moving; try again")

    def abort(self, endpoint: str, reason: str, actor: str = "operator") -> RolloutState:
        """All traffic back to the champion. On a rollout already aborted or rolled back it converges that
        state again (an abort whose apply failed can be repeated)."""
        state = self.store.load(endpoint)
        if state is not None and state.status in ("aborted", "rolled_back"):
            return self._converge(state)
        return self._operate(endpoint, lambda s, now: controls.abort(s, reason, now, actor))

    def pause(self, endpoint: str, reason: str, actor: str) -> RolloutState:
        return self._operate(endpoint, lambda s, now: controls.pause(s, reason, now, actor))

    def resume(self, endpoint: str, reason: str, actor: str, extend_minutes: float = 0.0) -> RolloutState:
        return self._operate(endpoint, lambda s, now: controls.resume(s, reason, now, actor, extend_minutes))

    def promote(self, endpoint: str, reason: str, actor: str) -> RolloutState:
        """Manual promotion: all traffic to the challenger now, skipping the remaining steps (audited)."""
        return self._operate(endpoint, lambda s, now: controls.promote(s, reason, now, actor))

    def retry(self, endpoint: str, reason: str, actor: str, rollout_id: str | None = None) -> RolloutState:
        """Start the rolled-back or aborted rollout's config again under a new id, from its first step."""
        state = self.store.load(endpoint)
        if state is None:
            raise machine.TransitionError(f"no rollout on {endpoint}")
        rid = rollout_id or f"{state.rollout_id}-retry-{uuid.uuid4().hex[:4]}"
        controls.retry(state, rid, self.clock())  # checks the transition before anything is written
        why = f"retry of {state.rollout_id} ({state.status}: {state.reason}): {reason} (by {actor})"
        return self.start(state.config, rid, reason=why)

    def status(self, endpoint: str) -> tuple[RolloutState | None, list[dict[str, Any]]]:
        state = self.store.load(endpoint)
        return state, ([] if state is None else self.store.audit(endpoint, state.rollout_id))


def tick_all(rollouts: Rollouts, endpoints: list[str] | None = None) -> dict[str, str]:
    """Tick every live or unconverged rollout (or the named endpoints): endpoint -> action taken, or why none."""
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
