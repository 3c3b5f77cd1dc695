"""The one source of resource names and object-key layouts.

Infra (Pulumi), the functions, the jobs and the local rehearsal all derive names from here, so a bucket, a
queue or a key prefix cannot be spelt two ways. Pure: no cloud calls, no heavy imports.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final, Literal

Zone = Literal["raw", "curated", "quarantine", "datasets", "artifacts", "captures", "reports"]
ZONES: Final[tuple[Zone, ...]] = ("raw", "curated", "quarantine", "datasets", "artifacts", "captures", "reports")
FUNCTIONS: Final[tuple[str, ...]] = ("ingest", "drift", "traffic")
# Workload roles on Kubernetes: each gets a namespace, a service account, a priority class and a quota.
K8sRole = Literal["training", "ingestion", "serving"]
K8S_ROLES: Final[tuple[K8sRole, ...]] = ("training", "ingestion", "serving")

# Raw objects live under this prefix of the raw bucket: raw/<dataset>/<yyyy>/<mm>/<dd>/<name>.<fmt>[.gz]
RAW_PREFIX: Final = "raw/"
RAW_SUFFIXES: Final[tuple[str, ...]] = (".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".parquet", ".parquet.gz")
# Source name of every platform event on the bus; detail-types are the event names (schemas.events).
EVENT_SOURCE: Final = "tidewater"

_NAME_PART = re.compile(r"^[a-z][a-z0-9-]{0,20}[a-z0-9]$")
_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_RAW_KEY = re.compile(
    r"^raw/(?P<dataset>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<name>[^/]+)$"
)


class NamingError(ValueError):
    """A name part or object key does not follow the platform's layout."""


def check_dataset(dataset: str) -> str:
    if not _DATASET.match(dataset):
        raise NamingError(f"dataset name {dataset!r} must match {_DATASET.pattern}")
    return dataset


@dataclass(frozen=True)
class Names:
    """Resource names for one deployment (project + stack), e.g. Names("tidewater", "dev")."""

    project: str = "tidewater"
    stack: str = "dev"

    def __post_init__(self) -> None:
        for field, value in (("project", self.project), ("stack", self.stack)):
            if not _NAME_PART.match(value):
                raise NamingError(
                    f"{field} {value!r} must be 2-22 lowercase letters, digits or '-', starting with a letter"
                )

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    def bucket(self, zone: Zone) -> str:
        if zone not in ZONES:
            raise NamingError(f"unknown zone {zone!r}; zones are {', '.join(ZONES)}")
        return f"{self.prefix}-{zone}"

    def buckets(self) -> dict[Zone, str]:
        return {zone: self.bucket(zone) for zone in ZONES}

    def function(self, name: str) -> str:
        if name not in FUNCTIONS:
            raise NamingError(f"unknown function {name!r}; functions are {', '.join(FUNCTIONS)}")
        return f"{self.prefix}-{name}"

    @property
    def access_log_bucket(self) -> str:
        return f"{self.prefix}-access-logs"

    @property
    def ingest_queue(self) -> str:
        return f"{self.prefix}-ingest"

    @property
    def ingest_dlq(self) -> str:
        return f"{self.prefix}-ingest-dlq"

    @property
    def idempotency_table(self) -> str:
        return f"{self.prefix}-idempotency"

    @property
    def rollout_table(self) -> str:
        return f"{self.prefix}-rollouts"

    @property
    def drift_state_table(self) -> str:
        return f"{self.prefix}-drift-state"

    @property
    def event_bus(self) -> str:
        return f"{self.prefix}-events"

    @property
    def alert_topic(self) -> str:
        return f"{self.prefix}-alerts"

    def endpoint(self, model: str = "model") -> str:
        return f"{self.prefix}-{model}"

    @property
    def kms_alias(self) -> str:
        return f"alias/{self.prefix}-data"

    # --- Kubernetes (infra/k8s creates these; jobs submit PyTorchJobs into them) ---

    def _k8s_role(self, role: str) -> str:
        if role not in K8S_ROLES:
            raise NamingError(f"unknown kubernetes role {role!r}; roles are {', '.join(K8S_ROLES)}")
        return role

    def k8s_namespace(self, role: str) -> str:
        return f"{self.prefix}-{self._k8s_role(role)}"

    def k8s_service_account(self, role: str) -> str:
        return f"{self.project}-{self._k8s_role(role)}"

    def priority_class(self, role: str) -> str:
        """PriorityClasses are cluster-scoped, so the stack is part of the name."""
        return f"{self.prefix}-{self._k8s_role(role)}"

    @property
    def eks_cluster(self) -> str:
        return f"{self.prefix}-compute"

    @property
    def dask_cluster(self) -> str:
        return f"{self.prefix}-dask"

    def inference_service(self, model: str = "model") -> str:
        return self.endpoint(model)


def raw_key(dataset: str, day: dt.date, filename: str) -> str:
    """Key of a producer's file in the raw bucket."""
    check_dataset(dataset)
    if "/" in filename or not filename:
        raise NamingError(f"raw file name {filename!r} must be a plain file name")
    return f"{RAW_PREFIX}{dataset}/{day:%Y/%m/%d}/{filename}"


@dataclass(frozen=True)
class RawKey:
    dataset: str
    day: dt.date
    filename: str


def parse_raw_key(key: str) -> RawKey:
    """Split a raw key into dataset, day and file name; a key outside the layout is a NamingError."""
    match = _RAW_KEY.match(key)
    if not match:
        raise NamingError(f"key {key!r} is not of the form raw/<dataset>/<yyyy>/<mm>/<dd>/<name>")
    try:
        day = dt.date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError as err:
        raise NamingError(f"key {key!r} has an invalid date: {err}") from None
    return RawKey(dataset=check_dataset(match["dataset"]), day=day, filename=match["name"])


def curated_prefix(dataset: str, day: dt.date | None = None) -> str:
    """Curated Parquet is partitioned by event date (hive style, readable by Dask and Athena alike)."""
    check_dataset(dataset)
    return f"{dataset}/" if day is None else f"{dataset}/event_date={day.isoformat()}/"


def quarantine_prefix(dataset: str, day: dt.date) -> str:
    check_dataset(dataset)
    return f"{dataset}/{day:%Y/%m/%d}/"


def dataset_version_prefix(dataset: str, version: str) -> str:
    check_dataset(dataset)
    return f"{dataset}/{version}/"


# Roots of the artifacts bucket that training writes (models and resumable checkpoints); IRSA grants use them.
MODELS_ROOT: Final = "models/"
CHECKPOINTS_ROOT: Final = "checkpoints/"


def model_prefix(model: str, version: str) -> str:
    return f"{MODELS_ROOT}{model}/{version}/"


def captures_prefix(endpoint: str) -> str:
    """SageMaker data capture writes <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl under this."""
    return f"datacapture/{endpoint}/"


def reports_prefix(kind: str, endpoint: str) -> str:
    return f"{kind}/{endpoint}/"
