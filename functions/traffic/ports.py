"""The ports of the traffic function: where weights are set, metrics read, state kept, shadow pairs found.

Adapters live in functions/traffic/adapters/ (one module per backend, clients injected) and are imported
lazily by name, so a deployment never imports what it does not use.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Protocol, runtime_checkable

from functions.traffic.config import BusinessMetric
from functions.traffic.model import Decision, Interval, RolloutState, ShadowReport


class BackendError(RuntimeError):
    """The endpoint did not end up with the weights that were asked for."""


class BackendBusy(BackendError):
    """The endpoint is being updated (e.g. SageMaker status Updating); try again on the next tick."""


class ConcurrentUpdate(RuntimeError):
    """Another invocation changed the rollout first; this one's decision must not be applied."""


class RolloutExists(RuntimeError):
    """A rollout is already running (or held, or paused) on this endpoint."""


class RolloutIdTaken(RolloutExists):
    """The rollout id was used before on this endpoint (its audit records would collide)."""


def normalise(weights: dict[str, float]) -> dict[str, float]:
    """Weights as traffic fractions that sum to 1; negative, non-finite or all-zero weights are refused."""
    if not weights or any(w < 0 or not math.isfinite(w) for w in weights.values()) or max(weights.values()) == 0:
        raise ValueError(f"weights must be finite, >= 0 and not all zero, got {weights}")
    # Scale by the largest weight first: the plain sum of two weights near float max overflows to inf.
    peak = max(weights.values())
    scaled = {v: w / peak for v, w in weights.items()}
    total = math.fsum(scaled.values())
    return {v: w / total for v, w in scaled.items()}


class EndpointBackend(Protocol):
    def weights(self, endpoint: str) -> dict[str, float]:
        """Current traffic fraction per variant (sums to 1)."""
        ...

    def set_weights(self, endpoint: str, weights: dict[str, float], follow_capacity: bool = False) -> dict[str, float]:
        """Apply the weights and return them as read back from the platform; with follow_capacity, also size
        each variant's fleet for its share where the platform has fixed fleets (SageMaker)."""
        ...


@runtime_checkable
class CapacityBackend(Protocol):
    """A backend whose variants have fixed instance counts (SageMaker), so capacity can follow the weights."""

    def capacity_matches(self, endpoint: str, weights: dict[str, float]) -> bool: ...


class MetricsSource(Protocol):
    def intervals(
        self,
        endpoint: str,
        variants: list[str],
        start: dt.datetime,
        end: dt.datetime,
        business: dict[str, BusinessMetric],
    ) -> list[Interval]:
        """One Interval per minute in [start, end) that has any datapoint."""
        ...

    def alarms_firing(self, names: list[str]) -> list[str]:
        """The subset of `names` whose state is ALARM."""
        ...


class StateStore(Protocol):
    def load(self, endpoint: str) -> RolloutState | None: ...

    def create(self, state: RolloutState) -> RolloutState:
        """Store a new rollout; RolloutExists if one is running or held on the endpoint."""
        ...

    def commit(
        self, previous: RolloutState, new: RolloutState, decision: Decision | None, at: dt.datetime
    ) -> RolloutState:
        """Replace `previous` by `new` and append the decision (if any) to the audit trail, atomically, only if
        the stored version is still previous.version (else ConcurrentUpdate). Returns `new` with its version."""
        ...

    def audit(self, endpoint: str, rollout_id: str) -> list[dict[str, Any]]: ...

    def active(self) -> list[str]:
        """Endpoints with a live rollout (running, held, paused) or a pending one (weights not yet confirmed on
        the endpoint, or events still in the outbox)."""
        ...


class ShadowSource(Protocol):
    def report(self, endpoint: str, since: dt.datetime, challenger: str | None = None) -> ShadowReport | None:
        """The pairs logged for the endpoint since `since`; with `challenger`, only that variant's."""
        ...
