"""Plain data of a rollout: what the metrics say (Observation), where the rollout is (RolloutState), and what
the machine decided (Decision). The state is JSON-serialisable so any store can keep it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.traffic.config import RolloutConfig

Status = Literal["running", "held", "promoted", "rolled_back", "aborted"]
TERMINAL: frozenset[str] = frozenset({"promoted", "rolled_back", "aborted"})
Action = Literal["wait", "advance", "reweight", "promote", "rollback", "hold", "abort"]


@dataclass(frozen=True)
class VariantStats:
    """One variant over one interval: request and 5XX counts, mean latency, business metrics by name."""

    invocations: float = 0.0
    errors: float = 0.0
    latency: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Interval:
    start: dt.datetime
    variants: dict[str, VariantStats]


@dataclass(frozen=True)
class ShadowReport:
    """Agreement of the challenger's answers with the champion's on mirrored requests (cumulative)."""

    pairs: int
    label_agreement: float
    mean_score_difference: float
    challenger_errors: int = 0


@dataclass(frozen=True)
class Observation:
    """Everything the machine may look at, read for [since, until) by the service."""

    until: dt.datetime
    intervals: list[Interval] = field(default_factory=list)
    alarms_firing: list[str] = field(default_factory=list)
    shadow: ShadowReport | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    weights: dict[str, float]
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def changes_traffic(self) -> bool:
        return self.action in ("advance", "reweight", "promote", "rollback", "abort")


class RolloutState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str
    rollout_id: str
    config: RolloutConfig
    status: Status = "running"
    step: int = 0
    weights: dict[str, float]
    started_at: dt.datetime
    step_started_at: dt.datetime
    observed_until: dt.datetime
    step_challenger_requests: float = 0.0
    # Per guardrail: the judge's accumulated evidence (RateEvidence / MeanEvidence fields).
    evidence: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Per variant: requests and reward sums since the start (A/B, bandit).
    totals: dict[str, dict[str, float]] = Field(default_factory=dict)
    decisions: int = 0
    reason: str = ""
    # Events committed with their decision but not yet known to be published (a transactional outbox):
    # [{"detail_type": ..., "detail": {...}}]. Published after the commit, cleared by a later write.
    outbox: list[dict[str, Any]] = Field(default_factory=list)
    version: int = 0  # optimistic-concurrency counter, owned by the store

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL
