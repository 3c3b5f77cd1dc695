"""IAM policy documents as pure functions: plain ARNs in, plain dicts out (tested directly, no Pulumi).

Each function role gets only the actions it needs on the exact ARNs and key prefixes it touches. The few
statements with Resource "*" are the AWS actions that have no resource-level permissions (WILDCARD_ACTIONS);
the tests hold every document to that list.

The documents live by whose they are; this module gathers them under one name, the one every caller imports:
- policy_statements  document, statement and trust-policy builders, the ARN helpers, WILDCARD_ACTIONS
- policy_functions   the function roles (ingest, drift, quality, traffic) and their shared basics
- policy_sagemaker   the SageMaker execution roles (endpoint, training)
- policy_resources   queue, bucket, key and topic policies; the scheduler roles' invoke/send documents
"""

from __future__ import annotations

from infra.policy_functions import METRICS_NAMESPACE, drift_policy, ingest_policy, quality_policy, traffic_policy
from infra.policy_resources import (
    access_log_delivery,
    alert_topic_policy,
    data_key_policy,
    invoke_policy,
    send_policy,
    service_send_to_queue,
    tls_only_bucket,
)
from infra.policy_sagemaker import endpoint_policy, training_policy
from infra.policy_statements import (
    WILDCARD_ACTIONS,
    Policy,
    Statement,
    allow,
    assume_role,
    document,
    ecr_repository_arn,
    endpoint_alarms_arn,
    objects,
    sagemaker_arn,
)

__all__ = [
    "METRICS_NAMESPACE",
    "WILDCARD_ACTIONS",
    "Policy",
    "Statement",
    "access_log_delivery",
    "alert_topic_policy",
    "allow",
    "assume_role",
    "data_key_policy",
    "document",
    "drift_policy",
    "ecr_repository_arn",
    "endpoint_alarms_arn",
    "endpoint_policy",
    "ingest_policy",
    "invoke_policy",
    "objects",
    "quality_policy",
    "sagemaker_arn",
    "send_policy",
    "service_send_to_queue",
    "tls_only_bucket",
    "traffic_policy",
    "training_policy",
]
