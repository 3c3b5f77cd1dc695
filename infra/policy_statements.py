"""The building blocks of the IAM policy documents: document, statement, trust policy, and the ARNs they name.

Pure functions, plain strings in, plain dicts out. The few statements with Resource "*" are the AWS actions
that have no resource-level permissions (WILDCARD_ACTIONS); the tests hold every document to that list.
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


def document(*statements: Statement) -> Policy:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(sid: str, actions: list[str], resources: list[str], condition: dict[str, Any] | None = None) -> Statement:
    statement: Statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def list_under(sid: str, bucket_arn: str, *prefixes: str) -> Statement:
    """ListBucket on one bucket, only for keys under the given prefixes (the s3:prefix condition)."""
    return allow(sid, ["s3:ListBucket"], [bucket_arn], {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}})


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


def ecr_repository_arn(image_uri: str, partition: str = "aws") -> str:
    """<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag|@digest] -> the repository's ARN."""
    host, sep, path = image_uri.partition("/")
    host_parts = host.split(".")
    if not sep or len(host_parts) < 6 or host_parts[1:3] != ["dkr", "ecr"]:
        raise ValueError(f"{image_uri!r} is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>)")
    repository = path.split("@", 1)[0].rsplit(":", 1)[0]
    return f"arn:{partition}:ecr:{host_parts[3]}:{host_parts[0]}:repository/{repository}"
