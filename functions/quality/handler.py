"""Scheduled quality check (EventBridge schedule -> Lambda). Event detail, every key optional:
{"endpoint": "...", "model": "...", "variant": "...", "hours": 24, "window_end": "ISO", "as_of": "ISO",
 "format": "sagemaker" | "kserve"}. The schedule sends an empty detail: the endpoint is TIDE_ENDPOINT, the
model TIDE_MODEL, and the window the `hours` of prediction time that ended QUALITY_LABEL_DELAY_HOURS ago (the
labels of older predictions have had time to arrive). Environment: TIDE_PROJECT, TIDE_STACK (resource names),
TIDE_STATE_TABLE (the drift check's breach table, keys schemas.naming.quality_state_key), QUALITY_* overrides of
QualityConfig fields. The stack deploys it at stage serving on a daily schedule (infra/components/functions.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.env_config import from_env
from functions.common.events import EventPublisher
from functions.drift.aws import check_ports
from functions.drift.check import Window
from functions.drift.state import BreachStore
from functions.drift.storage import ObjectStore
from functions.quality.check import QualityOutcome, run_check
from functions.quality.decision import QualityConfig
from schemas.naming import Names

logger = Logger(service="quality")
tracer = Tracer(service="quality")
metrics = Metrics(service="quality")


class QualityTargetError(ValueError):
    """The event and the environment leave the endpoint or the model unnamed."""


@dataclass(frozen=True)
class Deps:
    names: Names
    store: ObjectStore
    breach_store: BreachStore
    publisher: EventPublisher
    config: QualityConfig
    default_endpoint: str | None = None
    default_model: str | None = None


@functools.cache
def _deps() -> Deps:
    ports = check_ports()
    return Deps(
        names=ports.names,
        store=ports.store,
        breach_store=ports.breach_store,
        publisher=ports.publisher,
        config=config_from_env(os.environ),
        default_endpoint=os.environ.get("TIDE_ENDPOINT"),
        default_model=os.environ.get("TIDE_MODEL"),
    )


def config_from_env(env: Mapping[str, str]) -> QualityConfig:
    """QUALITY_MIN_LABELLED=500 etc. override QualityConfig's defaults (kept in one place: the dataclass)."""
    return from_env(QualityConfig, "QUALITY", env)


def _utc(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def handle(detail: dict[str, Any], deps: Deps, now: dt.datetime | None = None) -> QualityOutcome:
    endpoint = detail.get("endpoint") or deps.default_endpoint
    model = detail.get("model") or deps.default_model
    if not endpoint or not model:
        raise QualityTargetError("no endpoint or model: the event names none and TIDE_ENDPOINT/TIDE_MODEL are unset")
    now = now or dt.datetime.now(dt.UTC)
    as_of = _utc(detail["as_of"]) if detail.get("as_of") else now
    end = (
        _utc(detail["window_end"])
        if detail.get("window_end")
        else now - dt.timedelta(hours=deps.config.label_delay_hours)
    )
    return run_check(
        store=deps.store,
        names=deps.names,
        model=str(model),
        window=Window.hours_before(str(endpoint), end, int(detail.get("hours", 24))),
        as_of=as_of,
        breach_store=deps.breach_store,
        publisher=deps.publisher,
        config=deps.config,
        fmt=detail.get("format", "sagemaker"),
        variant=detail.get("variant"),
    )


def emit(outcome: QualityOutcome) -> None:
    metrics.add_dimension("Endpoint", outcome.window.endpoint)
    metrics.add_metric(name="ModelVersionsChecked", unit=MetricUnit.Count, value=len(outcome.results))
    for m in outcome.metrics:  # one EMF blob per model version: its own dimension set
        with single_metric(name=m.name, unit=MetricUnit(m.unit), value=m.value, namespace=metrics.namespace) as one:
            one.add_dimension("Endpoint", outcome.window.endpoint)
            one.add_dimension("ModelVersion", m.version)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = handle(event.get("detail", event), _deps())
    emit(outcome)
    verdicts = {r.version: r.verdict for r in outcome.results}
    logger.info("quality check", extra={"verdicts": verdicts, "account": dict(outcome.account)})
    alarms = [e.model_version for e in outcome.events]
    return {"verdicts": verdicts, "alarms": alarms, "report": outcome.report_json, "report_html": outcome.report_html}
