"""IAM policy documents as pure functions: plain ARNs in, plain dicts out (tested directly, no Pulumi).

Each function role gets only the actions it needs on the exact ARNs and key prefixes it touches. The few
statements with Resource "*" are the AWS actions that have no resource-level permissions (WILDCARD_ACTIONS);
the tests hold every document to that list.
"""

from __future__ import annotations

from typing import Any, Final

Policy = dict[str, Any]
Statement = dict[str, Any]

# Actions that AWS only authorises on Resource "*" (no resource types in the Service Authorization Reference):
# X-Ray segment upload, CloudWatch PutMetricData/GetMetricData and ECR's GetAuthorizationToken.
WILDCARD_ACTIONS: Final = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "cloudwatch:PutMetricData",
        "cloudwatch:GetMetricData",
        "ecr:GetAuthorizationToken",
    }
)
METRICS_NAMESPACE: Final = "Tidewater"


def document(*statements: Statement) -> Policy:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(sid: str, actions: list[str], resources: list[str], condition: dict[str, Any] | None = None) -> Statement:
    statement: Statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def assume_role(service: str, source_account: str | None = None) -> Policy:
    """Trust policy for one AWS service; with an account, the confused-deputy guard (aws:SourceAccount)."""
    statement: Statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if source_account:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return document(statement)


def sagemaker_arn(endpoint_arn: str, resource: str) -> str:
    """An ARN of another SageMaker resource in the endpoint's region and account (SageMaker ARNs are lower case)."""
    partition_region_account = endpoint_arn.split(":endpoint/", 1)[0]
    return f"{partition_region_account}:{resource.lower()}"


def endpoint_alarms_arn(endpoint_arn: str) -> str:
    """Every CloudWatch alarm named after the endpoint (<endpoint>-<variant>-<kind>, schemas.naming.variant_alarm),
    in the endpoint's region and account."""
    head, endpoint = endpoint_arn.split(":endpoint/", 1)
    _, partition, _, region, account = head.split(":")
    return f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{endpoint}-*"


