"""Pure IAM policy documents and kubeconfig for the EKS target: plain data in, plain dicts out.

IRSA (IAM roles for service accounts): a pod's projected token names its service account; the role trusts
exactly that `system:serviceaccount:<namespace>:<name>` subject through the cluster's OIDC provider, and its
policy reaches only the buckets and prefixes that workload uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from schemas.naming import (
    CHECKPOINTS_ROOT,
    MODELS_ROOT,
    RAW_PREFIX,
    TRAINING_JOBS_ROOT,
    Names,
    endpoint_config_prefix,
    models_root,
    retraining_job_name,
    retraining_root,
)


@dataclass(frozen=True)
class BucketGrant:
    bucket: str
    prefix: str  # "" = the whole bucket
    write: bool


def workload_grants(names: Names) -> dict[str, tuple[BucketGrant, ...]]:
    """What each Kubernetes workload role may touch, by naming-module bucket and prefix."""
    return {
        # Training reads any dataset version, writes models and resumable checkpoints (and reads them back).
        "training": (
            BucketGrant(names.bucket("datasets"), "", write=False),
            BucketGrant(names.bucket("artifacts"), MODELS_ROOT, write=True),
            BucketGrant(names.bucket("artifacts"), CHECKPOINTS_ROOT, write=True),
        ),
        # Batch ingestion reads curated partitions and writes dataset versions, manifests and baselines; it
        # also curates the raw files handed off by the ingest function (`tide curate-handoffs`): raw in,
        # curated or quarantined out, like the function itself.
        "ingestion": (
            BucketGrant(names.bucket("raw"), RAW_PREFIX, write=False),
            BucketGrant(names.bucket("curated"), "", write=True),
            BucketGrant(names.bucket("quarantine"), "", write=True),
            BucketGrant(names.bucket("datasets"), "", write=True),
        ),
        # Serving (KServe's storage initializer) only reads models.
        "serving": (BucketGrant(names.bucket("artifacts"), MODELS_ROOT, write=False),),
    }


def handoff_consumer_statements(names: Names, region: str, account: str) -> list[dict[str, Any]]:
    """`tide curate-handoffs`: consume the stack's hand-off queue, publish outcomes on the stack's bus."""
    queue = f"arn:aws:sqs:{region}:{account}:{names.handoff_queue}"
    bus = f"arn:aws:events:{region}:{account}:event-bus/{names.event_bus}"
    return [
        {
            "Effect": "Allow",
            "Action": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            "Resource": queue,
        },
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus},
    ]


# What AWS authorises only on Resource "*" (the service authorization reference lists no resource type for them),
# all read-only, kept to the stack's region by the global key aws:RequestedRegion:
# - sagemaker:ListTrainingJobs, to find its own job again after a crash (the SDK suffixes job names with a
#   timestamp, so DescribeTrainingJob on a known name cannot replace it); SageMaker: "Except for the ListTags
#   API, resource-level restrictions are not available on List- calls";
# - Application Auto Scaling's Describe* calls, to read the champion's scaling (jobs/deploy/guards.py).
RETRAINING_LIST_ACTIONS = ("sagemaker:ListTrainingJobs",)
RETRAINING_AUTOSCALING_ACTIONS = (
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
)
# The writes on the challenger's scalable target. Its ARN ends in an id AWS generates at registration, so the
# resource is every scalable target of the stack's account and region; the service's condition keys keep them to
# SageMaker variants' instance counts (no DynamoDB, ECS, Lambda... scaling). The endpoint and variant (the
# ResourceId) are no condition key; tag-based scoping (aws:ResourceTag) would need TagResource, which could
# re-tag any target, so it would add no boundary.
RETRAINING_SCALING_ACTIONS = (
    "application-autoscaling:PutScalingPolicy",
    "application-autoscaling:RegisterScalableTarget",
)
SAGEMAKER_VARIANT_SCALING = {
    "application-autoscaling:service-namespace": "sagemaker",
    "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
}


def retraining_runner_grants(names: Names, model: str) -> tuple[BucketGrant, ...]:
    """`tide retrain`: reads dataset manifests; writes its model's versions (the staged job config), the SDK's
    job files and its progress records."""
    artifacts = names.bucket("artifacts")
    return (
        BucketGrant(names.bucket("datasets"), "", write=False),
        BucketGrant(artifacts, models_root(model), write=True),
        BucketGrant(artifacts, TRAINING_JOBS_ROOT, write=True),
        BucketGrant(artifacts, retraining_root(model), write=True),
    )


def retraining_runner_statements(
    names: Names, model: str, region: str, account: str, training_role_arn: str, endpoint_role_arn: str | None
) -> list[dict[str, Any]]:
    """Consume the retraining queue; start and read its own training jobs as the stack's training role; with an
    endpoint (stage serving): add challengers to exactly that endpoint, copy their guards, start the rollout."""
    sm = f"arn:aws:sagemaker:{region}:{account}"
    pass_to_sagemaker = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    in_region = {"StringEquals": {"aws:RequestedRegion": region}}
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ConsumeRetrainingQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            "Resource": f"arn:aws:sqs:{region}:{account}:{names.retraining_queue}",
        },
        {
            "Sid": "RetrainingJobs",
            "Effect": "Allow",
            "Action": ["sagemaker:AddTags", "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob"],
            "Resource": f"{sm}:training-job/{retraining_job_name('0')[:-1]}*",
        },
        {
            "Sid": "FindRetrainingJobs",
            "Effect": "Allow",
            "Action": list(RETRAINING_LIST_ACTIONS),
            "Resource": "*",
            "Condition": in_region,
        },
        {
            "Sid": "PassTrainingRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": training_role_arn,
            "Condition": pass_to_sagemaker,
        },
    ]
    if endpoint_role_arn is None:
        return statements
    endpoint = names.endpoint(model)
    return [
        *statements,
        {
            "Sid": "AddChallenger",
            "Effect": "Allow",
            "Action": [
                "sagemaker:AddTags",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:CreateModel",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DescribeModel",
                "sagemaker:UpdateEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
            ],
            # SageMaker ARNs carry names in lower case.
            "Resource": [
                f"{sm}:endpoint/{endpoint.lower()}",
                f"{sm}:endpoint-config/{endpoint_config_prefix(endpoint).lower()}*",
                f"{sm}:model/{model}-*",
            ],
        },
        {
            "Sid": "PassEndpointRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": endpoint_role_arn,
            "Condition": pass_to_sagemaker,
        },
        {
            "Sid": "ChallengerAlarms",
            "Effect": "Allow",
            "Action": ["cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"],
            "Resource": f"arn:aws:cloudwatch:{region}:{account}:alarm:{endpoint}-*",
        },
        {
            "Sid": "ReadChampionScaling",
            "Effect": "Allow",
            "Action": list(RETRAINING_AUTOSCALING_ACTIONS),
            "Resource": "*",
            "Condition": in_region,
        },
        {
            "Sid": "ChallengerScaling",
            "Effect": "Allow",
            "Action": list(RETRAINING_SCALING_ACTIONS),
            "Resource": f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/*",
            "Condition": {"StringEquals": dict(SAGEMAKER_VARIANT_SCALING)},
        },
        {
            "Sid": "StartRollout",
            "Effect": "Allow",
            "Action": [
                "dynamodb:ConditionCheckItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ],
            "Resource": f"arn:aws:dynamodb:{region}:{account}:table/{names.rollout_table}",
        },
        {
            "Sid": "PublishRolloutEvents",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": f"arn:aws:events:{region}:{account}:event-bus/{names.event_bus}",
        },
    ]


def bucket_access_policy(
    grants: Sequence[BucketGrant], kms_key_arn: str | None = None, extra: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """Object access on exactly the granted prefixes; listing limited to the same prefixes; `extra` statements
    for what else the workload reaches (queues, the bus)."""
    if not grants:
        raise ValueError("a workload policy needs at least one bucket grant")
    statements: list[dict[str, Any]] = []
    for grant in grants:
        objects = f"arn:aws:s3:::{grant.bucket}/{grant.prefix}*"
        actions = ["s3:GetObject"] + (
            ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"] if grant.write else []
        )
        statements.append({"Effect": "Allow", "Action": actions, "Resource": objects})
        listing: dict[str, Any] = {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{grant.bucket}",
        }
        if grant.prefix:
            listing["Condition"] = {"StringLike": {"s3:prefix": [f"{grant.prefix}*"]}}
        statements.append(listing)
    if kms_key_arn is not None:
        # The zones are SSE-KMS encrypted with the data key: reading needs Decrypt, writing GenerateDataKey.
        statements.append(
            {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": kms_key_arn}
        )
    return {"Version": "2012-10-17", "Statement": [*statements, *extra]}


def irsa_trust_policy(
    oidc_provider_arn: str, oidc_issuer_url: str, namespace: str, service_account: str
) -> dict[str, Any]:
    """Trust exactly one service account of one cluster (sub and aud both pinned)."""
    issuer = oidc_issuer_url.removeprefix("https://")
    if not issuer or "/" not in issuer:
        raise ValueError(f"OIDC issuer {oidc_issuer_url!r} is not an EKS issuer URL")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


def service_trust_policy(service: str) -> dict[str, Any]:
    """Trust policy for an AWS service principal (the EKS control plane, EC2 nodes)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def eks_kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str | None) -> dict[str, Any]:
    """A kubeconfig that authenticates with `aws eks get-token` (no static credentials in state)."""
    args = ["eks", "get-token", "--cluster-name", cluster_name, "--output", "json"]
    if region:
        args += ["--region", region]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [
            {
                "name": cluster_name,
                "user": {
                    "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws", "args": args}
                },
            }
        ],
    }


# Read-only calls that AWS does not support on specific resources (the documented exception to "no Resource *").
AUTOSCALER_DESCRIBE_ACTIONS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
)


def cluster_autoscaler_policy(cluster_name: str, nodegroup_arn_prefix: str) -> dict[str, Any]:
    """Cluster autoscaler: resize only the ASGs tagged as this cluster's; describe only its node groups."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                "Resource": "*",
                # EKS tags managed node groups' ASGs with k8s.io/cluster-autoscaler/<cluster>=owned.
                "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
            },
            {"Effect": "Allow", "Action": list(AUTOSCALER_DESCRIBE_ACTIONS), "Resource": "*"},
            {"Effect": "Allow", "Action": "eks:DescribeNodegroup", "Resource": f"{nodegroup_arn_prefix}/*"},
        ],
    }
