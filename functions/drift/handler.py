"""Scheduled drift check (EventBridge schedule -> Lambda). Event detail, every key optional:
{"endpoint": "...", "baseline": "s3://bucket/key/profile.json", "variant": "...", "hours": 1,
 "window_end": "ISO", "format": "sagemaker" | "kserve"}. The stack's schedule sends an empty detail: the
endpoint is TIDE_ENDPOINT, the variant its champion, the baseline its model's (functions/drift/target.py).
Environment: TIDE_PROJECT, TIDE_STACK (resource names), TIDE_ENDPOINT, TIDE_STATE_TABLE, DRIFT_* overrides
of DriftConfig fields.
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
from functions.drift.check import CheckOutcome, Metric, Window, run_check
from functions.drift.decision import DriftConfig
from functions.drift.state import BreachStore
from functions.drift.storage import ObjectStore
from functions.drift.target import resolve
from schemas.naming import Names
from schemas.profile import Profile

logger = Logger(service="drift")
tracer = Tracer(service="drift")
metrics = Metrics(service="drift")


@dataclass(frozen=True)
class Deps:
    names: Names
    store: ObjectStore
    breach_store: BreachStore
    publisher: EventPublisher
    config: DriftConfig
    sagemaker: Any = None  # boto3 SageMaker client: finds the champion's baseline when the event names none
    default_endpoint: str | None = None


@functools.cache
def _deps() -> Deps:
    ports = check_ports()
    return Deps(
        names=ports.names,
        store=ports.store,
        breach_store=ports.breach_store,
        publisher=ports.publisher,
        config=config_from_env(os.environ),
        sagemaker=ports.client("sagemaker"),
        default_endpoint=os.environ.get("TIDE_ENDPOINT"),
    )


def config_from_env(env: Mapping[str, str]) -> DriftConfig:
    """DRIFT_ALPHA=0.01 etc. override DriftConfig's defaults (kept in one place: the dataclass)."""
    return from_env(DriftConfig, "DRIFT", env)


def handle(detail: dict[str, Any], deps: Deps) -> CheckOutcome:
    target = resolve(detail, deps.default_endpoint, deps.sagemaker, deps.store)
    bucket, _, key = target.baseline_url.removeprefix("s3://").partition("/")
    baseline = Profile.from_json(deps.store.get(bucket, key))  # it names the features and their kinds
    end = dt.datetime.fromisoformat(detail["window_end"]) if detail.get("window_end") else dt.datetime.now(dt.UTC)
    window = Window.hours_before(target.endpoint, end, int(detail.get("hours", 1)))
    outcome = run_check(
        store=deps.store,
        names=deps.names,
        baseline=baseline,
        window=window,
        breach_store=deps.breach_store,
        publisher=deps.publisher,
        config=deps.config,
        fmt=detail.get("format", "sagemaker"),
        variant=target.variant,
    )
    return outcome


def emit(items: list[Metric], endpoint: str) -> None:
    metrics.add_dimension("Endpoint", endpoint)
    for m in items:
        if m.feature is None:
            metrics.add_metric(name=m.name, unit=MetricUnit(m.unit), value=m.value)
        else:  # one EMF blob per feature: its own dimension set
            with single_metric(
                name=m.name, unit=MetricUnit(m.unit), value=m.value, namespace=metrics.namespace
            ) as metric:
                metric.add_dimension("Endpoint", endpoint)
                metric.add_dimension("Feature", m.feature)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail", event)
    outcome = handle(detail, _deps())
    emit(outcome.metrics, outcome.window.endpoint)
    logger.info(
        "drift check",
        extra={
            "verdict": outcome.result.verdict,
            "drifted": outcome.result.drifted,
            "alarm": outcome.alarm,
            "malformed": dict(outcome.decoded.malformed),
        },
    )
    return {
        "verdict": outcome.result.verdict,
        "drifted": outcome.result.drifted,
        "alarm": outcome.alarm,
        "report": outcome.report_html,
    }
