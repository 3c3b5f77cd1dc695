"""Resource names: the buckets, queues, tables, functions, endpoint, alarms, key alias and Kubernetes objects of
one deployment (Names), the SageMaker models and endpoint configurations of a served model, and the platform's
own image. Pure: no cloud calls, no heavy imports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from schemas.naming_rules import (
    DEFAULT_MODEL_NAME,
    ENV_PROJECT,
    ENV_STACK,
    FUNCTIONS,
    K8S_ROLES,
    VARIANT_ALARM_KINDS,
    ZONES,
    NamingError,
    Zone,
    check_model_name,
    check_model_version,
)

_NAME_PART = re.compile(r"^[a-z][a-z0-9-]{0,20}[a-z0-9]$")


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


def variant_alarm(endpoint: str, variant: str, metric: str) -> str:
    """Name of a CloudWatch alarm guarding one variant of an endpoint, e.g. <endpoint>-<variant>-5xx-rate."""
    return f"{endpoint}-{variant}-{metric}"


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


def retraining_job_name(version: str) -> str:
    """The training job of one retrained version: the same name on every attempt, so a launch is found again."""
    return f"retrain-{check_model_version(version)}"


# The platform's own image (the root Dockerfile): one repository, a tag per target. These are the tags the
# README's build commands give; a deployment pushes them to its registry and sets the stack's image keys.
PLATFORM_IMAGE_REPOSITORY: Final = "tidewater/tidewater"
PLATFORM_IMAGE_VERSION: Final = "0.1.0"


def platform_image(target: Literal["train", "serving"], repository: str = PLATFORM_IMAGE_REPOSITORY) -> str:
    """train: torch training, the Dask workers and the CLI; serving: the HTTP predictor."""
    return f"{repository}:{target}-{PLATFORM_IMAGE_VERSION}"
