"""Powertools objects for a function: one Logger, Tracer and Metrics per service, namespaced alike."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer


def observability(service: str) -> tuple[Logger, Tracer, Metrics]:
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "tidewater")
    return Logger(service=service), Tracer(service=service), Metrics(namespace=namespace, service=service)
