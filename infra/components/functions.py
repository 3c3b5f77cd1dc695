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
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Final, Literal

import pulumi
import pulumi_aws as aws

from functions.ingest.commit import commits_prefix
from infra import policies
from infra.components.datalake import DataLake
from infra.components.endpoint import ModelEndpoint
from infra.components.retraining_schedule import retraining_schedule
from infra.config import StackConfig
from jobs.build_artifacts import Artifact
from schemas import naming
from schemas.events import RETRAINING_TRIGGERS, rule_pattern
from schemas.naming import (
    DRIFT_STATE_TABLE_KEYS,
    FUNCTIONS,
    LABELS_DATASET,
    QUALITY_BASELINE_FILES,
    RAW_PREFIX,
    ROLLOUT_TABLE_KEYS,
    Names,
    captures_prefix,
    curated_prefix,
    endpoint_config_prefix,
    models_root,
    quality_state_prefix,
    reports_prefix,
    sagemaker_model_prefix,
    shadow_prefix,
)

Packaging = Literal["zip", "image"]
PACKAGING: Final[dict[str, Packaging]] = {"ingest": "image", "drift": "zip", "traffic": "zip", "quality": "zip"}
RUNTIME: Final = "python3.12"
HANDLER: Final = "functions.{name}.handler.lambda_handler"  # module path and attribute Lambda calls
DLQ_RETENTION_SECONDS: Final = 14 * 24 * 3600  # SQS maximum: time to inspect and redrive
# (memory MB, timeout s) of the scheduled functions; ingest's come from the stack config.
HANDOFF_VISIBILITY_SECONDS: Final = 900  # one large file's curation; a message reappears only if the job died
# quality: a day of 1M predictions peaked at 0.81 GiB and 13 s on 2 cores (benchmarks/RESULTS.md); Lambda gives
# CPU in proportion to memory, so 2 GiB, and the most time Lambda allows for a busier endpoint's day.
SCHEDULED_SIZING: Final = {"drift": (1024, 300), "traffic": (512, 60), "quality": (2048, 900)}
# A stale traffic tick is worse than the next one; a daily quality run is still worth running hours late.
SCHEDULE_MAX_EVENT_AGE: Final = {"drift": 3600, "traffic": 60, "quality": 6 * 3600}
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
        self.ingest_dlq = self._queue("ingest-dlq", names.ingest_dlq)
        self.ingest_queue = self._queue(
            "ingest-queue",
            names.ingest_queue,
            dlq=self.ingest_dlq,
            max_receive_count=cfg.ingest_max_receive_count,
            # AWS guidance for SQS event sources: visibility timeout >= 6 x the function timeout.
            visibility_timeout=6 * cfg.ingest_timeout_seconds,
        )
        raw = lake.buckets["raw"]
        ingest_queue_policy = aws.sqs.QueuePolicy(
            f"{name}-ingest-queue-policy",
            queue_url=self.ingest_queue.url,
            policy=pulumi.Output.all(self.ingest_queue.arn, raw.arn).apply(
                lambda v: json.dumps(policies.service_send_to_queue(v[0], "s3.amazonaws.com", v[1]))
            ),
            opts=child,
        )
        self.raw_notification = aws.s3.BucketNotification(
            f"{name}-raw-notification",
            bucket=raw.id,
            # Every object under raw/, whatever its suffix (S3's suffix filters are case-sensitive, and an object
            # they skipped would never get an outcome); the function quarantines what it cannot read.
            queues=[
                {
                    "id": "raw",
                    "queue_arn": self.ingest_queue.arn,
                    "events": ["s3:ObjectCreated:*"],
                    "filter_prefix": RAW_PREFIX,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ingest_queue_policy]),
        )

        # Retraining triggers -> retraining queue (the retraining runner); LargeFileHandedOff -> hand-off queue
        # (`tide curate-handoffs`, the batch job that curates files too large for the ingest function). One rule
        # per queue: its queue policy admits exactly that rule.
        self.retraining_queue, self.retraining_dlq, self.retraining_rule = self._event_queue(
            "drift-to-retraining", RETRAINING_TRIGGERS, "retraining", names.retraining_queue, names.retraining_dlq
        )
        self.retraining_schedule = (
            retraining_schedule(name, names, cfg, self._account, self.bus, self.retraining_dlq, parent=self)
            if cfg.retrain_scheduled
            else None
        )
        self.handoff_queue, self.handoff_dlq, self.handoff_rule = self._event_queue(
            "large-file-handoff",
            ("LargeFileHandedOff",),
            "handoff",
            names.handoff_queue,
            names.handoff_dlq,
            visibility_timeout=HANDOFF_VISIBILITY_SECONDS,
        )

        # the functions
        scheduled = [fn for fn in deployed if fn in ENDPOINT_FUNCTIONS]
        # Only with something scheduled: a DLQ that nothing sends to would be noise.
        self.schedules_dlq = self._queue("schedules-dlq", names.schedules_dlq) if scheduled else None
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
            "ingest": pulumi.Output.all(
                raw.arn,
                lake.buckets["curated"].arn,
                lake.buckets["quarantine"].arn,
                self.ingest_queue.arn,
                self.idempotency_table.arn,
                self.bus.arn,
                self.log_groups["ingest"].arn,
                key_arn,
            ).apply(
                lambda v: policies.ingest_policy(
                    raw_bucket_arn=v[0],
                    raw_prefix=RAW_PREFIX,
                    curated_bucket_arn=v[1],
                    quarantine_bucket_arn=v[2],
                    queue_arn=v[3],
                    idempotency_table_arn=v[4],
                    bus_arn=v[5],
                    log_group_arn=v[6],
                    key_arn=v[7],
                )
            ),
        }
        environment: dict[str, dict[str, pulumi.Input[str]]] = {
            "ingest": {"TIDE_IDEMPOTENCY_TABLE": self.idempotency_table.name, "GX_ANALYTICS_ENABLED": "False"},
        }
        if endpoint is not None:
            documents |= self._endpoint_documents(lake, endpoint, key_arn)
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
            role = aws.iam.Role(
                f"{name}-{fn}-role",
                assume_role_policy=json.dumps(policies.assume_role("lambda.amazonaws.com")),
                opts=child,
            )
            role_policy = aws.iam.RolePolicy(
                f"{name}-{fn}-policy", role=role.id, policy=documents[fn].apply(json.dumps), opts=child
            )
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
        self.schedules = {fn: self._schedule(fn, self.schedules_dlq) for fn in scheduled if self.schedules_dlq}
        self.register_outputs(
            {
                "functions": {fn: f.name for fn, f in self.functions.items()},
                "ingest_queue_url": self.ingest_queue.url,
                "retraining_queue_url": self.retraining_queue.url,
                "handoff_queue_url": self.handoff_queue.url,
                "event_bus": self.bus.name,
            }
        )

    def _endpoint_documents(
        self, lake: DataLake, endpoint: ModelEndpoint, key_arn: pulumi.Output[str]
    ) -> dict[str, pulumi.Output[Any]]:
        """drift's, traffic's and quality's policies: scoped to the endpoint, its configs, models, captures, alarms,
        the labels and their own reports."""
        cfg = self._cfg
        endpoint_name = endpoint.endpoint_name
        captures, reports = lake.buckets["captures"], lake.buckets["reports"]
        drift = pulumi.Output.all(
            captures.arn,
            endpoint.endpoint.arn,
            lake.buckets["datasets"].arn,
            lake.buckets["artifacts"].arn,
            reports.arn,
            self.drift_state_table.arn,
            self.bus.arn,
            self.log_groups["drift"].arn,
            key_arn,
        ).apply(
            lambda v: policies.drift_policy(
                captures_bucket_arn=v[0],
                captures_prefix=captures_prefix(endpoint_name),
                endpoint_arn=v[1],
                endpoint_config_prefix=endpoint_config_prefix(endpoint_name),
                sagemaker_model_prefix=sagemaker_model_prefix(cfg.model_name),
                datasets_bucket_arn=v[2],
                artifacts_bucket_arn=v[3],
                models_prefix=models_root(cfg.model_name),
                reports_bucket_arn=v[4],
                reports_prefix=reports_prefix("drift", endpoint_name),
                state_table_arn=v[5],
                bus_arn=v[6],
                log_group_arn=v[7],
                key_arn=v[8],
            )
        )
        traffic = pulumi.Output.all(
            endpoint.endpoint.arn,
            self.rollout_table.arn,
            self.bus.arn,
            self.log_groups["traffic"].arn,
            key_arn,
            captures.arn,
        ).apply(
            lambda v: policies.traffic_policy(
                endpoint_arn=v[0],
                # Every variant's alarms, the stack's and those `tide deploy` adds: all named <endpoint>-<variant>-*.
                alarm_arns=[policies.endpoint_alarms_arn(v[0])],
                rollout_table_arn=v[1],
                bus_arn=v[2],
                log_group_arn=v[3],
                key_arn=v[4],
                captures_bucket_arn=v[5],
                shadow_prefix=shadow_prefix(endpoint_name),
            )
        )
        quality = pulumi.Output.all(
            captures.arn,
            lake.buckets["curated"].arn,
            lake.buckets["artifacts"].arn,
            reports.arn,
            self.drift_state_table.arn,
            self.bus.arn,
            self.log_groups["quality"].arn,
            key_arn,
        ).apply(
            lambda v: policies.quality_policy(
                captures_bucket_arn=v[0],
                captures_prefix=captures_prefix(endpoint_name),
                curated_bucket_arn=v[1],
                labels_prefix=curated_prefix(LABELS_DATASET),
                labels_commits_prefix=commits_prefix(LABELS_DATASET),
                artifacts_bucket_arn=v[2],
                models_prefix=models_root(cfg.model_name),
                baseline_files=list(QUALITY_BASELINE_FILES),
                reports_bucket_arn=v[3],
                reports_prefix=reports_prefix("quality", endpoint_name),
                state_table_arn=v[4],
                state_key_prefix=quality_state_prefix(endpoint_name),
                bus_arn=v[5],
                log_group_arn=v[6],
                key_arn=v[7],
            )
        )
        return {"drift": drift, "traffic": traffic, "quality": quality}

    def _event_queue(
        self,
        rule: str,
        detail_types: tuple[str, ...],
        label: str,
        queue_name: str,
        dlq_name: str,
        visibility_timeout: int = 30,
    ) -> tuple[aws.sqs.Queue, aws.sqs.Queue, aws.cloudwatch.EventRule]:
        """A bus rule for some platform event types -> an SQS queue (with its DLQ) that a job consumes."""
        child = pulumi.ResourceOptions(parent=self)
        dlq = self._queue(f"{label}-dlq", dlq_name)
        queue = self._queue(
            f"{label}-queue", queue_name, dlq=dlq, max_receive_count=3, visibility_timeout=visibility_timeout
        )
        event_rule = aws.cloudwatch.EventRule(
            f"{self._name}-{rule}",
            event_bus_name=self.bus.name,
            description=f"{', '.join(detail_types)} -> {label} queue",
            event_pattern=json.dumps(rule_pattern(detail_types)),
            opts=child,
        )
        for name, target in ((label, queue), (f"{label}-dlq", dlq)):
            aws.sqs.QueuePolicy(
                f"{self._name}-{name}-policy",
                queue_url=target.url,
                policy=pulumi.Output.all(target.arn, event_rule.arn).apply(
                    lambda v: json.dumps(policies.service_send_to_queue(v[0], "events.amazonaws.com", v[1]))
                ),
                opts=child,
            )
        aws.cloudwatch.EventTarget(
            f"{self._name}-{rule}-target",
            rule=event_rule.name,
            event_bus_name=self.bus.name,
            arn=queue.arn,
            retry_policy={"maximum_retry_attempts": 10, "maximum_event_age_in_seconds": 24 * 3600},
            dead_letter_config={"arn": dlq.arn},
            opts=child,
        )
        return queue, dlq, event_rule

    def _queue(
        self,
        label: str,
        queue_name: str,
        *,
        dlq: aws.sqs.Queue | None = None,
        max_receive_count: int = 5,
        visibility_timeout: int = 30,
    ) -> aws.sqs.Queue:
        redrive = (
            dlq.arn.apply(lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive_count}))
            if dlq is not None
            else None
        )
        return aws.sqs.Queue(
            f"{self._name}-{label}",
            name=queue_name,
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=visibility_timeout,
            message_retention_seconds=DLQ_RETENTION_SECONDS if dlq is None else 4 * 24 * 3600,
            redrive_policy=redrive,
            opts=pulumi.ResourceOptions(parent=self),
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
            reserved_concurrent_executions=cfg.reserved_concurrency(fn),
            tracing_config={"mode": "Active"},
            logging_config={"log_format": "JSON", "log_group": self.log_groups[fn].name},
            environment={"variables": variables},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_groups[fn], *depends_on]),
            **code,
        )

    def _schedule(self, fn: str, dlq: aws.sqs.Queue) -> aws.scheduler.Schedule:
        function = self.functions[fn]
        role = aws.iam.Role(
            f"{self._name}-{fn}-schedule-role",
            # EventBridge Scheduler passes aws:SourceAccount: the confused-deputy guard its docs recommend.
            assume_role_policy=self._account.apply(
                lambda a: json.dumps(policies.assume_role("scheduler.amazonaws.com", source_account=a))
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{self._name}-{fn}-schedule-policy",
            role=role.id,
            policy=pulumi.Output.all(function.arn, dlq.arn).apply(
                lambda v: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": policies.invoke_policy("Invoke", v[0])["Statement"]
                        + policies.send_policy("DeadLetters", [v[1]])["Statement"],
                    }
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        cfg = self._cfg
        schedule = {"drift": cfg.drift_schedule, "traffic": cfg.traffic_schedule, "quality": cfg.quality_schedule}[fn]
        return aws.scheduler.Schedule(
            f"{self._name}-{fn}-schedule",
            name=self._names.schedule(fn),
            schedule_expression=schedule,
            flexible_time_window={"mode": "OFF"},
            target={
                "arn": function.arn,
                "role_arn": role.arn,
                # Empty: the stack's endpoint (drift checks its champion against the champion's baseline;
                # traffic ticks every rollout; quality judges the day whose labels have had time to arrive).
                "input": json.dumps({"detail": {}}),
                "retry_policy": {
                    "maximum_retry_attempts": 2,
                    "maximum_event_age_in_seconds": SCHEDULE_MAX_EVENT_AGE[fn],
                },
                "dead_letter_config": {"arn": dlq.arn},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
