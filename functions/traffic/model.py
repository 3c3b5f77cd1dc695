"""Plain data of a rollout: what the metrics say (Observation), where the rollout is (RolloutState), and what
the machine decided (Decision). The state is JSON-serialisable so any store can keep it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.traffic.config import RolloutConfig

# verifying: promoted (all traffic on the challenger, RolloutPromoted sent) and watched for the config's
# post_promotion_minutes; harm or an alarm then rolls back to the previous champion.
Status = Literal["running", "held", "paused", "verifying", "promoted", "rolled_back", "aborted"]
TERMINAL: frozenset[str] = frozenset({"promoted", "rolled_back", "aborted"})
# Not terminal and watched every tick (alarms and harm stay live), but only "running" moves forward.
LIVE: frozenset[str] = frozenset({"running", "held", "paused", "verifying"})
Action = Literal["wait", "advance", "reweight", "promote", "rollback", "hold", "abort", "pause", "resume", "complete"]


@dataclass(frozen=True)
class VariantStats:
    """One variant over one interval: request and 5XX counts, mean latency, business metrics by name."""

    invocations: float = 0.0
    errors: float = 0.0
    latency: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    # Fields asked for but without a datapoint (yet): a late datapoint is not a zero. Read as 0 / None
    # once the minute is settled; a minute still missing one is left out of the harm check until then.
    missing: frozenset[str] = frozenset()


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
    """Everything the machine may look at, read for [observed_until, until) by the service.

    Minutes starting before `settled_until` (default: `until`) are final and folded into the evidence once;
    later ones are provisional: re-read every tick, used only to detect harm, never to promote."""

    until: dt.datetime
    intervals: list[Interval] = field(default_factory=list)
    alarms_firing: list[str] = field(default_factory=list)
    shadow: ShadowReport | None = None
    settled_until: dt.datetime | None = None

    @property
    def settled(self) -> dt.datetime:
        return self.until if self.settled_until is None else min(self.settled_until, self.until)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    weights: dict[str, float]
    statistics: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None  # who asked, for an operator's decision (pause, resume, promote, abort)

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
    step_champion_requests: float = 0.0  # with the above: the step's observed split (sample-ratio check)
    step_challenger_errors: float = 0.0  # 5XX of the step's counted requests (post-promotion analysis)
    # When the endpoint was confirmed to carry `weights` (None: committed, not yet confirmed). A step's
    # requests are counted only from the first whole minute after that.
    applied_at: dt.datetime | None = None
    paused_at: dt.datetime | None = None  # when it was last paused or held
    extra_minutes: float = 0.0  # added to max_duration_minutes: time spent paused or held, operator extensions
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

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def pending(self) -> bool:
        """Work left for the next tick even when terminal: weights to confirm or events to publish."""
        return self.applied_at is None or bool(self.outbox)
