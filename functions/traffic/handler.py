"""Scheduled (EventBridge, every minute): tick every running rollout. Logic lives in service.py."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.traffic.service import Rollouts, tick_all
from functions.traffic.wiring import aws_rollouts

logger = Logger(service="traffic")
tracer = Tracer(service="traffic")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "tidewater"), service="traffic")


@cache
def rollouts() -> Rollouts:
    return aws_rollouts()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    outcome = tick_all(rollouts(), (event.get("detail") or {}).get("endpoints"))
    for endpoint, action in outcome.items():
        logger.info("rollout tick", extra={"endpoint": endpoint, "action": action})
        kind = action.split(":")[0].replace(" ", "_")  # wait, advance, ..., skipped, backend_error
        metrics.add_metric(name=f"rollout_{kind}", unit=MetricUnit.Count, value=1)
    return outcome
