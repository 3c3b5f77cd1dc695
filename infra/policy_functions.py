"""The function roles' IAM policies: each gets only the actions it needs on the exact ARNs and key prefixes it
touches, plus the basics every function has (its log group, traces, metrics in the platform namespace, the key).
"""

from __future__ import annotations

from typing import Final

from infra.policy_statements import Policy, Statement, allow, document, list_under, objects, sagemaker_arn

METRICS_NAMESPACE: Final = "Tidewater"


def _function_basics(log_group_arn: str, key_arn: str) -> list[Statement]:
    """Logs into its own pre-created log group, traces, metrics in the platform namespace, the data key."""
    return [
        allow("Logs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
        allow("Tracing", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
        allow(
            "Metrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
        ),
        allow("DataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
    ]


def _events(bus_arn: str) -> Statement:
    return allow("PublishEvents", ["events:PutEvents"], [bus_arn])


def _table(sid: str, table_arn: str, *extra: str) -> Statement:
    actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"]
    return allow(sid, [*actions, *extra], [table_arn])


def ingest_policy(
    *,
    raw_bucket_arn: str,
    raw_prefix: str,
    curated_bucket_arn: str,
    quarantine_bucket_arn: str,
    queue_arn: str,
    idempotency_table_arn: str,
    bus_arn: str,
    log_group_arn: str,
    key_arn: str,
) -> Policy:
    """Reads raw objects (never deletes them), writes curated or quarantine, consumes its queue."""
    return document(
        allow("ReadRaw", ["s3:GetObject", "s3:GetObjectVersion"], [objects(raw_bucket_arn, raw_prefix)]),
        allow("WriteCurated", ["s3:PutObject"], [objects(curated_bucket_arn), objects(quarantine_bucket_arn)]),
        allow(
            "ConsumeQueue",
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
            [queue_arn],
        ),
        _table("Idempotency", idempotency_table_arn),
        _events(bus_arn),
        *_function_basics(log_group_arn, key_arn),
    )


def drift_policy(
    *,
    captures_bucket_arn: str,
    captures_prefix: str,
    endpoint_arn: str,
    endpoint_config_prefix: str,
    sagemaker_model_prefix: str,
    datasets_bucket_arn: str,
    artifacts_bucket_arn: str,
    models_prefix: str,
    reports_bucket_arn: str,
    reports_prefix: str,
    state_table_arn: str,
    bus_arn: str,
    log_group_arn: str,
    key_arn: str,
) -> Policy:
    """Reads the endpoint's captures, finds its champion's model (describe calls), reads the model's metadata and
    the baseline profiles, writes its reports, keeps its window state."""
    return document(
        allow("ReadCaptures", ["s3:GetObject"], [objects(captures_bucket_arn, captures_prefix)]),
        list_under("ListCaptures", captures_bucket_arn, captures_prefix),
        # A scheduled check names no baseline: it follows endpoint -> config -> champion's model -> metadata.
        allow("FindChampionEndpoint", ["sagemaker:DescribeEndpoint"], [endpoint_arn]),
        allow(
            "FindChampionModel",
            ["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
            [
                sagemaker_arn(endpoint_arn, f"endpoint-config/{endpoint_config_prefix}*"),
                sagemaker_arn(endpoint_arn, f"model/{sagemaker_model_prefix}*"),
            ],
        ),
        allow("ReadBaselines", ["s3:GetObject"], [objects(datasets_bucket_arn)]),
        # The model's metadata names the dataset version whose baseline profile applies.
        allow("ReadModelMetadata", ["s3:GetObject"], [objects(artifacts_bucket_arn, models_prefix)]),
        allow("WriteReports", ["s3:PutObject"], [objects(reports_bucket_arn, reports_prefix)]),
        _table("DriftState", state_table_arn),
        _events(bus_arn),
        *_function_basics(log_group_arn, key_arn),
    )


def quality_policy(
    *,
    captures_bucket_arn: str,
    captures_prefix: str,
    curated_bucket_arn: str,
    labels_prefix: str,
    labels_commits_prefix: str,
    artifacts_bucket_arn: str,
    models_prefix: str,
    baseline_files: list[str],
    reports_bucket_arn: str,
    reports_prefix: str,
    state_table_arn: str,
    state_key_prefix: str,
    bus_arn: str,
    log_group_arn: str,
    key_arn: str,
) -> Policy:
    """Reads the endpoint's captures, the curated labels (listing only their commit manifests), the files training
    stored for the baseline of each version of its model (never the model itself), writes its reports, and keeps
    its breach counters: items of the drift-state table whose key starts with its own prefix, nothing else."""
    return document(
        allow("ReadCaptures", ["s3:GetObject"], [objects(captures_bucket_arn, captures_prefix)]),
        list_under("ListCaptures", captures_bucket_arn, captures_prefix),
        allow("ReadLabels", ["s3:GetObject"], [objects(curated_bucket_arn, labels_prefix)]),
        list_under("ListLabelCommits", curated_bucket_arn, labels_commits_prefix),
        allow(
            "ReadBaselines",
            ["s3:GetObject"],
            sorted(f"{artifacts_bucket_arn}/{models_prefix}*/{name}" for name in baseline_files),
        ),
        list_under("ListBaselines", artifacts_bucket_arn, models_prefix),
        allow("WriteReports", ["s3:PutObject"], [objects(reports_bucket_arn, reports_prefix)]),
        allow(
            "QualityState",
            ["dynamodb:GetItem", "dynamodb:PutItem"],
            [state_table_arn],
            {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{state_key_prefix}*"]}},
        ),
        _events(bus_arn),
        *_function_basics(log_group_arn, key_arn),
    )


def traffic_policy(
    *,
    endpoint_arn: str,
    alarm_arns: list[str],
    rollout_table_arn: str,
    bus_arn: str,
    log_group_arn: str,
    key_arn: str,
    captures_bucket_arn: str,
    shadow_prefix: str,
) -> Policy:
    """Reads the variants' metrics and alarms and its endpoint's shadow pairs, shifts weights on its one
    endpoint, keeps the audit trail."""
    return document(
        allow(
            "ShiftWeights",
            ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
            [endpoint_arn],
        ),
        allow("ReadVariantMetrics", ["cloudwatch:GetMetricData"], ["*"]),
        allow("ReadVariantAlarms", ["cloudwatch:DescribeAlarms"], sorted(alarm_arns)),
        allow("ReadShadowPairs", ["s3:GetObject"], [objects(captures_bucket_arn, shadow_prefix)]),
        list_under("ListShadowPairs", captures_bucket_arn, shadow_prefix),
        # Scan lists the running rollouts; ConditionCheckItem guards the state+audit transaction.
        _table("Rollouts", rollout_table_arn, "dynamodb:Scan", "dynamodb:ConditionCheckItem"),
        _events(bus_arn),
        *_function_basics(log_group_arn, key_arn),
    )
