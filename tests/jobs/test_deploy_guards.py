"""After the first deploy the endpoint's variants belong to `tide deploy`: a model the stack already serves is
not added twice, live instance counts survive a deploy, and each new variant gets the serving variant's alarms
and autoscaling under its own name (on moto: SageMaker, CloudWatch, Application Auto Scaling)."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.deploy.guards import GuardError, VariantGuards, alarm_copy, variant_resource_id
from jobs.deploy.sagemaker import SageMakerDeployer
from jobs.embedded_cloud import EmbeddedCloud
from schemas.naming import VARIANT_ALARM_KINDS, variant_alarm
from tests.jobs.test_deploy import MotoWithUpdateEndpoint, _request

ENDPOINT = "tidewater-dev-fraud"
CHAMPION = "fraud-aaaa"  # the stack's first variant: <model>-<version>, on a model with a generated name
ROLE = "arn:aws:iam::123456789012:role/tide-serve"


def stack_first_variant(sm: Any, cloudwatch: Any, autoscaling: Any) -> None:
    """What `pulumi up` (stage serving) leaves: the endpoint, its variant's two alarms and its scaling."""
    sm.create_model(ModelName="fraud-champion-1a2b3c", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": "img", "ModelDataUrl": _request(CHAMPION).model_data_url})  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName=f"{ENDPOINT}-stack", ProductionVariants=[{
        "VariantName": CHAMPION, "ModelName": "fraud-champion-1a2b3c", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}])  # fmt: skip
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{ENDPOINT}-stack")
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": CHAMPION}]

    def metric(metric_id: str, name: str) -> dict[str, Any]:
        return {"Id": metric_id, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": dims},
            "Period": 60, "Stat": "Sum"}}  # fmt: skip

    cloudwatch.put_metric_alarm(
        AlarmName=variant_alarm(ENDPOINT, CHAMPION, "5xx-rate"), AlarmDescription=f"{CHAMPION}: 5XX rate",
        ComparisonOperator="GreaterThanThreshold", Threshold=1.0, EvaluationPeriods=3, TreatMissingData="notBreaching",
        AlarmActions=["arn:aws:sns:us-east-1:123456789012:alerts"],
        Metrics=[metric("errors", "Invocation5XXErrors"), metric("invocations", "Invocations"),
                 {"Id": "rate", "Expression": "IF(invocations > 0, 100 * errors / invocations, 0)",
                  "Label": "5XX rate (%)", "ReturnData": True}],
    )  # fmt: skip
    cloudwatch.put_metric_alarm(
        AlarmName=variant_alarm(ENDPOINT, CHAMPION, "latency-p99"), Namespace="AWS/SageMaker",
        MetricName="ModelLatency", Dimensions=dims, Period=60, ExtendedStatistic="p99", EvaluationPeriods=3,
        Threshold=500000.0, ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
    )  # fmt: skip
    resource = variant_resource_id(ENDPOINT, CHAMPION)
    dimension = "sagemaker:variant:DesiredInstanceCount"
    autoscaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, MinCapacity=1,
                                         MaxCapacity=4, ScalableDimension=dimension)  # fmt: skip
    autoscaling.put_scaling_policy(
        PolicyName=f"{ENDPOINT}-champion", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension=dimension, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={"TargetValue": 200.0, "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}},
    )  # fmt: skip


@pytest.fixture
def clients(cloud: EmbeddedCloud) -> tuple[MotoWithUpdateEndpoint, Any, Any]:
    sm = MotoWithUpdateEndpoint(cloud.client("sagemaker"))
    cloudwatch, autoscaling = cloud.client("cloudwatch"), cloud.client("application-autoscaling")
    stack_first_variant(sm, cloudwatch, autoscaling)
    return sm, cloudwatch, autoscaling


def test_deploying_the_model_the_stack_serves_changes_nothing(clients: tuple[Any, Any, Any]) -> None:
    sm, _, _ = clients
    result = SageMakerDeployer(sm).deploy(_request(CHAMPION))
    assert not result.added and result.endpoint_config == f"{ENDPOINT}-stack" and sm.updates == []
    assert [v["VariantName"] for v in result.variants] == [CHAMPION]


def test_a_deploy_keeps_the_live_weights_and_instance_counts(clients: tuple[Any, Any, Any]) -> None:
    sm, _, _ = clients
    # Autoscaling grew the champion to 3 instances since the stack created it with 1.
    sm.update_endpoint_weights_and_capacities(EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[
        {"VariantName": CHAMPION, "DesiredWeight": 1.0, "DesiredInstanceCount": 3}])  # fmt: skip
    result = SageMakerDeployer(sm).deploy(_request("fraud-bbbb"))
    config = sm.describe_endpoint_config(EndpointConfigName=result.endpoint_config)
    variants = config["ProductionVariants"]
    counts = {v["VariantName"]: (v["InitialInstanceCount"], v["InitialVariantWeight"]) for v in variants}
    assert counts == {CHAMPION: (3, 1.0), "fraud-bbbb": (1, 0.0)}
    assert result.source_variant == CHAMPION


def guard_state(cloudwatch: Any, autoscaling: Any, variant: str) -> dict[str, Any]:
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"{ENDPOINT}-{variant}-")["MetricAlarms"]
    resource = variant_resource_id(ENDPOINT, variant)
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    policies = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)
    return {
        "alarms": {a["AlarmName"]: (a.get("Dimensions"), [q.get("MetricStat", {}).get("Metric", {}).get("Dimensions")
                                                          for q in a.get("Metrics", [])], a["Threshold"])
                   for a in alarms},
        "targets": [(t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]],
        "policies": [p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies["ScalingPolicies"]],
    }  # fmt: skip


