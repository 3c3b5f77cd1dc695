"""Pure IAM documents and kubeconfig of the EKS target, and the Kubernetes names in schemas.naming."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.k8s.policies import (
    BucketGrant,
    bucket_access_policy,
    eks_kubeconfig,
    irsa_trust_policy,
    workload_grants,
)
from schemas.naming import K8S_ROLES, Names, NamingError

ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC"


def test_trust_pins_subject_and_audience() -> None:
    doc = irsa_trust_policy("arn:aws:iam::1:oidc-provider/x", ISSUER, "ns", "sa")
    (statement,) = doc["Statement"]
    assert statement["Condition"]["StringEquals"] == {
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub": "system:serviceaccount:ns:sa",
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com",
    }
    with pytest.raises(ValueError, match="issuer"):
        irsa_trust_policy("arn", "https://", "ns", "sa")


@given(
    st.lists(
        st.tuples(st.sampled_from(["a-raw", "b-curated"]), st.sampled_from(["", "models/", "x/y/"]), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
@settings(max_examples=40, deadline=None)
def test_access_policy_never_reaches_beyond_its_grants(grants: list[tuple[str, str, bool]]) -> None:
    doc = bucket_access_policy([BucketGrant(b, p, w) for b, p, w in grants])
    allowed_objects = {f"arn:aws:s3:::{b}/{p}*" for b, p, _ in grants}
    writable = {f"arn:aws:s3:::{b}/{p}*" for b, p, w in grants if w}
    for statement in doc["Statement"]:
        assert statement["Resource"] != "*"
        if statement["Action"] == "s3:ListBucket":
            assert statement["Resource"] in {f"arn:aws:s3:::{b}" for b, _, _ in grants}
        else:
            assert statement["Resource"] in allowed_objects
            if "s3:PutObject" in statement["Action"]:
                assert statement["Resource"] in writable


def test_listing_is_limited_to_the_prefix_and_kms_to_the_key() -> None:
    doc = bucket_access_policy([BucketGrant("b", "models/", write=False)], kms_key_arn="arn:aws:kms:k")
    listing = next(s for s in doc["Statement"] if s["Action"] == "s3:ListBucket")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models/*"]}}
    assert doc["Statement"][-1] == {
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "arn:aws:kms:k",
    }
    with pytest.raises(ValueError):
        bucket_access_policy([])


def test_workload_grants_use_the_naming_module() -> None:
    grants = workload_grants(Names("tidewater", "dev"))
    assert set(grants) == set(K8S_ROLES)
    assert all(not g.write for g in grants["serving"])
    assert {g.bucket for g in grants["training"]} == {"tidewater-dev-datasets", "tidewater-dev-artifacts"}


def test_kubeconfig_authenticates_through_aws_cli() -> None:
    cfg = eks_kubeconfig("c", "https://e", "Y2E=", "eu-west-1")
    assert cfg["current-context"] == "c"
    assert cfg["users"][0]["user"]["exec"]["args"][-2:] == ["--region", "eu-west-1"]
    assert "--region" not in eks_kubeconfig("c", "https://e", "Y2E=", None)["users"][0]["user"]["exec"]["args"]


def test_kubernetes_names() -> None:
    names = Names("tidewater", "dev")
    assert names.k8s_namespace("training") == "tidewater-dev-training"
    assert names.k8s_service_account("ingestion") == "tidewater-ingestion"
    assert names.priority_class("serving") == "tidewater-dev-serving"
    assert names.dask_cluster == "tidewater-dev-dask"
    with pytest.raises(NamingError, match="kubernetes role"):
        names.k8s_namespace("batch")
