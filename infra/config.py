"""The stack configuration, read once into a typed, validated object.

Every key and its default is declared once, in Pulumi.yaml's `config:` block. `load` takes that block and the
stack's values (namespace `<project>:`), refuses unknown, missing and invalid keys naming the key, and returns a
frozen StackConfig. The Pulumi CLI applies the same defaults; reading them here too keeps the program correct
where no CLI runs (the unit tests under mocks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from infra.policies import ecr_repository_arn
from schemas.naming import (
    MODEL_NAME_PATTERN,
    STAGES,
    NamingError,
    Stage,
    check_dataset,
    check_model_version,
    model_version_name,
)

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
# Keys of the Kubernetes compute: declared in Pulumi.yaml too, read and validated by infra/k8s/config.py.
K8S_KEY_PREFIX = "k8s_"
# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^)]+\))$")

Days = Annotated[int, Field(ge=1, le=3650)]
Concurrency = Annotated[int, Field(ge=1, le=1000)]


class ConfigError(ValueError):
    """The stack configuration is unusable; the message names the key(s)."""


class StackConfig(BaseModel):
    """Typed stack configuration. No defaults here: they live in Pulumi.yaml only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: Literal["aws", "kubernetes"]
    stage: Stage
    model_name: str = Field(pattern=MODEL_NAME_PATTERN)

    raw_infrequent_access_days: int = Field(ge=30, le=3650)  # S3: STANDARD_IA needs >= 30 days
    raw_glacier_days: Days
    raw_expiration_days: Days
    captures_infrequent_access_days: int = Field(ge=30, le=3650)
    captures_expiration_days: Days
    noncurrent_version_expiration_days: Days
    abort_multipart_days: int = Field(ge=1, le=30)
    access_log_expiration_days: Days

    retrain_backend: Literal["sagemaker", "kubernetes"]
    retrain_policy: Literal["auto", "manual"]
    retrain_rollout: str
    retrain_schedule: str
    retrain_scheduled: str  # "" = no scheduled retraining
    retrain_scheduled_dataset: str
    retrain_instance_type: str = Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")

    log_retention_days: int
    ingest_reserved_concurrency: Concurrency
    drift_reserved_concurrency: Concurrency
    traffic_reserved_concurrency: Concurrency
    quality_reserved_concurrency: Concurrency
    ingest_memory_mb: int = Field(ge=128, le=10240)
    ingest_timeout_seconds: int = Field(ge=1, le=900)
    ingest_batch_size: int = Field(ge=1, le=10)
    ingest_max_receive_count: int = Field(ge=1, le=100)
    ingest_image_tag: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    drift_schedule: str
    traffic_schedule: str
    quality_schedule: str

    endpoint_image: str = Field(min_length=1)
    champion_model_version: str  # "" until `tide train` wrote a first model (stage serving needs one)
    challenger_model_version: str  # "" = the endpoint starts with the champion alone
    champion_weight: int = Field(ge=0, le=1000)
    challenger_weight: int = Field(ge=0, le=1000)
    endpoint_instance_type: str = Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    endpoint_min_instances: int = Field(ge=1, le=100)
    endpoint_max_instances: int = Field(ge=1, le=100)
    endpoint_invocations_per_instance: int = Field(ge=1)
    capture_sampling_percent: int = Field(ge=0, le=100)
    alarm_5xx_rate_percent: int = Field(ge=1, le=100)
    alarm_latency_p99_ms: int = Field(ge=1)
    alarm_evaluation_minutes: int = Field(ge=1, le=60)

    alert_email: str = Field(pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")
    monthly_budget_usd: int = Field(ge=1)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {sorted(LOG_RETENTION_DAYS)}")
        return value

    @field_validator("endpoint_image")
    @classmethod
    def _ecr_image(cls, value: str) -> str:
        ecr_repository_arn(value)  # the endpoint role may pull from exactly this repository
        return value

    @field_validator("champion_model_version", "challenger_model_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value:
            try:
                check_model_version(value)
            except NamingError as err:
                raise ValueError(str(err)) from None
        return value

    @field_validator("retrain_rollout")
    @classmethod
    def _rollout(cls, value: str) -> str:
        retraining_rollout(value)
        return value

    @field_validator("retrain_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from schemas.manifests import ManifestError, cron_job

        try:
            cron_job("check", namespace="check", schedule=value, image="i", command=["c"], service_account="s")
        except ManifestError as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("retrain_scheduled_dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        try:
            check_dataset(value)
        except NamingError as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("drift_schedule", "traffic_schedule", "quality_schedule", "retrain_scheduled")
    @classmethod
    def _schedule(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "retrain_scheduled":  # its form depends on the target (checked with it, below)
            return value
        if not _SCHEDULE.match(value):
            raise ValueError("must be an EventBridge Scheduler expression: rate(<n> <unit>) or cron(...)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.target == "kubernetes" and self.stage == "lake":
            raise ValueError("target kubernetes has no lake stage (storage is the given object store): use platform")
        if self.retrain_scheduled:
            self._check_retrain_scheduled()
        if self.stage == "serving" and not self.champion_model_version:
            raise ValueError(
                "stage serving needs champion_model_version: the version `tide train` printed (its model_url ends "
                "in models/<model_name>/<version>/); run stage platform and train a first model before"
            )
        if self.challenger_model_version and not self.champion_model_version:
            raise ValueError("challenger_model_version needs a champion_model_version")
        if self.challenger_model_version and self.challenger_model_version == self.champion_model_version:
            raise ValueError("champion_model_version and challenger_model_version must differ")
        if self.challenger_model_version and self.champion_weight + self.challenger_weight == 0:
            raise ValueError("champion_weight and challenger_weight cannot both be 0")
        if self.endpoint_max_instances < self.endpoint_min_instances:
            raise ValueError("endpoint_max_instances must be >= endpoint_min_instances")
        if not self.raw_infrequent_access_days < self.raw_glacier_days < self.raw_expiration_days:
            raise ValueError("raw lifecycle needs infrequent_access_days < glacier_days < expiration_days")
        if self.captures_expiration_days <= self.captures_infrequent_access_days:
            raise ValueError("captures_expiration_days must exceed captures_infrequent_access_days")
        return self

    def _check_retrain_scheduled(self) -> None:
        """aws: an EventBridge Scheduler expression (the schedule puts RetrainingScheduled on the bus). kubernetes:
        a CronJob schedule (5 cron fields or @daily...), whose runs are the firings (no bus or queue there)."""
        if self.target == "aws":
            if not _SCHEDULE.match(self.retrain_scheduled):
                raise ValueError("retrain_scheduled: on target aws, an EventBridge Scheduler expression: rate(<n> "
                                 "<unit>) or cron(...)")  # fmt: skip
            return
        from schemas.manifests import ManifestError, cron_job

        try:
            cron_job("check", namespace="check", schedule=self.retrain_scheduled, image="i", command=["c"],
                     service_account="s")  # fmt: skip
        except ManifestError as err:
            raise ValueError(f"retrain_scheduled: on target kubernetes, a CronJob schedule: {err}") from None

    def at_least(self, stage: Stage) -> bool:
        """Whether this deployment includes `stage` (stages are cumulative: lake < platform < serving)."""
        return STAGES.index(self.stage) >= STAGES.index(stage)

    @property
    def model_versions(self) -> dict[str, str]:
        """Role -> model version of the endpoint's first variants (the champion, and a challenger if set)."""
        roles = {"champion": self.champion_model_version, "challenger": self.challenger_model_version}
        return {role: version for role, version in roles.items() if version}

    @property
    def variant_names(self) -> dict[str, str]:
        """Role -> variant name: <model>-<version>, the name `tide deploy` gives every later variant too."""
        return {role: model_version_name(self.model_name, v) for role, v in self.model_versions.items()}

    @property
    def weights(self) -> dict[str, int]:
        """Variant name -> initial weight. A champion alone serves everything; after the first deployment
        `tide deploy` and the traffic function own the variants and their weights (see ModelEndpoint)."""
        names = self.variant_names
        if "challenger" not in names:
            return {names["champion"]: 1} if names else {}
        return {names["champion"]: self.champion_weight, names["challenger"]: self.challenger_weight}

    @property
    def retraining(self) -> dict[str, Any]:
        """The stack output `retraining`: what `tide retrain` does after drift (jobs/retrain/cli.py reads it)."""
        rollout = retraining_rollout(self.retrain_rollout)
        backend = "kubernetes" if self.target == "kubernetes" else self.retrain_backend  # no SageMaker off AWS
        return {"backend": backend, "policy": self.retrain_policy, "rollout": rollout,
                "instance_type": self.retrain_instance_type}  # fmt: skip

    def reserved_concurrency(self, function: str) -> int:
        return {
            "ingest": self.ingest_reserved_concurrency,
            "drift": self.drift_reserved_concurrency,
            "traffic": self.traffic_reserved_concurrency,
            "quality": self.quality_reserved_concurrency,
        }[function]


def retraining_rollout(text: str) -> dict[str, Any]:
    """retrain_rollout: a JSON rollout config the traffic function accepts once the runner fills in the variants."""
    import json

    from functions.traffic.config import ConfigError as RolloutConfigError
    from functions.traffic.config import load_config

    try:
        rollout = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err.msg})") from None
    if not isinstance(rollout, dict):
        raise ValueError("must be a JSON object (a rollout config)")
    if fixed := sorted({"endpoint", "champion", "challenger"} & set(rollout)):
        raise ValueError(f"must not set {', '.join(fixed)}: the runner fills them in")
    try:
        load_config({**rollout, "endpoint": "endpoint", "champion": "champion", "challenger": "challenger"})
    except RolloutConfigError as err:
        raise ValueError(str(err)) from None
    return rollout


def declared_keys(project_file: Path = PROJECT_FILE) -> dict[str, dict[str, Any]]:
    """The `config:` block of Pulumi.yaml: key -> {type, default?, description?}."""
    project = yaml.safe_load(project_file.read_text())
    block = project.get("config") or {}
    return {key: (spec if isinstance(spec, dict) else {"default": spec}) for key, spec in block.items()}


def load(project: str, values: Mapping[str, Any], project_file: Path = PROJECT_FILE) -> StackConfig:
    """Merge the declared defaults with the stack's `<project>:<key>` values and validate them."""
    declared = {k: v for k, v in declared_keys(project_file).items() if not k.startswith(K8S_KEY_PREFIX)}
    namespace = f"{project}:"
    given = {
        key[len(namespace) :]: value
        for key, value in values.items()
        if key.startswith(namespace) and not key[len(namespace) :].startswith(K8S_KEY_PREFIX)
    }
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(namespace + k for k in unknown)}")
    merged = {key: spec["default"] for key, spec in declared.items() if "default" in spec} | given
    missing = sorted(set(declared) - set(merged))
    if missing:
        raise ConfigError(f"missing config key(s): {', '.join(namespace + k for k in missing)} (no default)")
    try:
        return StackConfig.model_validate(merged)
    except ValidationError as err:
        problems = "; ".join(
            f"{namespace}{'.'.join(str(p) for p in e['loc']) or '(stack)'}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"invalid stack config: {problems}") from None


def from_pulumi() -> StackConfig:
    """Read the running stack's configuration (the engine's config map) once."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    values = runtime_config.get_config_env() | runtime_config.CONFIG.get()
    return load(pulumi.get_project(), values)