def objects(bucket_arn: str, prefix: str = "") -> str:
    return f"{bucket_arn}/{prefix}*"


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
        allow(
            "ListCaptures",
            ["s3:ListBucket"],
            [captures_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{captures_prefix}*"]}},
        ),
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
        allow(
            "ListCaptures",
            ["s3:ListBucket"],
            [captures_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{captures_prefix}*"]}},
        ),
        allow("ReadLabels", ["s3:GetObject"], [objects(curated_bucket_arn, labels_prefix)]),
        allow(
            "ListLabelCommits",
            ["s3:ListBucket"],
            [curated_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{labels_commits_prefix}*"]}},
        ),
        allow(
            "ReadBaselines",
            ["s3:GetObject"],
            sorted(f"{artifacts_bucket_arn}/{models_prefix}*/{name}" for name in baseline_files),
        ),
        allow(
            "ListBaselines",
            ["s3:ListBucket"],
            [artifacts_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{models_prefix}*"]}},
        ),
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
        allow(
            "ListShadowPairs",
            ["s3:ListBucket"],
            [captures_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{shadow_prefix}*"]}},
        ),
        # Scan lists the running rollouts; ConditionCheckItem guards the state+audit transaction.
        _table("Rollouts", rollout_table_arn, "dynamodb:Scan", "dynamodb:ConditionCheckItem"),
        _events(bus_arn),
        *_function_basics(log_group_arn, key_arn),
    )


def endpoint_policy(
    *,
    artifacts_bucket_arn: str,
    models_prefix: str,
    captures_bucket_arn: str,
    captures_prefix: str,
    image_repository_arns: list[str],
    log_group_arn_prefix: str,
    key_arn: str,
) -> Policy:
    """SageMaker execution role: pull the image and model, write data capture, log its containers."""
    return document(
        allow("ReadModels", ["s3:GetObject"], [objects(artifacts_bucket_arn, models_prefix)]),
        allow("WriteCaptures", ["s3:PutObject"], [objects(captures_bucket_arn, captures_prefix)]),
        allow("DataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
        allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        allow(
            "PullImage",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            sorted(set(image_repository_arns)),
        ),
        allow(
            "Logs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [f"{log_group_arn_prefix}*"],
        ),
        allow(
            "Metrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}},
        ),
    )


def training_policy(
    *,
    datasets_bucket_arn: str,
    artifacts_bucket_arn: str,
    models_prefix: str,
    jobs_prefix: str,
    image_repository_arn: str,
    log_group_arn_prefix: str,
    key_arn: str,
) -> Policy:
    """SageMaker training execution role: read dataset versions, read/write its model's versions (model, metadata,
    checkpoints) and the SDK's job files (source code, output) under jobs_prefix, pull the training image, log."""
    return document(
        allow("ReadDatasets", ["s3:GetObject"], [objects(datasets_bucket_arn)]),
        allow("ListDatasets", ["s3:ListBucket"], [datasets_bucket_arn]),
        allow(
            "ModelsAndJobFiles",
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            [objects(artifacts_bucket_arn, models_prefix), objects(artifacts_bucket_arn, jobs_prefix)],
        ),
        allow(
            "ListModelsAndJobFiles",
            ["s3:ListBucket"],
            [artifacts_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{models_prefix}*", f"{jobs_prefix}*"]}},
        ),
        allow("DataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
        allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        allow(
            "PullImage",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [image_repository_arn],
        ),
        allow(
            "Logs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [f"{log_group_arn_prefix}*"],
        ),
        allow(
            "Metrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
        ),
    )


def ecr_repository_arn(image_uri: str, partition: str = "aws") -> str:
    """<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag|@digest] -> the repository's ARN."""
    host, sep, path = image_uri.partition("/")
    host_parts = host.split(".")
    if not sep or len(host_parts) < 6 or host_parts[1:3] != ["dkr", "ecr"]:
        raise ValueError(f"{image_uri!r} is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>)")
    repository = path.split("@", 1)[0].rsplit(":", 1)[0]
    return f"arn:{partition}:ecr:{host_parts[3]}:{host_parts[0]}:repository/{repository}"


def invoke_policy(sid: str, function_arn: str) -> Policy:
    """For the EventBridge Scheduler role: invoke exactly one function."""
    return document(allow(sid, ["lambda:InvokeFunction"], [function_arn]))


def send_policy(sid: str, queue_arns: list[str]) -> Policy:
    return document(allow(sid, ["sqs:SendMessage"], sorted(queue_arns)))


def service_send_to_queue(queue_arn: str, service: str, source_arn: str) -> Policy:
    """Queue policy: one AWS service may send, only on behalf of one source resource."""
    return document(
        {
            "Sid": "AllowSource",
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
        }
    )


def tls_only_bucket(bucket_arn: str, extra: list[Statement] | None = None) -> Policy:
    """Deny every request that is not over TLS (aws:SecureTransport false)."""
    return document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        *(extra or []),
    )


def access_log_delivery(log_bucket_arn: str, source_bucket_arns: list[str], account_id: str) -> Statement:
    """S3 server access logging writes with the logging service principal (ACLs stay disabled)."""
    return {
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{log_bucket_arn}/*",
        "Condition": {
            "ArnLike": {"aws:SourceArn": sorted(source_bucket_arns)},
            "StringEquals": {"aws:SourceAccount": account_id},
        },
    }


def data_key_policy(account_id: str, partition: str = "aws") -> Policy:
    """Key policy: the account administers the key through IAM; the alerting services may encrypt to SNS.

    A key policy is attached to its key, so its Resource is always "*" (it means "this key").
    """
    return document(
        {
            "Sid": "AccountAdministersThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "AlertingServicesPublishToEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
    )


def alert_topic_policy(topic_arn: str, account_id: str) -> Policy:
    return document(
        {
            "Sid": "AlarmsAndBudgetsPublish",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )
