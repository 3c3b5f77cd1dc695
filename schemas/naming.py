"""The one source of resource names and object-key layouts.

Infra (Pulumi), the functions, the jobs and the local rehearsal all derive names from here, so a bucket, a
queue or a key prefix cannot be spelt two ways. Pure: no cloud calls, no heavy imports.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

Zone = Literal["raw", "curated", "quarantine", "datasets", "artifacts", "captures", "reports"]
ZONES: Final[tuple[Zone, ...]] = ("raw", "curated", "quarantine", "datasets", "artifacts", "captures", "reports")
FUNCTIONS: Final[tuple[str, ...]] = ("ingest", "drift", "traffic", "quality")
# Workload roles on Kubernetes: each gets a namespace, a service account, a priority class and a quota.
K8sRole = Literal["training", "ingestion", "serving"]
K8S_ROLES: Final[tuple[K8sRole, ...]] = ("training", "ingestion", "serving")

# Raw objects live under this prefix of the raw bucket: raw/<dataset>/<yyyy>/<mm>/<dd>/<name>.<fmt>[.gz]
RAW_PREFIX: Final = "raw/"
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
_NAME_PART = re.compile(r"^[a-z][a-z0-9-]{0,20}[a-z0-9]$")
_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_RAW_KEY = re.compile(r"^raw/(?P<dataset>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<name>[^/]+)$")


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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Names:
        env = os.environ if env is None else env
        return cls(env.get(ENV_PROJECT, cls.project), env.get(ENV_STACK, cls.stack))

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

    @property
    def retraining_queue(self) -> str:
        """DriftDetected, ModelQualityDegraded and RetrainingScheduled land here (EventBridge rule -> SQS),
        consumed by the retraining runner (`tide retrain`, jobs/retrain)."""
        return f"{self.prefix}-retraining"

    @property
    def retraining_schedule(self) -> str:
        """The retraining schedule (retrain_scheduled): on aws the EventBridge Scheduler schedule that puts
        RetrainingScheduled on the bus; on kubernetes the CronJob whose runs are the firings (`tide retrain
        --scheduled-dataset`)."""
        return f"{self.prefix}-retraining"

    @property
    def retraining_dlq(self) -> str:
        return f"{self.prefix}-retraining-dlq"

    @property
    def handoff_queue(self) -> str:
        """LargeFileHandedOff events land here (EventBridge rule -> SQS); the batch curation job consumes them."""
        return f"{self.prefix}-handoff"

    @property
    def handoff_dlq(self) -> str:
        return f"{self.prefix}-handoff-dlq"

    @property
    def schedules_dlq(self) -> str:
        """Where EventBridge Scheduler parks invocations of the scheduled functions that failed every retry."""
        return f"{self.prefix}-schedules-dlq"

    def schedule(self, name: str) -> str:
        return self.function(name)

    def image_repository(self, name: str) -> str:
        """ECR repository of a function deployed as a container image."""
        return self.function(name)

    @property
    def training_image_repository(self) -> str:
        """ECR repository of the training image (this repository with the jobs extra), created at stage lake."""
        return f"{self.prefix}-train"

    def function_log_group(self, name: str) -> str:
        return f"/aws/lambda/{self.function(name)}"

    def endpoint(self, model: str = DEFAULT_MODEL_NAME) -> str:
        return f"{self.prefix}-{model}"

    def variant_alarm(self, endpoint: str, variant: str, kind: str) -> str:
        """Name of a per-variant endpoint alarm, e.g. tidewater-dev-model-challenger-5xx-rate."""
        if kind not in VARIANT_ALARM_KINDS:
            raise NamingError(f"unknown alarm kind {kind!r}; kinds are {', '.join(VARIANT_ALARM_KINDS)}")
        if not _NAME_PART.match(variant):
            raise NamingError(f"variant {variant!r} must be 2-22 lowercase letters, digits or '-'")
        return variant_alarm(endpoint, variant, kind)  # the module-level derivation the traffic function uses

    def variant_alarms(self, endpoint: str, variant: str) -> dict[str, str]:
        """kind -> alarm name for one variant: what the traffic function reads before each step."""
        return {kind: self.variant_alarm(endpoint, variant, kind) for kind in VARIANT_ALARM_KINDS}

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

    def k8s_storage_secret(self, role: str) -> str:
        """The object-store credentials Secret of a role's namespace (kubernetes target)."""
        return f"{self.project}-{self._k8s_role(role)}-storage"

    def priority_class(self, role: str) -> str:
        """PriorityClasses are cluster-scoped, so the stack is part of the name."""
        return f"{self.prefix}-{self._k8s_role(role)}"

    @property
    def eks_cluster(self) -> str:
        return f"{self.prefix}-compute"

    @property
    def retraining_runner(self) -> str:
        """The retraining runner (`tide retrain`) in the training namespace: its CronJob, service account (own IRSA
        role, not the training pods') and the ConfigMap holding the stack outputs it reads."""
        return f"{self.prefix}-retrainer"

    @property
    def dask_cluster(self) -> str:
        return f"{self.prefix}-dask"

    def inference_service(self, model: str = DEFAULT_MODEL_NAME) -> str:
        return self.endpoint(model)

    @property
    def rollout_store(self) -> str:
        """The kubernetes target's rollout store: the value of ROLLOUT_STORE_LABEL on its ConfigMaps in the serving
        namespace (functions/traffic/adapters/configmap_store.py); the table's name on aws, one name per stack."""
        return self.rollout_table

    @property
    def rollout_ticker(self) -> str:
        """The kubernetes target's scheduled tick (`tide rollout tick`): its CronJob, service account and RBAC Role
        in the serving namespace."""
        return f"{self.prefix}-rollout-tick"[:52].rstrip("-")  # a CronJob name has at most 52 characters


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


# Roots of the artifacts bucket that training writes (models and resumable checkpoints); IAM grants use them.
MODELS_ROOT: Final = "models/"
CHECKPOINTS_ROOT: Final = "checkpoints/"
# Where the SageMaker SDK puts a training job's source code and output (the session's default bucket prefix).
TRAINING_JOBS_ROOT: Final = "training-jobs/"


# Progress of the retraining runner (`tide retrain`): one record per model version it launched.
RETRAINING_ROOT: Final = "retraining/"


def retraining_root(model: str) -> str:
    return f"{RETRAINING_ROOT}{check_model_name(model)}/"


def retraining_record_key(model: str, version: str) -> str:
    return f"{retraining_root(model)}{check_model_version(version)}.json"


def retraining_job_name(version: str) -> str:
    """The training job of one retrained version: the same name on every attempt, so a launch is found again."""
    return f"retrain-{check_model_version(version)}"


def models_root(model: str) -> str:
    """Every version of a model lives under this prefix of the artifacts bucket."""
    return f"{MODELS_ROOT}{model}/"


def model_prefix(model: str, version: str) -> str:
    """Where `tide train` writes one model version, and where the stack's endpoint and `tide deploy` read it."""
    return f"{MODELS_ROOT}{check_model_name(model)}/{check_model_version(version)}/"


def model_version_name(model: str, version: str) -> str:
    """The SageMaker model of one model version, and the name of the endpoint variant serving it (the stack's
    first variant and every one `tide deploy` adds): <model>-<version>, under sagemaker_model_prefix(model)."""
    return f"{sagemaker_model_prefix(check_model_name(model))}{check_model_version(version)}"


def endpoint_config_prefix(endpoint: str) -> str:
    """Every endpoint configuration of an endpoint (the stack's and `tide deploy`'s) is named with this prefix,
    so the drift function's IAM can read exactly them. 50 characters leave room for a 12-character digest."""
    return f"{endpoint[:50]}-"


def sagemaker_model_prefix(model: str) -> str:
    """Every SageMaker model of a served model (the stack's <model>-<variant>-*, `tide deploy`'s
    <model>-<version>) is named with this prefix."""
    return f"{model}-"


