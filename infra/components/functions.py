"""Functions: the four functions and their wiring.

raw object created (prefix raw/, any suffix) -> ingest queue (DLQ after
`ingest_max_receive_count` receives) -> ingest, via an event source mapping that reports partial batch
failures. drift, traffic and quality run on EventBridge Scheduler schedules (retries, then a DLQ). The event bus
carries every platform event; one rule sends what asks for a retraining (DriftDetected, ModelQualityDegraded,
RetrainingScheduled: schemas.events.RETRAINING_TRIGGERS) to the retraining queue (an SQS queue rather than an SNS
topic: the trigger must wait, durably, for the retraining runner, a CronJob that polls: infra/k8s/retraining.py).
With `retrain_scheduled` set, an EventBridge Scheduler schedule puts RetrainingScheduled on the bus.
drift, traffic and quality watch the endpoint, so they come with stage serving; ingest with stage platform.

Each function has its own role (infra.policies), its own log group with retention, active tracing and a
reserved concurrency from the stack config. ingest ships as a container image: its wheels (great-expectations,
pandas, pyarrow, numpy, scipy) exceed Lambda's 250 MB zip limit (README, "Deploy to AWS"); drift, traffic and
quality ship as zips built by jobs.build_artifacts.

This module holds the component, its tables and the functions themselves; the wiring lives beside it:
function_roles (each function's role and policy), function_queues (the queues, raw -> ingest, the bus rules),
function_schedules (the scheduled functions' schedules).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final, Literal

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components import function_queues, function_roles
from infra.components.datalake import DataLake
from infra.components.endpoint import ModelEndpoint
from infra.components.function_schedules import function_schedule
from infra.components.retraining_schedule import retraining_schedule
from infra.config import StackConfig
from jobs.build_artifacts import Artifact
from schemas import naming
from schemas.events import RETRAINING_TRIGGERS
from schemas.naming import DRIFT_STATE_TABLE_KEYS, FUNCTIONS, ROLLOUT_TABLE_KEYS, Names

Packaging = Literal["zip", "image"]
PACKAGING: Final[dict[str, Packaging]] = {"ingest": "image", "drift": "zip", "traffic": "zip", "quality": "zip"}
RUNTIME: Final = "python3.12"
HANDLER: Final = "functions.{name}.handler.lambda_handler"  # module path and attribute Lambda calls
# (memory MB, timeout s) of the scheduled functions; ingest's come from the stack config.
# quality: a day of 1M predictions peaked at 0.81 GiB and 13 s on 2 cores (benchmarks/RESULTS.md); Lambda gives
# CPU in proportion to memory, so 2 GiB, and the most time Lambda allows for a busier endpoint's day.
SCHEDULED_SIZING: Final = {"drift": (1024, 300), "traffic": (512, 60), "quality": (2048, 900)}
# ingest's /tmp: the staged outputs of the largest object it takes (zstd Parquet, smaller than the rows it
# holds) plus a gzipped Parquet file decompressed there (INGEST_MAX_DECODED_BYTES, 512 MiB): functions/ingest/
# settings.handoff_bytes's (memory - 512) / 2 + 512 MiB, at least Lambda's default 512 and at most its 10,240.
INGEST_DECODED_MIB: Final = 512


def ingest_tmp_mb(memory_mb: int) -> int:
    return min(10240, max(512, (memory_mb - 512) // 2 + INGEST_DECODED_MIB))


# drift, traffic and quality watch the endpoint: they exist from stage serving on, once there is one.
ENDPOINT_FUNCTIONS: Final = ("drift", "traffic", "quality")


def serverless_functions(with_endpoint: bool) -> tuple[str, ...]:
    """The functions of a stage: ingest from stage platform, the endpoint's watchers once the endpoint exists."""
    return FUNCTIONS if with_endpoint else tuple(fn for fn in FUNCTIONS if fn not in ENDPOINT_FUNCTIONS)


def zip_code_sha256(artifact: Artifact) -> str:
    """Lambda's CodeSha256: base64 of the zip's sha256 (changes exactly when the zip's bytes change)."""
    return base64.b64encode(bytes.fromhex(artifact.zip_sha256)).decode()


def _table(
    name: str,
    table_name: str,
    key_arn: pulumi.Input[str],
    parent: pulumi.Resource,
    *,
    keys: tuple[str, ...],
    ttl: str | None = None,
) -> aws.dynamodb.Table:
    """On-demand table, CMK-encrypted, point-in-time recovery; hash (and range) key; optional TTL attribute."""
    return aws.dynamodb.Table(
        name,
        name=table_name,
        billing_mode="PAY_PER_REQUEST",
        hash_key=keys[0],
        range_key=keys[1] if len(keys) > 1 else None,
        attributes=[{"name": key, "type": "S"} for key in keys],
        ttl={"attribute_name": ttl, "enabled": True} if ttl else None,
        point_in_time_recovery={"enabled": True},
        server_side_encryption={"enabled": True, "kms_key_arn": key_arn},
        opts=pulumi.ResourceOptions(parent=parent),
    )


