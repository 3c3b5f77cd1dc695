"""The SageMaker execution roles' IAM policies: the endpoint's and the training jobs'."""

from __future__ import annotations

from infra.policy_statements import Policy, allow, document, list_under, objects


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
        list_under("ListModelsAndJobFiles", artifacts_bucket_arn, models_prefix, jobs_prefix),
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
