"""The deploy rehearsal: README "Deploy to AWS", step by step, on the embedded cloud.

Each `pulumi up` is the real program under Pulumi's mocks in its own process (tests/infra/deploy_stage.py); what
it declared is then created on the embedded cloud (buckets; at stage serving the endpoint, its alarms and its
scaling), and its outputs are written as the `pulumi stack output --json` file that the next `tide` command
reads. The checks: every name, prefix and ARN a later step reads was produced by an earlier step, and no step
needs something that does not exist yet. The ingest function between the stages is covered by its own tests;
here the producer's data lands in the curated zone directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.embedded_cloud import EmbeddedCloud
from schemas.naming import VARIANT_ALARM_KINDS, Names, model_prefix, model_version_name, variant_alarm
from tests.jobs.helpers import upload_curated, write_curated
from tests.jobs.test_deploy import MotoWithUpdateEndpoint

REPO = Path(__file__).resolve().parents[2]
Declared = list[dict[str, Any]]


def pulumi_up(stage: str, outputs_file: Path, **config: str) -> tuple[dict[str, Any], Declared]:
    """The program at `stage` under mocks (own process); writes the outputs file; returns outputs, declared."""
    overrides = {"stage": stage, "champion_model_version": "", **config}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.infra.deploy_stage", "dev", json.dumps(overrides)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    outputs_file.write_text(json.dumps(result["outputs"], indent=2))
    return result["outputs"], result["declared"]


def of_type(declared: Declared, typ: str) -> Declared:
    return [d for d in declared if d["type"] == typ]


def create_buckets(s3: Any, declared: Declared) -> None:
    for bucket in of_type(declared, "aws:s3/bucket:Bucket"):
        s3.create_bucket(Bucket=bucket["inputs"]["bucket"])


def create_endpoint(cloud: EmbeddedCloud, declared: Declared) -> None:
    """What `pulumi up` at stage serving creates: models, endpoint configuration, endpoint, alarms, scaling."""
    sm = cloud.client("sagemaker")
    for model in of_type(declared, "aws:sagemaker/model:Model"):
        container = model["inputs"]["primaryContainer"]
        primary = {"Image": container["image"], "ModelDataUrl": container["modelDataUrl"]}
        sm.create_model(ModelName=model["state"]["name"], ExecutionRoleArn=model["inputs"]["executionRoleArn"],
                        PrimaryContainer=primary)  # fmt: skip
    (config,) = of_type(declared, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    variants = [
        {"VariantName": v["variantName"], "ModelName": v["modelName"], "InstanceType": v["instanceType"],
         "InitialInstanceCount": int(v["initialInstanceCount"]), "InitialVariantWeight": v["initialVariantWeight"]}
        for v in config["inputs"]["productionVariants"]
    ]  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName=config["state"]["name"], ProductionVariants=variants)
    (endpoint,) = of_type(declared, "aws:sagemaker/endpoint:Endpoint")
    sm.create_endpoint(EndpointName=endpoint["inputs"]["name"], EndpointConfigName=config["state"]["name"])
    cloudwatch = cloud.client("cloudwatch")
    for alarm in of_type(declared, "aws:cloudwatch/metricAlarm:MetricAlarm"):
        if alarm["inputs"].get("namespace") == "AWS/SageMaker" or alarm["inputs"].get("metricQueries"):
            cloudwatch.put_metric_alarm(**_alarm_request(alarm["inputs"]))
    autoscaling = cloud.client("application-autoscaling")
    for target in of_type(declared, "aws:appautoscaling/target:Target"):
        i = target["inputs"]
        autoscaling.register_scalable_target(
            ServiceNamespace=i["serviceNamespace"], ResourceId=i["resourceId"],
            ScalableDimension=i["scalableDimension"], MinCapacity=int(i["minCapacity"]),
            MaxCapacity=int(i["maxCapacity"]),
        )  # fmt: skip
    for policy in of_type(declared, "aws:appautoscaling/policy:Policy"):
        i, tracking = policy["inputs"], policy["inputs"]["targetTrackingScalingPolicyConfiguration"]
        autoscaling.put_scaling_policy(
            PolicyName=policy["state"]["name"], ServiceNamespace=i["serviceNamespace"], ResourceId=i["resourceId"],
            ScalableDimension=i["scalableDimension"], PolicyType=i["policyType"],
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": tracking["targetValue"], "PredefinedMetricSpecification": {
                    "PredefinedMetricType": tracking["predefinedMetricSpecification"]["predefinedMetricType"]}},
        )  # fmt: skip


def _dimensions(dims: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in dims.items()]


def _alarm_request(i: dict[str, Any]) -> dict[str, Any]:
    """A declared MetricAlarm (Pulumi's input names) as PutMetricAlarm arguments."""
    request: dict[str, Any] = {
        "AlarmName": i["name"], "AlarmDescription": i["alarmDescription"], "AlarmActions": i["alarmActions"],
        "OKActions": i.get("okActions", []), "ComparisonOperator": i["comparisonOperator"],
        "Threshold": i["threshold"], "EvaluationPeriods": int(i["evaluationPeriods"]),
        "TreatMissingData": i["treatMissingData"],
    }  # fmt: skip
    if "metricQueries" in i:
        request["Metrics"] = [
            {"Id": q["id"], "ReturnData": q["returnData"], **({"Expression": q["expression"], "Label": q["label"]}
             if "expression" in q else {"MetricStat": {"Metric": {"Namespace": q["metric"]["namespace"],
             "MetricName": q["metric"]["metricName"], "Dimensions": _dimensions(q["metric"]["dimensions"])},
             "Period": int(q["metric"]["period"]), "Stat": q["metric"]["stat"]}})}
            for q in i["metricQueries"]
        ]  # fmt: skip
    else:
        request |= {"Namespace": i["namespace"], "MetricName": i["metricName"], "Period": int(i["period"]),
                    "Dimensions": _dimensions(i["dimensions"]),
                    "ExtendedStatistic": i["extendedStatistic"]}  # fmt: skip
    return request


def tide(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output.strip().splitlines()[-1]))


