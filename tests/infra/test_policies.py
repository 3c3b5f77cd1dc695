"""The IAM documents are pure functions: checked here directly, without Pulumi."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra import policies

KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"
BUS = "arn:aws:events:eu-west-1:123456789012:event-bus/tidewater-dev-events"
LOGS = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/tidewater-dev-{}"


def ingest() -> policies.Policy:
    return policies.ingest_policy(
        raw_bucket_arn="arn:aws:s3:::tidewater-dev-raw",
        raw_prefix="raw/",
        curated_bucket_arn="arn:aws:s3:::tidewater-dev-curated",
        quarantine_bucket_arn="arn:aws:s3:::tidewater-dev-quarantine",
        queue_arn="arn:aws:sqs:eu-west-1:123456789012:tidewater-dev-ingest",
        idempotency_table_arn="arn:aws:dynamodb:eu-west-1:123456789012:table/tidewater-dev-idempotency",
        bus_arn=BUS,
        log_group_arn=LOGS.format("ingest"),
        key_arn=KEY,
    )


def traffic() -> policies.Policy:
    return policies.traffic_policy(
        endpoint_arn="arn:aws:sagemaker:eu-west-1:123456789012:endpoint/tidewater-dev-model",
        alarm_arns=[
            "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:b",
            "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a",
        ],
        rollout_table_arn="arn:aws:dynamodb:eu-west-1:123456789012:table/tidewater-dev-rollouts",
        bus_arn=BUS,
        log_group_arn=LOGS.format("traffic"),
        key_arn=KEY,
        captures_bucket_arn="arn:aws:s3:::tidewater-dev-captures",
        shadow_prefix="shadow/tidewater-dev-model/",
    )


def statement(policy: policies.Policy, sid: str) -> dict:
    (found,) = [s for s in policy["Statement"] if s.get("Sid") == sid]
    return found


def test_ingest_reads_only_the_raw_prefix_and_never_deletes() -> None:
    policy = ingest()
    assert statement(policy, "ReadRaw")["Resource"] == ["arn:aws:s3:::tidewater-dev-raw/raw/*"]
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert not {a for a in actions if a.startswith("s3:Delete")}
    assert "s3:PutObject" not in statement(policy, "ReadRaw")["Action"]


def test_only_actions_without_resource_level_permissions_use_resource_star() -> None:
    for policy in (ingest(), traffic()):
        for s in policy["Statement"]:
            assert s["Action"] != "*" and "*" not in s["Action"]
            if "*" in s["Resource"]:
                assert set(s["Action"]) <= policies.WILDCARD_ACTIONS, s


def test_metrics_are_confined_to_the_platform_namespace() -> None:
    metrics = statement(ingest(), "Metrics")
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": policies.METRICS_NAMESPACE}}


def test_traffic_may_shift_weights_on_its_endpoint_only_and_read_its_alarms() -> None:
    policy = traffic()
    assert statement(policy, "ShiftWeights")["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/tidewater-dev-model"
    ]
    assert statement(policy, "ReadVariantAlarms")["Resource"] == sorted(
        statement(policy, "ReadVariantAlarms")["Resource"]
    )
    # In S3 it reads only its endpoint's shadow pairs.
    s3 = [s for s in policy["Statement"] if any(a.startswith("s3:") for a in s["Action"])]
    assert {(s["Sid"], tuple(s["Action"]), tuple(s["Resource"])) for s in s3} == {
        ("ReadShadowPairs", ("s3:GetObject",), ("arn:aws:s3:::tidewater-dev-captures/shadow/tidewater-dev-model/*",)),
        ("ListShadowPairs", ("s3:ListBucket",), ("arn:aws:s3:::tidewater-dev-captures",)),
    }
    assert statement(policy, "ListShadowPairs")["Condition"] == {
        "StringLike": {"s3:prefix": ["shadow/tidewater-dev-model/*"]}
    }


def test_scheduler_trust_is_bound_to_the_account() -> None:
    trust = policies.assume_role("scheduler.amazonaws.com", source_account="123456789012")
    (s,) = trust["Statement"]
    assert s["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert s["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_tls_only_policy_denies_insecure_transport_on_bucket_and_objects() -> None:
    (deny,) = policies.tls_only_bucket("arn:aws:s3:::b")["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_queue_policy_admits_one_service_for_one_source() -> None:
    (s,) = policies.service_send_to_queue("arn:q", "s3.amazonaws.com", "arn:aws:s3:::raw")["Statement"]
    assert s["Principal"] == {"Service": "s3.amazonaws.com"}
    assert s["Condition"] == {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::raw"}}


@pytest.mark.parametrize(
    ("uri", "arn"),
    [
        (
            "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312",
            "arn:aws:ecr:eu-west-1:763104351884:repository/pytorch-inference",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/model@sha256:abc",
            "arn:aws:ecr:us-east-1:123456789012:repository/team/model",
        ),
    ],
)
def test_ecr_repository_arn(uri: str, arn: str) -> None:
    assert policies.ecr_repository_arn(uri) == arn


@settings(max_examples=50, deadline=None)
@given(uri=st.text(max_size=60).filter(lambda t: ".dkr.ecr." not in t))
def test_non_ecr_image_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="not an ECR image URI"):
        policies.ecr_repository_arn(uri)
