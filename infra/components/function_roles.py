"""Each function's own role: its policy document (infra.policies, scoped to the exact buckets, prefixes, tables,
queue, bus, log group and key that function uses) and the role + inline policy that carry it. Every resource
here is a child of the Functions component (`parent`), named after it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from functions.ingest.commit import commits_prefix
from infra import policies
from infra.components.datalake import DataLake
from infra.components.endpoint import ModelEndpoint
from schemas.naming import (
    LABELS_DATASET,
    QUALITY_BASELINE_FILES,
    RAW_PREFIX,
    captures_prefix,
    curated_prefix,
    endpoint_config_prefix,
    models_root,
    quality_state_prefix,
    reports_prefix,
    sagemaker_model_prefix,
    shadow_prefix,
)


def function_role(
    name: str, fn: str, document: pulumi.Output[Any], *, parent: pulumi.Resource
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """fn's Lambda role and its inline policy (the function depends on the policy, not only the role)."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-{fn}-role",
        assume_role_policy=json.dumps(policies.assume_role("lambda.amazonaws.com")),
        opts=child,
    )
    role_policy = aws.iam.RolePolicy(f"{name}-{fn}-policy", role=role.id, policy=document.apply(json.dumps), opts=child)
    return role, role_policy


def ingest_document(
    lake: DataLake,
    *,
    queue: aws.sqs.Queue,
    idempotency_table: aws.dynamodb.Table,
    bus: aws.cloudwatch.EventBus,
    log_group: aws.cloudwatch.LogGroup,
    key_arn: pulumi.Output[str],
) -> pulumi.Output[Any]:
    """ingest's policy: raw/ in, curated and quarantine out, its queue, idempotency table, the bus."""
    return pulumi.Output.all(
        lake.buckets["raw"].arn,
        lake.buckets["curated"].arn,
        lake.buckets["quarantine"].arn,
        queue.arn,
        idempotency_table.arn,
        bus.arn,
        log_group.arn,
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
    )


def endpoint_documents(
    lake: DataLake,
    endpoint: ModelEndpoint,
    model_name: str,
    *,
    drift_state_table: aws.dynamodb.Table,
    rollout_table: aws.dynamodb.Table,
    bus: aws.cloudwatch.EventBus,
    log_groups: Mapping[str, aws.cloudwatch.LogGroup],
    key_arn: pulumi.Output[str],
) -> dict[str, pulumi.Output[Any]]:
    """drift's, traffic's and quality's policies: scoped to the endpoint, its configs, models, captures, alarms,
    the labels and their own reports."""
    endpoint_name = endpoint.endpoint_name
    captures, reports = lake.buckets["captures"], lake.buckets["reports"]
    drift = pulumi.Output.all(
        captures.arn,
        endpoint.endpoint.arn,
        lake.buckets["datasets"].arn,
        lake.buckets["artifacts"].arn,
        reports.arn,
        drift_state_table.arn,
        bus.arn,
        log_groups["drift"].arn,
        key_arn,
    ).apply(
        lambda v: policies.drift_policy(
            captures_bucket_arn=v[0],
            captures_prefix=captures_prefix(endpoint_name),
            endpoint_arn=v[1],
            endpoint_config_prefix=endpoint_config_prefix(endpoint_name),
            sagemaker_model_prefix=sagemaker_model_prefix(model_name),
            datasets_bucket_arn=v[2],
            artifacts_bucket_arn=v[3],
            models_prefix=models_root(model_name),
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
        rollout_table.arn,
        bus.arn,
        log_groups["traffic"].arn,
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
        drift_state_table.arn,
        bus.arn,
        log_groups["quality"].arn,
        key_arn,
    ).apply(
        lambda v: policies.quality_policy(
            captures_bucket_arn=v[0],
            captures_prefix=captures_prefix(endpoint_name),
            curated_bucket_arn=v[1],
            labels_prefix=curated_prefix(LABELS_DATASET),
            labels_commits_prefix=commits_prefix(LABELS_DATASET),
            artifacts_bucket_arn=v[2],
            models_prefix=models_root(model_name),
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