class ImageRepository(pulumi.ComponentResource):
    """ECR repository for the container-image function (ingest): immutable tags, scanned, KMS-encrypted.

    Its own component so that stage lake can create it before any image exists."""

    def __init__(
        self,
        name: str,
        *,
        repository_name: str,
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:functions:ImageRepository", name, None, opts)
        self.repository = aws.ecr.Repository(
            f"{name}-repository",
            name=repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": key_arn}],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"repository_url": self.repository.repository_url})


class Functions(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        *,
        names: Names,
        cfg: StackConfig,
        lake: DataLake,
        endpoint: ModelEndpoint | None,
        zips: Mapping[str, Artifact],
        image_repository: ImageRepository,
        account_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tidewater:functions:Functions", name, None, opts)
        deployed = serverless_functions(endpoint is not None)
        missing = sorted(f for f in deployed if PACKAGING[f] == "zip" and f not in zips)
        if missing:
            raise ValueError(f"no built artifact for zip function(s): {', '.join(missing)}")
        self._name, self._names, self._cfg = name, names, cfg
        child = pulumi.ResourceOptions(parent=self)
        self._account = pulumi.Output.from_input(account_id)
        key_arn = lake.key.arn

        self.bus = aws.cloudwatch.EventBus(f"{name}-bus", name=names.event_bus, opts=child)
        # powertools' idempotency layout: key `id`, expiry `expiration` (the TTL attribute).
        self.idempotency_table = _table(
            f"{name}-idempotency", names.idempotency_table, key_arn, self, keys=("id",), ttl="expiration"
        )
        self.rollout_table = _table(f"{name}-rollouts", names.rollout_table, key_arn, self, keys=ROLLOUT_TABLE_KEYS)
        self.drift_state_table = _table(
            f"{name}-drift-state", names.drift_state_table, key_arn, self, keys=DRIFT_STATE_TABLE_KEYS
        )

        # raw -> queue -> ingest
        self.ingest_dlq, self.ingest_queue, self.raw_notification = function_queues.ingest_queue(
            name, names, cfg, lake.buckets["raw"], parent=self
        )

        # Retraining triggers -> retraining queue (the retraining runner); LargeFileHandedOff -> hand-off queue
        # (`tide curate-handoffs`, the batch job that curates files too large for the ingest function). One rule
        # per queue: its queue policy admits exactly that rule.
        self.retraining_queue, self.retraining_dlq, self.retraining_rule = function_queues.event_queue(
            name,
            self.bus,
            "drift-to-retraining",
            RETRAINING_TRIGGERS,
            "retraining",
            names.retraining_queue,
            names.retraining_dlq,
            parent=self,
        )
        self.retraining_schedule = (
            retraining_schedule(name, names, cfg, self._account, self.bus, self.retraining_dlq, parent=self)
            if cfg.retrain_scheduled
            else None
        )
        self.handoff_queue, self.handoff_dlq, self.handoff_rule = function_queues.event_queue(
            name,
            self.bus,
            "large-file-handoff",
            ("LargeFileHandedOff",),
            "handoff",
            names.handoff_queue,
            names.handoff_dlq,
            parent=self,
            visibility_timeout=function_queues.HANDOFF_VISIBILITY_SECONDS,
        )

        # the functions
        scheduled = [fn for fn in deployed if fn in ENDPOINT_FUNCTIONS]
        # Only with something scheduled: a DLQ that nothing sends to would be noise.
        self.schedules_dlq = (
            function_queues.queue(name, "schedules-dlq", names.schedules_dlq, parent=self) if scheduled else None
        )
        self.image_repository = image_repository.repository
        self.log_groups = {
            fn: aws.cloudwatch.LogGroup(
                f"{name}-{fn}-logs",
                name=names.function_log_group(fn),
                retention_in_days=cfg.log_retention_days,
                opts=child,
            )
            for fn in deployed
        }
        documents: dict[str, pulumi.Output[Any]] = {
            "ingest": function_roles.ingest_document(
                lake,
                queue=self.ingest_queue,
                idempotency_table=self.idempotency_table,
                bus=self.bus,
                log_group=self.log_groups["ingest"],
                key_arn=key_arn,
            ),
        }
        environment: dict[str, dict[str, pulumi.Input[str]]] = {
            "ingest": {"TIDE_IDEMPOTENCY_TABLE": self.idempotency_table.name, "GX_ANALYTICS_ENABLED": "False"},
        }
        if endpoint is not None:
            documents |= function_roles.endpoint_documents(
                lake,
                endpoint,
                cfg.model_name,
                drift_state_table=self.drift_state_table,
                rollout_table=self.rollout_table,
                bus=self.bus,
                log_groups=self.log_groups,
                key_arn=key_arn,
            )
            environment |= {
                "drift": {
                    "TIDE_ENDPOINT": endpoint.endpoint.name,
                    "TIDE_STATE_TABLE": self.drift_state_table.name,
                },
                "traffic": {
                    "TIDE_ENDPOINT": endpoint.endpoint.name,
                    "TIDE_ROLLOUT_TABLE": self.rollout_table.name,
                },
                "quality": {
                    "TIDE_ENDPOINT": endpoint.endpoint.name,
                    "TIDE_MODEL": cfg.model_name,
                    "TIDE_STATE_TABLE": self.drift_state_table.name,
                },
            }
        self.roles: dict[str, aws.iam.Role] = {}
        self.functions: dict[str, aws.lambda_.Function] = {}
        for fn in deployed:
            role, role_policy = function_roles.function_role(name, fn, documents[fn], parent=self)
            self.roles[fn] = role
            self.functions[fn] = self._function(fn, role, zips.get(fn), environment[fn], [role_policy])

        self.ingest_mapping = aws.lambda_.EventSourceMapping(
            f"{name}-ingest-mapping",
            event_source_arn=self.ingest_queue.arn,
            function_name=self.functions["ingest"].arn,
            batch_size=cfg.ingest_batch_size,
            function_response_types=["ReportBatchItemFailures"],
            # SQS pollers scale up to this (minimum 2); keeps the poller from being throttled by the reservation.
            scaling_config={"maximum_concurrency": cfg.ingest_reserved_concurrency}
            if cfg.ingest_reserved_concurrency >= 2
            else None,
            opts=child,
        )
        self.schedules = {
            fn: function_schedule(
                name, names, cfg, self._account, fn, self.functions[fn], self.schedules_dlq, parent=self
            )
            for fn in scheduled
            if self.schedules_dlq
        }
        self.register_outputs(
            {
                "functions": {fn: f.name for fn, f in self.functions.items()},
                "ingest_queue_url": self.ingest_queue.url,
                "retraining_queue_url": self.retraining_queue.url,
                "handoff_queue_url": self.handoff_queue.url,
                "event_bus": self.bus.name,
            }
        )

    def _function(
        self,
        fn: str,
        role: aws.iam.Role,
        artifact: Artifact | None,
        extra_env: Mapping[str, pulumi.Input[str]],
        depends_on: list[pulumi.Resource],
    ) -> aws.lambda_.Function:
        names, cfg = self._names, self._cfg
        memory, timeout = (cfg.ingest_memory_mb, cfg.ingest_timeout_seconds) if fn == "ingest" else SCHEDULED_SIZING[fn]
        variables: dict[str, pulumi.Input[str]] = {
            naming.ENV_PROJECT: names.project,
            naming.ENV_STACK: names.stack,
            "TIDE_EVENT_BUS": names.event_bus,
            "POWERTOOLS_SERVICE_NAME": fn,
            "POWERTOOLS_METRICS_NAMESPACE": policies.METRICS_NAMESPACE,
            **extra_env,
        }
        if PACKAGING[fn] == "image":
            code: dict[str, Any] = {
                "package_type": "Image",
                "image_uri": self.image_repository.repository_url.apply(lambda url: f"{url}:{cfg.ingest_image_tag}"),
            }
        else:
            assert artifact is not None  # checked in __init__
            code = {
                "package_type": "Zip",
                "runtime": RUNTIME,
                "handler": HANDLER.format(name=fn),
                "code": pulumi.FileArchive(str(artifact.path)),
                "code_sha256": zip_code_sha256(artifact),
            }
        return aws.lambda_.Function(
            f"{self._name}-{fn}",
            name=names.function(fn),
            role=role.arn,
            architectures=["x86_64"],
            memory_size=memory,
            timeout=timeout,
            # ingest stages its outputs on /tmp; the others keep Lambda's default 512 MB.
            ephemeral_storage={"size": ingest_tmp_mb(memory)} if fn == "ingest" else None,
            reserved_concurrent_executions=cfg.reserved_concurrency(fn),
            tracing_config={"mode": "Active"},
            logging_config={"log_format": "JSON", "log_group": self.log_groups[fn].name},
            environment={"variables": variables},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_groups[fn], *depends_on]),
            **code,
        )