@pytest.mark.slow
def test_the_documented_order_of_operations_reaches_a_served_model_and_a_challenger(
    tmp_path: Path, cloud: EmbeddedCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = cloud.client("s3")
    outputs_file = tmp_path / "dev.json"
    monkeypatch.setenv("TIDE_STACK_OUTPUTS", str(outputs_file))  # as the README exports it

    # 1. lake: storage and image repositories; nothing that needs an image or a model.
    lake, declared = pulumi_up("lake", outputs_file)
    assert {"endpoint_name", "training_role_arn", "ingest_queue_url"}.isdisjoint(lake)
    assert lake["training_image_repository"].endswith("/tidewater-dev-train")
    create_buckets(s3, declared)
    buckets = lake["buckets"]

    # 2. platform: ingestion, queues, compute, the training role; still no endpoint.
    platform, declared = pulumi_up("platform", outputs_file)
    assert platform["buckets"] == buckets and "endpoint_name" not in platform
    assert not of_type(declared, "aws:sagemaker/endpoint:Endpoint")
    assert platform["k8s_training_job"]["namespace"] == Names("tidewater", "dev").k8s_namespace("training")
    # A producer's data, curated (the ingest function's own tests cover raw -> curated).
    write_curated(tmp_path / "curated", rows=400)
    upload_curated(s3, buckets["curated"], tmp_path / "curated")  # partitions and their commit manifests
    dataset = tide("ingest", "--curated", f"s3://{buckets['curated']}", "--datasets", f"s3://{buckets['datasets']}",
                   "--workers", "1", "--rows-per-shard", "300", "--no-progress")  # fmt: skip

    def train(seed: int) -> dict[str, Any]:
        return tide(
            "train",
            "--manifest",
            dataset["manifest"],
            "--procs-per-node",
            "1",
            "--steps",
            "4",
            "--checkpoint-every",
            "2",
            "--max-restarts",
            "0",
            "--seed",
            str(seed),
            "--cache-dir",
            str(tmp_path / "cache"),
        )  # fmt: skip  (output and model name: the stack's)

    first = train(seed=7)
    model = platform["model_name"]
    assert first["model_url"] == f"s3://{buckets['artifacts']}/{model_prefix(model, first['version'])}".rstrip("/")

    # 3. serving: the endpoint with the model training wrote, under the names training used.
    serving, declared = pulumi_up("serving", outputs_file, champion_model_version=first["version"])
    (sm_model,) = of_type(declared, "aws:sagemaker/model:Model")
    archive = sm_model["inputs"]["primaryContainer"]["modelDataUrl"]
    assert archive == f"{first['model_url']}/model.tar.gz"
    s3.head_object(Bucket=buckets["artifacts"], Key=archive.removeprefix(f"s3://{buckets['artifacts']}/"))
    champion = model_version_name(model, first["version"])
    assert serving["variants"] == {champion: 1}
    assert serving["endpoint_name"] == Names("tidewater", "dev").endpoint(model)
    create_endpoint(cloud, declared)

    # 4. a later model joins as the challenger at weight 0, with the serving variant's guards.
    second = train(seed=8)
    wrapped: dict[str, MotoWithUpdateEndpoint] = {}
    real_client: Callable[..., Any] = __import__("boto3").client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        made = real_client(service, *args, **kwargs)
        return wrapped.setdefault("sm", MotoWithUpdateEndpoint(made)) if service == "sagemaker" else made

    monkeypatch.setattr("boto3.client", client)
    deployed = tide("deploy", "--model-url", second["model_url"])
    challenger = model_version_name(model, second["version"])
    endpoint = serving["endpoint_name"]
    assert deployed["endpoint"] == endpoint and deployed["variant"] == challenger
    weights = {v["VariantName"]: v["InitialVariantWeight"] for v in deployed["variants"]}
    assert weights == {champion: 1.0, challenger: 0.0}
    assert sorted(deployed["guards"]["alarms"]) == sorted(variant_alarm(endpoint, challenger, k)
                                                          for k in VARIANT_ALARM_KINDS)  # fmt: skip
    sm = cloud.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=deployed["endpoint_config"])
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == serving["capture_destination"]
    new_model = sm.describe_model(ModelName=challenger)
    assert new_model["ExecutionRoleArn"] == serving["endpoint_role_arn"]
    assert new_model["PrimaryContainer"]["Image"] == serving["endpoint_image"]
    assert new_model["PrimaryContainer"]["ModelDataUrl"] == f"{second['model_url']}/model.tar.gz"
    targets = cloud.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
    assert {t["ResourceId"] for t in targets["ScalableTargets"]} == {
        f"endpoint/{endpoint}/variant/{champion}",
        f"endpoint/{endpoint}/variant/{challenger}",
    }

    # Deploying the model the stack already serves changes nothing.
    again = tide("deploy", "--model-url", first["model_url"])
    assert again["endpoint_config"] == deployed["endpoint_config"] and again["guards"] is None