def captures_prefix(endpoint: str) -> str:
    """SageMaker data capture writes <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl under this."""
    return f"datacapture/{endpoint}/"


SHADOW_ROOT: Final = "shadow/"


def shadow_prefix(endpoint: str) -> str:
    """Shadow pairs (champion and challenger answers to one mirrored request) of an endpoint, in the captures
    bucket: written by the serving-side ShadowMirror's S3ShadowLog, read by the traffic function's judge."""
    return f"{SHADOW_ROOT}{endpoint}/"


def reports_prefix(kind: str, endpoint: str) -> str:
    return f"{kind}/{endpoint}/"


# Rollout table (functions/traffic): pk = endpoint; sk = ROLLOUT_STATE_SK for the current rollout's state,
# ROLLOUT_AUDIT_PREFIX + "<rollout_id>#<decision no.>" for each decision of the audit trail.
ROLLOUT_TABLE_KEYS: Final[tuple[str, str]] = ("pk", "sk")
ROLLOUT_STATE_SK: Final = "STATE"
ROLLOUT_AUDIT_PREFIX: Final = "AUDIT#"
# The kubernetes target's rollout store (ConfigMaps in the serving namespace): every object of one store carries
# ROLLOUT_STORE_LABEL=<Names.rollout_store>; a rollout's state object is rollout_state_config_map(endpoint).
ROLLOUT_STORE_LABEL: Final = "tidewater.io/rollout-store"


def rollout_state_config_map(endpoint: str) -> str:
    return f"{endpoint}-rollout"


# Drift-state table (functions/drift): one item per endpoint, the consecutive-breach counter.
DRIFT_STATE_TABLE_KEYS: Final[tuple[str]] = ("endpoint",)
# The quality check (functions/quality) keeps its breach counters in the same table, one item per endpoint and
# model version under its own key prefix (its IAM role may touch only those keys), and reads only these files of
# each model version (what training stores beside model.tar.gz: the serving threshold and validation scores).
QUALITY_BASELINE_FILES: Final[tuple[str, ...]] = ("metadata.json", "validation_predictions.parquet")
LABELS_DATASET: Final = "labels"  # the delayed labels' dataset (schemas/datasets/labels), curated like any other


def quality_state_prefix(endpoint: str) -> str:
    return f"quality#{endpoint}#"


def quality_state_key(endpoint: str, version: str) -> str:
    return f"{quality_state_prefix(endpoint)}{version}"


def variant_alarm(endpoint: str, variant: str, metric: str) -> str:
    """Name of a CloudWatch alarm guarding one variant of an endpoint, e.g. <endpoint>-<variant>-5xx-rate."""
    return f"{endpoint}-{variant}-{metric}"


# Quarantine folder of an object whose key is outside the raw layout, so its dataset and day are unknown.
UNROUTED_PREFIX: Final = "_unrouted/"


def unrouted_quarantine_prefix(key: str) -> str:
    return f"{UNROUTED_PREFIX}{key}"


def capture_hour_prefix(endpoint: str, variant: str, hour: dt.datetime) -> str:
    """Where SageMaker data capture puts one variant's records of one UTC hour."""
    if "/" in variant or not variant:
        raise NamingError(f"variant {variant!r} must be a plain name")
    return f"{captures_prefix(endpoint)}{variant}/{hour.astimezone(dt.UTC):%Y/%m/%d/%H}/"


# The platform's own image (the root Dockerfile): one repository, a tag per target. These are the tags the
# README's build commands give; a deployment pushes them to its registry and sets the stack's image keys.
PLATFORM_IMAGE_REPOSITORY: Final = "tidewater/tidewater"
PLATFORM_IMAGE_VERSION: Final = "0.1.0"


def platform_image(target: Literal["train", "serving"], repository: str = PLATFORM_IMAGE_REPOSITORY) -> str:
    """train: torch training, the Dask workers and the CLI; serving: the HTTP predictor."""
    return f"{repository}:{target}-{PLATFORM_IMAGE_VERSION}"
