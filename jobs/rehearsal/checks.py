"""The rehearsal's scheduled checks: the drift and quality functions' handlers, run as their schedules run them
(no baseline or model named: they find the endpoint's champion through SageMaker's describe calls and S3), their
verdicts printed and kept in the summary.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.rehearsal.stages import World


def drift_check(world: World, window: Any) -> None:
    """The drift function as its schedule runs it: no baseline named, so it finds the endpoint's champion and
    the baseline that model's metadata names (through SageMaker's describe calls and S3)."""
    from functions.common.events import EventBridgePublisher
    from functions.drift import handler
    from functions.drift.decision import DriftConfig
    from functions.drift.state import DynamoBreachStore
    from functions.drift.storage import S3ObjectStore

    deps = handler.Deps(
        names=world.names, store=S3ObjectStore(world.cloud.client("s3")),
        breach_store=DynamoBreachStore(world.cloud.client("dynamodb"), world.names.drift_state_table),
        publisher=EventBridgePublisher(world.cloud.client("events"), world.names.event_bus),
        config=DriftConfig(), sagemaker=world.cloud.client("sagemaker"), default_endpoint=window.endpoint,
    )  # fmt: skip
    hours = int((window.end - window.start).total_seconds() // 3600)
    outcome = handler.handle({"hours": hours, "window_end": window.end.isoformat()}, deps)
    verdict = outcome.result.verdict
    drifted = outcome.result.drifted
    world.echo(f"      drift check of {window.start:%Y-%m-%d}: {verdict}"
               + (f" ({', '.join(drifted)})" if drifted else "")
               + (" -> DriftDetected" if outcome.event else ""))  # fmt: skip
    world.summary.drift.append(
        {
            "window": f"{window.start:%Y-%m-%d}",
            "verdict": verdict,
            "drifted": drifted,
            "alarm": outcome.alarm,
            "report": outcome.report_html,
        }
    )
    world.drift_detected = world.drift_detected or outcome.event is not None


def quality_check(world: World, day: dt.date, as_of: dt.datetime) -> None:
    """The quality function on `day`'s predictions, `as_of` the time its labels have landed."""
    from functions.common.events import EventBridgePublisher
    from functions.drift.state import DynamoBreachStore
    from functions.drift.storage import S3ObjectStore
    from functions.quality import handler
    from functions.quality.decision import QualityConfig

    deps = handler.Deps(
        names=world.names, store=S3ObjectStore(world.cloud.client("s3")),
        breach_store=DynamoBreachStore(world.cloud.client("dynamodb"), world.names.drift_state_table),
        publisher=EventBridgePublisher(world.cloud.client("events"), world.names.event_bus),
        config=QualityConfig(), default_endpoint=world.endpoint, default_model="fraud",
    )  # fmt: skip
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    outcome = handler.handle({"hours": 24, "window_end": end.isoformat(), "as_of": as_of.isoformat()}, deps)
    for result in outcome.results:
        label = world.label_of(result.version)
        auc = result.window.estimates["auc"].value if result.window is not None else float("nan")
        base = result.baseline.estimates["auc"].value if result.baseline is not None else float("nan")
        world.echo(f"      quality of {day} ({label}), labels landed {as_of:%Y-%m-%d}: {result.verdict}, "
                   f"{result.labelled}/{result.predictions} labelled, AUC {auc:.3f} (validation {base:.3f})"
                   + (" -> ModelQualityDegraded" if outcome.events else ""))  # fmt: skip
        world.summary.quality.append({"window": f"{day}", "model": label, "verdict": result.verdict,
                                      "labelled": result.labelled, "predictions": result.predictions,
                                      "auc": auc, "validation_auc": base, "degraded": result.degraded})  # fmt: skip
