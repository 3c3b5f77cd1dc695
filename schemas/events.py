"""Platform events: one pydantic model per detail-type, published on the event bus (EventBridge).

Producers build a model and hand it to a publisher (functions.common.events); consumers parse `detail`
back with `parse_event`. Every event carries its schema version so consumers can evolve.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.naming import EVENT_SOURCE


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    detail_type: str = Field(default="", exclude=True)  # set by each subclass; not part of `detail`
    schema_version: int = 1
    occurred_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def detail(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class PartitionIngested(Event):
    detail_type: Literal["PartitionIngested"] = Field(default="PartitionIngested", exclude=True)
    event_id: str = ""  # one per object version and type (functions.ingest.commit): consumers deduplicate by it
    dataset: str
    contract: str
    source: str  # s3://bucket/key?versionId=...
    curated: list[str]
    rows_in: int
    rows_curated: int
    rows_rejected: int


class FileQuarantined(Event):
    detail_type: Literal["FileQuarantined"] = Field(default="FileQuarantined", exclude=True)
    event_id: str = ""  # one per object version and type (functions.ingest.commit): consumers deduplicate by it
    dataset: str | None
    source: str
    quarantine: str
    reason: str


class LargeFileHandedOff(Event):
    """A raw object too large for the ingest function; `tide curate-handoffs` curates exactly this version."""

    detail_type: Literal["LargeFileHandedOff"] = Field(default="LargeFileHandedOff", exclude=True)
    dataset: str
    source: str
    size_bytes: int
    bucket: str = ""
    key: str = ""
    version_id: str | None = None
    etag: str = ""  # without quotes: guards an unversioned object against being overwritten meanwhile


class DriftDetected(Event):
    detail_type: Literal["DriftDetected"] = Field(default="DriftDetected", exclude=True)
    endpoint: str
    dataset: str
    window_start: dt.datetime
    window_end: dt.datetime
    drifted_features: list[str]
    report: str
    evidence: dict[str, Any]


class ModelQualityDegraded(Event):
    """A model version's labelled quality fell past its validation quality for sustained windows of prediction
    time (functions/quality); the retraining consumer treats it like DriftDetected."""

    detail_type: Literal["ModelQualityDegraded"] = Field(default="ModelQualityDegraded", exclude=True)
    endpoint: str
    model_version: str
    window_start: dt.datetime  # of prediction time
    window_end: dt.datetime
    degraded_metrics: list[str]
    labelled: int
    coverage: float  # share of the window's predictions that had a label
    report: str
    evidence: dict[str, Any]
    # The version's training dataset when the producer knows it; without it the retraining runner reads it from
    # the version's metadata.json (jobs/retrain).
    dataset: str | None = None


class RetrainingScheduled(Event):
    """The stack's retraining schedule fired (EventBridge Scheduler -> the bus; Pulumi config retrain_scheduled):
    retrain `model` on the newest version of `dataset`, drift or not. An unchanged dataset version and
    hyper-parameters ask for the same model version, so such a firing launches nothing new."""

    detail_type: Literal["RetrainingScheduled"] = Field(default="RetrainingScheduled", exclude=True)
    model: str
    dataset: str
    schedule: str = ""  # the schedule's ARN


class RolloutEvent(Event):
    endpoint: str
    rollout_id: str
    strategy: str
    champion: str
    challenger: str
    weights: dict[str, float]
    reason: str
    statistics: dict[str, Any] = Field(default_factory=dict)


class RolloutStepAdvanced(RolloutEvent):
    detail_type: Literal["RolloutStepAdvanced"] = Field(default="RolloutStepAdvanced", exclude=True)
    step: int


class RolloutPromoted(RolloutEvent):
    detail_type: Literal["RolloutPromoted"] = Field(default="RolloutPromoted", exclude=True)


class RolloutRolledBack(RolloutEvent):
    detail_type: Literal["RolloutRolledBack"] = Field(default="RolloutRolledBack", exclude=True)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["detail_type"].default: cls
    for cls in (
        PartitionIngested,
        FileQuarantined,
        LargeFileHandedOff,
        DriftDetected,
        ModelQualityDegraded,
        RetrainingScheduled,
        RolloutStepAdvanced,
        RolloutPromoted,
        RolloutRolledBack,
    )
}


# What starts a retraining: the bus rule to the retraining queue routes these (infra), the runner consumes them.
RETRAINING_TRIGGERS: tuple[str, ...] = ("DriftDetected", "ModelQualityDegraded", "RetrainingScheduled")


def rule_pattern(detail_types: tuple[str, ...]) -> dict[str, list[str]]:
    """The EventBridge pattern of a bus rule that takes these platform events to a queue (infra's rules)."""
    return {"source": [EVENT_SOURCE], "detail-type": list(detail_types)}


def parse_event(detail_type: str, detail: dict[str, Any]) -> Event:
    """Rebuild an event from an EventBridge envelope's detail-type and detail."""
    try:
        cls = EVENT_TYPES[detail_type]
    except KeyError:
        raise ValueError(f"unknown detail-type {detail_type!r}; known: {sorted(EVENT_TYPES)}") from None
    return cls.model_validate(detail)
