"""`tide deploy` logic on moto's SageMaker: a challenger joins at weight 0 with data capture on."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.deploy.sagemaker import DeployError, DeployRequest, SageMakerDeployer, plan_variants, request_for_model
from jobs.embedded_cloud import EmbeddedCloud

ROLE = "arn:aws:iam::123456789012:role/tide-serve"


def _request(name: str) -> DeployRequest:
    return DeployRequest(
        endpoint="tidewater-dev-fraud", model_name=name, image="123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1",
        model_data_url=f"s3://artifacts/models/fraud/{name}/model.tar.gz", role_arn=ROLE,
        capture_destination="s3://tidewater-dev-captures/datacapture", capture_percent=50,
    )  # fmt: skip


class MotoWithUpdateEndpoint:
    """moto 5.2 does not implement UpdateEndpoint; this client stands in for it by re-creating the endpoint with
    the new config (what UpdateEndpoint ends with on AWS, without the blue/green switch). Everything else
    goes to moto unchanged."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.updates: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_endpoint(self, EndpointName: str, EndpointConfigName: str) -> dict[str, Any]:
        self.updates.append(EndpointConfigName)
        self._client.delete_endpoint(EndpointName=EndpointName)
        return dict(self._client.create_endpoint(EndpointName=EndpointName, EndpointConfigName=EndpointConfigName))


def test_first_model_creates_the_endpoint_then_a_challenger_joins_at_weight_zero(cloud: EmbeddedCloud) -> None:
    sm = MotoWithUpdateEndpoint(cloud.client("sagemaker"))
    deployer = SageMakerDeployer(sm)

    first = deployer.deploy(_request("fraud-aaaa"))
    assert first.created_endpoint and [v["InitialVariantWeight"] for v in first.variants] == [1.0]

    second = deployer.deploy(_request("fraud-bbbb"))
    assert not second.created_endpoint and sm.updates == [second.endpoint_config]
    endpoint = sm.describe_endpoint(EndpointName="tidewater-dev-fraud")
    assert endpoint["EndpointConfigName"] == second.endpoint_config
    config = sm.describe_endpoint_config(EndpointConfigName=second.endpoint_config)
    weights = {v["VariantName"]: v["InitialVariantWeight"] for v in config["ProductionVariants"]}
    assert weights == {"fraud-aaaa": 1.0, "fraud-bbbb": 0.0}
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] and capture["InitialSamplingPercentage"] == 50
    assert capture["DestinationS3Uri"] == "s3://tidewater-dev-captures/datacapture"
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    model = sm.describe_model(ModelName="fraud-bbbb")
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://artifacts/models/fraud/fraud-bbbb/model.tar.gz"
    # The PyTorch inference container runs the tarball's code/inference.py.
    assert model["PrimaryContainer"]["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}  # fmt: skip

    # Deploying a model that already serves changes nothing.
    again = deployer.deploy(_request("fraud-bbbb"))
    assert again.endpoint_config == second.endpoint_config and sm.updates == [second.endpoint_config]


def test_a_model_name_reused_for_another_artifact_is_refused(cloud: EmbeddedCloud) -> None:
    deployer = SageMakerDeployer(cloud.client("sagemaker"))
    deployer.register(_request("fraud-aaaa"))
    other = DeployRequest(**{**_request("fraud-aaaa").__dict__, "model_data_url": "s3://elsewhere/model.tar.gz"})
    with pytest.raises(DeployError, match="exists with artifact"):
        deployer.register(other)


def test_request_from_training_metadata() -> None:
    metadata = {"model": "fraud", "version": "0123abcd", "artifacts": {"package": "model.tar.gz"},
                "serving": {"entry_point": "inference.py"}}  # fmt: skip
    request = request_for_model(
        "s3://art/models/fraud/0123abcd/", metadata, endpoint="e", image="i", role_arn=ROLE,
        capture_destination="s3://c/datacapture",
    )  # fmt: skip
    assert request.model_name == "fraud-0123abcd"
    assert request.model_data_url == "s3://art/models/fraud/0123abcd/model.tar.gz"
    with pytest.raises(DeployError, match="loads models from S3"):
        request_for_model(
            "file:///tmp/m", metadata, endpoint="e", image="i", role_arn=ROLE, capture_destination="s3://c"
        )
    for version in ("v1.2", "v_2", "v2-"):  # SageMaker would refuse these names at create_model
        with pytest.raises(DeployError, match="model version"):
            request_for_model("s3://a/m", {**metadata, "version": version}, endpoint="e", image="i", role_arn=ROLE,
                              capture_destination="s3://c")  # fmt: skip
    with pytest.raises(DeployError, match=r"no code/inference.py"):
        request_for_model("s3://a/m", {**metadata, "serving": {}}, endpoint="e", image="i", role_arn=ROLE,
                          capture_destination="s3://c")  # fmt: skip
    with pytest.raises(DeployError, match="no packaged model"):
        request_for_model("s3://a/m", {"model": "f", "version": "v"}, endpoint="e", image="i", role_arn=ROLE,
                          capture_destination="s3://c")  # fmt: skip


live_variant = st.builds(
    lambda i, w: {"VariantName": f"v{i}", "ModelName": f"m{i}", "InstanceType": "ml.m5.large",
                  "InitialInstanceCount": 1, "InitialVariantWeight": w, "ExtraField": "dropped"},
    st.integers(0, 5), st.floats(0, 1),
)  # fmt: skip


@settings(max_examples=50, deadline=None)
@given(
    live=st.lists(live_variant, max_size=4, unique_by=lambda v: v["VariantName"]), name=st.sampled_from(["m1", "new"])
)
def test_plan_keeps_live_weights_and_adds_the_challenger_at_zero(live: list[dict[str, Any]], name: str) -> None:
    request = DeployRequest(**{**_request("x").__dict__, "model_name": name})
    if any(v["VariantName"] == name and v["ModelName"] != name for v in live):
        with pytest.raises(DeployError):
            plan_variants(live, request)
        return
    plan = plan_variants(live, request)
    assert [v["InitialVariantWeight"] for v in plan[: len(live)]] == [v["InitialVariantWeight"] for v in live]
    assert all("ExtraField" not in v for v in plan)
    serving = [v for v in plan if v["ModelName"] == name]
    assert len(serving) == 1
    if not any(v["ModelName"] == name for v in live):
        assert serving[0]["InitialVariantWeight"] == (0.0 if live else 1.0) and len(plan) == len(live) + 1
