"""Resource policies (queue, bucket, key, topic) and the scheduler roles' documents: what AWS services may do
on the platform's behalf or to its resources, each scoped to its one source, account or target.
"""

from __future__ import annotations

from infra.policy_statements import Policy, Statement, allow, document


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