def test_a_new_variant_gets_the_serving_variants_alarms_and_scaling_under_its_own_name(
    clients: tuple[Any, Any, Any],
) -> None:
    sm, cloudwatch, autoscaling = clients
    result = SageMakerDeployer(sm).deploy(_request("fraud-bbbb"))
    copied = VariantGuards(cloudwatch, autoscaling).copy(ENDPOINT, result.source_variant, "fraud-bbbb")
    assert sorted(copied.alarms) == sorted(variant_alarm(ENDPOINT, "fraud-bbbb", k) for k in VARIANT_ALARM_KINDS)
    state = guard_state(cloudwatch, autoscaling, "fraud-bbbb")
    new_dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "fraud-bbbb"}]
    latency = state["alarms"][variant_alarm(ENDPOINT, "fraud-bbbb", "latency-p99")]
    assert latency == (new_dims, [], 500000.0)
    rate = state["alarms"][variant_alarm(ENDPOINT, "fraud-bbbb", "5xx-rate")]
    assert [d for d in rate[1] if d] == [new_dims, new_dims] and rate[2] == 1.0
    assert state["targets"] == [(1, 4)] and state["policies"] == [200.0]
    # The champion's own guards are untouched.
    assert guard_state(cloudwatch, autoscaling, CHAMPION)["targets"] == [(1, 4)]


class FailingAt:
    """Passes calls through, except the k-th write (put_*/register_*), which raises as a throttled call would."""

    def __init__(self, client: Any, counter: list[int], fail_at: int) -> None:
        self._client, self._counter, self._fail_at = client, counter, fail_at

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if not name.startswith(("put_", "register_")):
            return call

        def write(**kwargs: Any) -> Any:
            self._counter[0] += 1
            if self._counter[0] == self._fail_at:
                raise ConnectionError(f"injected failure of write {self._fail_at} ({name})")
            return call(**kwargs)

        return write


def test_a_copy_interrupted_at_any_write_is_completed_by_running_it_again(cloud: EmbeddedCloud) -> None:
    """Every write is an idempotent put of a fixed name: after a failure at write k, the rerun (what `tide
    deploy` does when run again) ends in exactly the state of an uninterrupted copy."""
    writes = 5  # 2 alarms, 1 scalable target, 1 policy, + 1 past the end (no failure)
    expected: dict[str, Any] | None = None
    for k in range(1, writes + 1):
        cloud.reset()
        sm = MotoWithUpdateEndpoint(cloud.client("sagemaker"))
        cloudwatch, autoscaling = cloud.client("cloudwatch"), cloud.client("application-autoscaling")
        stack_first_variant(sm, cloudwatch, autoscaling)
        counter = [0]
        guards = VariantGuards(FailingAt(cloudwatch, counter, k), FailingAt(autoscaling, counter, k))
        try:
            guards.copy(ENDPOINT, CHAMPION, f"fraud-k{k}")
        except ConnectionError:
            assert k < writes
        VariantGuards(cloudwatch, autoscaling).copy(ENDPOINT, CHAMPION, f"fraud-k{k}")
        state = guard_state(cloudwatch, autoscaling, f"fraud-k{k}")
        normalised = {"alarms": sorted(v[2] for v in state["alarms"].values()), "targets": state["targets"],
                      "policies": state["policies"]}  # fmt: skip
        expected = expected or normalised
        assert normalised == expected and len(state["alarms"]) == len(VARIANT_ALARM_KINDS)


def test_without_the_stacks_alarms_the_copy_is_refused_naming_them(cloud: EmbeddedCloud) -> None:
    guards = VariantGuards(cloud.client("cloudwatch"), cloud.client("application-autoscaling"))
    with pytest.raises(GuardError, match=variant_alarm("tidewater-dev-other", "fraud-x", "5xx-rate")):
        guards.copy("tidewater-dev-other", "fraud-x", "fraud-y")


def test_alarm_copy_swaps_only_the_source_variant() -> None:
    described = {"AlarmName": "e-a-5xx-rate", "AlarmDescription": "a: rate", "Threshold": 1.0,
                 "Dimensions": [{"Name": "EndpointName", "Value": "e"}, {"Name": "VariantName", "Value": "a"}],
                 "StateValue": "ALARM", "AlarmArn": "arn"}  # fmt: skip
    request = alarm_copy(described, "e", "a", "b", "5xx-rate")
    assert request["AlarmName"] == "e-b-5xx-rate" and request["AlarmDescription"] == "b: rate"
    assert request["Dimensions"] == [{"Name": "EndpointName", "Value": "e"}, {"Name": "VariantName", "Value": "b"}]
    assert "StateValue" not in request and "AlarmArn" not in request
