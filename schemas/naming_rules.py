"""The platform's naming vocabulary and the checks every name part passes: zones, functions, Kubernetes roles,
stages, endpoint variants and their alarm kinds, the deployment's environment variables, model and dataset
names. Pure: no cloud calls, no heavy imports.
"""

from __future__ import annotations

import re
from typing import Final, Literal

Zone = Literal["raw", "curated", "quarantine", "datasets", "artifacts", "captures", "reports"]
ZONES: Final[tuple[Zone, ...]] = ("raw", "curated", "quarantine", "datasets", "artifacts", "captures", "reports")
FUNCTIONS: Final[tuple[str, ...]] = ("ingest", "drift", "traffic", "quality")
# Workload roles on Kubernetes: each gets a namespace, a service account, a priority class and a quota.
K8sRole = Literal["training", "ingestion", "serving"]
K8S_ROLES: Final[tuple[K8sRole, ...]] = ("training", "ingestion", "serving")

# The endpoint's production variants, and the CloudWatch alarms each one has (the traffic function rolls back
# when any of a variant's alarms is in ALARM): kind -> what it watches.
VARIANTS: Final[tuple[str, ...]] = ("champion", "challenger")
VARIANT_ALARM_KINDS: Final[tuple[str, ...]] = ("5xx-rate", "latency-p99")
# Environment variables that tell a function or job which deployment it belongs to (set by infra).
ENV_PROJECT: Final = "TIDE_PROJECT"
ENV_STACK: Final = "TIDE_STACK"
# The Prometheus `tide rollout --target kubernetes` reads (its --prometheus-url; set on the rollout-tick CronJob).
ENV_PROMETHEUS_URL: Final = "TIDE_PROMETHEUS_URL"
# Source name of every platform event on the bus; detail-types are the event names (schemas.events).
EVENT_SOURCE: Final = "tidewater"
# The stack is deployed in stages, each needing only what the previous stage (or a `tide` command run against it)
# produced: lake (storage, keys, image repositories) -> platform (ingestion, training, queues) -> serving (the
# endpoint, once a first model exists).
Stage = Literal["lake", "platform", "serving"]
STAGES: Final[tuple[Stage, ...]] = ("lake", "platform", "serving")
# The served model: `tide train` writes models/<name>/<version>/ and the stack serves that name by default.
DEFAULT_MODEL_NAME: Final = "fraud"
# A model name and a model version each end up inside a SageMaker model/variant name (<model>-<version>):
# letters, digits and single hyphens; the version `tide train` writes is a 16-hex-digit hash.
MODEL_NAME_PATTERN: Final = r"^[a-z](-?[a-z0-9]){0,30}$"
MODEL_VERSION_PATTERN: Final = r"^[a-z0-9](-?[a-z0-9]){0,29}$"

_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)
_MODEL_VERSION = re.compile(MODEL_VERSION_PATTERN)
_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class NamingError(ValueError):
    """A name part or object key does not follow the platform's layout."""


def check_model_name(model: str) -> str:
    if not _MODEL_NAME.match(model):
        raise NamingError(
            f"model name {model!r} must be 1-31 lowercase letters, digits or single hyphens, starting with a letter"
        )
    return model


def check_model_version(version: str) -> str:
    if not _MODEL_VERSION.match(version):
        raise NamingError(
            f"model version {version!r} must be 1-30 lowercase letters, digits or single hyphens (what `tide train` "
            "writes: a 16-hex-digit hash)"
        )
    return version


def check_dataset(dataset: str) -> str:
    if not _DATASET.match(dataset):
        raise NamingError(f"dataset name {dataset!r} must match {_DATASET.pattern}")
    return dataset
