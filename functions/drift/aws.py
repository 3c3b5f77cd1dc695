"""The scheduled checks' (drift, quality) cloud ports on AWS, built once per container from the environment:
S3 for captures and reports, the drift-state table for breach counters, the stack's bus for events."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from functions.common.events import EventBridgePublisher
from functions.drift.state import DynamoBreachStore
from functions.drift.storage import S3ObjectStore
from schemas.naming import Names

RETRYING = Config(retries={"mode": "standard", "max_attempts": 5})


@dataclass(frozen=True)
class CheckPorts:
    names: Names
    store: S3ObjectStore
    breach_store: DynamoBreachStore
    publisher: EventBridgePublisher

    @staticmethod
    def client(service: str) -> Any:
        return boto3.client(service, config=RETRYING)  # type: ignore[call-overload]


def check_ports() -> CheckPorts:
    names = Names.from_env()
    return CheckPorts(
        names=names,
        store=S3ObjectStore(CheckPorts.client("s3")),
        breach_store=DynamoBreachStore(
            CheckPorts.client("dynamodb"), os.environ.get("TIDE_STATE_TABLE", names.drift_state_table)
        ),
        publisher=EventBridgePublisher(CheckPorts.client("events"), names.event_bus),
    )
